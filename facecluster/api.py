"""A few verbs on photos and arrays: find faces, compare two, group many.

The models load on the first call that needs them (``analyze``), never on import.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from facecluster.grouping import GroupingOptions, checked_distance, group_embeddings
from facecluster.types import Face, Verification

if TYPE_CHECKING:
    from facecluster.inference.analyzer import FaceAnalyzer, ImageInput

SAME_PERSON_THRESHOLD = 0.42
"""Default Euclidean distance between unit embeddings below which two faces are one person.

The mean of the ten thresholds chosen by the LFW 10-fold protocol (``facecluster eval lfw``:
0.4199, giving 99.33 % accuracy). For unit vectors, distance d means cosine 1 - d**2 / 2.
"""

_default: FaceAnalyzer | None = None
_default_lock = threading.Lock()


def default_analyzer() -> FaceAnalyzer:
    """The analyzer ``analyze`` uses: created on first use, on the best device available."""
    global _default
    with _default_lock:
        if _default is None:
            from facecluster.inference.analyzer import FaceAnalyzer

            _default = FaceAnalyzer()
        return _default


def analyze(image: ImageInput) -> list[Face]:
    """Faces in one photo (a path, a file's bytes, a Pillow image or an RGB array), strongest first.

    Raises ImageLoadError when the photo cannot be read.
    """
    return default_analyzer().analyze(image)


def main_face(faces: list[Face]) -> Face:
    """The most prominent face of a photo: the largest box, then the best score."""
    return max(faces, key=lambda f: ((f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), f.score))


def verify(
    first: Face | np.ndarray, second: Face | np.ndarray, threshold: float = SAME_PERSON_THRESHOLD
) -> Verification:
    """Compare two faces (or two unit embeddings) by the Euclidean distance of their embeddings.

    Raises InvalidInput unless ``threshold`` is a finite number from 0 to 2 (``checked_distance``).
    """
    threshold = checked_distance(threshold)
    a = first.embedding if isinstance(first, Face) else np.asarray(first, dtype=np.float32)
    b = second.embedding if isinstance(second, Face) else np.asarray(second, dtype=np.float32)
    return Verification(distance=float(np.linalg.norm(a - b)), threshold=threshold)


def group(
    embeddings: np.ndarray,
    method: str = GroupingOptions.method,
    threshold: float | None = None,
    photos: list[str] | None = None,
) -> np.ndarray:
    """One label per row of unit embeddings (your own vectors too); -1 for faces in no group of two or more.

    Labels are numbered 0, 1, ... by decreasing group size. ``photos`` names each row's photo, so
    that two faces of one photo never share a group. ``method`` and ``threshold`` are those of
    ``facecluster scan`` (see ``facecluster.grouping``); InvalidInput for an unknown method or a
    threshold that is not a finite number from 0 to 2.
    """
    return group_embeddings(embeddings, GroupingOptions(method=method, threshold=threshold), photos)
