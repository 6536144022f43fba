"""Group face embeddings by identity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("agglomerative", "hdbscan")
DEFAULT_METHOD = "agglomerative"
DEFAULT_THRESHOLDS = {"agglomerative": 0.35, "hdbscan": 0.28}
"""Distance thresholds between unit embeddings, chosen on half A of LFW's identities (each half
grouped on its own) and checked on half B (benchmarks/scan_lfw.py): average linkage BCubed F1
0.948 (A) / 0.950 (B), HDBSCAN selection epsilon 0.939 / 0.935. Unit-vector distances are
smaller than dlib's raw ones: the 0.5 often quoted for raw descriptors merges nearly everything."""


AGGLOMERATIVE_MAX_FACES = 25_000
"""Average linkage holds all n^2/2 distances (2.5 GB at this size); above it HDBSCAN is used."""


@dataclass(frozen=True)
class GroupingOptions:
    """How faces are grouped."""

    method: str = DEFAULT_METHOD
    threshold: float | None = None
    """None means the method's default from DEFAULT_THRESHOLDS."""

    @property
    def effective_threshold(self) -> float:
        return DEFAULT_THRESHOLDS[self.method] if self.threshold is None else self.threshold

    def for_count(self, count: int) -> GroupingOptions:
        """The options that will really run on ``count`` faces (agglomerative gives way to
        HDBSCAN, at its default threshold, above AGGLOMERATIVE_MAX_FACES)."""
        if self.method == "agglomerative" and count > AGGLOMERATIVE_MAX_FACES:
            return GroupingOptions(method="hdbscan")
        return self


CANNOT_LINK_DISTANCE = 1e6
"""Distance given to two faces of one photo: average linkage then never joins their groups
(unless the two groups hold millions of face pairs)."""


def _agglomerative(embeddings: np.ndarray, threshold: float, photos: list[str] | None) -> np.ndarray:
    """Average-linkage agglomerative clustering cut at ``threshold``; faces of one photo never meet."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    count = len(embeddings)
    distances = pdist(embeddings.astype(np.float64))
    if photos is not None:
        members: dict[str, list[int]] = {}
        for position, photo in enumerate(photos):
            members.setdefault(photo, []).append(position)
        for group in members.values():
            for a, i in enumerate(group):
                for j in group[a + 1 :]:
                    distances[count * i - i * (i + 1) // 2 + (j - i - 1)] = CANNOT_LINK_DISTANCE
    tree = linkage(distances, method="average")
    return fcluster(tree, t=threshold, criterion="distance") - 1


def _hdbscan(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """HDBSCAN (excess of mass, min cluster size 2, min samples 1) with selection epsilon."""
    import hdbscan

    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=2,
        min_samples=1,
        cluster_selection_epsilon=threshold,
        cluster_selection_method="eom",
        metric="euclidean",
    )
    return clusterer.fit_predict(embeddings.astype(np.float64))


def group_embeddings(
    embeddings: np.ndarray, options: GroupingOptions = GroupingOptions(), photos: list[str] | None = None
) -> np.ndarray:
    """One label per row; -1 for faces that belong to no group of two or more.

    Runs ``options.for_count(len(embeddings))``. ``photos`` names each face's photo: the
    agglomerative method never puts two faces of one photo in one group (HDBSCAN ignores it).
    Labels are renumbered 0, 1, ... by decreasing group size (ties: first face first).
    """
    if options.method not in METHODS:
        raise ValueError(f"unknown grouping method {options.method!r}; choose one of {', '.join(METHODS)}")
    count = len(embeddings)
    options = options.for_count(count)
    if count < 2:
        return np.full(count, -1, dtype=np.int64)
    if options.method == "agglomerative":
        raw = _agglomerative(np.asarray(embeddings), options.effective_threshold, photos)
    else:
        raw = _hdbscan(np.asarray(embeddings), options.effective_threshold)
    sizes: dict[int, int] = {}
    first: dict[int, int] = {}
    for position, label in enumerate(raw):
        if label >= 0:
            sizes[label] = sizes.get(label, 0) + 1
            first.setdefault(label, position)
    kept = sorted((label for label, size in sizes.items() if size >= 2), key=lambda lb: (-sizes[lb], first[lb]))
    renumber = {label: new for new, label in enumerate(kept)}
    return np.array([renumber.get(label, -1) for label in raw], dtype=np.int64)
