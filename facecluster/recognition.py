"""Who is this face? Compare one embedding with every person's faces, by the grouping's own rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecluster.grouping import GroupingOptions
from facecluster.index import FaceIndex
from facecluster.linkage import MergeRule
from facecluster.people import People


@dataclass(frozen=True)
class Match:
    """How close a face is to one person."""

    person_id: int
    distance: float
    """Root-mean-square distance between the face and the person's faces."""
    limit: float
    """The largest distance at which the grouping would let the face join this person."""

    @property
    def accepted(self) -> bool:
        return self.distance <= self.limit


def rank_people(query: np.ndarray, people: dict[int, np.ndarray], rule: MergeRule) -> list[Match]:
    """Every person (person id -> their faces' unit embeddings), nearest first.

    A lone face joins a group of n faces when their mean cosine similarity reaches
    ``rule.base + rule.margin / sqrt(n)``, i.e. when the root-mean-square distance is below
    sqrt(2 - 2 * that); recognition uses the same limit, so `find` and a re-scan agree.
    """
    matches = []
    for person, faces in people.items():
        if not len(faces):
            continue
        similarity = float(np.mean(faces @ query))
        required = float(rule.base + rule.margin / np.sqrt(len(faces)))
        matches.append(
            Match(person, float(np.sqrt(max(0.0, 2 - 2 * similarity))), float(np.sqrt(max(0.0, 2 - 2 * required))))
        )
    return sorted(matches, key=lambda m: (m.distance, m.person_id))


@dataclass(frozen=True)
class Gallery:
    """Every person's faces in an index, and the rule the last scan grouped with."""

    rule: MergeRule
    embeddings: dict[int, np.ndarray]
    """face id -> unit embedding."""
    members: dict[int, list[int]]
    """person id -> face ids."""

    @classmethod
    def load(cls, index: FaceIndex) -> Gallery:
        threshold = index.meta("threshold")
        options = GroupingOptions(index.meta("method") or "adaptive", float(threshold) if threshold else None)
        members: dict[int, list[int]] = {}
        for face, (person, _) in People(index).members().items():
            members.setdefault(person, []).append(face)
        return cls(options.merge_rule(), {f.face_id: f.embedding for f in index.faces()}, members)

    def rank(self, query: np.ndarray, own_face: int | None = None) -> list[Match]:
        """``rank_people`` over this gallery; ``own_face`` (a face of the index) is left out of its person."""
        people = {
            person: np.stack([self.embeddings[f] for f in faces if f != own_face])
            for person, faces in self.members.items()
            if any(f != own_face for f in faces)
        }
        return rank_people(query, people, self.rule)
