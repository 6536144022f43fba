"""People: stable ids, names and the user's corrections, kept in the face index across re-scans.

A face's membership is *confirmed* when the user vouched for it (naming, merging, splitting or
moving), otherwise it is what the last grouping decided. Confirmed faces start every grouping as
one group per person (seeds) and two people's confirmed faces never meet. A *rejection* says a
face is not a given person (split, move) or not anybody at all (forget: person 0); a grouping
never puts it back. After grouping, each group is matched to a person: the person whose
confirmed faces it holds, else the person of the previous run that shares most of its faces,
else a new id. Named people are never deleted by a re-run; unnamed people without faces are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from facecluster.errors import PeopleError
from facecluster.storage.index import FaceIndex

NOBODY = 0
"""The person id of a rejection that means "not a face / a stranger" (facecluster forget)."""


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

    def resolve(self, text: str) -> int:
        """A person id from an id ('7'), a key ('person_0007') or a name."""
        names = self.names()
        match = re.fullmatch(r"(?:person_)?0*(\d+)", text.strip())
        if match and int(match.group(1)) in names:
            return int(match.group(1))
        named = [person for person, name in names.items() if name == text]
        if not named:
            raise PeopleError(f"no person {text!r} (give an id, a person_NNNN key or a name; see 'facecluster people')")
        return named[0]

    def face(self, text: str) -> int:
        """A face id that exists in the index."""
        if not text.strip().isdigit() or not self.db.execute("SELECT 1 FROM faces WHERE id=?", (int(text),)).fetchone():
            raise PeopleError(f"no face {text!r} (face ids are listed by 'facecluster people PERSON')")
        return int(text)

    def create(self, name: str) -> int:
        """A new, named person without faces yet."""
        name = self._checked(name, None)
        with self.index.transaction():
            return int(self.db.execute("INSERT INTO people (name) VALUES (?)", (name,)).lastrowid)

    def _checked(self, name: str, person: int | None) -> str:
        name = name.strip()
        if not name or any(ord(c) < 32 for c in name):
            raise PeopleError("a name must be non-empty and without control characters")
        other = self.db.execute("SELECT id FROM people WHERE name=? AND id IS NOT ?", (name, person)).fetchone()
        if other:
            raise PeopleError(f"person_{other[0]:04d} is already named {name!r}; merge the two instead")
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

    def move(self, face: int, person: int) -> None:
        """This face is ``person``, and not whoever had it before."""
        current = self.members().get(face, (None,))[0]
        with self.index.transaction():
            if current is not None and current != person:
                self._confirm(current)
            self.db.execute("DELETE FROM rejections WHERE face_id=? AND person_id IN (?, ?)", (face, person, NOBODY))
            self._place([face], person, refuse=current if current != person else None)

    def forget(self, face: int) -> None:
        """This face is nobody to group: not a face, or a stranger."""
        current = self.members().get(face, (None,))[0]
        with self.index.transaction():
            if current is not None:
                self._confirm(current)
            self.db.execute("DELETE FROM memberships WHERE face_id=?", (face,))
            self.db.execute("INSERT OR IGNORE INTO rejections VALUES (?, ?)", (face, NOBODY))
            self._drop_empty()

    def _place(self, faces: list[int], person: int, refuse: int | None) -> None:
        self.db.executemany("INSERT OR REPLACE INTO memberships VALUES (?, ?, 1)", ((f, person) for f in faces))
        if refuse is not None:
            self.db.executemany("INSERT OR IGNORE INTO rejections VALUES (?, ?)", ((f, refuse) for f in faces))
        self._drop_empty()

    def _confirm(self, person: int) -> None:
        self.db.execute("UPDATE memberships SET confirmed=1 WHERE person_id=?", (person,))

    def _drop_empty(self) -> None:
        self.db.execute(
            "DELETE FROM people WHERE name IS NULL AND id NOT IN (SELECT DISTINCT person_id FROM memberships)"
        )
