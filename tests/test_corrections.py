"""Nothing the user said is lost: renames, missing drives, other folders, undo, prune, edits, references."""

from __future__ import annotations

import sqlite3

import pytest

from facecluster import InvalidInput, Library, PeopleError, ScanOptions, StorageError
from facecluster.library import PeopleEditor
from tests.fakes import ALICE, BOB, CAROL, by_size, write_photo


def snapshot(library: Library) -> tuple[list[tuple[int, str | None, tuple[int, ...]]], list[int]]:
    """Who is who: (person id, name, face ids) per person, and the unsorted face ids."""
    outcome = library.outcome()
    people = sorted((p.id, p.name, tuple(sorted(f.face_id for f in p.faces))) for p in outcome.people)
    return people, sorted(f.face_id for f in outcome.unsorted)


def tables(library: Library) -> dict[str, list[tuple]]:
    """The rows that hold people and corrections, exactly."""
    with sqlite3.connect(library.output / "index.sqlite") as db:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("people", "memberships", "rejections", "photos", "contents")
        }


def correct(library: Library) -> None:
    """A user's afternoon: name Alice, split one of her faces off, merge Carol into Bob, forget the stranger."""
    people = by_size(library)
    alice, bob, carol = people[5], people[4], people[2]
    stranger = library.outcome().unsorted[0].face_id
    with library.corrections() as edit:
        edit.name(alice.id, "Alice")
        edit.split("Alice", [alice.faces[0].face_id])
        edit.merge(bob.id, carol.id)
        edit.forget([stranger])


def test_move_into_an_unnamed_person_keeps_that_person(library):
    people = by_size(library)
    bob, carol = people[4], people[2]
    moved = people[5].faces[0].face_id
    with library.corrections() as edit:
        edit.move(f"f{moved}", f"p{carol.id}")
    assert {f.face_id for f in library.person(carol.id).faces} == {f.face_id for f in carol.faces} | {moved}
    assert {f.face_id for f in library.person(bob.id).faces} == {f.face_id for f in bob.faces}
    library.scan()
    assert {f.face_id for f in library.person(carol.id).faces} == {f.face_id for f in carol.faces} | {moved}


def test_renamed_and_reorganised_folders_keep_every_correction(library, photos, fake):
    correct(library)
    before, seen = snapshot(library), len(fake.seen)
    (photos / "archive").mkdir()
    (photos / "2020").rename(photos / "archive" / "2020 holidays")
    (photos / "2021").rename(photos / "2021-party")
    (photos / "carol.png").rename(photos / "archive" / "carol-renamed.png")
    outcome = library.scan()
    assert len(fake.seen) == seen and outcome.stats.analysed == 0
    assert snapshot(library) == before
    assert (outcome.stats.vanished, outcome.stats.moved, outcome.stats.missing) == (9, 9, 0)
    alice = library.person("alice")
    assert all(p.relative.startswith(("archive/2020 holidays/", "2021-party/")) for p in alice.photos)
    assert (library.output / "people" / "Alice").is_dir()


def test_an_unmounted_drive_loses_nothing(library, photos, tmp_path, fake):
    correct(library)
    before, seen = snapshot(library), len(fake.seen)
    unmounted = tmp_path / "drive"
    photos.rename(unmounted)
    photos.mkdir()
    with pytest.raises(InvalidInput, match="is it mounted"):
        library.scan()
    assert snapshot(library) == before
    outcome = library.scan(ScanOptions(allow_empty=True))
    assert outcome.people == [] and outcome.stats.missing == 12
    assert not [p for p in (library.output / "people").iterdir() if p.is_dir() and any(p.iterdir())]
    photos.rmdir()
    unmounted.rename(photos)
    outcome = library.scan()
    assert outcome.stats.analysed == 0 and len(fake.seen) == seen and outcome.stats.returned == 12
    assert snapshot(library) == before and library.person("Alice").name == "Alice"


def test_another_folder_is_refused_unless_the_photos_moved(library, photos, tmp_path, fake):
    correct(library)
    before, seen = snapshot(library), len(fake.seen)
    other = tmp_path / "other"
    write_photo(other / "someone.png", [42])
    with pytest.raises(InvalidInput, match="belongs to the photo folder"):
        Library.create(other, library.output, load_analyzer=lambda device, workers: fake).scan()
    assert snapshot(library) == before
    moved = tmp_path / "new-disk" / "Photos"
    moved.parent.mkdir()
    photos.rename(moved)
    outcome = Library.create(moved, library.output, load_analyzer=lambda device, workers: fake).scan(
        ScanOptions(new_folder=True)
    )
    assert outcome.stats.analysed == 0 and len(fake.seen) == seen and outcome.stats.missing == 0
    assert snapshot(Library.open(library.output)) == before
    assert Library.open(library.output).photos == moved.resolve()


def test_a_vanished_photo_is_kept_until_pruned_and_prune_is_undone(library, photos, fake):
    correct(library)
    party = photos / "2021" / "party.png"
    saved = party.read_bytes()
    before, seen = snapshot(library), len(fake.seen)
    party.unlink()
    outcome = library.scan()
    assert outcome.missing == ["2021/party.png"] and outcome.stats.missing == 1
    assert all("2021/party.png" not in [ph.relative for ph in p.photos] for p in outcome.people)
    assert library.missing() == {next(iter(library.missing())): ["2021/party.png"]}
    dry = library.prune(dry_run=True)
    assert dry.photos == ["2021/party.png"] and len(dry.faces) == 3 and library.missing()
    held = tables(library)
    report = library.prune()
    assert report.photos == ["2021/party.png"] and not library.missing()
    assert tables(library)["contents"] != held["contents"]
    assert "forgot 1 missing photos" in library.history()[0].effects[0]
    library.undo()
    assert tables(library) == held
    party.write_bytes(saved)
    library.scan()
    assert len(fake.seen) == seen and snapshot(library) == before


@pytest.mark.parametrize("change", ["name", "merge", "split", "move", "forget", "create"])
def test_undo_restores_the_grouping_exactly(library, change):
    people = by_size(library)
    alice, bob, carol = people[5], people[4], people[2]
    before, rows = snapshot(library), tables(library)
    actions = {
        "name": lambda edit: edit.name(alice.id, "Alice"),
        "merge": lambda edit: edit.merge(bob.id, carol.id),
        "split": lambda edit: edit.split(alice.id, [f.face_id for f in alice.faces[:2]]),
        "move": lambda edit: edit.move(alice.faces[0].face_id, carol.id),
        "forget": lambda edit: edit.forget([f"p{bob.id}"]),
        "create": lambda edit: edit.move(carol.faces[0].face_id, "Dora", create=True),
    }
    with library.corrections() as edit:
        actions[change](edit)
    assert snapshot(library) != before
    undone = library.undo()
    assert undone.command and snapshot(library) == before and tables(library) == rows
    assert library.history()[0].undoes == undone.id


def test_undo_is_repeatable_and_says_when_there_is_nothing_left(library):
    before, alice = tables(library), by_size(library)[5]
    correct(library)
    with library.corrections("rename") as edit:
        edit.name("alice", "Alice Smith")
    assert library.person("alice smith").id == alice.id
    history = library.history()
    assert [c.command for c in history[:1]] == ["rename"] and len(history) == 2
    assert history[1].effects[0].startswith("named p") and "Alice" in history[1].effects[0]
    assert library.undo().command == "rename"
    library.undo()
    assert tables(library) == before
    with pytest.raises(PeopleError, match="nothing to undo"):
        library.undo()


def test_an_edited_photo_keeps_its_corrections(library, photos, fake):
    people = by_size(library)
    carol = people[2]
    party = next(f for f in people[5].faces if f.photo.relative == "2021/party.png")
    with library.corrections() as edit:
        edit.name(carol.id, "Carol")
        edit.move(party.face_id, carol.id)  # a wrong move, but the user's
    seen = len(fake.seen)
    write_photo(photos / "2021" / "party.png", [ALICE, BOB, CAROL], variant=8)  # re-saved by an editor
    library.scan()
    assert len(fake.seen) == seen + 1
    carols = library.person("Carol")
    edited = [f for f in carols.faces if f.photo.relative == "2021/party.png"]
    assert len(edited) == 2 and party.face_id not in {f.face_id for f in edited}  # the new content's faces


class TestReferences:
    @pytest.fixture()
    def edit(self, library) -> PeopleEditor:
        with library.corrections() as edit:
            yield edit

    def test_a_bare_number_that_is_both_a_person_and_a_face_is_refused(self, edit):
        with pytest.raises(PeopleError, match=r"ambiguous: write p1 .* or f1"):
            edit.person("1")
        with pytest.raises(PeopleError, match="ambiguous"):
            edit.face("1")
        assert edit.person("p1") == 1 and edit.face("f1") == 1 and edit.person("person_0001") == 1
        with pytest.raises(PeopleError, match="is a face, not a person"):
            edit.person("f1")
        with pytest.raises(PeopleError, match="is a person, not a face"):
            edit.face("p1")

    def test_names_match_in_any_case_and_typos_get_a_suggestion(self, edit):
        edit.name("p1", "Serena")
        assert edit.person("serena") == 1 and edit.person("SERENA ") == 1
        with pytest.raises(PeopleError, match="did you mean 'Serena'"):
            edit.person("Serna")
        with pytest.raises(PeopleError, match="did you mean 'Serena'"):
            edit.move("f2", "Serna")
        with pytest.raises(PeopleError, match="already named 'Serena'"):
            edit.name("p2", "sErEnA")

    @pytest.mark.parametrize("name", ["p3", "F12", "17", "person_0002", "Unsorted", "no-faces.txt", "a\x07b", "\udcff"])
    def test_id_like_reserved_and_unreadable_names_are_refused(self, edit, name):
        with pytest.raises(PeopleError):
            edit.name("p1", name)

    def test_every_change_says_what_it_did(self, library):
        with library.corrections() as edit:
            edit.name("p1", "Alice")
            edit.merge("Alice", "p3")
        assert edit.effects[0].startswith("named p1 (unnamed) 'Alice'")
        assert edit.effects[1].startswith("merged p3 (unnamed) (f") and edit.effects[1].endswith("into p1 'Alice'")


def test_a_second_analysis_never_gives_a_known_photo_new_face_ids(library, photos, fake):
    ids = {f.face_id for p in library.people() for f in p.faces}
    (photos / "copy.png").write_bytes((photos / "carol.png").read_bytes())
    library.scan()
    assert {f.face_id for p in library.people() for f in p.faces} == ids


def test_face_and_person_ids_are_never_reused(library, photos):
    people = by_size(library)
    with library.corrections() as edit:
        edit.merge(people[4].id, people[2].id)
    gone = people[2].id
    write_photo(photos / "newcomer.png", [CAROL], variant=3)
    write_photo(photos / "newcomer2.png", [CAROL], variant=4)
    library.scan()
    assert gone not in {p.id for p in library.people()}


def test_undo_follows_a_face_into_the_edited_photo_and_then_goes_further_back(library, photos):
    stranger = library.outcome().unsorted[0]
    with library.corrections() as edit:
        edit.name("p1", "Alice")
    with library.corrections() as edit:
        edit.forget([stranger.face_id])
    write_photo(photos / stranger.photo.relative, [99], variant=5)  # edited: its faces are analysed anew
    library.scan()
    with sqlite3.connect(library.output / "index.sqlite") as db:
        assert db.execute("SELECT count(*) FROM rejections WHERE person_id=0").fetchone() == (1,)  # carried over
    db.close()
    assert "forgot" in library.undo().command  # the forget is undone on the face that took over
    with sqlite3.connect(library.output / "index.sqlite") as db:
        assert db.execute("SELECT count(*) FROM rejections WHERE person_id=0").fetchone() == (0,)
    db.close()
    assert "named" in library.undo().command and library.person("p1").name is None


def test_undo_of_a_prune_brings_back_a_person_the_regroup_dropped(library, photos):
    carol = by_size(library)[2]
    lone = next(f.face_id for f in carol.faces if f.photo.relative == "carol.png")
    with library.corrections() as edit:
        edit.split(carol.id, [lone])  # a person whose only face is in carol.png
    (photos / "carol.png").rename(photos.parent / "carol.png")
    library.scan()
    held = tables(library)
    library.prune()
    library.undo()
    assert tables(library) == held
    (photos.parent / "carol.png").rename(photos / "carol.png")
    library.scan()
    assert [f.face_id for p in library.people() for f in p.faces if f.photo.relative == "carol.png"] == [lone]


def test_a_full_disk_after_the_commit_says_the_change_was_made(library, monkeypatch):
    import errno

    import facecluster.library

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(facecluster.library, "write_outputs", full)
    made = r"the change was made \(#\d+; 'facecluster undo' takes it back\)"
    with pytest.raises(StorageError, match=made), library.corrections() as edit:
        edit.name("p1", "Alice")
    monkeypatch.undo()
    assert Library.open(library.output).person("alice").id == 1  # the next command also rewrites the outputs
    assert (library.output / "people" / "Alice").is_dir()


def test_names_are_compared_in_unicode_normal_form(library):
    with library.corrections() as edit:
        edit.name("p1", "Jos\u00e9")
        with pytest.raises(PeopleError, match="already named"):
            edit.name("p2", "Jose\u0301")
        assert edit.person("JOSE\u0301") == 1


def test_move_new_into_an_existing_name_and_a_repeated_name_change_nothing(library):
    with library.corrections() as edit:
        edit.name("p1", "Alice")
    with pytest.raises(PeopleError, match="already exists"), library.corrections() as edit:
        edit.move("f2", "alice", create=True)
    with library.corrections() as edit:
        edit.name("p1", "Alice")
    assert "nothing changed" in edit.effects[0] and len(library.history()) == 1


def test_find_takes_a_face_reference(library):
    assert library.find("f1")[0].query == "face f1" and library.find(1)[0].matches


def test_undo_of_a_prune_after_the_photo_came_back_says_what_it_could_not_restore(library, photos):
    with library.corrections() as edit:
        edit.name("p1", "Alice")
    (photos / "carol.png").rename(photos.parent / "carol.png")
    library.scan()
    library.prune()
    (photos.parent / "carol.png").rename(photos / "carol.png")
    library.scan()  # analysed anew: new face ids
    assert library.undo().command == "prune"
    assert "could not be restored" in library.history()[0].effects[-1]
    assert library.undo().command.startswith("name") and library.person("p1").name is None
