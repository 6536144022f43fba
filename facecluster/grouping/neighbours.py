"""Nearest neighbours of unit embeddings by cosine similarity, without an n x n matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_LIMIT = 20_000
"""Up to this many vectors the search is exact (blocked matrix products); above it, a graph index
(HNSW) finds approximate neighbours in about log(n) steps per query."""

HNSW_LINKS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 32, 40, 48
"""HNSW links per vector and candidate-list sizes while building and searching. On 100k faces
built from LFW (benchmarks/grouping_scale.py) 99.4 % of the exact 10 nearest are found and 99.8 %
of the nearest, in 12 s on 2 cores; an inverted-file index needed as long for 98.8 % and grows
with the square root of n per query. HNSW inserts vectors in parallel, so above EXACT_LIMIT two
runs may differ in a few borderline neighbours; the exact search below it is deterministic."""

QUERY_BLOCK = 65_536
"""Queries per search call: bounds the temporary result arrays."""


@dataclass(frozen=True)
class Neighbours:
    """The k most similar other rows of each row: -1 / -inf where there are fewer than k."""

    similarities: np.ndarray
    """float32 (n, k), descending along each row."""
    indices: np.ndarray
    """int64 (n, k)."""


def _index(vectors: np.ndarray):
    """An exact index for small sets, an HNSW graph index above EXACT_LIMIT."""
    import faiss

    count, dimension = vectors.shape
    if count <= EXACT_LIMIT:
        index = faiss.IndexFlatIP(dimension)
    else:
        index = faiss.IndexHNSWFlat(dimension, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_BUILD_DEPTH
        index.hnsw.efSearch = HNSW_SEARCH_DEPTH
    index.add(vectors)
    return index


def nearest_neighbours(vectors: np.ndarray, k: int) -> Neighbours:
    """The ``k`` nearest other rows of ``vectors`` (unit rows) by inner product."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    count = len(vectors)
    index = _index(vectors)
    wanted = min(k + 1, count)
    similarities = np.full((count, k), -np.inf, dtype=np.float32)
    indices = np.full((count, k), -1, dtype=np.int64)
    for start in range(0, count, QUERY_BLOCK):
        block = vectors[start : start + QUERY_BLOCK]
        found_sims, found = index.search(block, wanted)
        rows = np.arange(start, start + len(block))[:, None]
        # Drop each row itself (wherever it ranks), keep the first k others.
        others = (found != rows) & (found >= 0)
        order = np.argsort(~others, axis=1, kind="stable")[:, :k]
        taken = np.take_along_axis(others, order, axis=1)
        width = order.shape[1]
        similarities[start : start + len(block), :width] = np.where(
            taken, np.take_along_axis(found_sims, order, axis=1), -np.inf
        )
        indices[start : start + len(block), :width] = np.where(taken, np.take_along_axis(found, order, axis=1), -1)
    return Neighbours(similarities, indices)
