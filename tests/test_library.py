"""The library API on its own: a stand-in analyzer (no models) and a temporary index."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

import facecluster
from facecluster import (
    InvalidInput,
    Library,
    NoLibrary,
    OutputBusy,
    PeopleError,
    ScanOptions,
)
from facecluster.storage.lock import OutputLock
from tests.fakes import ALICE, by_size, colour, embedding, write_photo


def test_scan_returns_a_typed_outcome(photos, tmp_path, fake):
    library = Library.create(photos, tmp_path / "out", load_analyzer=lambda device, workers: fake)
    outcome = library.scan()
    stats = outcome.stats
    assert (stats.files, stats.analysed, stats.photos, stats.faces) == (12, 12, 11, 12)
    assert (stats.people, stats.unsorted, stats.no_faces, stats.skipped) == (3, 1, 1, 1)
    assert stats.device == "fake analyzer" and stats.method == "adaptive"
    assert [len(p.faces) for p in outcome.people] == [5, 4, 2]
    assert outcome.skipped[0].relative == "broken.jpg" and "cannot decode" in outcome.skipped[0].reason
    assert all(isinstance(source, bytes) for source in fake.seen)  # the analyzer gets the bytes read once
    document = json.loads((tmp_path / "out" / "people.json").read_text())
    assert document["summary"] == stats.as_dict()


def test_people_have_ids_faces_and_photos(library):
    people = by_size(library)
    alice = people[5]
    assert Image.open(io.BytesIO(alice.faces[0].thumbnail)).getpixel((4, 4)) == pytest.approx(colour(ALICE), abs=8)
    assert alice.name is None and alice.album == f"person_{alice.id:04d}"
    assert [p.relative for p in alice.photos] == [f"2020/alice{n}.png" for n in range(4)] + ["2021/party.png"]
    assert alice.representative in alice.faces
    assert library.person(alice.id) == alice and library.person(alice.album) == alice
    with pytest.raises(PeopleError, match="no person"):
        library.person("nobody")


def test_name_then_find_through_the_api(library, photos, tmp_path):
    alice = by_size(library)[5]
    with library.corrections() as edit:
        assert edit.name(alice.id, "Alice") == alice.id
    assert edit.outcome is not None and edit.outcome.people[0].name == "Alice"
    assert library.person("Alice").album == "Alice"
    assert (library.output / "people" / "Alice").is_dir()

    new = write_photo(tmp_path / "new.png", [ALICE], variant=42)
    [result] = library.find(new)
    best = result.matches[0]
    assert best.accepted and best.person is not None and best.person.name == "Alice"
    assert best.distance < best.limit and result.query.startswith(f"{new} face 1")

    [by_vector] = library.find(embedding(colour(ALICE), 43))
    assert by_vector.matches[0].person_id == alice.id and by_vector.matches[0].accepted
    face = alice.faces[0].face_id
    [by_face] = library.find(face)
    assert by_face.query == f"face f{face}" and by_face.matches[0].person_id == alice.id
    [stranger] = library.find(write_photo(tmp_path / "who.png", [55]))
    assert not any(m.accepted for m in stranger.matches)


def test_find_refuses_what_it_cannot_look_up(library, tmp_path):
    with pytest.raises(InvalidInput, match="neither a photo nor a face id"):
        library.find(str(tmp_path / "missing.png"))
    with pytest.raises(InvalidInput, match="no face found"):
        library.find(write_photo(tmp_path / "empty.png", [None]))
    with pytest.raises(PeopleError, match="no face 9999"):
        library.find(9999)


def test_corrections_apply_together_and_rewrite_the_outputs_once(library, monkeypatch):
    import facecluster.library as library_module

    writes = []
    real = library_module.write_outputs
    monkeypatch.setattr(library_module, "write_outputs", lambda *args: writes.append(args) or real(*args))
    people = by_size(library)
    alice, bob = people[5], people[4]
    party_bob = next(f.face_id for f in bob.faces if f.photo.relative == "2021/party.png")
    with library.corrections() as edit:
        edit.name(alice.id, "Alice")
        edit.name(bob.id, "Bob")
        edit.move(party_bob, "Alice")
        new = edit.split("Bob", [bob.faces[0].face_id])
    assert len(writes) == 1
    after = {p.name or p.id: p for p in library.people()}
    assert party_bob in {f.face_id for f in after["Alice"].faces}
    assert bob.faces[0].face_id in {f.face_id for f in after[new].faces}
    assert len(after["Bob"].faces) == 2


def test_a_failed_correction_block_changes_nothing(library):
    before = library.people()
    report = (library.output / "report.html").read_bytes()
    with pytest.raises(PeopleError), library.corrections() as edit:
        edit.name(before[0].id, "Alice")
        edit.merge("Alice", "no such person")
    assert library.people() == before
    assert (library.output / "report.html").read_bytes() == report
    with pytest.raises(RuntimeError), library.corrections() as edit:
        edit.name(before[0].id, "Alice")
        raise RuntimeError("the caller changed their mind")
    assert [p.name for p in library.people()] == [None, None, None]


def test_move_to_an_unknown_name_needs_create(library):
    face = by_size(library)[2].faces[0].face_id
    with pytest.raises(PeopleError, match="no person named 'Dora'"), library.corrections() as edit:
        edit.move(face, "Dora")
    with library.corrections() as edit:
        dora = edit.move(face, "Dora", create=True)
    assert library.person("Dora").id == dora and [f.face_id for f in library.person(dora).faces] == [face]


def test_forget_keeps_a_face_out_of_every_group(library):
    carol = by_size(library)[2]
    with library.corrections() as edit:
        edit.forget([carol.faces[0].face_id])
    outcome = library.outcome()
    assert carol.faces[0].face_id in {f.face_id for f in outcome.unsorted}
    library.scan()
    assert carol.faces[0].face_id in {f.face_id for f in library.outcome().unsorted}


def test_the_index_is_the_source_of_truth_not_people_json(library):
    (library.output / "people.json").write_text("{ stale and broken")
    reopened = Library.open(library.output)
    assert [len(p.faces) for p in reopened.people()] == [5, 4, 2]
    assert reopened.photos == library.photos


def test_photos_copied_elsewhere_are_not_analysed_again(library, photos, fake):
    seen = len(fake.seen)
    shutil.copytree(photos / "2020", photos / "backup")
    outcome = library.scan()
    assert len(fake.seen) == seen and outcome.stats.analysed == 0 and outcome.stats.new_or_changed == 4
    assert [len(p.faces) for p in outcome.people] == [5, 4, 2]
    alice = outcome.people[0]
    assert {p.relative: p.copies for p in alice.photos}["2020/alice0.png"] == ("backup/alice0.png",)


def test_copies_are_analysed_once(photos, tmp_path, fake):
    shutil.copy2(photos / "carol.png", photos / "carol-copy.png")
    outcome = Library.create(photos, tmp_path / "out", load_analyzer=lambda device, workers: fake).scan()
    assert outcome.stats.files == 13 and outcome.stats.analysed == 12
    carol = next(p for p in outcome.people if len(p.faces) == 2)
    assert [(photo.relative, photo.copies) for photo in carol.photos if photo.copies] == [
        ("carol-copy.png", ("carol.png",))
    ]


def test_open_and_create_refuse_bad_folders(photos, tmp_path):
    with pytest.raises(NoLibrary, match="no face index here"):
        Library.open(tmp_path / "nothing")
    with pytest.raises(InvalidInput, match="no such folder"):
        Library.create(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(InvalidInput, match="inside the photo folder"):
        Library.create(photos, photos / "out")


def test_a_library_whose_first_scan_is_still_running_is_busy(photos, tmp_path):
    from facecluster.storage.index import FaceIndex

    out = tmp_path / "out"
    out.mkdir()
    FaceIndex(out).close()  # what a first scan has written before it records the photo folder
    lock = OutputLock(out)
    try:
        with pytest.raises(OutputBusy):
            Library.open(out)
    finally:
        lock.release()
    with pytest.raises(NoLibrary, match="predates"):
        Library.open(out)


def test_a_content_that_cannot_be_decoded_is_tried_once_per_scan(photos, tmp_path, fake):
    for n in range(3):
        shutil.copy2(photos / "broken.jpg", photos / f"broken-{n}.jpg")
    outcome = Library.create(photos, tmp_path / "out", load_analyzer=lambda device, workers: fake).scan()
    assert sum(source == b"not a picture" for source in fake.seen) == 1
    assert outcome.stats.analysed == 12 and outcome.stats.skipped == 4


def test_a_busy_output_folder_is_refused(library):
    lock = OutputLock(library.output)
    try:
        with pytest.raises(OutputBusy):
            library.scan()
        with pytest.raises(OutputBusy), library.corrections():
            pass
    finally:
        lock.release()


def test_plan_writes_nothing(photos, tmp_path, fake):
    library = Library.create(photos, tmp_path / "out", load_analyzer=lambda device, workers: fake)
    plan = library.plan(ScanOptions(exclude=("2021",)))
    assert len(plan.to_read) == 8 and plan.vanished == [] and not (tmp_path / "out").exists()


def test_group_and_verify_work_on_plain_vectors():
    vectors = np.stack([embedding(colour(person), variant) for person in (1, 2, 1, 3, 2, 1) for variant in (0,)])
    vectors[2] = embedding(colour(1), 5)
    labels = facecluster.group(vectors)
    assert labels[0] == labels[2] == labels[5] and labels[1] == labels[4] and labels[3] == -1
    assert labels[0] != labels[1]
    assert facecluster.verify(vectors[0], vectors[2]).same
    assert not facecluster.verify(vectors[0], vectors[1]).same
