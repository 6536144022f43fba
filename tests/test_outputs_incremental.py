"""Rewriting the outputs touches only what changed, and ends exactly where a rewrite from scratch would.

Albums are compared with the disk: an album whose entries differ is replaced whole (a new folder,
so a new inode), the others keep their folder; albums of people who are gone are removed.
Thumbnails can still be read after the index is closed, from any thread, without a connection
per thumbnail and without keeping one open afterwards.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from facecluster.library import Library
from facecluster.outputs import write_outputs
from facecluster.outputs.albums import write_albums
from facecluster.storage.index import INDEX_FILE, FaceIndex, ThumbnailReader
from facecluster.types import ScanOutcome
from tests.fakes import by_size, write_photo

MODES = ("symlink", "copy", "hardlink")


def tree(people: Path) -> dict[str, tuple[str, object]]:
    """Every entry under ``people``: a link and its target, a file and what it is, or a folder.

    A copy is known by its bytes; a hard link by the file it shares (device, inode) as well.
    """
    state: dict[str, tuple[str, object]] = {}
    for path in sorted(people.rglob("*")):
        name = str(path.relative_to(people))
        if path.is_symlink():
            state[name] = ("link", os.readlink(path))
        elif path.is_dir():
            state[name] = ("folder", None)
        else:
            info = path.stat()
            shared = (info.st_dev, info.st_ino) if info.st_nlink > 1 else None
            state[name] = ("file", (path.read_bytes(), shared))
    return state


def albums(output: Path) -> dict[str, int]:
    """Album folder name -> its inode (a replaced album gets a new one)."""
    return {child.name: child.stat().st_ino for child in (output / "people").iterdir() if child.is_dir()}


def contents(outcome: ScanOutcome) -> dict[str, list[str]]:
    """Album name -> the relative paths of its photos, as the outcome wants them."""
    wanted = {person.album: [photo.relative for photo in person.photos] for person in outcome.people}
    wanted["unsorted"] = sorted({face.photo.relative for face in outcome.unsorted})
    return wanted


def assert_as_from_scratch(outcome: ScanOutcome, output: Path, scratch: Path, mode: str) -> None:
    """The albums in ``output`` are those a first write into an empty folder makes; nothing is left lying around."""
    shutil.rmtree(scratch, ignore_errors=True)
    write_albums(outcome, scratch, mode)
    assert tree(output / "people") == tree(scratch / "people")
    assert not [p.name for p in output.iterdir() if p.name.startswith(".") and p.name != ".lock"]


def rescan(library: Library, mode: str) -> ScanOutcome:
    return library.scan(album_mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_change_to_one_person_replaces_only_their_album(library: Library, tmp_path: Path, mode: str) -> None:
    before = rescan(library, mode)
    inodes = albums(library.output)
    people = by_size(library)
    alice, carol = people[5], people[2]
    # Alice's face in the party photo goes to Carol, who is in that photo already: only Alice's album changes.
    party = next(face for face in alice.faces if face.photo.relative == "2021/party.png")
    with library.corrections() as edit:
        edit.move(f"f{party.face_id}", f"p{carol.id}")
    after = library.outcome()
    changed = {album for album, photos in contents(after).items() if contents(before).get(album) != photos}
    assert changed == {alice.album}
    now = albums(library.output)
    assert now.keys() == inodes.keys()
    assert {album for album in now if now[album] != inodes[album]} == changed
    assert "party.png" not in os.listdir(library.output / "people" / alice.album)
    assert_as_from_scratch(after, library.output, tmp_path / "scratch", mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_renamed_person_gets_a_new_album_and_the_old_one_goes(library: Library, tmp_path: Path, mode: str) -> None:
    rescan(library, mode)
    inodes = albums(library.output)
    bob = by_size(library)[4]
    with library.corrections() as edit:
        edit.name(bob.id, "Bob")
    now = albums(library.output)
    assert "Bob" in now and bob.album not in now
    assert sorted(os.listdir(library.output / "people" / "Bob")) == sorted(os.listdir(tmp_path / "photos" / "2021"))
    assert {album: inode for album, inode in now.items() if album != "Bob"} == {
        album: inode for album, inode in inodes.items() if album != bob.album
    }
    assert_as_from_scratch(library.outcome(), library.output, tmp_path / "scratch", mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_person_who_disappears_loses_their_album(library: Library, tmp_path: Path, mode: str) -> None:
    rescan(library, mode)
    inodes = albums(library.output)
    carol = by_size(library)[2]
    with library.corrections() as edit:
        edit.forget([f"p{carol.id}"])
    after = library.outcome()
    assert carol.id not in {person.id for person in after.people}
    now = albums(library.output)
    assert carol.album not in now
    kept = {album for album in now if album != "unsorted"}
    assert kept and all(now[album] == inodes[album] for album in kept)
    assert_as_from_scratch(after, library.output, tmp_path / "scratch", mode)


@pytest.mark.parametrize("mode", MODES)
def test_unsorted_and_no_faces_follow_a_scan(library: Library, photos: Path, tmp_path: Path, mode: str) -> None:
    rescan(library, mode)
    inodes = albums(library.output)
    listing = library.output / "people" / "no-faces.txt"
    assert listing.read_text() == "landscape.png\n"
    write_photo(photos / "2022" / "another stranger.png", [77])
    write_photo(photos / "2022" / "sea\nview.png", [None], variant=3)
    after = rescan(library, mode)
    assert listing.read_bytes() == b"2022/sea\\nview.png\nlandscape.png\n"
    assert "another stranger.png" in os.listdir(library.output / "people" / "unsorted")
    now = albums(library.output)
    assert now["unsorted"] != inodes["unsorted"]
    assert all(now[album] == inode for album, inode in inodes.items() if album != "unsorted")
    assert_as_from_scratch(after, library.output, tmp_path / "scratch", mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_rewrite_with_nothing_changed_touches_nothing(library: Library, tmp_path: Path, mode: str) -> None:
    outcome = rescan(library, mode)
    people = library.output / "people"
    entries = {path: os.lstat(path) for path in people.rglob("*")}
    document = os.stat(library.output / "people.json")
    write_outputs(outcome, library.output, mode)
    again = {path: os.lstat(path) for path in people.rglob("*")}
    assert again.keys() == entries.keys()
    assert all((again[p].st_ino, again[p].st_mtime_ns) == (entries[p].st_ino, entries[p].st_mtime_ns) for p in again)
    assert os.stat(library.output / "people.json").st_ino == document.st_ino
    assert_as_from_scratch(outcome, library.output, tmp_path / "scratch", mode)


def test_switching_modes_rebuilds_every_album(library: Library, tmp_path: Path) -> None:
    for mode in ("copy", "hardlink", "symlink", "hardlink", "copy"):
        outcome = rescan(library, mode)
        assert_as_from_scratch(outcome, library.output, tmp_path / "scratch", mode)


@pytest.mark.parametrize("mode", MODES)
def test_damage_and_a_killed_run_are_repaired(library: Library, tmp_path: Path, mode: str) -> None:
    outcome = rescan(library, mode)
    people = library.output / "people"
    alice, bob, carol = by_size(library)[5], by_size(library)[4], by_size(library)[2]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    # A killed run: one album moved aside, another half built, temporary folders left behind.
    (library.output / ".people-old-dead").mkdir()
    os.rename(people / alice.album, library.output / ".people-old-dead" / alice.album)
    (library.output / ".people-tmp-dead" / bob.album).mkdir(parents=True)
    # Damage: an entry gone, a stray one, an album that is a link leading out, a stray file and folder.
    victim = next((people / bob.album).iterdir())
    victim.unlink()
    (people / bob.album / "stray.jpg").write_bytes(b"x")
    shutil.rmtree(people / carol.album)
    (people / carol.album).symlink_to(outside, target_is_directory=True)
    (people / "notes.txt").write_text("x")
    (people / "old person").mkdir()
    (people / "no-faces.txt").write_text("wrong\n")
    write_albums(outcome, library.output, mode)
    assert sorted(os.listdir(outside)) == ["keep.txt"] and (outside / "keep.txt").read_text() == "mine"
    assert not (people / carol.album).is_symlink()
    assert_as_from_scratch(outcome, library.output, tmp_path / "scratch", mode)


def test_a_people_link_leading_out_is_replaced_not_followed(library: Library, tmp_path: Path) -> None:
    outcome = library.outcome()
    outside = tmp_path / "outside"
    shutil.copytree(library.output / "people", outside, symlinks=True)
    before = tree(outside)
    shutil.rmtree(library.output / "people")
    (library.output / "people").symlink_to(outside, target_is_directory=True)
    write_albums(outcome, library.output, "symlink")
    assert not (library.output / "people").is_symlink()
    assert tree(outside) == before
    assert_as_from_scratch(outcome, library.output, tmp_path / "scratch", "symlink")


def test_an_album_entry_leading_elsewhere_is_replaced(library: Library, tmp_path: Path) -> None:
    outcome = library.outcome()
    alice = by_size(library)[5]
    entry = next((library.output / "people" / alice.album).iterdir())
    entry.unlink()
    entry.symlink_to(tmp_path / "photos" / "carol.png")
    write_albums(outcome, library.output, "symlink")
    assert_as_from_scratch(outcome, library.output, tmp_path / "scratch", "symlink")


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_an_edited_original_is_copied_again(library: Library, photos: Path, tmp_path: Path, mode: str) -> None:
    outcome = rescan(library, mode)
    carol = by_size(library)[2]
    original = photos / "carol.png"
    entry = library.output / "people" / carol.album / "carol.png"
    if mode == "hardlink":  # a copy where a link would do is not what a fresh build makes
        entry.unlink()
        shutil.copy2(original, entry)
    else:  # the original changed under the same name
        original.write_bytes(original.read_bytes() + b"more")
    write_albums(outcome, library.output, mode)
    assert entry.read_bytes() == original.read_bytes()
    assert (entry.stat().st_ino == original.stat().st_ino) == (mode == "hardlink")
    assert_as_from_scratch(outcome, library.output, tmp_path / "scratch", mode)


def test_a_case_only_rename_replaces_the_album(library: Library, tmp_path: Path) -> None:
    bob = by_size(library)[4]
    with library.corrections() as edit:
        edit.name(bob.id, "bob")
    with library.corrections() as edit:
        edit.name(bob.id, "Bob")
    assert "Bob" in os.listdir(library.output / "people") and "bob" not in os.listdir(library.output / "people")
    assert_as_from_scratch(library.outcome(), library.output, tmp_path / "scratch", "symlink")


def thumbnails_with_the_index_open(library: Library) -> dict[int, bytes]:
    index = FaceIndex(library.output, readonly=True)
    try:
        reader = ThumbnailReader(index)
        ids = [row[0] for row in index.db.execute("SELECT id FROM faces")]
        return {face_id: reader(face_id) for face_id in ids}
    finally:
        index.close()


def test_thumbnails_read_after_the_index_is_closed_from_other_threads(library: Library) -> None:
    expected = thumbnails_with_the_index_open(library)
    assert expected and all(expected.values())
    outcome = library.outcome()  # its index is closed now
    faces = [face for person in outcome.people for face in person.faces] + outcome.unsorted
    assert {face.face_id for face in faces} <= expected.keys()

    def read(face_ids: list[int]) -> dict[int, bytes]:
        assert threading.current_thread() is not threading.main_thread()
        by_id = {face.face_id: face for face in faces}
        with ThumbnailReader.reading():
            return {face_id: by_id[face_id].thumbnail for face_id in face_ids}

    ids = [face.face_id for face in faces]
    with ThreadPoolExecutor(4) as pool:
        one_by_one = dict(pool.map(lambda face: (face.face_id, face.thumbnail), faces))
        batches = [pool.submit(read, ids[start::3]) for start in range(3)]
    assert one_by_one == {face_id: expected[face_id] for face_id in ids}
    assert {k: v for batch in batches for k, v in batch.result().items()} == one_by_one
    reader = faces[0].load_thumbnail.func  # type: ignore[attr-defined]
    assert reader.many([*ids, 10**9]) == one_by_one


def test_a_reader_of_an_open_index_works_from_another_thread(library: Library) -> None:
    expected = thumbnails_with_the_index_open(library)
    index = FaceIndex(library.output, readonly=True)
    try:
        reader = ThumbnailReader(index)
        with ThreadPoolExecutor(2) as pool:
            assert dict(pool.map(lambda face_id: (face_id, reader(face_id)), expected)) == expected
        assert reader.many(expected) == expected
    finally:
        index.close()


def test_no_reading_connection_outlives_its_use(library: Library) -> None:
    """Reads done (even in a reading() block, once it ends), the next writer checkpoints and removes the WAL."""
    outcome = library.outcome()
    faces = [face for person in outcome.people for face in person.faces]
    wal = library.output / (INDEX_FILE + "-wal")
    with ThumbnailReader.reading():
        assert all(face.thumbnail for face in faces)
    assert faces[0].thumbnail
    with ThreadPoolExecutor(2) as pool:
        assert all(pool.map(lambda face: face.thumbnail, faces))
    with library.corrections() as edit:
        edit.name(by_size(library)[5].id, "Alice")
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(library.output / INDEX_FILE) as db:
        assert db.execute("SELECT name FROM people WHERE name='Alice'").fetchone()
    db.close()


def test_write_outputs_reads_thumbnails_on_one_connection(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the index closed (a library user writing outputs of ``outcome()``), inside ``reading()``."""
    import facecluster.storage.index as index_module

    outcome = library.outcome()
    opened = []
    real = index_module._open_readonly
    monkeypatch.setattr(index_module, "_open_readonly", lambda path: opened.append(path) or real(path))
    shutil.rmtree(library.output / "thumbs")
    with ThumbnailReader.reading():
        write_outputs(outcome, library.output)
    assert len(opened) == 1
    assert len(list((library.output / "thumbs").glob("*.jpg"))) == len(
        [face for person in outcome.people for face in person.faces] + outcome.unsorted
    )
