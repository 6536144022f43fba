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

from facecluster.grouping.neighbours import Neighbours, as_float32

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
    squared: np.ndarray
    """Per group id, the squared norm of its sum (GroupSums.squared)."""
    sizes: np.ndarray

    def _of(self, groups: np.ndarray) -> np.ndarray:
        size = self.sizes[groups]
        return (self.squared[groups] - size) / np.maximum(size * (size - 1), 1)

    def a(self, edges: np.ndarray) -> np.ndarray:
        return self._of(self.u[edges])

    def b(self, edges: np.ndarray) -> np.ndarray:
        return self._of(self.v[edges])


class GroupSums:
    """The float32 sum of each group's unit rows, by group id (one of the group's rows).

    A lone row's sum is the row itself, read from the embeddings; only groups of two or more rows
    hold a float32 row here, in a slot reused once its group merges into another. At 10M faces a
    float32 row per face would take 5.1 GB; the slots' array is allocated for the most groups there
    can be (half the rows) but only the slots in use are ever written, so only those take memory.
    """

    def __init__(self, embeddings: np.ndarray, labels: np.ndarray, sizes: np.ndarray) -> None:
        """``sizes``: the number of rows of each group id in ``labels``."""
        count, dimension = embeddings.shape
        self.embeddings = embeddings
        self.slot = np.full(count, -1, dtype=np.int64)
        """Per group id, its row in ``rows``; -1 for a lone row."""
        self.rows = np.empty((count // 2 + 1, dimension), dtype=np.float32)
        self.squared = np.ones(count, dtype=np.float32)
        """Per group id, the squared norm of its sum (1 stands for a lone row's)."""
        self.free = np.zeros(0, dtype=np.int64)
        """Slots given up by merged groups, to be taken before new ones."""
        self.used = 0
        """Slots ever taken: the rest of ``rows`` was never written."""
        groups = np.flatnonzero(sizes >= 2)
        slots = self.slot[groups] = self._new_slots(len(groups))
        self.rows[slots] = 0
        members = np.flatnonzero(sizes[labels] >= 2)
        for start in range(0, len(members), EDGE_BLOCK):
            rows = members[start : start + EDGE_BLOCK]
            np.add.at(self.rows, self.slot[labels[rows]], as_float32(embeddings[rows]))
        self.squared[groups] = np.einsum("ij,ij->i", self.rows[slots], self.rows[slots])

    def _new_slots(self, wanted: int) -> np.ndarray:
        reused, self.free = self.free[:wanted], self.free[wanted:]
        fresh = np.arange(self.used, self.used + wanted - len(reused))
        self.used += len(fresh)
        return np.concatenate([reused, fresh])

    def _take(self, groups: np.ndarray, slots: np.ndarray, held: bool) -> np.ndarray:
        """The float32 sums of groups that all hold a slot, or all are lone rows."""
        if held:
            return np.take(self.rows, slots, axis=0)
        return as_float32(np.take(self.embeddings, groups, axis=0))

    def dots(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The inner product of the sums of groups a and b, pair by pair (float32).

        Pairs are taken by kind (lone or held at either end), so each side is one gather from one
        array: scattering rows of mixed origin into one array costs more than the products.
        """
        slot_a, slot_b = self.slot[a], self.slot[b]
        result = np.empty(len(a), dtype=np.float32)
        for a_held in (False, True):
            for b_held in (False, True):
                at = np.flatnonzero(((slot_a >= 0) == a_held) & ((slot_b >= 0) == b_held))
                left = self._take(a[at], slot_a[at], a_held)
                right = self._take(b[at], slot_b[at], b_held)
                result[at] = np.einsum("ij,ij->i", left, right)
        return result

    def merge(self, keep: np.ndarray, drop: np.ndarray) -> None:
        """Add each group of ``drop`` into its partner in ``keep`` (pairs of distinct groups)."""
        keep_slot, drop_slot = self.slot[keep], self.slot[drop]
        target = np.where(keep_slot >= 0, keep_slot, drop_slot)
        unheld = np.flatnonzero(target < 0)
        # Slots freed by this round wait for the next: a block below may still read them.
        target[unheld] = self._new_slots(len(unheld))
        for start in range(0, len(keep), EDGE_BLOCK):
            part = slice(start, start + EDGE_BLOCK)
            merged = self._sum(keep[part], keep_slot[part]) + self._sum(drop[part], drop_slot[part])
            self.rows[target[part]] = merged
            self.squared[keep[part]] = np.einsum("ij,ij->i", merged, merged)
        self.slot[keep] = target
        self.slot[drop] = -1
        freed = drop_slot[(keep_slot >= 0) & (drop_slot >= 0)]
        self.free = np.concatenate([self.free, freed])

    def _sum(self, groups: np.ndarray, slots: np.ndarray) -> np.ndarray:
        result = np.empty((len(groups), self.rows.shape[1]), dtype=np.float32)
        for held, at in ((True, np.flatnonzero(slots >= 0)), (False, np.flatnonzero(slots < 0))):
            result[at] = self._take(groups[at], slots[at], held)
        return result


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


def _similarities(u: np.ndarray, v: np.ndarray, sums: GroupSums, sizes: np.ndarray) -> np.ndarray:
    """Mean pairwise cosine similarity between groups u and v."""
    result = np.empty(len(u), dtype=np.float32)
    for start in range(0, len(u), EDGE_BLOCK):
        a, b = u[start : start + EDGE_BLOCK], v[start : start + EDGE_BLOCK]
        result[start : start + len(a)] = sums.dots(a, b) / (sizes[a] * sizes[b])
    return result


def _allowed(
    rule: MergeRule, u: np.ndarray, v: np.ndarray, sims: np.ndarray, sizes: np.ndarray, sums: GroupSums
) -> np.ndarray:
    """Per edge, whether ``rule`` lets its groups merge, block by block (bounds the temporaries)."""
    result = np.empty(len(u), dtype=bool)
    for start in range(0, len(u), EDGE_BLOCK):
        a, b = u[start : start + EDGE_BLOCK], v[start : start + EDGE_BLOCK]
        result[start : start + len(a)] = rule.allows(
            sims[start : start + len(a)], sizes[a], sizes[b], Cohesion(a, b, sums.squared, sizes)
        )
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


def _agreed(
    u: np.ndarray, v: np.ndarray, labels: np.ndarray, sizes: np.ndarray, outside: _NearestOutside, share: float
) -> np.ndarray:
    """Per edge: whether at least ``share`` of the faces of one of its two groups have their nearest
    outside face in the other group."""
    count = len(labels)
    involved = np.zeros(count, dtype=bool)
    involved[u] = involved[v] = True
    faces = np.flatnonzero(involved[labels])  # only these groups' faces
    own, target = labels[faces], outside.groups(faces, labels)
    has = target >= 0
    keys, counts = np.unique(own[has] * count + target[has], return_counts=True)
    # The (group, target) pairs with enough faces, listed by group: at most 1 / share per group.
    keys = keys[counts / sizes[keys // count] >= share]
    groups, first, listed = np.unique(keys // count, return_index=True, return_counts=True)
    start, length = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    start[groups], length[groups] = first, listed
    targets = keys % count

    def pointing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether b is on a's list (a few gathers per edge, no search)."""
        found = np.zeros(len(a), dtype=bool)
        for place in range(int(listed.max()) if len(listed) else 0):
            at = np.flatnonzero(length[a] > place)
            found[at] |= targets[start[a[at]] + place] == b[at]
        return found

    return pointing(u, v) | pointing(v, u)


def _seeded(count: int, seeds: np.ndarray | None) -> np.ndarray:
    """Group labels to start from: rows sharing a seed number (>= 0) start as one group."""
    labels = np.arange(count)
    if seeds is not None:
        seeded = np.flatnonzero(seeds >= 0)
        numbers, first = np.unique(seeds[seeded], return_index=True)
        labels[seeded] = seeded[first][np.searchsorted(numbers, seeds[seeded])]
    return labels


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
    sums = GroupSums(embeddings, labels, sizes)
    sims = _similarities(u, v, sums, sizes)
    forbidden = np.empty((0, 2), dtype=np.int64) if cannot_link is None else np.asarray(cannot_link, dtype=np.int64)
    outside = None if rule.consensus is None else _NearestOutside(neighbours.indices, labels)
    # Whether the rule allows an edge changes only when a group at either end merges: kept per edge.
    allowed = _allowed(rule, u, v, sims, sizes, sums)
    while True:
        eligible = np.flatnonzero(allowed)
        if len(eligible) and len(forbidden):
            conflicts = _pair_keys(labels[forbidden[:, 0]], labels[forbidden[:, 1]], count)
            eligible = eligible[~np.isin(_pair_keys(u[eligible], v[eligible], count), conflicts)]
        if len(eligible) and rule.consensus is not None:
            eligible = eligible[_agreed(u[eligible], v[eligible], labels, sizes, outside, rule.consensus)]
        if not len(eligible):
            return labels
        keep, drop = _reciprocal_best(u[eligible], v[eligible], sims[eligible], count)
        sums.merge(keep, drop)
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
        new_u, new_v, new_sims = new_u[alive], new_v[alive], new_sims[alive]
        clean = ~dirty
        u = np.concatenate([u[clean], new_u])
        v = np.concatenate([v[clean], new_v])
        sims = np.concatenate([sims[clean], new_sims])
        allowed = np.concatenate([allowed[clean], _allowed(rule, new_u, new_v, new_sims, sizes, sums)])
