"""The library verbs under the review app: fast pages, suggestions, "not this person", deferred changes."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from facecluster.errors import OutputBusy
from facecluster.library import REGROUP_KEY, STALE_KEY, Library
from facecluster.storage.index import FaceIndex
from facecluster.storage.lock import OutputLock
from tests.fakes import by_size


def test_the_overview_agrees_with_people(library):
    overview = library.overview()
    people = library.people()
    assert [(p.id, p.faces, p.photos) for p in overview.people] == [(p.id, len(p.faces), len(p.photos)) for p in people]
    for summary, person in zip(overview.people, people, strict=True):
        assert summary.best_face == person.representative.face_id
    outcome = library.outcome()
    assert overview.unsorted + overview.forgotten == len(outcome.unsorted)


def test_named_people_come_first_in_the_overview(library):
    carol = by_size(library)[2]
    with library.corrections() as edit:
        edit.name(carol.id, "Carol")
    assert library.overview().people[0].id == carol.id
    assert [p.faces for p in library.overview().people[1:]] == [5, 4]


def test_faces_page_through_a_person_in_the_order_of_the_report(library):
    alice = by_size(library)[5]
    total, everything = library.faces(alice.id)
    assert total == 5
    assert sorted(f.face_id for f in everything) == sorted(f.face_id for f in alice.faces)
    pages = [library.faces(alice.id, offset=offset, limit=2)[1] for offset in (0, 2, 4)]
    assert [f.face_id for page in pages for f in page] == [f.face_id for f in everything]
    assert all(f.thumbnail[:2] == b"\xff\xd8" for f in everything)
    assert {f.photo.path for f in everything} == {f.photo.path for f in alice.faces}


def test_missing_photos_leave_the_pages(library):
    bob = by_size(library)[4]
    gone = next(f for f in bob.faces if "bob0" in f.photo.relative)
    gone.photo.path.unlink()
    library.scan()
    assert library.faces(bob.id)[0] == 3
    assert library.photo_of(gone.face_id) is None
    assert next(p for p in library.overview().people if p.id == bob.id).faces == 3


def test_forgotten_faces_are_listed_apart_and_never_suggested(library):
    stranger = library.outcome().unsorted[0]
    with library.corrections() as edit:
        edit.forget([stranger.face_id])
    overview = library.overview()
    assert overview.forgotten == 1
    assert [f.face_id for f in library.faces(None, forgotten=True)[1]] == [stranger.face_id]
    assert stranger.face_id not in [f.face_id for f in library.faces(None)[1]]
    assert library.nearest_people([stranger.face_id]) == {stranger.face_id: None}


def test_a_face_taken_out_of_a_person_is_suggested_back_until_refused(library):
    alice = by_size(library)[5]
    face = alice.faces[0].face_id
    with library.corrections() as edit:
        edit.forget([face])
        edit.move(face, alice.id)
    with library.corrections() as edit:
        assert edit.reject(face, alice.id)
    assert library.nearest_people([face])[face] is None  # said not to be Alice; no one else is near
    with library.corrections() as edit:
        edit.move(face, alice.id)
    assert face in [f.face_id for f in library.person(alice.id).faces]


def test_an_unsorted_face_near_a_person_is_suggested_and_the_answers_stick(library):
    alice = by_size(library)[5]
    face = alice.faces[-1].face_id
    with library.corrections() as edit:  # out of Alice, and no longer refused: a face of no one, near Alice
        edit.reject(face, alice.id)
    with closing(FaceIndex(library.output)) as index:
        index.db.execute("DELETE FROM rejections WHERE face_id=?", (face,))
    library.settle()
    match = library.nearest_people([face])[face]
    assert match is not None and match.person_id == alice.id
    (found,) = library.find(face)  # the same search as find
    assert (found.matches[0].person_id, found.matches[0].distance) == (alice.id, pytest.approx(match.distance))
    assert [m.face_id for m in library.candidates(alice.id)] == [face]
    with library.corrections() as edit:
        edit.reject(face, alice.id)
    assert library.nearest_people([face])[face] is None
    assert library.candidates(alice.id) == []


def test_deferred_changes_wait_for_settle_and_any_command_settles_them(library):
    alice, bob = by_size(library)[5], by_size(library)[4]
    albums = library.output / "people"
    with library.corrections("rename", defer=True) as edit:
        edit.name(alice.id, "Alice")
    assert edit.outcome is None
    assert library.pending()
    assert not (albums / "Alice").exists()
    assert library.person(alice.id).name == "Alice"  # the index has it at once
    with library.corrections("rename", defer=True) as edit:
        edit.name(bob.id, "Bob")
    Library.open(library.output)  # any command opening the library settles first
    assert (albums / "Alice").is_dir() and (albums / "Bob").is_dir()
    assert not library.pending()
    names = {p["name"] for p in json.loads((library.output / "people.json").read_text())["people"]}
    assert {"Alice", "Bob"} <= names
    assert library.settle() is None


def test_a_deferred_change_is_undone_exactly(library):
    before = _tables(library.output)
    alice, bob = by_size(library)[5], by_size(library)[4]
    with library.corrections(defer=True) as edit:
        edit.merge(alice.id, bob.id)
    library.undo(defer=True)
    library.settle()
    after = _tables(library.output)
    assert after == before


def test_settle_regroups_what_deferred_changes_left(library):
    with closing(FaceIndex(library.output)) as index:
        index.set_meta({REGROUP_KEY: "1", STALE_KEY: "1"})
        index.db.execute("DELETE FROM memberships WHERE confirmed=0")
    assert library.overview().people == []
    library.settle()
    assert [p.faces for p in library.overview().people] == [5, 4, 2]


def test_a_command_waits_a_moment_for_the_lock_before_saying_busy(library):
    lock = OutputLock(library.output)
    threading.Timer(0.3, lock.release).start()
    with library.corrections() as edit:  # waits for the brief holder instead of failing
        edit.name(by_size(library)[2].id, "Carol")
    with OutputLock(library.output):
        assert library.busy()
        started = time.monotonic()
        with pytest.raises(OutputBusy), library.corrections() as edit:
            pass
        assert time.monotonic() - started < 5
    assert not library.busy()


def test_review_command_serves_until_sigterm_and_settles_on_the_way_out(library, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "facecluster", "review", "-o", str(library.output), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = line[line.index("http://") :].strip()
        assert url.startswith("http://127.0.0.1:") and "token=" in url
        address = urlsplit(url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        connection.request("GET", f"/?{address.query}")
        assert connection.getresponse().status == 303  # the token is swapped for a cookie
        connection.close()
        with closing(FaceIndex(library.output)) as index:  # a change the app has not settled yet
            index.set_meta({STALE_KEY: "1"})
        (library.output / "people.json").unlink()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "up to date" in output
    assert (library.output / "people.json").is_file()


def _tables(output: Path) -> dict[str, list]:
    with closing(FaceIndex(output)) as index:
        return {
            table: sorted(index.db.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("people", "memberships", "rejections")
        }


def test_undoing_not_this_person_after_a_regroup_puts_the_faces_back(library):
    """The regroup after a deferred change may place the rejected faces elsewhere (unconfirmed): undo wins."""
    alice = by_size(library)[5]
    with library.corrections() as edit:
        edit.name(alice.id, "Alice")
    before = _tables(library.output)
    for face in alice.faces:
        with library.corrections(defer=True) as edit:
            edit.reject(face.face_id, alice.id)
        library.settle()  # the faces may form a new, unnamed person
    for _ in alice.faces:
        library.undo(defer=True)
    library.settle()
    assert _tables(library.output) == before
    assert sorted(f.face_id for f in library.person("Alice").faces) == sorted(f.face_id for f in alice.faces)
