"""Group face embeddings by identity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("agglomerative", "hdbscan")
DEFAULT_METHOD = "agglomerative"
DEFAULT_THRESHOLDS = {"agglomerative": 0.50, "hdbscan": 0.35}
"""Distance thresholds between unit embeddings, measured on LFW (benchmarks/scan_lfw.py)."""


@dataclass(frozen=True)
class GroupingOptions:
    """How faces are grouped."""

    method: str = DEFAULT_METHOD
    threshold: float | None = None
    """None means the method's default from DEFAULT_THRESHOLDS."""

    @property
    def effective_threshold(self) -> float:
        return DEFAULT_THRESHOLDS[self.method] if self.threshold is None else self.threshold


def _agglomerative(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Average-linkage agglomerative clustering cut at ``threshold``."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    tree = linkage(pdist(embeddings.astype(np.float64)), method="average")
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


def group_embeddings(embeddings: np.ndarray, options: GroupingOptions = GroupingOptions()) -> np.ndarray:
    """One label per row; -1 for faces that belong to no group of two or more.

    Labels are renumbered 0, 1, ... by decreasing group size (ties: first face first).
    """
    if options.method not in METHODS:
        raise ValueError(f"unknown grouping method {options.method!r}; choose one of {', '.join(METHODS)}")
    count = len(embeddings)
    if count < 2:
        return np.full(count, -1, dtype=np.int64)
    raw = (_agglomerative if options.method == "agglomerative" else _hdbscan)(
        np.asarray(embeddings), options.effective_threshold
    )
    sizes: dict[int, int] = {}
    first: dict[int, int] = {}
    for position, label in enumerate(raw):
        if label >= 0:
            sizes[label] = sizes.get(label, 0) + 1
            first.setdefault(label, position)
    kept = sorted((label for label, size in sizes.items() if size >= 2), key=lambda lb: (-sizes[lb], first[lb]))
    renumber = {label: new for new, label in enumerate(kept)}
    return np.array([renumber.get(label, -1) for label in raw], dtype=np.int64)
