"""Questions that finish a grouping: "are these two the same person?", ranked by expected gain.

The grouping is precise but splits people (pose, age, light). Every question pairs a person with
another person or with an unsorted face. Its rank is the chance of a "yes" times what a "yes"
brings together (face pairs of the two sides). The chance comes from a logistic model over how
close the two sides' faces lie; answers inform the rest: a "yes" merges the sides (so their
questions are re-asked about the whole person), a "no" is recorded and bounds the chance of every
question linking either side to someone much like the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecluster.grouping.neighbours import nearest_neighbours

NEIGHBOURS = 10
"""Nearest faces searched per face: a question is asked only about sides with faces this near."""
MAX_SIDE = 256
"""Faces per side compared when measuring a pair (the best-quality ones of larger people)."""
WEIGHTS = (4.699, -6.538, -12.499, -1.052, -0.778, 7.907)
"""Logistic weights of (1, the mean of the 3 closest face pairs' distances, the centroids' distance,
log faces of the smaller side, log faces of the larger side, the share of links)."""


@dataclass(frozen=True)
class Faces:
    """The faces questions may be about."""

    ids: np.ndarray
    """int64 face ids."""
    vectors: np.ndarray
    """float32 (n, d) unit embeddings."""
    owners: np.ndarray
    """int64 person id of each face; -1 for an unsorted face."""
    photos: np.ndarray
    """int64 photo number of each face (two faces of one photo are two people)."""
    quality: np.ndarray
    """float32 size x detector score of each face (larger people are compared on their best faces)."""


@dataclass(frozen=True)
class Said:
    """The answers that shape the questions: pairs of people said to differ, faces said not to be someone."""

    apart: frozenset[tuple[int, int]]
    """(smaller person id, larger person id)."""
    rejected: dict[int, set[int]]
    """face id -> person ids it is not."""


@dataclass(frozen=True)
class Ranked:
    """One question: is ``person`` the same as ``other`` (a person) or as ``face`` (an unsorted face)?"""

    person: int
    other: int | None
    face: int | None
    probability: float
    """Estimated chance of a "yes"."""
    gain: float
    """Face pairs a "yes" brings together."""
    distance: float
    """The mean distance of the sides' three closest face pairs."""
    closest: tuple[int, int]
    """The nearest face pair: a face of ``person``, a face of the other side."""

    @property
    def score(self) -> float:
        """The expected gain: face pairs a "yes" would bring together, times its chance."""
        return self.probability * self.gain


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between unit rows."""
    return np.sqrt(np.clip(2.0 - 2.0 * (a @ b.T), 0.0, 4.0))


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def features(block: np.ndarray, centroid_distance: float, sizes: tuple[int, int], links: int) -> np.ndarray:
    """The model's inputs for two sides whose face distances are ``block``, of ``sizes`` faces, joined by
    ``links`` nearest-neighbour links."""
    closest = np.partition(block, 2, axis=None)[:3] if block.size > 3 else block.ravel()
    small, large = min(sizes), max(sizes)
    share = links / (NEIGHBOURS * small)
    return np.array([1.0, closest.mean(), centroid_distance, np.log(small), np.log(large), share])


def probability(x: np.ndarray) -> np.ndarray:
    """The model's chance of a "yes" for feature rows ``x``."""
    return 1.0 / (1.0 + np.exp(-(x @ np.asarray(WEIGHTS))))


def rank(faces: Faces, said: Said, neighbours: int = NEIGHBOURS) -> list[Ranked]:
    """Every question worth asking about these faces, best first (highest expected gain)."""
    owners = faces.owners
    people = np.unique(owners[owners >= 0])
    unsorted_rows = np.flatnonzero(owners < 0)
    # Units: people first (unit i is people[i]), then one unit per unsorted face.
    unit_of = np.empty(len(owners), dtype=np.int64)
    unit_of[owners >= 0] = np.searchsorted(people, owners[owners >= 0])
    unit_of[unsorted_rows] = len(people) + np.arange(len(unsorted_rows))
    units = len(people) + len(unsorted_rows)
    order = np.argsort(unit_of, kind="stable")
    starts = np.searchsorted(unit_of[order], np.arange(units + 1))
    members = [order[starts[u] : starts[u + 1]] for u in range(units)]
    compared = [m[np.argsort(-faces.quality[m], kind="stable")[:MAX_SIDE]] for m in members]
    centroids = _unit(np.stack([faces.vectors[m].mean(axis=0) for m in members])) if units else faces.vectors[:0]
    photos = [set(faces.photos[m].tolist()) for m in members]

    pairs: set[tuple[int, int]] = set()
    links: dict[int, int] = {}
    if len(owners) > 1:
        found = nearest_neighbours(faces.vectors, min(neighbours, len(owners) - 1)).indices
        rows = np.repeat(np.arange(len(owners)), found.shape[1])
        other = found.ravel()
        keep = other >= 0
        a, b = unit_of[rows[keep]], unit_of[other[keep]]
        useful = (a != b) & ((a < len(people)) | (b < len(people)))
        lo, hi = np.minimum(a[useful], b[useful]), np.maximum(a[useful], b[useful])
        keys, counts = np.unique(lo * units + hi, return_counts=True)
        links = dict(zip(keys.tolist(), counts.tolist(), strict=True))
        pairs = {(key // units, key % units) for key in links}
    face_ids = faces.ids
    candidates: dict[tuple[int, int], tuple[float, float, float, tuple[int, int]]] = {}
    for a, b in pairs:
        if not photos[a].isdisjoint(photos[b]):
            continue  # two faces of one photo: two people
        person_a = int(people[a])
        if b < len(people):
            person_b = int(people[b])
            if (min(person_a, person_b), max(person_a, person_b)) in said.apart:
                continue
        elif person_a in said.rejected.get(int(face_ids[members[b][0]]), ()):
            continue
        block = _distances(faces.vectors[compared[a]], faces.vectors[compared[b]])
        centroid = float(np.sqrt(max(0.0, 2.0 - 2.0 * float(centroids[a] @ centroids[b]))))
        x = features(block, centroid, (len(members[a]), len(members[b])), links[a * units + b])
        row, column = np.unravel_index(int(block.argmin()), block.shape)
        closest = (int(face_ids[compared[a][row]]), int(face_ids[compared[b][column]]))
        gain = float(len(members[a]) * len(members[b]))
        candidates[(a, b)] = (float(probability(x)), gain, float(x[1]), closest)
    chance = {pair: value[0] for pair, value in candidates.items()}
    _bound_by_answers(chance, people, members, face_ids, said)
    ranked = []
    for (a, b), (_, gain, distance, closest) in candidates.items():
        other, face = (int(people[b]), None) if b < len(people) else (None, int(face_ids[members[b][0]]))
        ranked.append(Ranked(int(people[a]), other, face, chance[(a, b)], gain, distance, closest))
    ranked.sort(key=lambda q: (-q.score, q.distance, q.person, q.other or 0, q.face or 0))
    return ranked


def _bound_by_answers(
    chance: dict[tuple[int, int], float],
    people: np.ndarray,
    members: list[np.ndarray],
    face_ids: np.ndarray,
    said: Said,
) -> None:
    """A "no" is information about more than its own pair: when A is not B, A is C at most as likely
    as C is not B. Lower the chances of ``chance`` (unit pairs) accordingly."""
    unit_of_person = {int(p): u for u, p in enumerate(people)}
    unit_of_face = {int(face_ids[members[u][0]]): u for u in range(len(people), len(members))}
    differ: dict[int, set[int]] = {}
    for p, q in said.apart:
        if p in unit_of_person and q in unit_of_person:
            differ.setdefault(unit_of_person[p], set()).add(unit_of_person[q])
            differ.setdefault(unit_of_person[q], set()).add(unit_of_person[p])
    for face, refused in said.rejected.items():
        if face in unit_of_face:
            known = {unit_of_person[p] for p in refused if p in unit_of_person}
            differ.setdefault(unit_of_face[face], set()).update(known)
    if not differ:
        return
    original = dict(chance)
    for (a, b), value in original.items():
        bound = value
        for side, other in ((a, b), (b, a)):
            for known in differ.get(side, ()):
                link = original.get((min(known, other), max(known, other)))
                if link is not None:
                    bound = min(bound, 1.0 - link)
        chance[(a, b)] = bound
