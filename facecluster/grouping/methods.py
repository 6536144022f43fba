"""Group face embeddings by identity: the methods and their options.

Methods (thresholds are distances between unit embeddings; see DEFAULT_THRESHOLDS):

- ``adaptive`` (the default): average linkage on the faces' nearest-neighbour graph, where two
  groups merge when the root-mean-square distance between their faces is at most
  sqrt(threshold^2 - 2 * SMALL_GROUP_MARGIN / sqrt(a * b)) for group sizes a and b. Two lone
  faces must be closer than big groups' faces on average: a pair of faces is weak evidence, a
  group of many is strong. Two settled groups (5+ faces each) also merge only when faces across
  them are nearly as alike as faces within the looser one (per-group statistics, COHESION_GAP),
  and two groups merge only when enough faces of one of them have their nearest outside face in
  the other (CONSENSUS), which keeps crowds of look-alikes from chaining together.
- ``agglomerative``: the same average linkage with one fixed root-mean-square distance.
- ``hdbscan``: HDBSCAN (excess of mass, min cluster size 2, min samples 1) with the threshold as
  selection epsilon. It builds a spanning tree of all faces and is slow above ~50,000 faces.

Two faces of one photo are never put in one group by the linkage methods (HDBSCAN ignores it).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from facecluster.errors import CorrectionsNotSupported, InvalidInput
from facecluster.grouping.linkage import MergeRule, average_linkage
from facecluster.grouping.neighbours import nearest_neighbours

METHODS = ("adaptive", "agglomerative", "hdbscan")
DEFAULT_METHOD = "adaptive"
DEFAULT_THRESHOLDS = {"adaptive": 0.374, "agglomerative": 0.35, "hdbscan": 0.28}
"""Chosen on half A of LFW's identities, each half grouped on its own, and checked on half B and
on all of LFW (benchmarks/grouping_lfw.py; numbers in the README)."""

SMALL_GROUP_MARGIN = 0.02
"""How much more mean cosine similarity two lone faces need than two large groups (adaptive)."""

COHESION_GAP = 0.02
"""Adaptive: two groups of 5 or more faces merge only when their mean similarity is within this of
the looser group's own cohesion (linkage.MergeRule). On LFW it keeps Serena and Venus Williams
apart; it raised pairwise F1 on held-out half B from 0.941 to 0.956 and left half A unchanged."""

CONSENSUS = 0.35
"""Adaptive: share of one group's faces whose nearest face outside the group must lie in the other
group (linkage.MergeRule). Chosen as the middle of the plateau 0.3-0.4 on LFW half A (pairwise /
BCubed F1 0.992 / 0.963, from 0.990 / 0.962 without it); on half B 0.956 / 0.957 -> 0.963 / 0.959,
on all of LFW 0.977 / 0.953 -> 0.983 / 0.955; no worse on the perturbed copies."""

NEIGHBOURS = 10
"""Graph edges per face: each face is compared with its 10 most similar faces (and whatever
they merge into)."""

MAX_DISTANCE = 2.0
"""The largest distance between two unit embeddings (opposite directions): every distance
threshold (grouping, ``verify``) is a finite number from 0 to this."""


def checked_distance(value: float, what: str = "threshold") -> float:
    """``value`` as a float, or InvalidInput unless it is a real number from 0 to MAX_DISTANCE (not NaN)."""
    if isinstance(value, numbers.Real) and 0.0 <= float(value) <= MAX_DISTANCE:  # NaN fails the comparison
        return float(value)
    raise InvalidInput(
        f"{what} must be a distance between unit embeddings, a number from 0 to {MAX_DISTANCE:g}; not {value!r}"
    )


@dataclass(frozen=True)
class GroupingOptions:
    """How faces are grouped; InvalidInput for an unknown method or a threshold ``checked_distance`` refuses."""

    method: str = DEFAULT_METHOD
    threshold: float | None = None
    """None means the method's default from DEFAULT_THRESHOLDS."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidInput(f"unknown grouping method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.threshold is not None:  # kept as a plain float (numpy scalars would not round-trip as_meta)
            object.__setattr__(self, "threshold", checked_distance(self.threshold, "the grouping threshold"))

    @property
    def effective_threshold(self) -> float:
        return DEFAULT_THRESHOLDS[self.method] if self.threshold is None else self.threshold

    def as_meta(self) -> dict[str, str]:
        """How the index's meta table keeps these options (read back by ``from_meta``)."""
        return {"method": self.method, "threshold": "" if self.threshold is None else repr(self.threshold)}

    @classmethod
    def from_meta(cls, method: str | None, threshold: str | None) -> GroupingOptions:
        """The options of the last scan, from the index's meta values.

        Defaults stand in for absent values, and the method's default threshold for one that is
        unusable (earlier versions stored whatever ``--threshold`` was given, NaN included).
        """
        try:
            value = checked_distance(float(threshold)) if threshold else None
        except (ValueError, InvalidInput):
            value = None
        return cls(method or DEFAULT_METHOD, value)

    def merge_rule(self) -> MergeRule:
        """The linkage methods' rule in cosine-similarity terms (|a - b|^2 = 2 - 2 a.b)."""
        base = 1.0 - self.effective_threshold**2 / 2
        if self.method == "adaptive":
            return MergeRule(base, margin=SMALL_GROUP_MARGIN, cohesion_gap=COHESION_GAP, consensus=CONSENSUS)
        return MergeRule(base)


def _cannot_link(photos: list[str]) -> np.ndarray:
    """Row pairs that share a photo."""
    members: dict[str, list[int]] = {}
    for position, photo in enumerate(photos):
        members.setdefault(photo, []).append(position)
    pairs = [
        (i, j) for group in members.values() if len(group) > 1 for a, i in enumerate(group) for j in group[a + 1 :]
    ]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _hdbscan(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """HDBSCAN's labels. Its parallel part (above 16,384 faces) runs on joblib's threads: process
    workers would put memory-mapping folders in /dev/shm or the temporary folder."""
    import hdbscan
    from joblib import parallel_backend

    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=2,
        min_samples=1,
        cluster_selection_epsilon=threshold,
        cluster_selection_method="eom",
        metric="euclidean",
    )
    with parallel_backend("threading"):
        return clusterer.fit_predict(embeddings.astype(np.float64))


def _by_size(raw: np.ndarray, seeds: np.ndarray | None = None) -> np.ndarray:
    """Renumber groups 0, 1, ... by decreasing size (ties: first row first); -1 for lone rows,
    except a lone seeded row (a confirmed person with one face), which keeps its group."""
    values, first, inverse, counts = np.unique(raw, return_index=True, return_inverse=True, return_counts=True)
    grouped = (values >= 0) & (counts >= 2)
    if seeds is not None:
        grouped[np.unique(inverse.ravel()[seeds >= 0])] = True
    order = np.lexsort((first, -counts))
    order = order[grouped[order]]
    new = np.full(len(values), -1, dtype=np.int64)
    new[order] = np.arange(len(order))
    return new[inverse.ravel()]


def group_embeddings(
    embeddings: np.ndarray,
    options: GroupingOptions = GroupingOptions(),
    photos: list[str] | None = None,
    seeds: np.ndarray | None = None,
    apart: np.ndarray | None = None,
) -> np.ndarray:
    """One label per row of unit embeddings; -1 for faces that belong to no group of two or more.

    Embeddings may be float16, which halves their memory at millions of faces (the neighbour
    search converts them block by block; group sums are float32); other dtypes become float32.

    ``photos`` names each face's photo, so that two faces of one photo never share a group.
    ``seeds`` numbers rows that must stay together (-1: free); ``apart`` is an (m, 2) array of
    row pairs that must never share a group. Labels are numbered 0, 1, ... by decreasing group
    size (ties: first face first). HDBSCAN raises CorrectionsNotSupported when given seeds or apart.
    """
    embeddings = np.asarray(embeddings)
    if embeddings.dtype != np.float16:
        embeddings = embeddings.astype(np.float32, copy=False)
    if options.method == "hdbscan":
        if (seeds is not None and (seeds >= 0).any()) or (apart is not None and len(apart)):
            raise CorrectionsNotSupported("hdbscan cannot honour people corrections; use --method adaptive")
        if len(embeddings) < 2:
            return np.full(len(embeddings), -1, dtype=np.int64)
        return _by_size(_hdbscan(embeddings, options.effective_threshold))
    if len(embeddings) == 0:
        return np.zeros(0, dtype=np.int64)
    neighbours = nearest_neighbours(embeddings, NEIGHBOURS)
    pairs = [p for p in (_cannot_link(photos) if photos is not None else None, apart) if p is not None]
    cannot_link = np.concatenate(pairs).reshape(-1, 2) if pairs else None
    return _by_size(average_linkage(embeddings, neighbours, options.merge_rule(), cannot_link, seeds), seeds)
