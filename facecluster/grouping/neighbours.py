"""Nearest neighbours of unit embeddings by cosine similarity, without an n x n matrix."""

from __future__ import annotations

import contextlib
import ctypes
import functools
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

COMPACT_LIMIT = 1_000_000
"""Above this many vectors an inverted file replaces the HNSW graph: vectors are filed under their
nearest of n / LIST_SIZE k-means centroids as float16 codes (2.6 GB at 10M faces; the graph holds
a float32 copy, 5.1 GB, plus 2.6 GB of links), and each query scans the PROBES lists nearest to
it. Building the graph costs n log n and took 2.7 minutes per million faces on 2 cores; the
float16 graph (faiss IndexHNSWSQ) is no faster, and 8-bit codes lose too much (92 % of the 10
nearest)."""

LIST_SIZE, PROBES = 256, 12
"""Mean vectors per inverted list, and lists scanned per query. On 1M faces built from LFW
(benchmarks/grouping_scale.py, 5,000 queries) this finds 97.3 % of the exact 10 nearest and
98.1 % of the nearest (HNSW: 98.5 % / 98.7 %; 8 probes: 96.5 % / 97.4 %) in 3.0 minutes instead
of 4.0 on 2 cores, and each query costs the same at 10M. Those queries are mostly synthetic faces
in tight albums; LFW's real faces, among many synthetic look-alikes, fare far worse: 82.5 % of
their exact 10 nearest at 1M (HNSW 98.0 %) and 51.5 % at 10M. More probes or larger lists
recover little for the time they cost (10M: 96 probes, 8x the time, 80.4 %); refining and walking
the graph (REFINE_ROUNDS, WALK_DEPTH, REWALK_DEPTH) recovers most of it."""

TRAINING_SHARE = 32
"""Training vectors per centroid, taken evenly across the set."""

BLOCK = 1_000_000
"""Vectors converted to float32 and added to the inverted file at once, so the float16 set is not
converted whole while the file holds its own codes (up to COMPACT_LIMIT the set is converted, if
float16, and added in one call; the refining converts it whole once the file is freed)."""

QUERY_BLOCK = 65_536
"""Queries per search call: bounds the temporary result arrays."""

REFINE_ROUNDS, WALK_DEPTH, REWALK_DEPTH = 1, 32, 128
"""How the inverted file's graph is improved: rounds of NN-descent (``_refine``), then a walk of
the graph from every row (``_walk``) keeping WALK_DEPTH candidates, then walks from only the rows
whose neighbours the last walk changed, keeping REWALK_DEPTH. In the 10M benchmark
(benchmarks/grouping_scale.py) the inverted file finds 66.1 % of the exact same-person neighbours
among LFW's real faces' 10 nearest; one round raises that to 87.2 % (2.5 minutes on 2 cores), the
walk of every row to 97.3 % (3.6 minutes) and the walks of the changed rows (326k, 76k, 13k rows)
to 99.7 % (1.2 minutes). A second walk of every row instead reached 98.8 %; three rounds and a
walk keeping 128, 99.4 % in 33 minutes of refining and walking."""

SETTLED, MAX_WALKS = 10_000, 8
"""The walks stop once a walk changes at most one row in SETTLED, or after MAX_WALKS walks (rows
with equally similar neighbours could swap them for ever)."""


@dataclass(frozen=True)
class Neighbours:
    """The k most similar other rows of each row: -1 / -inf where there are fewer than k."""

    similarities: np.ndarray
    """float32 (n, k), descending along each row."""
    indices: np.ndarray
    """int32 (n, k)."""


def _centroids(sample: np.ndarray, count: int) -> np.ndarray:
    """About ``count`` k-means centroids of unit rows, in two levels: sqrt(count) coarse clusters,
    each split into a share of ``count`` proportional to its size. One level would compare every
    training vector with every centroid (an hour at 10M faces on 2 cores); this takes a minute."""
    import faiss

    dimension = sample.shape[1]
    options = {"niter": 10, "spherical": True, "seed": 1, "min_points_per_centroid": 1}
    coarse = faiss.Kmeans(dimension, int(np.sqrt(count)), **options)
    coarse.train(sample)
    _, nearest = coarse.index.search(sample, 1)
    parts = []
    for members in (sample[nearest[:, 0] == c] for c in range(coarse.k)):
        share = min(len(members), max(1, round(count * len(members) / len(sample))))
        if share == len(members):
            parts.append(members)
            continue
        fine = faiss.Kmeans(dimension, share, **options)
        fine.train(members)
        parts.append(fine.centroids)
    return np.concatenate(parts)


def _inverted_file(vectors: np.ndarray):
    """An inverted-file index of float16 codes holding ``vectors``, added block by block."""
    import faiss

    count, dimension = vectors.shape
    lists = count // LIST_SIZE
    centroids = _centroids(as_float32(vectors[:: max(1, count // (lists * TRAINING_SHARE))]), lists)
    quantizer = faiss.IndexHNSWFlat(dimension, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    quantizer.add(centroids)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dimension, len(centroids), faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT, False
    )
    index.train(centroids)  # the quantizer is ready: this only sets up the float16 codes
    for start in range(0, count, BLOCK):
        index.add(as_float32(vectors[start : start + BLOCK]))
    # Filing a vector needed its nearest list only (faiss's default depth, 16); a query needs PROBES.
    quantizer.hnsw.efSearch = 4 * PROBES
    index.nprobe = PROBES
    return index


def _index(vectors: np.ndarray):
    """An exact index for small sets, an HNSW graph index above EXACT_LIMIT, an inverted file above
    COMPACT_LIMIT."""
    import faiss

    count, dimension = vectors.shape
    if count > COMPACT_LIMIT:
        return _inverted_file(vectors)
    if count <= EXACT_LIMIT:
        index = faiss.IndexFlatIP(dimension)
    else:
        index = faiss.IndexHNSWFlat(dimension, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_BUILD_DEPTH
        index.hnsw.efSearch = HNSW_SEARCH_DEPTH
    index.add(as_float32(vectors))
    return index


def _release_freed_memory() -> None:
    """Give memory the process freed back to the system where the C library can (glibc's
    malloc_trim). A freed inverted file's lists stay with the process otherwise, where numpy's
    large arrays cannot reuse them: half of the index at 1M faces (150 of 308 MB)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@functools.cache
def _half_decoder(dimension: int):
    import faiss

    return faiss.ScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_fp16)


def as_float32(rows: np.ndarray) -> np.ndarray:
    """``rows`` as a C-contiguous float32 array. float16 rows are converted by faiss (exactly, with
    vector instructions): numpy's float16 cast has none on x86 and took 4x as long; the grouping
    converts rows again and again, since a float32 copy of 10M faces would take 5.1 GB."""
    if rows.dtype == np.float16 and rows.ndim == 2 and len(rows):
        return _half_decoder(rows.shape[1]).decode(np.ascontiguousarray(rows).view(np.uint8))
    return np.ascontiguousarray(rows, dtype=np.float32)


def nearest_neighbours(vectors: np.ndarray, k: int) -> Neighbours:
    """The ``k`` nearest other rows of ``vectors`` (unit rows, float32 or float16) by inner product."""
    count = len(vectors)
    index = _index(vectors)
    wanted = min(k + 1, count)
    similarities = np.full((count, k), -np.inf, dtype=np.float32)
    indices = np.full((count, k), -1, dtype=np.int32)
    for start in range(0, count, QUERY_BLOCK):
        found_sims, found = index.search(as_float32(vectors[start : start + QUERY_BLOCK]), wanted)
        _keep_others(found_sims, found, np.arange(start, start + len(found)), similarities, indices)
    if count > COMPACT_LIMIT:
        del index
        _release_freed_memory()
        _refine(vectors, similarities, indices, REFINE_ROUNDS)
        _walk(vectors, similarities, indices, WALK_DEPTH, REWALK_DEPTH)
    return Neighbours(similarities, indices)


def _keep_others(
    found_sims: np.ndarray, found: np.ndarray, rows: np.ndarray, similarities: np.ndarray, indices: np.ndarray
) -> None:
    """Write a search's results for ``rows`` into the graph: each row's first k others (the row
    itself dropped wherever it ranks, and -1 results), -inf / -1 where fewer were found."""
    k = indices.shape[1]
    others = (found != rows[:, None]) & (found >= 0)
    order = np.argsort(~others, axis=1, kind="stable")[:, :k]
    taken = np.take_along_axis(others, order, axis=1)
    width = order.shape[1]
    similarities[rows, :width] = np.where(taken, np.take_along_axis(found_sims, order, axis=1), -np.inf)
    indices[rows, :width] = np.where(taken, np.take_along_axis(found, order, axis=1), -1)


def _reverse_neighbours(indices: np.ndarray, width: int) -> np.ndarray:
    """For each row, up to ``width`` rows that list it among their neighbours (lowest first), -1
    padded: int32 (n, width)."""
    count, k = indices.shape
    listed = indices.ravel()
    order = np.argsort(listed, kind="stable")
    sources = (order // k).astype(np.int32)
    first = np.searchsorted(listed[order], np.arange(count + 1))  # each row's run in ``sources``
    del order
    reverse = np.full((count, width), -1, dtype=np.int32)
    for rank in range(width):
        position = first[:-1] + rank
        present = position < first[1:]
        reverse[present, rank] = sources[position[present]]
    return reverse


def _refine(vectors: np.ndarray, similarities: np.ndarray, indices: np.ndarray, rounds: int) -> None:
    """Improve a neighbour graph in place (one step of NN-descent per round): each row's candidates
    are its k neighbours and up to k rows that list it, and the neighbours of all of these; it keeps
    the k most similar, so a row loses a neighbour only to one at least as similar. Blocks of rows
    are refined in order, each from the graph as refined so far, so the result does not depend on
    threads. Similarities are exact inner products of float32 rows: a float16 set is converted
    whole meanwhile (5.1 GB at 10M faces, while the inverted file is already freed)."""
    import faiss

    count, k = indices.shape
    rows_32 = as_float32(vectors)
    for _ in range(rounds):
        reverse = _reverse_neighbours(indices, k)
        for start in range(0, count, QUERY_BLOCK):
            direct = np.concatenate([indices[start : start + QUERY_BLOCK], reverse[start : start + QUERY_BLOCK]], 1)
            rows = len(direct)
            second = indices[np.maximum(direct, 0)]
            second[direct < 0] = -1
            candidates = np.concatenate([direct, second.reshape(rows, -1)], axis=1).astype(np.int64)
            candidates.sort(axis=1)
            unwanted = np.zeros(candidates.shape, dtype=bool)
            unwanted[:, 1:] = candidates[:, 1:] == candidates[:, :-1]
            unwanted |= candidates == np.arange(start, start + rows)[:, None]
            candidates[unwanted] = -1  # faiss gives -1 a similarity of -inf
            found = np.empty(candidates.shape, dtype=np.float32)
            faiss.fvec_inner_products_by_idx(
                faiss.swig_ptr(found),
                faiss.swig_ptr(rows_32[start : start + rows]),
                faiss.swig_ptr(rows_32),
                faiss.swig_ptr(candidates),
                rows_32.shape[1],
                rows,
                candidates.shape[1],
            )
            best = np.argpartition(-found, k - 1, axis=1)[:, :k]
            best_found = np.take_along_axis(found, best, axis=1)
            order = np.take_along_axis(best, np.argsort(-best_found, axis=1, kind="stable"), axis=1)
            kept = np.take_along_axis(found, order, axis=1)
            similarities[start : start + rows] = kept
            indices[start : start + rows] = np.take_along_axis(candidates, order, axis=1)  # -1 where -inf


def _walk(vectors: np.ndarray, similarities: np.ndarray, indices: np.ndarray, depth: int, rewalk_depth: int) -> None:
    """Search every row's neighbours again by walking the graph itself, in place; then again for the
    rows whose neighbours changed, keeping ``rewalk_depth`` candidates, until the graph settles.

    The graph becomes the single layer of a faiss HNSW index: each row links to its k neighbours
    and up to k rows that list it. Each row's search starts at the row and keeps the ``depth``
    most similar rows seen as candidates to expand (HNSW's search), so it reaches neighbours
    several links away, where NN-descent compares only neighbours of neighbours. A row's own
    neighbours are compared first, so it loses one only to a row at least as similar. Every
    search of a walk reads the graph as it was before the walk: the result does not depend on
    threads. Each later walk reads the links the last one found and searches only the rows it
    changed, where the graph is still wrong (at 10M: 3 % of the rows, then fewer each time), so
    it can afford more candidates. The index holds the set as float16 codes (float32 for a
    float32 set: exact either way) and 2k links per row: 3.4 GB at 10M faces.
    """
    import faiss

    count, k = indices.shape
    dimension = vectors.shape[1]
    if vectors.dtype == np.float16:
        index = faiss.IndexHNSWSQ(dimension, faiss.ScalarQuantizer.QT_fp16, k, faiss.METRIC_INNER_PRODUCT)
        index.storage.train(np.zeros((1, dimension), dtype=np.float32))  # float16 codes need no training
    else:
        index = faiss.IndexHNSWFlat(dimension, k, faiss.METRIC_INNER_PRODUCT)
    for start in range(0, count, BLOCK):
        index.storage.add(as_float32(vectors[start : start + BLOCK]))
    index.ntotal = count
    graph = index.hnsw
    faiss.copy_array_to_vector(np.ones(count, dtype=np.int32), graph.levels)  # every row on one layer
    graph.prepare_level_tab(count, True)
    links = faiss.rev_swig_ptr(graph.neighbors.data(), graph.neighbors.size()).reshape(count, 2 * k)
    walked = np.arange(count, dtype=np.int32)
    for walk in range(MAX_WALKS):
        graph.efSearch = max(depth if walk == 0 else rewalk_depth, k + 1)
        links[:, :k] = indices
        links[:, k:] = _reverse_neighbours(indices, k)
        links[:] = -np.sort(-links, axis=1)  # a search reads a row's links up to the first -1
        changed = []
        for start in range(0, len(walked), QUERY_BLOCK):
            rows = walked[start : start + QUERY_BLOCK]
            before = np.sort(indices[rows], axis=1)
            queries = as_float32(vectors[rows])
            entries = np.ascontiguousarray(rows[:, None])
            entry_distances = np.full((len(rows), 1), -1.0, dtype=np.float32)
            found_sims = np.empty((len(rows), k + 1), dtype=np.float32)
            found = np.empty((len(rows), k + 1), dtype=np.int64)
            index.search_level_0(
                len(rows),
                faiss.swig_ptr(queries),
                k + 1,
                faiss.swig_ptr(entries),
                faiss.swig_ptr(entry_distances),
                faiss.swig_ptr(found_sims),
                faiss.swig_ptr(found),
                1,
                1,
                None,
            )
            _keep_others(found_sims, found, rows, similarities, indices)  # results come most similar first
            changed.append(rows[(np.sort(indices[rows], axis=1) != before).any(axis=1)])
        walked = np.concatenate(changed)
        if len(walked) <= count // SETTLED:
            break
