"""'Same person?' questions: the engine on arrays, the library's answers, and the suggest / apart commands."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

from facecluster.cli import main
from facecluster.errors import PeopleError
from facecluster.library import Library
from facecluster.pipeline.suggest import Faces, Said, rank
from facecluster.storage.index import INDEX_FILE

# ------------------------------------------------------------------------------------------------ the engine


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def faces_of(vectors: np.ndarray, owners: list[int], photos: list[int] | None = None) -> Faces:
    count = len(owners)
    return Faces(
        np.arange(count, dtype=np.int64) + 100,
        unit(vectors),
        np.array(owners, dtype=np.int64),
        np.array(photos if photos is not None else range(count), dtype=np.int64),
        np.ones(count, dtype=np.float32),
    )


def scattered(rng: np.random.Generator, centre: np.ndarray, count: int, spread: float = 0.04) -> np.ndarray:
    return centre + rng.normal(scale=spread, size=(count, len(centre)))


def test_the_closest_pairs_are_measured_exactly():
    """The three closest face pairs of every pair of sides, as a brute force finds them."""
    rng = np.random.default_rng(3)
    centres = unit(rng.normal(size=(12, 128)))
    owners = [int(o) for o in rng.integers(-1, 30, size=400)]
    vectors = unit(np.concatenate([scattered(rng, centres[(o + 40) % 12], 1, 0.07) for o in owners]))
    faces = faces_of(vectors, owners)
    ranked = list(rank(faces, Said(frozenset(), {})))
    assert len(ranked) > 40 and any(q.face is not None for q in ranked)
    row_of = {int(face): row for row, face in enumerate(faces.ids)}
    for question in ranked:
        mine = np.flatnonzero(faces.owners == question.person)
        theirs = (
            np.flatnonzero(faces.owners == question.other)
            if question.other is not None
            else np.array([row_of[question.face]])
        )
        distances = np.sqrt(np.clip(2 - 2 * vectors[mine] @ vectors[theirs].T, 0, 4))
        assert question.distance == pytest.approx(np.sort(distances, axis=None)[:3].mean(), abs=1e-5)
        nearest = (row_of[question.closest[0]], row_of[question.closest[1]])
        assert nearest[0] in mine and nearest[1] in theirs
        assert distances.min() == pytest.approx(
            np.sqrt(max(0.0, 2 - 2 * float(vectors[nearest[0]] @ vectors[nearest[1]]))), abs=1e-5
        )


def test_a_yes_that_joins_more_faces_comes_first_and_look_alikes_in_one_photo_never_come():
    rng = np.random.default_rng(0)
    alice, bob = unit(rng.normal(size=(2, 128)))
    # Alice in three parts (10, 10, 2 faces); Bob twice, once in the same photo as Alice's part 1.
    vectors = np.concatenate(
        [scattered(rng, alice, 10), scattered(rng, alice, 10), scattered(rng, alice, 2), scattered(rng, bob, 6)]
    )
    owners = [1] * 10 + [2] * 10 + [3] * 2 + [4] * 3 + [5] * 3
    photos = list(range(28))
    photos[25] = photos[0]  # p5 shares a photo with p1
    ranked = list(rank(faces_of(vectors, owners, photos), Said(frozenset(), {})))
    pairs = [(q.person, q.other) for q in ranked]
    assert pairs[0] == (1, 2) and ranked[0].gain == 5 and ranked[0].probability > 0.9
    assert set(pairs[1:3]) == {(1, 3), (2, 3)}
    assert (4, 5) in pairs and (1, 4) not in pairs[:3]
    assert not any({p, o} == {1, 5} for p, o in pairs)  # two faces of one photo are two people
    closest = list(rank(faces_of(vectors, owners, photos), Said(frozenset(), {}), order="closest"))
    assert [q.distance for q in closest] == sorted(q.distance for q in closest)
    about = list(rank(faces_of(vectors, owners, photos), Said(frozenset(), {}), about=3))
    assert all(3 in (q.person, q.other) for q in about) and {(q.person, q.other) for q in about[:2]} == {(1, 3), (2, 3)}


def test_answers_are_never_asked_again_and_a_no_lowers_the_chance_of_look_alikes():
    rng = np.random.default_rng(1)
    alice = unit(rng.normal(size=(1, 128)))[0]
    vectors = np.concatenate([scattered(rng, alice, 6, 0.02) for _ in range(3)] + [[alice]])
    faces = faces_of(vectors, [1] * 6 + [2] * 6 + [3] * 6 + [-1])
    before = {(q.person, q.other, q.face): q.probability for q in rank(faces, Said(frozenset(), {}))}
    assert min(before.values()) > 0.85
    said = Said(frozenset({(1, 2)}), {118: {1}})
    after = {(q.person, q.other, q.face): q.probability for q in rank(faces, said)}
    assert (1, 2, None) not in after and (1, None, 118) not in after
    # 1 is not 2, and 2 is very likely 3: so 1 is 3 at most as likely as 2 is not 3 (and so on).
    assert after[(1, 3, None)] <= 1 - before[(2, 3, None)] and after[(2, 3, None)] <= 1 - before[(1, 3, None)]
    assert after[(3, None, 118)] <= 1 - before[(1, 3, None)] < 0.1
    assert after[(2, None, 118)] == before[(2, None, 118)]  # nothing said about 2 and anyone 118 is like


# ----------------------------------------------------------------------------------------------- the library


def ids(library: Library, **options) -> list[str]:
    return [q.id for q in library.suggestions(limit=None, **options)]


def test_a_question_shows_both_sides_and_who_stays(fragments: Library):
    question = fragments.suggestions(limit=1)[0]
    assert question.id == "p1-p4" and question.kind == "people"
    assert (question.first.person, question.first.face_count) == (1, 3)
    assert (question.second.person, question.second.face_count) == (4, 2)
    assert set(question.first.faces) == {5, 6, 10} and set(question.second.faces) == {3, 4}
    assert question.first.photo.is_file() and question.second.photo.is_file()
    assert question.gain == pytest.approx(3 * 2 / 5)
    about = ids(fragments, person="p4")
    assert about[0] == "p1-p4" and all("p4" in q.split("-") for q in about)
    assert ids(fragments, order="closest")[0] == "p1-p4"


def test_a_list_asks_about_each_person_and_face_once_so_every_answer_stays_valid(fragments: Library):
    def sides(question: str) -> list[str]:
        return question.split("-")

    everything = ids(fragments, disjoint=False)
    listed = ids(fragments)
    assert set(listed) < set(everything) and listed[:2] == everything[:2] == ["p1-p4", "p2-f2"]
    assert len({side for q in listed for side in sides(q)}) == 2 * len(listed)
    about = ids(fragments, person="p1")  # all about p1, each other side once
    assert all(sides(q)[0] == "p1" for q in about) and len({sides(q)[1] for q in about}) == len(about)


def test_yes_merges_and_undo_splits_again(fragments: Library):
    with fragments.corrections() as edit:
        edit.answer("p1-p4", True)
    assert "merged p4" in edit.effects[0]
    assert {len(p.faces) for p in fragments.people() if p.id == 1} == {5}
    assert not any(q.startswith("p1-p4") for q in ids(fragments))
    fragments.undo()
    assert ids(fragments)[0] == "p1-p4"


def test_no_keeps_two_people_apart_through_a_rescan_and_undo_takes_it_back(fragments: Library):
    with fragments.corrections("answer p1-p4 no") as edit:
        edit.answer("p1-p4", False)
    assert edit.effects == [
        "p1 (unnamed) and p4 (unnamed) are two people: never grouped together (both confirmed as they are)"
    ]
    assert "p1-p4" not in ids(fragments)
    fragments.scan()  # a rescan regroups from the start: the answer holds
    people = {p.id: {f.face_id for f in p.faces} for p in fragments.people()}
    assert people[1] == {5, 6, 10} and people[4] == {3, 4}
    assert "p1-p4" not in ids(fragments)
    assert fragments.history(limit=1)[0].command == "answer p1-p4 no"
    fragments.undo()
    assert ids(fragments)[0] == "p1-p4"


def test_apart_follows_a_merge_to_the_person_who_stays(fragments: Library):
    with fragments.corrections() as edit:
        edit.apart("p1", "p4")
        edit.merge("p2", "p4")  # p4 is Alice, whom the user wrongly merges into Bob: p1 stays apart from p2 now
    assert not any({"p1", "p2"} == set(q.split("-")) for q in ids(fragments))


def test_a_face_question_moves_or_rejects_the_face(fragments: Library):
    assert "p2-f2" in ids(fragments)
    with fragments.corrections() as edit:
        edit.answer("p2-f2", False)
    assert "p2-f2" not in ids(fragments)
    with fragments.corrections() as edit:
        edit.answer("p1-f2", True)
    assert 2 in {f.face_id for p in fragments.people() if p.id == 1 for f in p.faces}


@pytest.mark.parametrize("question", ["p1", "p1-x4", "p1-p99", "p99-f2", "p1-f999", "p1-p1"])
def test_a_question_id_that_is_not_one_is_refused(fragments: Library, question: str):
    with pytest.raises(PeopleError), fragments.corrections() as edit:
        edit.answer(question, True)
    assert ids(fragments)[0] == "p1-p4"  # nothing changed


def test_an_index_of_schema_2_gets_the_apart_table(fragments: Library):
    path = fragments.output / INDEX_FILE
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE apart")
        db.execute("UPDATE meta SET value='2' WHERE key='schema'")
    db.close()
    reopened = Library.open(fragments.output)
    with reopened.corrections() as edit:
        edit.apart("p1", "p4")
    assert "p1-p4" not in ids(reopened)


# ------------------------------------------------------------------------------------------------- the CLI


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_suggest_json_answers_run_as_they_are(fragments: Library):
    out = str(fragments.output)
    result = run("suggest", "-o", out, "--json", "--limit", "2")
    assert result.exit_code == 0
    questions = json.loads(result.stdout)
    assert [q["id"] for q in questions] == ["p1-p4", "p2-f2"]
    first = questions[0]
    assert first["kind"] == "people" and first["first"]["person"] == "p1" and first["second"]["face_count"] == 2
    assert first["yes"] == ["facecluster", "merge", "p1", "p4", "-o", out]
    assert first["no"] == ["facecluster", "apart", "p1", "p4", "-o", out]
    assert questions[1]["no"] == ["facecluster", "reject", "f2", "p2", "-o", out]
    answered = run(*first["no"][1:])
    assert answered.exit_code == 0 and "p1 (unnamed) and p4 (unnamed) are two people" in answered.output
    after = json.loads(run("suggest", "-o", out, "--json").stdout)
    assert "p1-p4" not in [q["id"] for q in after]


def test_suggest_prints_each_question_with_its_commands(fragments: Library):
    result = run("suggest", "-o", str(fragments.output), "--limit", "1")
    assert result.exit_code == 0
    assert result.output.startswith("p1-p4  p1 (unnamed)") or result.output.startswith("p1-p4  p1")
    assert f"yes: facecluster merge p1 p4 -o {fragments.output}" in result.output
    assert f"no:  facecluster apart p1 p4 -o {fragments.output}" in result.output


def test_suggest_ask_answers_skips_undoes_and_quits(fragments: Library):
    # y: merge p1-p4; u: take it back; n: p1-p4 apart; s: skip p2-f2; q: quit.
    result = run("suggest", "-o", str(fragments.output), "--ask", input="y\nu\nn\ns\nq\n")
    assert result.exit_code == 0, result.output
    assert "merged p4" in result.output and "undid" in result.output and "two people" in result.output
    assert result.output.count("p2-f2") >= 1
    reopened = Library.open(fragments.output)
    assert {p.id for p in reopened.people()} >= {1, 4}
    assert "p1-p4" not in ids(reopened) and "p2-f2" in ids(reopened)


def test_apart_and_suggest_refuse_bad_input(fragments: Library):
    out = str(fragments.output)
    assert run("apart", "p1", "p1", "-o", out).exit_code == 2
    assert run("apart", "p1", "p99", "-o", out).exit_code == 2
    assert run("suggest", "-o", out, "--person", "p99").exit_code == 2
    assert run("suggest", "-o", str(fragments.output.parent / "nothing")).exit_code != 0
