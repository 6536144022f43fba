"""End-to-end `facecluster scan` on committed example photos."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facecluster.cli import main
from facecluster.storage.lock import OutputLock
from tests.conftest import EXAMPLES

PEOPLE = ("George_W_Bush", "Colin_Powell", "Serena_Williams")


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file below folder."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def library(tmp_path: Path) -> Path:
    """A photo folder: three people in sub-folders and a group photo."""
    root = tmp_path / "Photos"
    for person in PEOPLE:
        (root / person).mkdir(parents=True)
        for photo in EXAMPLES.glob(f"{person}_*.jpg"):
            shutil.copy2(photo, root / person / photo.name)
    shutil.copy2(EXAMPLES / "group_2007_007763.jpg", root / "group.jpg")
    return root


def scan(photos: Path, output: Path, *args: str):
    result = CliRunner().invoke(main, ["scan", str(photos), "-o", str(output), "--json", *args])
    summary = json.loads(result.stdout.splitlines()[-1]) if result.exit_code == 0 else None
    return result, summary


def albums(output: Path) -> dict[str, set[str]]:
    people = output / "people"
    return {d.name: {p.name for p in d.iterdir()} for d in people.iterdir() if d.is_dir() and d.name != "unsorted"}


def test_scan_makes_one_album_per_person(library, tmp_path):
    before = _snapshot(library)
    output = tmp_path / "out"
    result, summary = scan(library, output)
    assert result.exit_code == 0, result.output
    assert summary["photos"] == 10 and summary["analysed"] == 10 and summary["skipped"] == 0
    found = sorted(albums(output).values(), key=sorted)
    expected = sorted(({f"{p}_000{i}.jpg" for i in (1, 2, 3)} for p in PEOPLE), key=sorted)
    assert found == expected
    link = next((output / "people").glob("person_*/*.jpg"))
    assert link.is_symlink() and Path(os.readlink(link)).resolve().parent.parent == library.resolve()
    data = json.loads((output / "people.json").read_text())
    assert len(data["people"]) == 3 and data["summary"]["faces"] == summary["faces"]
    assert (output / "report.html").is_file() and (output / "index.sqlite").is_file()
    assert _snapshot(library) == before  # originals untouched, nothing written into the photo folder


def test_rescan_is_incremental(library, tmp_path):
    output = tmp_path / "out"
    scan(library, output)
    _, again = scan(library, output)
    assert again["analysed"] == 0 and again["new_or_changed"] == 0 and again["people"] == 3

    (library / "Colin_Powell" / "Colin_Powell_0003.jpg").unlink()
    shutil.copy2(library / "Serena_Williams" / "Serena_Williams_0001.jpg", library / "copy of serena.jpg")
    _, third = scan(library, output)
    assert third["vanished"] == 1 and third["missing"] == 1 and third["moved"] == 0
    assert third["analysed"] == 0 and third["new_or_changed"] == 1  # the copy's content is already indexed
    found = albums(output)
    assert not any("Colin_Powell_0003.jpg" in photos for photos in found.values())
    document = json.loads((output / "people.json").read_text())
    assert document["missing"] == ["Colin_Powell/Colin_Powell_0003.jpg"]
    with sqlite3.connect(output / "index.sqlite") as db:  # the missing photo keeps its row, content and faces
        assert db.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 11
        assert db.execute("SELECT COUNT(DISTINCT sha256) FROM photos").fetchone()[0] == 10


def test_changed_photo_is_reanalysed_and_its_old_faces_dropped(library, tmp_path):
    output = tmp_path / "out"
    scan(library, output)
    target = library / "Colin_Powell" / "Colin_Powell_0002.jpg"
    Image.open(library / "George_W_Bush" / "George_W_Bush_0002.jpg").save(target, quality=85)  # new picture
    os.utime(target, ns=(time.time_ns(), time.time_ns()))
    _, summary = scan(library, output)
    assert summary["new_or_changed"] == 1 and summary["faces"] == 16
    with sqlite3.connect(output / "index.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM contents").fetchone()[0] == 10  # the old content is gone
    bush = next(photos for photos in albums(output).values() if "George_W_Bush_0001.jpg" in photos)
    assert "Colin_Powell_0002.jpg" in bush


def test_exif_rotated_photo_is_found_and_grouped(library, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the viewer must rotate 90 degrees clockwise
    upright = Image.open(library / "George_W_Bush" / "George_W_Bush_0003.jpg")
    upright.transpose(Image.Transpose.ROTATE_90).save(library / "George_W_Bush" / "sideways.jpg", exif=exif)
    output = tmp_path / "out"
    scan(library, output)
    bush = next(photos for photos in albums(output).values() if "George_W_Bush_0001.jpg" in photos)
    assert "sideways.jpg" in bush


def test_bad_files_are_skipped_with_reasons(library, tmp_path):
    (library / "broken.jpg").write_bytes((EXAMPLES / "Colin_Powell_0001.jpg").read_bytes()[:1500])
    (library / "notes.png").write_text("not an image")
    (library / "empty.jpg").write_bytes(b"")
    output = tmp_path / "out"
    result, summary = scan(library, output)
    assert result.exit_code == 0 and summary["skipped"] == 3 and summary["people"] == 3
    skipped = {s["path"]: s["reason"] for s in json.loads((output / "people.json").read_text())["skipped"]}
    assert set(skipped) == {"broken.jpg", "notes.png", "empty.jpg"}
    assert "not an image" in skipped["notes.png"] and "decode" in skipped["broken.jpg"]
    assert "broken.jpg" in (output / "report.html").read_text()


def test_hidden_excluded_and_output_inside_are_respected(library, tmp_path):
    hidden = library / ".thumbnails"
    hidden.mkdir()
    shutil.copy2(EXAMPLES / "Colin_Powell_0001.jpg", hidden / "x.jpg")
    result, summary = scan(library, tmp_path / "out", "--exclude", "Serena_Williams")
    assert summary["files"] == 7 and summary["people"] == 2
    result, _ = scan(library, library / "albums")
    assert result.exit_code == 2 and "inside the photo folder" in result.output
    assert not (library / "albums").exists()


def test_symlink_loops_never_hang(library, tmp_path):
    (library / "George_W_Bush" / "loop").symlink_to(library, target_is_directory=True)
    result, summary = scan(library, tmp_path / "out")
    assert result.exit_code == 0 and summary["files"] == 10 and summary["skipped"] == 1


def test_followed_links_lead_anywhere_and_albums_to_the_real_files(library, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy2(EXAMPLES / "Colin_Powell_0003.jpg", outside / "secret.jpg")
    (library / "Colin_Powell" / "Colin_Powell_0003.jpg").unlink()
    (library / "linked-folder").symlink_to(outside, target_is_directory=True)
    (library / "linked.jpg").symlink_to(outside / "secret.jpg")
    (library / "inside.jpg").symlink_to(library / "Colin_Powell" / "Colin_Powell_0001.jpg")
    result, summary = scan(library, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert summary["files"] == 12 and summary["photos"] == 10 and summary["analysed"] == 10
    assert summary["skipped"] == 0
    linked = [p for p in (tmp_path / "out" / "people").rglob("*") if p.is_symlink()]
    targets = {os.readlink(p) for p in linked}
    assert str(outside.resolve() / "secret.jpg") in targets
    assert all(Path(t) == Path(t).resolve() and Path(t).is_file() for t in targets)


def test_dry_run_writes_nothing(library, tmp_path):
    output = tmp_path / "out"
    result = CliRunner().invoke(main, ["scan", str(library), "-o", str(output), "--dry-run"])
    assert result.exit_code == 0
    assert result.stdout.count("analyse\t") == 10
    assert not output.exists()


def test_second_scan_on_a_locked_output_refuses(library, tmp_path):
    output = tmp_path / "out"
    lock = OutputLock(output)
    try:
        result, _ = scan(library, output)
    finally:
        lock.release()
    assert result.exit_code == 3 and "another facecluster command" in result.output


def test_copy_and_hardlink_albums(library, tmp_path):
    for mode in ("--copy", "--hardlink"):
        output = tmp_path / mode.strip("-")
        scan(library, output, mode)
        album = next((output / "people").glob("person_*"))
        photo = next(album.iterdir())
        assert not photo.is_symlink()
        original = next(library.rglob(photo.name))
        assert photo.read_bytes() == original.read_bytes()
        assert (photo.stat().st_ino == original.stat().st_ino) == (mode == "--hardlink")


def _index_state(output: Path) -> tuple:
    with sqlite3.connect(output / "index.sqlite") as db:
        photos = sorted(db.execute("SELECT path, sha256 FROM photos"))
        faces = sorted(db.execute("SELECT sha256, idx, round(x1), round(y1) FROM faces"))
    return photos, faces


def test_killed_scan_resumes_without_loss_or_duplicates(tmp_path):
    root = tmp_path / "Photos"
    root.mkdir()
    for quality in (70, 80, 90):  # three distinct contents per example photo
        for photo in EXAMPLES.glob("*.jpg"):
            Image.open(photo).save(root / f"{photo.stem}_q{quality}.jpg", quality=quality)
    reference = tmp_path / "reference"
    scan(root, reference)
    output = tmp_path / "out"
    command = [sys.executable, "-m", "facecluster", "scan", str(root), "-o", str(output), "--quiet"]
    indexed_at_kill = []
    for kill_after in (3, 12):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and process.poll() is None:
            try:
                with sqlite3.connect(output / "index.sqlite", timeout=1) as db:
                    if db.execute("SELECT COUNT(*) FROM photos").fetchone()[0] >= kill_after:
                        break
            except sqlite3.Error:
                pass
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        with sqlite3.connect(output / "index.sqlite") as db:
            indexed_at_kill.append(db.execute("SELECT COUNT(*) FROM photos").fetchone()[0])
    assert 0 < indexed_at_kill[0] < 30  # the first kill really interrupted the scan
    result, summary = scan(root, output)
    assert result.exit_code == 0, result.output
    assert summary["analysed"] == 30 - indexed_at_kill[-1]
    assert _index_state(output) == _index_state(reference)


def test_heic_photo_is_read_and_grouped(library, tmp_path):
    pytest.importorskip("pillow_heif")
    Image.open(library / "Serena_Williams" / "Serena_Williams_0002.jpg").save(
        library / "Serena_Williams" / "phone.heic", quality=90
    )
    output = tmp_path / "out"
    scan(library, output)
    serena = next(photos for photos in albums(output).values() if "Serena_Williams_0001.jpg" in photos)
    assert "phone.heic" in serena


def test_report_of_a_real_scan_renders_in_chromium(library, tmp_path):
    from tests.test_outputs import CHROMIUM, chromium_render

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    output = tmp_path / "out"
    _, summary = scan(library, output)
    dom = chromium_render(output / "report.html", tmp_path / "profile")
    assert dom.count("<img") == summary["faces"]
    assert "<script" not in dom
    shot = tmp_path / "shot.png"
    chromium_render(output / "report.html", tmp_path / "profile", screenshot=shot)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20  # thumbnails drew real photo content, not an empty page


def test_a_scan_opens_no_network_connection(library, tmp_path, monkeypatch):
    import socket

    opened = []

    class NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            opened.append(args)
            raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "socket", NoSocket)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: opened.append(a) or NoSocket())
    result, summary = scan(library, tmp_path / "out")
    assert result.exit_code == 0 and summary["people"] == 3
    assert opened == []
