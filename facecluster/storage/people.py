"""People: stable ids, names and the user's corrections, kept in the face index across re-scans.

A face's membership is *confirmed* when the user vouched for it (naming, merging, splitting or
moving), otherwise it is what the last grouping decided. Confirmed faces start every grouping as
one group per person (seeds) and two people's confirmed faces never meet. A *rejection* says a
face is not a given person (split, move) or not anybody at all (forget: person 0); a grouping
never puts it back. Two people said to be *apart* are both confirmed, and the pair is kept so
that the question is not asked again. After grouping, each group is matched to a person: the person whose
confirmed faces it holds, else the person of the previous run that shares most of its faces,
else a new id. Named people are never deleted by a re-run; unnamed people without faces are.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from facecluster.errors import PeopleError
from facecluster.storage.index import FaceIndex

NOBODY = 0
"""The person id of a rejection that means "not a face / a stranger" (facecluster forget)."""
MAX_NAME_LENGTH = 200
RESERVED_NAMES = frozenset({"unsorted", "no-faces.txt", "nobody", "missing"})
"""Casefolded names that would read as album folders (people/unsorted) or special words."""
CARRY_DISTANCE = 0.4
"""The furthest a face of an edited photo may lie from its old embedding and still keep its corrections
(the same face re-encoded lies within about 0.2; two people of one photo rarely within 0.6)."""
_REFERENCE = re.compile(r"(?:(?P<kind>[pPfF])|(?P<key>person_))?0*(?P<number>\d+)")


def _folded(name: str) -> str:
    """A name as names are compared: Unicode-normalised (José typed either way is one name), any case."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def parse_reference(text: str) -> tuple[str | None, int | None]:
    """('person' | 'face' | None for a bare number, the number) when text is an id; (None, None) otherwise."""
    match = _REFERENCE.fullmatch(text.strip())
    if match is None:
        return None, None
    kind = match.group("kind")
    if match.group("key"):
        return "person", int(match.group("number"))
    return ({"p": "person", "f": "face"}.get(kind.lower()) if kind else None), int(match.group("number"))


@dataclass(frozen=True)
class Corrections:
    """What the user said, as the grouping needs it."""

    confirmed: dict[int, int]
    """face id -> person id."""
    rejected: dict[int, set[int]]
    """face id -> persons it is not (NOBODY: no one)."""

    def forgotten(self, face_id: int) -> bool:
        return NOBODY in self.rejected.get(face_id, ())

    def constraints(self, face_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Seeds (person id per row, -1 free) and row pairs kept apart, for these faces' rows."""
        row_of = {face_id: row for row, face_id in enumerate(face_ids)}
        seeds = np.array([self.confirmed.get(face_id, -1) for face_id in face_ids], dtype=np.int64)
        anchor: dict[int, int] = {}
        for row, person in enumerate(seeds):
            if person >= 0:
                anchor.setdefault(int(person), row)
        anchors = sorted(anchor.values())
        pairs = [(a, b) for i, a in enumerate(anchors) for b in anchors[i + 1 :]]
        for face_id, persons in self.rejected.items():
            if face_id in row_of:
                pairs += [(row_of[face_id], anchor[p]) for p in persons if p in anchor]
        return seeds, np.array(pairs, dtype=np.int64).reshape(-1, 2)


class People:
    """The people tables of an open FaceIndex."""

    def __init__(self, index: FaceIndex) -> None:
        self.index = index
        self.db = index.db

    def names(self) -> dict[int, str | None]:
        """person id -> name (None when unnamed)."""
        return dict(self.db.execute("SELECT id, name FROM people ORDER BY id"))

    def members(self) -> dict[int, tuple[int, bool]]:
        """face id -> (person id, confirmed)."""
        rows = self.db.execute("SELECT face_id, person_id, confirmed FROM memberships")
        return {face: (person, bool(confirmed)) for face, person, confirmed in rows}

    def corrections(self, members: dict[int, tuple[int, bool]] | None = None) -> Corrections:
        """What the user said; ``members`` saves reading the memberships again."""
        members = self.members() if members is None else members
        confirmed = {face: person for face, (person, sure) in members.items() if sure}
        rejected: dict[int, set[int]] = {}
        for face, person in self.db.execute("SELECT face_id, person_id FROM rejections"):
            rejected.setdefault(face, set()).add(person)
        return Corrections(confirmed, rejected)

    def assign(self, groups: list[list[int]]) -> list[int]:
        """Match each group of face ids to a person id and record the result (one transaction)."""
        members = self.members()
        corrections = self.corrections(members)
        chosen: list[int | None] = [None] * len(groups)
        taken: set[int] = set()
        for number, group in enumerate(groups):
            confirmed = {corrections.confirmed[f] for f in group if f in corrections.confirmed}
            if confirmed:
                chosen[number] = min(confirmed)
                taken |= confirmed
        overlaps = []
        for number, group in enumerate(groups):
            if chosen[number] is not None:
                continue
            refused = set().union(*(corrections.rejected.get(f, set()) for f in group))
            counts: dict[int, int] = {}
            for face in group:
                if face in members and members[face][0] not in refused:
                    counts[members[face][0]] = counts.get(members[face][0], 0) + 1
            overlaps += [(-count, person, number) for person, count in counts.items()]
        for _, person, number in sorted(overlaps):
            if chosen[number] is None and person not in taken:
                chosen[number] = person
                taken.add(person)
        with self.index.transaction():
            for number, person in enumerate(chosen):
                if person is None:
                    chosen[number] = self.db.execute("INSERT INTO people (name) VALUES (NULL)").lastrowid
            self.db.execute("DELETE FROM memberships WHERE confirmed=0")
            self.db.executemany(
                "INSERT OR IGNORE INTO memberships VALUES (?, ?, 0)",
                ((face, person) for group, person in zip(groups, chosen, strict=True) for face in group),
            )
            self._drop_empty()
        return [int(person) for person in chosen if person is not None]

    def label(self, person: int) -> str:
        """How messages show a person: 'p7 "Alice"' or 'p7 (unnamed)'."""
        row = self.db.execute("SELECT name FROM people WHERE id=?", (person,)).fetchone()
        return f"p{person} {row[0]!r}" if row and row[0] else f"p{person} (unnamed)"

    def resolve(self, text: str) -> int:
        """A person id from 'p7', 'person_0007', a name (any case) or a bare number nobody could read as a face.

        PeopleError, with what the text could have meant, when there is no such person.
        """
        text = text.strip()
        names = self.names()
        kind, number = parse_reference(text)
        if kind == "face":
            raise PeopleError(f"{text} is a face, not a person; give a person as p7, person_0007 or a name")
        if number is not None:
            if number not in names:
                raise PeopleError(f"no person p{number} (see 'facecluster people')")
            if kind is None and self._face_exists(number):
                raise PeopleError(
                    f"{text} is ambiguous: write p{number} for the person {self.label(number)} "
                    f"or f{number} for the face {number}"
                )
            return number
        wanted = _folded(text)
        named = [person for person, name in names.items() if name is not None and _folded(name) == wanted]
        if named:
            return named[0]
        message = f"no person named {text!r}"
        known = {_folded(name): name for name in names.values() if name}
        close = difflib.get_close_matches(wanted, list(known), n=3, cutoff=0.6)
        if close:
            message += "; did you mean " + " or ".join(repr(known[c]) for c in close) + "?"
        raise PeopleError(message + " (see 'facecluster people')")

    def face(self, text: str) -> int:
        """A face id from 'f12' or a bare number that is not also a person's id; PeopleError otherwise."""
        text = text.strip()
        kind, number = parse_reference(text)
        if kind == "person":
            raise PeopleError(f"{text} is a person, not a face; faces are given as f12 ('facecluster people PERSON')")
        if number is None:
            raise PeopleError(
                f"{text!r} is not a face; faces are given as f12 ('facecluster people PERSON' lists them)"
            )
        if not self._face_exists(number):
            raise PeopleError(f"no face f{number} in this index ('facecluster people PERSON' lists face ids)")
        if kind is None and number in self.names():
            raise PeopleError(
                f"{text} is ambiguous: write f{number} for the face {number} "
                f"or p{number} for the person {self.label(number)}"
            )
        return number

    def faces_of(self, person: int) -> list[int]:
        """The face ids of a person, in id order."""
        rows = self.db.execute("SELECT face_id FROM memberships WHERE person_id=? ORDER BY face_id", (person,))
        return [row[0] for row in rows]

    def _face_exists(self, face: int) -> bool:
        return self.db.execute("SELECT 1 FROM faces WHERE id=?", (face,)).fetchone() is not None

    def create(self, name: str) -> int:
        """A new, named person without faces yet."""
        name = self._checked(name, None)
        with self.index.transaction():
            return int(self.db.execute("INSERT INTO people (name) VALUES (?)", (name,)).lastrowid)

    def _checked(self, name: str, person: int | None) -> str:
        """A valid, unused name, in NFC: PeopleError for empty, unreadable, id-like, reserved or used names."""
        name = name.strip()
        if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
            raise PeopleError("the name is not valid text (undecodable bytes); give it in UTF-8")
        name = unicodedata.normalize("NFC", name)
        if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise PeopleError("a name must be non-empty and without control characters")
        if len(name) > MAX_NAME_LENGTH:
            raise PeopleError(f"a name may have at most {MAX_NAME_LENGTH} characters")
        if parse_reference(name)[1] is not None or name.casefold() in RESERVED_NAMES:
            raise PeopleError(f"{name!r} cannot be a name: it reads as a person or face id, or an album folder")
        for other, existing in self.names().items():
            if other != person and existing is not None and _folded(existing) == _folded(name):
                raise PeopleError(f"{self.label(other)} is already named {existing!r}; merge the two instead")
        return name

    def name(self, person: int, name: str) -> None:
        """Name a person; their current faces become confirmed."""
        name = self._checked(name, person)
        with self.index.transaction():
            self.db.execute("UPDATE people SET name=? WHERE id=?", (name, person))
            self._confirm(person)

    def merge(self, keep: int, other: int) -> None:
        """One person from two: ``other``'s faces, rejections and (if ``keep`` has none) name go to ``keep``."""
        if keep == other:
            raise PeopleError("cannot merge a person with themselves")
        names = self.names()
        with self.index.transaction():
            self.db.execute(
                "UPDATE memberships SET person_id=?, confirmed=1 WHERE person_id IN (?, ?)", (keep, keep, other)
            )
            self.db.execute("UPDATE OR IGNORE rejections SET person_id=? WHERE person_id=?", (keep, other))
            self.db.execute("DELETE FROM rejections WHERE person_id=?", (other,))
            self.db.execute(
                "INSERT OR IGNORE INTO apart SELECT min(x, ?), max(x, ?) FROM (SELECT CASE WHEN person_id=? THEN"
                " other_id ELSE person_id END AS x FROM apart WHERE ? IN (person_id, other_id)) WHERE x != ?",
                (keep, keep, other, other, keep),
            )
            self.db.execute("DELETE FROM apart WHERE ? IN (person_id, other_id)", (other,))
            self.db.execute("DELETE FROM people WHERE id=?", (other,))
            if names.get(keep) is None and names.get(other) is not None:
                self.db.execute("UPDATE people SET name=? WHERE id=?", (names[other], keep))

    def split(self, person: int, faces: list[int]) -> int:
        """Take ``faces`` out of ``person`` into a new person; both keep their faces from now on."""
        members = self.members()
        strangers = [f for f in faces if members.get(f, (None,))[0] != person]
        if strangers:
            raise PeopleError(f"face {strangers[0]} is not in person_{person:04d}")
        with self.index.transaction():
            self._confirm(person)
            new = self.db.execute("INSERT INTO people (name) VALUES (NULL)").lastrowid
            self._place(faces, new, refuse=person)
        return int(new)

    def person_of(self, face: int) -> int | None:
        """The person a face belongs to now (None: unsorted)."""
        row = self.db.execute("SELECT person_id FROM memberships WHERE face_id=?", (face,)).fetchone()
        return row[0] if row else None

    def move(self, face: int, person: int) -> None:
        """This face is ``person``, and not whoever had it before; both people's faces become confirmed."""
        current = self.person_of(face)
        with self.index.transaction():
            self._confirm(person)
            if current is not None and current != person:
                self._confirm(current)
            self.db.execute("DELETE FROM rejections WHERE face_id=? AND person_id IN (?, ?)", (face, person, NOBODY))
            self._place([face], person, refuse=current if current != person else None)

    def reject(self, face: int, person: int) -> bool:
        """This face is not ``person``: it leaves them if it is theirs (their other faces are confirmed) and
        no grouping puts it back. Returns whether it left them."""
        with self.index.transaction():
            self._confirm(person)
            left = self.db.execute("DELETE FROM memberships WHERE face_id=? AND person_id=?", (face, person)).rowcount
            self.db.execute("INSERT OR IGNORE INTO rejections VALUES (?, ?)", (face, person))
            self._drop_empty()
        return bool(left)

    def apart(self, person: int, other: int) -> bool:
        """``person`` and ``other`` are two people: both are confirmed as they are (no grouping joins
        confirmed people) and the pair is recorded. Returns False when it was recorded already."""
        if person == other:
            raise PeopleError("a person cannot be apart from themselves")
        with self.index.transaction():
            self._confirm(person)
            self._confirm(other)
            return bool(
                self.db.execute(
                    "INSERT OR IGNORE INTO apart VALUES (?, ?)", (min(person, other), max(person, other))
                ).rowcount
            )

    def apart_pairs(self) -> frozenset[tuple[int, int]]:
        """(smaller id, larger id) of the people said to be two people, both still known."""
        rows = self.db.execute(
            "SELECT person_id, other_id FROM apart"
            " WHERE person_id IN (SELECT id FROM people) AND other_id IN (SELECT id FROM people)"
        )
        return frozenset((a, b) for a, b in rows)

    def forget(self, faces: list[int]) -> None:
        """These faces are nobody to group: not a face, or a stranger. Their people's other faces are confirmed."""
        with self.index.transaction():
            for person in {self.person_of(face) for face in faces} - {None}:
                self._confirm(person)
            self.db.executemany("DELETE FROM memberships WHERE face_id=?", ((face,) for face in faces))
            self.db.executemany("INSERT OR IGNORE INTO rejections VALUES (?, ?)", ((face, NOBODY) for face in faces))
            self._drop_empty()

    def carry_over(self, old_sha: str, new_sha: str) -> int:
        """Give the faces of a photo's new content (edited in place) what was said of its old faces.

        Faces are paired when each is the other's nearest and their embeddings lie within
        CARRY_DISTANCE; each new face takes its old face's person (confirmed or not) and rejections.
        Returns how many faces carried a correction or a person over.
        """
        old, new = self._vectors(old_sha), self._vectors(new_sha)
        if not old or not new:
            return 0
        old_ids, new_ids = list(old), list(new)
        distance = np.linalg.norm(
            np.stack(list(old.values()))[:, None, :] - np.stack(list(new.values()))[None, :, :], axis=2
        )
        carried = 0
        with self.index.transaction():
            for row, old_face in enumerate(old_ids):
                column = int(distance[row].argmin())
                if int(distance[:, column].argmin()) != row or distance[row, column] > CARRY_DISTANCE:
                    continue
                new_face = new_ids[column]
                done = self.db.execute(
                    "INSERT OR IGNORE INTO memberships SELECT ?, person_id, confirmed FROM memberships WHERE face_id=?",
                    (new_face, old_face),
                ).rowcount
                done += self.db.execute(
                    "INSERT OR IGNORE INTO rejections SELECT ?, person_id FROM rejections WHERE face_id=?",
                    (new_face, old_face),
                ).rowcount
                carried += bool(done)
                self.db.execute("INSERT OR REPLACE INTO successors VALUES (?, ?)", (old_face, new_face))
        return carried

    def _vectors(self, sha: str) -> dict[int, np.ndarray]:
        rows = self.db.execute("SELECT id, embedding FROM faces WHERE sha256=? ORDER BY id", (sha,))
        return {row[0]: np.frombuffer(row[1], np.float32) for row in rows}

    def _place(self, faces: list[int], person: int, refuse: int | None) -> None:
        self.db.executemany("INSERT OR REPLACE INTO memberships VALUES (?, ?, 1)", ((f, person) for f in faces))
        if refuse is not None:
            self.db.executemany("INSERT OR IGNORE INTO rejections VALUES (?, ?)", ((f, refuse) for f in faces))
        self._drop_empty()

    def _confirm(self, person: int) -> None:
        self.db.execute("UPDATE memberships SET confirmed=1 WHERE person_id=? AND confirmed=0", (person,))

    def _drop_empty(self) -> None:
        self.db.execute(
            "DELETE FROM people WHERE name IS NULL AND id NOT IN (SELECT DISTINCT person_id FROM memberships)"
        )
