"""The same guarantees through the command line: what each command says, its exit status, and undo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from facecluster.cli import main
from tests.fakes import by_size


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def names(out: Path) -> dict[str, str | None]:
    return {p["key"]: p["name"] for p in json.loads((out / "people.json").read_text())["people"]}


def test_name_move_undo_and_history_say_what_they_did(library):
    out = library.output
    alice, carol = by_size(library)[5], by_size(library)[2]
    code, _, stderr = run("name", f"p{alice.id}", "Alice", "-o", out)
    assert code == 0 and f"named p{alice.id} (unnamed) 'Alice' (5 faces, now confirmed)" in stderr
    assert f"to take this back: facecluster undo -o {out}" in stderr
    face = alice.faces[0].face_id
    code, _, stderr = run("move", f"f{face}", "alice", "-o", out)  # names in any case
    assert code == 0 and f"moved f{face} from p{alice.id} 'Alice' to p{alice.id} 'Alice'" in stderr
    code, _, stderr = run("move", f"f{face}", "Carl", "-o", out)
    assert code == 2 and "no person named 'Carl'" in stderr
    code, _, stderr = run("move", f"f{face}", "Carl", "--new", "-o", out)
    assert code == 0 and "created the person" in stderr and f"moved f{face} from p{alice.id} 'Alice'" in stderr
    code, stdout, _ = run("history", "-o", out, "--json")
    history = json.loads(stdout)
    assert code == 0 and [c["command"] for c in history] == [
        f"move f{face} Carl --new",
        f"move f{face} alice",
        f"name p{alice.id} Alice",
    ]
    assert run("undo", "-o", out)[0] == 0
    assert "Carl" not in names(out).values() and names(out)[f"p{alice.id}"] == "Alice"
    assert run("undo", "-o", out)[0] == 0 and run("undo", "-o", out)[0] == 0
    assert set(names(out).values()) == {None} and f"p{carol.id}" in names(out)
    code, _, stderr = run("undo", "-o", out)
    assert code == 2 and "nothing to undo" in stderr
    code, stdout, _ = run("history", "-o", out)
    assert code == 0 and "(undone by #" in stdout


def test_bare_numbers_that_could_mean_a_face_or_a_person_are_refused(library):
    code, _, stderr = run("forget", "1", "-o", library.output)
    assert code == 2 and "ambiguous: write f1 for the face 1 or p1 for the person p1" in stderr
    assert run("forget", "p1", "-o", library.output)[0] == 0
    assert "p1" not in names(library.output)


def test_a_scan_refuses_an_empty_or_foreign_folder_and_keeps_missing_photos(library, photos, tmp_path):
    out = library.output
    assert run("name", "p1", "Alice", "-o", out)[0] == 0
    drive = tmp_path / "drive"
    photos.rename(drive)
    photos.mkdir()
    code, _, stderr = run("scan", photos, "-o", out)
    assert code == 2 and "is it mounted?" in stderr and "nothing changed" in stderr
    code, _, stderr = run("scan", drive, "-o", out)
    assert code == 2 and "belongs to the photo folder" in stderr and "--new-folder" in stderr
    code, _, stderr = run("scan", drive, "-o", out, "--dry-run")
    assert code == 2 and "belongs to the photo folder" in stderr
    code, stdout, _ = run("scan", drive, "-o", out, "--dry-run", "--new-folder", "--json")
    assert code == 0 and json.loads(stdout)["analyse"] == []
    code, stdout, stderr = run("scan", photos, "-o", out, "--allow-empty", "--json")
    assert code == 0 and json.loads(stdout)["missing"] == 12 and json.loads(stdout)["people"] == 0
    assert json.loads((out / "people.json").read_text())["missing"][0] == "2020/alice0.png"
    photos.rmdir()
    drive.rename(photos)
    code, stdout, _ = run("scan", photos, "-o", out, "--json")
    summary = json.loads(stdout)
    assert code == 0 and summary["analysed"] == 0 and summary["returned"] == 12 and summary["missing"] == 0
    assert names(out)["p1"] == "Alice" and (out / "people" / "Alice").is_dir()


def test_prune_dry_run_prune_and_undo(library, photos):
    out = library.output
    (photos / "carol.png").unlink()
    code, _, stderr = run("scan", photos, "-o", out)
    assert code == 0 and "1 photos are missing (carol.png)" in stderr and "facecluster prune" in stderr
    code, stdout, stderr = run("prune", "--dry-run", "-o", out)
    assert code == 0 and stdout == "carol.png\n" and "would forget 1 missing photos and their 1 faces" in stderr
    code, stdout, _ = run("prune", "-o", out, "--json")
    report = json.loads(stdout)
    assert code == 0 and report["photos"] == ["carol.png"] and not report["dry_run"]
    assert run("prune", "-o", out)[2] == "no missing photos; nothing changed\n"
    assert run("undo", "-o", out)[0] == 0
    assert json.loads((out / "people.json").read_text())["missing"] == ["carol.png"]


def test_a_name_that_is_not_valid_text_is_a_clear_error(library):
    result = subprocess.run(
        [sys.executable, "-m", "facecluster", "name", "p1", b"Ren\xe9e", "-o", str(library.output)],
        capture_output=True,
    )
    assert result.returncode == 2 and b"not valid text" in result.stderr and b"Traceback" not in result.stderr


def test_people_json_lists_faces_and_photos_under_stable_keys(library):
    code, stdout, _ = run("people", "-o", library.output, "--json")
    before = {p["key"]: p for p in json.loads(stdout)}
    assert run("name", "p2", "Bob", "-o", library.output)[0] == 0
    after = {p["key"]: p for p in json.loads(run("people", "-o", library.output, "--json")[1])}
    assert after.keys() == before.keys() and after["p2"]["album"] == "Bob" and after["p2"]["photos"]
    assert after["p2"]["faces"][0]["key"].startswith("f")
    code, stdout, _ = run("people", "bob", "-o", library.output)
    assert code == 0 and stdout.startswith("f")
