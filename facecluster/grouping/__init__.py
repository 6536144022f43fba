"""Group unit face embeddings by identity (numpy, faiss and hdbscan; no models).

``group_embeddings`` is the entry point; ``linkage`` holds the average linkage on a
nearest-neighbour graph and ``neighbours`` the neighbour search it runs on.
"""

from facecluster.grouping.methods import (
    DEFAULT_METHOD,
    DEFAULT_THRESHOLDS,
    MAX_DISTANCE,
    METHODS,
    GroupingOptions,
    checked_distance,
    group_embeddings,
)

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_THRESHOLDS",
    "MAX_DISTANCE",
    "METHODS",
    "GroupingOptions",
    "checked_distance",
    "group_embeddings",
]
