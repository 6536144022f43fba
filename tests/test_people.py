"""People commands and the persistence of corrections across re-scans, on the example photos."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from facecluster.cli import main
from tests.conftest import EXAMPLES

POWELL, BUSH, SERENA = "Colin_Powell", "George_W_Bush", "Serena_Williams"


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def people(out: Path) -> dict[str, dict]:
    """Person key (p7, stable across naming) -> people.json entry."""
    return {p["key"]: p for p in json.loads((out / "people.json").read_text())["people"]}


def photos_of(entry: dict) -> set[str]:
    return {face["photo"] for face in entry["faces"]}


def add(photos: Path, *names: str) -> None:
    for name in names:
        shutil.copy2(EXAMPLES / name, photos / name)


@pytest.fixture()
def library(tmp_path: Path) -> tuple[Path, Path]:
    """Two photos of each of three people and the group photo, scanned."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    add(photos, *(f"{p}_000{n}.jpg" for p in (POWELL, BUSH, SERENA) for n in (1, 2)), "group_2007_007763.jpg")
    assert run("scan", photos, "-o", out, "-q")[0] == 0
    return photos, out


def key_with(out: Path, photo: str) -> str:
    return next(key for key, entry in people(out).items() if photo in photos_of(entry))


def test_people_lists_ids_albums_counts_and_faces(library):
    _, out = library
    code, stdout, _ = run("people", "-o", out, "--json")
    rows = json.loads(stdout)
    assert code == 0 and [(r["face_count"], r["photo_count"], r["name"]) for r in rows] == [(2, 2, None)] * 3
    assert {r["key"] for r in rows} == {f"p{r['id']}" for r in rows}
    assert {r["album"] for r in rows} == {f"person_{r['id']:04d}" for r in rows}
    assert all(r["photos"] == sorted({f["photo"] for f in r["faces"]}) for r in rows)
    serena = key_with(out, f"{SERENA}_0001.jpg")
    code, stdout, _ = run("people", serena, "-o", out)
    assert code == 0 and len(stdout.splitlines()) == 2 and f"{SERENA}_0002.jpg" in stdout


def test_corrections_survive_a_rescan_with_new_photos(library):
    photos, out = library
    powell, bush, serena = (key_with(out, f"{p}_0001.jpg") for p in (POWELL, BUSH, SERENA))
    ids_before = {key: entry["id"] for key, entry in people(out).items()}
    assert run("name", powell, "Colin Powell", "-o", out)[0] == 0
    # Split Serena's second face out, then merge that new person into Bush (a wrong merge) and
    # move the face back to Serena: each step is remembered.
    serena_faces = [f["face_id"] for f in people(out)[serena]["faces"] if f["photo"] == f"{SERENA}_0002.jpg"]
    assert run("split", serena, f"f{serena_faces[0]}", "-o", out)[0] == 0
    split_key = key_with(out, f"{SERENA}_0002.jpg")
    assert split_key not in (serena, bush, powell)
    assert run("merge", bush, split_key, "-o", out)[0] == 0
    assert photos_of(people(out)[bush]) == {f"{BUSH}_0001.jpg", f"{BUSH}_0002.jpg", f"{SERENA}_0002.jpg"}
    assert run("move", f"f{serena_faces[0]}", serena, "-o", out)[0] == 0
    assert f"{SERENA}_0002.jpg" in photos_of(people(out)[serena])
    # Forget one stranger of the group photo.
    group_faces = json.loads((out / "people.json").read_text())["unsorted"]
    stranger = group_faces[0]["face_id"]
    assert run("forget", f"f{stranger}", "-o", out)[0] == 0
    add(photos, f"{POWELL}_0003.jpg", f"{BUSH}_0003.jpg", f"{SERENA}_0003.jpg")
    assert run("scan", photos, "-o", out, "-q")[0] == 0
    after = people(out)
    assert photos_of(after[powell]) == {f"{POWELL}_000{n}.jpg" for n in (1, 2, 3)}
    assert after[powell]["name"] == "Colin Powell" and after[powell]["album"] == "Colin Powell"
    assert photos_of(after[bush]) == {f"{BUSH}_000{n}.jpg" for n in (1, 2, 3)}
    assert photos_of(after[serena]) == {f"{SERENA}_000{n}.jpg" for n in (1, 2, 3)}
    assert {after[k]["id"] for k in (bush, serena)} == {ids_before[bush], ids_before[serena]}
    assert after[powell]["id"] == ids_before[powell]
    assert (out / "people" / "Colin Powell" / f"{POWELL}_0003.jpg").exists()
    assert stranger in {f["face_id"] for f in json.loads((out / "people.json").read_text())["unsorted"]}


def test_a_face_split_out_never_comes_back(library):
    photos, out = library
    bush = key_with(out, f"{BUSH}_0001.jpg")
    face = next(f["face_id"] for f in people(out)[bush]["faces"] if f["photo"] == f"{BUSH}_0002.jpg")
    assert run("split", bush, f"f{face}", "-o", out)[0] == 0
    split_key = key_with(out, f"{BUSH}_0002.jpg")
    add(photos, f"{BUSH}_0003.jpg")
    assert run("scan", photos, "-o", out, "-q")[0] == 0
    after = people(out)
    assert f"{BUSH}_0002.jpg" not in photos_of(after[bush]) and f"{BUSH}_0002.jpg" in photos_of(after[split_key])
    assert after[split_key]["id"] != after[bush]["id"]


def test_find_recognises_a_new_photo_and_a_face_id(library):
    _, out = library
    code, stdout, _ = run("find", EXAMPLES / f"{POWELL}_0003.jpg", "-o", out, "--json")
    best = json.loads(stdout)[0]["matches"][0]
    assert code == 0 and best["accepted"] and best["photos"] == [f"{POWELL}_0001.jpg", f"{POWELL}_0002.jpg"]
    assert best["distance"] < best["limit"]
    face = people(out)[key_with(out, f"{SERENA}_0001.jpg")]["faces"][0]["face_id"]
    code, stdout, _ = run("find", face, "-o", out, "--json")  # find takes a face id as a bare number
    assert code == 0 and json.loads(stdout)[0]["matches"][0]["key"] == key_with(out, f"{SERENA}_0001.jpg")


def test_people_and_find_read_the_index_not_people_json(library):
    _, out = library
    before = run("people", "-o", out, "--json")[1]
    serena = key_with(out, f"{SERENA}_0001.jpg")
    (out / "people.json").write_text('{"people": []}')  # stale: people.json is an output only
    code, stdout, _ = run("people", "-o", out, "--json")
    assert code == 0 and stdout == before and len(json.loads(stdout)) == 3
    assert run("people", serena, "-o", out)[0] == 0
    code, stdout, _ = run("find", EXAMPLES / f"{SERENA}_0003.jpg", "-o", out, "--json")
    assert code == 0 and json.loads(stdout)[0]["matches"][0]["key"] == serena


def test_find_says_no_one_for_strangers(library, tmp_path):
    _, out = library
    code, stdout, _ = run("find", EXAMPLES / "group_2007_007763.jpg", "-o", out, "--json")
    results = json.loads(stdout)
    assert code == 1 and len(results) == 7
    assert not any(m["accepted"] for r in results for m in r["matches"])


def test_album_names_are_safe_and_unique(library):
    _, out = library
    powell, bush = key_with(out, f"{POWELL}_0001.jpg"), key_with(out, f"{BUSH}_0001.jpg")
    assert run("name", powell, "../../etc/passwd", "-o", out)[0] == 0
    assert run("name", bush, "..\\..\\etc\\passwd", "-o", out)[0] == 0
    folders = sorted(p.name for p in (out / "people").iterdir())
    assert "_.._etc_passwd" in folders and "_.._etc_passwd (2)" in folders
    assert not any(name.startswith(".") for name in folders)
    assert not (out.parent / "etc").exists() and not (out / "etc").exists()
    assert {p["name"] for p in people(out).values()} >= {"../../etc/passwd", "..\\..\\etc\\passwd"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("name", "person_0999", "X"), "no person"),
        (("move", "f99999", "p1"), "no face"),
        (("merge", "p1", "p1"), "themselves"),
        (("name", "p1", " "), "non-empty"),
        (("name", "1", "X"), "ambiguous"),
    ],
)
def test_bad_corrections_exit_two(library, args, message):
    _, out = library
    code, _, stderr = run(*args, "-o", out)
    assert code == 2 and message in stderr


@pytest.mark.parametrize("command", [("people",), ("name", "1", "X"), ("find", "1"), ("xmp",)])
def test_commands_need_a_scanned_folder(tmp_path, command):
    code, _, stderr = run(*command, "-o", tmp_path)
    assert code == 2 and "no face index here; run 'facecluster scan" in stderr


def test_xmp_sidecars_follow_names(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    add(photos, f"{POWELL}_0001.jpg", f"{POWELL}_0002.jpg")
    before = sorted(p.name for p in photos.iterdir())
    assert run("scan", photos, "-o", out, "-q", "--xmp")[0] == 0
    sidecar = out / "xmp" / f"{POWELL}_0001.jpg.xmp"
    assert sidecar.is_file() and b"<mwg-rs:Name>" not in sidecar.read_bytes()
    assert run("name", "p1", "Colin & <Powell>", "-o", out)[0] == 0
    assert b"<mwg-rs:Name>Colin &amp; &lt;Powell&gt;</mwg-rs:Name>" in sidecar.read_bytes()
    assert sorted(p.name for p in photos.iterdir()) == before


def test_move_a_lone_face_to_a_new_named_person(library):
    photos, out = library
    stranger = json.loads((out / "people.json").read_text())["unsorted"][0]["face_id"]
    code, _, stderr = run("move", f"f{stranger}", "Aunt May", "-o", out)
    assert code == 2 and "no person named 'Aunt May'" in stderr
    assert run("move", f"f{stranger}", "Aunt May", "--new", "-o", out)[0] == 0
    aunt = next(key for key, entry in people(out).items() if entry["name"] == "Aunt May")
    assert [f["face_id"] for f in people(out)[aunt]["faces"]] == [stranger]
    assert run("scan", photos, "-o", out, "-q")[0] == 0
    assert [f["face_id"] for f in people(out)[aunt]["faces"]] == [stranger]
    assert run("move", f"f{stranger}", "person_0999", "--new", "-o", out)[0] == 2


def test_person_names_are_text_in_the_report(library):
    _, out = library
    hostile = "</script><script>alert(1)</script>"
    assert run("name", "p1", hostile, "-o", out)[0] == 0
    report = (out / "report.html").read_text()
    assert hostile not in report and "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert people(out)["p1"]["name"] == hostile and people(out)["p1"]["album"] == "__script__script_alert(1)__script_"


def test_xmp_beside_originals_only_when_asked_and_never_replacing(library):
    photos, out = library
    assert run("xmp", "-o", out)[0] == 0
    assert not list(photos.glob("*.xmp")) and (out / "xmp" / f"{POWELL}_0001.jpg.xmp").is_file()
    theirs = photos / f"{BUSH}_0001.jpg.xmp"
    theirs.write_bytes(b"another tool's sidecar")
    originals = {p.name: p.read_bytes() for p in photos.glob("*.jpg")}
    code, _, stderr = run("xmp", "-o", out, "--beside-originals")
    assert code == 0 and f"skipped {BUSH}_0001.jpg.xmp" not in stderr and f"skipped {BUSH}_0001.jpg" in stderr
    assert theirs.read_bytes() == b"another tool's sidecar"
    assert (photos / f"{POWELL}_0001.jpg.xmp").is_file()
    assert {p.name: p.read_bytes() for p in photos.glob("*.jpg")} == originals


@pytest.mark.parametrize(
    "command",
    [("scan", "PHOTOS", "-q"), ("scan", "PHOTOS", "--dry-run"), ("name", "p1", "X"), ("find", "1"), ("people",)],
)
def test_a_corrupt_index_is_a_clear_error_and_left_alone(tmp_path, command):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    add(photos, f"{POWELL}_0001.jpg")
    out.mkdir()
    (out / "index.sqlite").write_bytes(b"not a database, " * 100)
    code, _, stderr = run(*(photos if part == "PHOTOS" else part for part in command), "-o", out)
    assert code == 4 and "index.sqlite" in stderr and "Traceback" not in stderr
    assert (out / "index.sqlite").read_bytes() == b"not a database, " * 100


@pytest.mark.parametrize("command", [("people",), ("people", "p1"), ("find", "1"), ("name", "p1", "X")])
def test_an_index_with_damaged_pages_is_a_clear_error(library, command):
    _, out = library
    index = out / "index.sqlite"
    data = bytearray(index.read_bytes())
    page = 4096
    for start in range(page, len(data) - page, page):  # keep the header page, wreck every other one
        data[start : start + 64] = b"\xff" * 64
    index.write_bytes(bytes(data))
    code, _, stderr = run(*command, "-o", out)
    assert code == 4 and "index.sqlite" in stderr and "Traceback" not in stderr


@pytest.fixture()
def read_only_copy(library, tmp_path):
    """The output folder on a read-only mount (a backup on read-only media), unmounted afterwards."""
    _, out = library
    mount = tmp_path / "read-only"
    mount.mkdir()
    bind = subprocess.run(["mount", "--bind", str(out), str(mount)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode(errors='replace').strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True, capture_output=True)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_people_and_find_read_an_output_folder_on_read_only_media(library, read_only_copy):
    assert not (read_only_copy / "index.sqlite-shm").exists()
    before = {p.name: p.stat().st_mtime_ns for p in read_only_copy.iterdir()}
    code, stdout, stderr = run("people", "-o", read_only_copy, "--json")
    assert code == 0 and len(json.loads(stdout)) == 3, stderr
    code, stdout, stderr = run("find", EXAMPLES / f"{SERENA}_0003.jpg", "-o", read_only_copy, "--json")
    assert code == 0 and json.loads(stdout)[0]["matches"][0]["accepted"], stderr
    assert {p.name: p.stat().st_mtime_ns for p in read_only_copy.iterdir()} == before
