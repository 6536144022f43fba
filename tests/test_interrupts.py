"""Every people command stopped at random points (Ctrl-C, SIGTERM, SIGKILL) is all or nothing.

Each command is first run to the end on a copy of the library, to learn its duration and result;
then copies are stopped by a signal at seeded random moments across that duration. After the stop
the index holds exactly the state before or the state after, and the outputs agree with it: at
once for Ctrl-C and SIGTERM (exit 130), after the next command for SIGKILL (which no program can
catch; the next command rewrites what the killed one left behind). Nothing is left lying around.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from facecluster import Library
from facecluster.cli import main
from facecluster.library import STALE_KEY
from tests.fakes import ALICE, BOB, CAROL, FakeAnalyzer, write_library, write_photo

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def state(output: Path) -> tuple:
    """Who is who and which faces the index holds, by the index alone (without ``Library.open``'s catch-up)."""
    outcome = Library(Path("/unused"), output).outcome()
    with sqlite3.connect(output / "index.sqlite") as db:
        faces = db.execute("SELECT id FROM faces ORDER BY id").fetchall()
    db.close()
    people = sorted((p.id, p.name, tuple(sorted(f.face_id for f in p.faces))) for p in outcome.people)
    return tuple(people), tuple(faces)


def check_outputs(output: Path, photos: Path) -> None:
    """people.json and the album folders say what the index says; no temporary leftovers."""
    outcome = Library(photos, output).outcome()
    document = json.loads((output / "people.json").read_text())
    assert {p["key"]: sorted(f["face_id"] for f in p["faces"]) for p in document["people"]} == {
        f"p{p.id}": sorted(f.face_id for f in p.faces) for p in outcome.people
    }
    albums = {p.name: len(list(p.iterdir())) for p in (output / "people").iterdir() if p.is_dir()}
    albums.pop("unsorted", None)
    assert albums == {p.album: len(p.photos) for p in outcome.people}
    assert not [p.name for p in output.rglob(".*") if p.name != ".lock"]
    with sqlite3.connect(output / "index.sqlite") as db:
        assert db.execute("SELECT value FROM meta WHERE key=?", (STALE_KEY,)).fetchone() in (None, ("",))
    db.close()


def command_lines(library: Library) -> dict[str, list[str]]:
    alice, bob, carol = sorted(library.people(), key=lambda p: -len(p.faces))[:3]
    return {
        "name": ["name", f"p{alice.id}", "Alice"],
        "merge": ["merge", f"p{bob.id}", f"p{carol.id}"],
        "split": ["split", f"p{alice.id}", f"f{alice.faces[0].face_id}", f"f{alice.faces[1].face_id}"],
        "move": ["move", f"f{alice.faces[0].face_id}", f"p{carol.id}"],
        "forget": ["forget", f"p{bob.id}"],
        "undo": ["undo"],
        "prune": ["prune"],
    }


def launch(output: Path, arguments: list[str]) -> subprocess.Popen:
    options = [] if arguments == ["--version"] else ["-o", str(output)]
    return subprocess.Popen(
        [sys.executable, "-m", "facecluster", *arguments, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """A library with 300 more photos (so each command works a while), a change to undo and a photo to prune."""
    photos = write_library(tmp_path_factory.mktemp("interrupts") / "photos")
    for variant in range(10, 310):
        write_photo(photos / "more" / f"{variant}.png", [(ALICE, BOB, CAROL)[variant % 3]], variant)
    fake = FakeAnalyzer()
    library = Library.create(photos, photos.parent / "out", load_analyzer=lambda device, workers: fake)
    library.scan()
    with library.corrections() as edit:
        edit.name(min(library.people(), key=lambda p: len(p.faces)).id, "Carol")
    (photos / "stranger.png").unlink()
    library.scan()
    return library


@pytest.fixture()
def photos(scanned: Library) -> Path:
    return scanned.photos


@pytest.fixture()
def prepared(scanned: Library, tmp_path: Path) -> Library:
    """A copy of ``scanned``'s output folder, for one test to change."""
    shutil.copytree(scanned.output, tmp_path / "out", symlinks=True)
    return Library.open(tmp_path / "out")


@pytest.mark.parametrize("command", ["name", "merge", "split", "move", "forget", "undo", "prune"])
def test_a_stopped_command_is_all_or_nothing(prepared, photos, tmp_path, command):
    arguments = command_lines(prepared)[command]
    before = state(prepared.output)
    done = tmp_path / "done"
    shutil.copytree(prepared.output, done, symlinks=True)
    started = time.perf_counter()
    finished = launch(done, arguments)
    assert finished.wait(60) == 0, finished.stderr.read()
    duration = time.perf_counter() - started
    started = time.perf_counter()
    assert launch(done, ["--version"]).wait(60) == 0
    startup = time.perf_counter() - started
    after = state(done)
    assert after != before
    rng = random.Random(f"{command}-12")
    for number, kind in enumerate(SIGNALS):
        copy = tmp_path / f"stopped-{number}"
        shutil.copytree(prepared.output, copy, symlinks=True)
        process = launch(copy, arguments)
        time.sleep(rng.uniform(startup, duration))  # while the command works, not while Python starts
        process.send_signal(kind)
        code, stderr = process.wait(60), process.stderr.read()
        assert "Traceback" not in stderr or code == -signal.SIGINT, stderr  # -2: stopped while Python started
        assert state(copy) in (before, after), f"{kind!r} left a half-done {command}"
        if kind == signal.SIGKILL:
            Library.open(copy)  # the next command catches up on the outputs
        else:
            assert code in (0, 130, -kind), stderr
        check_outputs(copy, photos)
        if code == 130:
            assert "interrupted" in stderr
            assert ("completed" in stderr) == (state(copy) == after), stderr


def test_a_killed_change_leaves_outputs_that_the_next_command_rewrites(prepared, photos):
    with prepared.corrections() as edit:
        edit.name("Carol", "Caroline")
    (prepared.output / "people.json").write_text("{}")  # as if killed between the commit and the rewrite
    db = sqlite3.connect(prepared.output / "index.sqlite", isolation_level=None)
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", (STALE_KEY,))
    db.close()
    Library.open(prepared.output)
    check_outputs(prepared.output, photos)
    assert (prepared.output / "people" / "Caroline").is_dir()


def test_ctrl_c_while_a_command_starts_exits_130_and_changes_nothing(prepared, monkeypatch):
    import facecluster.cli.common

    before = state(prepared.output)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(facecluster.cli.common.Library, "open", interrupted)
    result = CliRunner().invoke(main, ["name", "p1", "Alice", "-o", str(prepared.output)])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "Aborted" not in result.output
    assert state(prepared.output) == before


def test_ctrl_c_while_a_finished_scan_prints_its_summary_says_the_scan_is_saved(tmp_path, monkeypatch):
    import facecluster.cli.scan
    import facecluster.library

    photos = write_library(tmp_path / "photos")
    monkeypatch.setattr(facecluster.library, "load_face_analyzer", lambda device, workers=None: FakeAnalyzer())

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(facecluster.cli.scan, "Table", interrupted)  # the summary table
    result = CliRunner().invoke(main, ["scan", str(photos), "-o", str(tmp_path / "out")])
    assert result.exit_code == 130, result.output
    assert "interrupted after the scan was completed" in result.output
    assert len(Library.open(tmp_path / "out").people()) == 3
