"""Who is this face? Compare one embedding with every person's faces, by the grouping's own rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecluster.linkage import MergeRule


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
