"""Verification: are two faces the same person?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecluster.analysis import Face

SAME_PERSON_THRESHOLD = 0.42
"""Default Euclidean distance between unit embeddings below which two faces are one person.

The mean of the ten thresholds chosen by the LFW 10-fold protocol (``facecluster eval lfw``:
0.4199, giving 99.33 % accuracy). For unit vectors, distance d means cosine 1 - d**2 / 2.
"""


@dataclass(frozen=True)
class Verification:
    """Distance between two faces and the decision at a threshold."""

    distance: float
    threshold: float

    @property
    def same(self) -> bool:
        return self.distance < self.threshold


def main_face(faces: list[Face]) -> Face:
    """The most prominent face of a photo: the largest box, then the best score."""
    return max(faces, key=lambda f: ((f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), f.score))


def verify(first: Face, second: Face, threshold: float = SAME_PERSON_THRESHOLD) -> Verification:
    """Compare two faces by the Euclidean distance of their embeddings."""
    distance = float(np.linalg.norm(first.embedding - second.embedding))
    return Verification(distance=distance, threshold=threshold)
