"""Average linkage on a nearest-neighbour graph, with a merge rule that asks more of small groups.

Two groups' similarity is the mean cosine similarity over all pairs of their faces; for unit
vectors that is the dot product of the groups' mean vectors, so it is exact and costs one dot
product however large the groups are. Only groups joined by an edge of the faces' nearest-
neighbour graph are compared, so memory grows with faces x neighbours, never faces squared.

Merging follows reciprocal nearest neighbours: in each round, every pair of groups that are each
other's most similar eligible partner merges. Average linkage is reducible, so with a fixed
threshold this gives the same tree as merging one best pair at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecluster.grouping.neighbours import Neighbours

EDGE_BLOCK = 262_144
"""Edges whose similarity is computed at once: bounds the temporary (block, dimension) arrays."""


@dataclass(frozen=True)
class MergeRule:
    """When two groups of sizes a and b may merge.

    Their mean similarity s must reach ``base + margin / sqrt(a * b)``. When both groups hold at
    least ``settled_size`` faces, s must also be within ``cohesion_gap`` of the looser group's
    cohesion (the mean similarity of its own faces to each other): two settled groups merge only
    when faces across them are nearly as alike as faces within them, which keeps look-alikes such
    as siblings apart. A gap of None switches that test off.

    With ``consensus`` set, at least that share of the faces of one of the two groups must have
    their nearest face outside their own group in the other group: in a crowd of look-alikes a
    small group's faces point to many different groups, while fragments of one person point to
    each other. None switches that test off.
    """

    base: float
    margin: float = 0.0
    cohesion_gap: float | None = None
    settled_size: int = 5
    consensus: float | None = None

    def allows(self, sims: np.ndarray, sizes_a: np.ndarray, sizes_b: np.ndarray, cohesion: Cohesion) -> np.ndarray:
        """Which of these group pairs may merge."""
        allowed = sims >= self.base + self.margin / np.sqrt(sizes_a * sizes_b)
        if self.cohesion_gap is not None:
            settled = np.flatnonzero(allowed & (sizes_a >= self.settled_size) & (sizes_b >= self.settled_size))
            looser = np.minimum(cohesion.a(settled), cohesion.b(settled))
            allowed[settled] = sims[settled] >= looser - self.cohesion_gap
        return allowed


@dataclass(frozen=True)
class Cohesion:
    """Mean similarity between distinct faces of the groups at either end of some edges."""

    u: np.ndarray
    v: np.ndarray
    sums: np.ndarray
    sizes: np.ndarray

    def _of(self, groups: np.ndarray) -> np.ndarray:
        size = self.sizes[groups]
        squared = np.einsum("ij,ij->i", self.sums[groups], self.sums[groups])
        return (squared - size) / np.maximum(size * (size - 1), 1)

    def a(self, edges: np.ndarray) -> np.ndarray:
        return self._of(self.u[edges])

    def b(self, edges: np.ndarray) -> np.ndarray:
        return self._of(self.v[edges])


def _pair_keys(u: np.ndarray, v: np.ndarray, count: int) -> np.ndarray:
    return np.minimum(u, v) * count + np.maximum(u, v)


def _unique_edges(u: np.ndarray, v: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each unordered pair once, as (low, high), without self-loops (in place where it can: at 10M
    faces an edge array is 800 MB)."""
    keys = np.minimum(u, v)
    keys *= count
    keys += np.maximum(u, v)
    keys = keys[u != v]
    keys.sort()
    keys = keys[np.concatenate([keys[:1] == keys[:1], keys[1:] != keys[:-1]])]
    return keys // count, keys % count


def _similarities(u: np.ndarray, v: np.ndarray, sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Mean pairwise cosine similarity between groups u and v."""
    result = np.empty(len(u), dtype=np.float32)
    for start in range(0, len(u), EDGE_BLOCK):
        a, b = u[start : start + EDGE_BLOCK], v[start : start + EDGE_BLOCK]
        result[start : start + len(a)] = np.einsum("ij,ij->i", sums[a], sums[b]) / (sizes[a] * sizes[b])
    return result


def _reciprocal_best(u: np.ndarray, v: np.ndarray, sims: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (keep, drop) of groups that are each other's most similar partner among these edges
    (ties: the partner with the lower id), by scattered maxima: no sort of the edges."""
    best_sim = np.full(count, -np.inf, dtype=sims.dtype)
    np.maximum.at(best_sim, u, sims)
    np.maximum.at(best_sim, v, sims)
    best = np.full(count, count, dtype=u.dtype)
    at_u, at_v = sims == best_sim[u], sims == best_sim[v]
    np.minimum.at(best, u[at_u], v[at_u])
    np.minimum.at(best, v[at_v], u[at_v])
    node = np.flatnonzero(best < count)
    other = best[node]
    mutual = (best[other] == node) & (node < other)
    return node[mutual], other[mutual]


class _NearestOutside:
    """Each face's first neighbour (nearest first) in another group, kept as groups merge: only the
    faces of merged groups can lose theirs (to the group they joined), and their nearer neighbours
    stay in their group, so the search goes on from there instead of over every face's k
    neighbours in every round."""

    def __init__(self, indices: np.ndarray, labels: np.ndarray) -> None:
        self.indices = indices
        self.column = np.zeros(len(labels), dtype=np.int32)
        """Per face, the column of that neighbour in ``indices`` (k: none)."""
        self.update(np.arange(len(labels)), labels)

    def update(self, faces: np.ndarray, labels: np.ndarray) -> None:
        """Search again for these faces, from where their last search ended."""
        width = self.indices.shape[1]
        faces = faces[self.column[faces] < width]  # a face with no neighbour outside its group never gets one
        column = self.column[faces]
        while len(faces):
            near = self.indices[faces, column]
            found = (near >= 0) & (labels[np.maximum(near, 0)] != labels[faces])
            column += ~found
            done = found | (column == width)
            self.column[faces[done]] = column[done]
            faces, column = faces[~done], column[~done]

    def groups(self, faces: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The group of each of these faces' nearest outside face; -1 where there is none."""
        column = self.column[faces]
        has = column < self.indices.shape[1]
        result = np.full(len(faces), -1)
        result[has] = labels[self.indices[faces[has], column[has]]]
        return result


def _consensus(
    u: np.ndarray, v: np.ndarray, labels: np.ndarray, sizes: np.ndarray, outside: _NearestOutside
) -> np.ndarray:
    """Per edge: the larger of the two groups' shares of faces whose nearest outside face is in the other."""
    count = len(labels)
    involved = np.zeros(count, dtype=bool)
    involved[u] = involved[v] = True
    faces = np.flatnonzero(involved[labels])  # only these groups' faces
    own, target = labels[faces], outside.groups(faces, labels)
    has = target >= 0
    keys, counts = np.unique(own[has] * count + target[has], return_counts=True)

    def share(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        wanted = a * count + b
        at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
        found = np.where(keys[at] == wanted, counts[at], 0) if len(keys) else np.zeros(len(a))
        return found / sizes[a]

    return np.maximum(share(u, v), share(v, u))


def _seeded(count: int, seeds: np.ndarray | None) -> np.ndarray:
    """Group labels to start from: rows sharing a seed number (>= 0) start as one group."""
    labels = np.arange(count)
    if seeds is not None:
        seeded = np.flatnonzero(seeds >= 0)
        numbers, first = np.unique(seeds[seeded], return_index=True)
        labels[seeded] = seeded[first][np.searchsorted(numbers, seeds[seeded])]
    return labels


def _sums(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """float32 sum of each group's rows, in the row of the group's id (other rows are unused)."""
    sums = embeddings.astype(np.float32)
    moved = np.flatnonzero(labels != np.arange(len(labels)))
    np.add.at(sums, labels[moved], sums[moved])
    return sums


def average_linkage(
    embeddings: np.ndarray,
    neighbours: Neighbours,
    rule: MergeRule,
    cannot_link: np.ndarray | None = None,
    seeds: np.ndarray | None = None,
) -> np.ndarray:
    """A group id per row (the id is one of the group's rows).

    ``embeddings`` are unit rows (float32, or float16 to halve their memory: group sums are
    float32 either way); ``neighbours`` is their nearest-neighbour graph; ``cannot_link``
    is an (m, 2) array of row pairs that must never end in one group; ``seeds`` numbers rows that
    start as one group (-1: a row of its own), e.g. the faces a user confirmed as one person.
    """
    count, width = neighbours.indices.shape
    labels = _seeded(count, seeds)
    sizes = np.bincount(labels, minlength=count)
    kept = np.flatnonzero((neighbours.indices >= 0) & (neighbours.similarities >= rule.base))
    u, v = labels[kept // width], labels[neighbours.indices.ravel()[kept]]
    del kept
    u, v = _unique_edges(u, v, count)
    sums = _sums(embeddings, labels)
    sims = _similarities(u, v, sums, sizes)
    forbidden = np.empty((0, 2), dtype=np.int64) if cannot_link is None else np.asarray(cannot_link, dtype=np.int64)
    outside = None if rule.consensus is None else _NearestOutside(neighbours.indices, labels)
    while True:
        eligible = np.flatnonzero(rule.allows(sims, sizes[u], sizes[v], Cohesion(u, v, sums, sizes)))
        if len(eligible) and len(forbidden):
            conflicts = _pair_keys(labels[forbidden[:, 0]], labels[forbidden[:, 1]], count)
            eligible = eligible[~np.isin(_pair_keys(u[eligible], v[eligible], count), conflicts)]
        if len(eligible) and rule.consensus is not None:
            agreed = _consensus(u[eligible], v[eligible], labels, sizes, outside) >= rule.consensus
            eligible = eligible[agreed]
        if not len(eligible):
            return labels
        keep, drop = _reciprocal_best(u[eligible], v[eligible], sims[eligible], count)
        sums[keep] += sums[drop]
        sizes[keep] += sizes[drop]
        remap = np.arange(count)
        remap[drop] = keep
        labels = remap[labels]
        touched = np.zeros(count, dtype=bool)
        touched[keep] = True
        if outside is not None:
            outside.update(np.flatnonzero(touched[labels]), labels)
        # Edges touching a merged group get the new ids, lose duplicates and are re-measured; those
        # below the base similarity are dropped (a later merge brings the pair back if an edge of
        # the newcomer joins it).
        touched[drop] = True
        dirty = touched[u] | touched[v]
        new_u, new_v = _unique_edges(remap[u[dirty]], remap[v[dirty]], count)
        new_sims = _similarities(new_u, new_v, sums, sizes)
        alive = new_sims >= rule.base
        u = np.concatenate([u[~dirty], new_u[alive]])
        v = np.concatenate([v[~dirty], new_v[alive]])
        sims = np.concatenate([sims[~dirty], new_sims[alive]])
