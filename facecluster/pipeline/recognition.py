"""Who is this face? Compare one embedding with every person's faces, by the grouping's own rule."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from facecluster.grouping import GroupingOptions
from facecluster.grouping.linkage import MergeRule
from facecluster.storage.browse import embedding_matrix
from facecluster.storage.index import FaceIndex
from facecluster.storage.people import People
from facecluster.types import Match


def rank_people(query: np.ndarray, people: dict[int, tuple[np.ndarray, int]], rule: MergeRule) -> list[Match]:
    """Every person (person id -> the sum of their faces' unit embeddings, and how many), nearest first.

    A lone face joins a group of n faces when their mean cosine similarity reaches
    ``rule.base + rule.margin / sqrt(n)``, i.e. when the root-mean-square distance is below
    sqrt(2 - 2 * that); recognition uses the same limit, so `find` and a re-scan agree.
    """
    matches = []
    for person, (total, count) in people.items():
        if count < 1:
            continue
        matches.append(Match(person, float(_distance(float(total @ query) / count)), float(join_limit(count, rule))))
    return sorted(matches, key=lambda m: (m.distance, m.person_id))


def join_limit(count: int | np.ndarray, rule: MergeRule) -> float | np.ndarray:
    """The root-mean-square distance under which a lone face joins a person of ``count`` faces."""
    return _distance(rule.base + rule.margin / np.sqrt(count))


def _distance(similarity: float | np.ndarray) -> float | np.ndarray:
    """Root-mean-square distance between unit vectors from their mean cosine similarity."""
    return np.sqrt(np.maximum(0.0, 2 - 2 * similarity))


@dataclass(frozen=True)
class Gallery:
    """Every person's faces in an index, and the rule the last scan grouped with."""

    rule: MergeRule
    face_ids: np.ndarray
    """Every face id of the index, ascending."""
    vectors: np.ndarray
    """Their unit embeddings, one row per face id."""
    people: dict[int, tuple[np.ndarray, int]]
    """person id -> (sum of their faces' embeddings, number of faces)."""
    person_of: dict[int, int]
    """face id -> person id."""

    @classmethod
    def load(cls, index: FaceIndex, embeddings: tuple[np.ndarray, np.ndarray] | None = None) -> Gallery:
        """The gallery of ``index``; ``embeddings`` (``embedding_matrix``'s answer, when the caller kept one
        that is still current) saves reading every face again."""
        options = GroupingOptions.from_meta(index.meta("method"), index.meta("threshold"))
        face_ids, vectors = embeddings if embeddings is not None else embedding_matrix(index)
        person_of = {face: person for face, (person, _) in People(index).members().items()}
        faces = np.fromiter(person_of, dtype=np.int64, count=len(person_of))
        owners = np.fromiter(person_of.values(), dtype=np.int64, count=len(person_of))
        order = np.argsort(owners, kind="stable")
        faces, owners = faces[order], owners[order]
        people: dict[int, tuple[np.ndarray, int]] = {}
        if len(faces):
            rows = np.searchsorted(face_ids, faces)
            starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
            totals = np.add.reduceat(vectors[rows].astype(np.float64), starts, axis=0)
            counts = np.diff(np.r_[starts, len(faces)])
            people = {int(owners[s]): (totals[n], int(counts[n])) for n, s in enumerate(starts)}
        return cls(options.merge_rule(), face_ids, vectors, people, person_of)

    def embedding(self, face: int) -> np.ndarray | None:
        """A face's embedding (None when the index has no such face)."""
        row = int(np.searchsorted(self.face_ids, face))
        return self.vectors[row] if row < len(self.face_ids) and self.face_ids[row] == face else None

    def rank(self, query: np.ndarray, own_face: int | None = None) -> list[Match]:
        """``rank_people`` over this gallery; ``own_face`` (a face of the index) is left out of its person."""
        people = self.people
        if own_face in self.person_of:
            person = self.person_of[own_face]
            total, count = people[person]
            people = {**people, person: (total - self.embedding(own_face), count - 1)}
        return rank_people(query, people, self.rule)

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(person ids, mean embeddings, required distance) as arrays, for ranking many faces at once."""
        ids = np.array(sorted(p for p, (_, count) in self.people.items() if count > 0), dtype=np.int64)
        if not len(ids):
            return ids, np.zeros((0, 128)), np.zeros(0)
        counts = np.array([self.people[p][1] for p in ids], dtype=np.float64)
        means = np.stack([self.people[p][0] for p in ids]) / counts[:, None]
        return ids, means, join_limit(counts, self.rule)

    def nearest(self, faces: list[int], refused: dict[int, set[int]]) -> dict[int, Match | None]:
        """For each face of the index, the nearest person other than its own and those in ``refused[face]``.

        Same measure as ``rank`` (root-mean-square distance to the person's faces) for faces outside
        the person; None when there is no one left.
        """
        ids, means, limits = self._table
        found: dict[int, Match | None] = {face: None for face in faces}
        asked = np.array(sorted(set(faces)), dtype=np.int64)
        rows = np.searchsorted(self.face_ids, asked)
        present = (rows < len(self.face_ids)) & (self.face_ids[np.minimum(rows, len(self.face_ids) - 1)] == asked)
        asked, rows = asked[present], rows[present]
        if not len(asked) or not len(ids):
            return found
        for start in range(0, len(asked), 512):  # 512 x people distances at a time
            chunk, chunk_rows = asked[start : start + 512], rows[start : start + 512]
            distances = _distance(self.vectors[chunk_rows].astype(np.float64) @ means.T)
            nearest = distances.argmin(axis=1)
            for row, face in enumerate(chunk.tolist()):
                skip = refused.get(face, set()) | ({self.person_of[face]} if face in self.person_of else set())
                columns = [nearest[row]]
                if skip:  # the nearest few, enough to find one not skipped
                    take = min(len(ids), len(skip) + 1)
                    some = np.argpartition(distances[row], take - 1)[:take]
                    columns = some[np.argsort(distances[row, some], kind="stable")]
                for column in columns:
                    if int(ids[column]) not in skip:
                        found[face] = Match(int(ids[column]), float(distances[row, column]), float(limits[column]))
                        break
        return found
