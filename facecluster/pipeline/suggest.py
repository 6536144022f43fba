"""Questions that finish a grouping: "are these two the same person?", ranked by expected gain.

The grouping is precise but splits people (pose, age, light). Every question pairs a person with
another person or with an unsorted face. Its rank is the chance of a "yes" times what a "yes"
brings together: for sides of a and b faces, ab / (a + b), the rise in the faces' share of their
person in one album (BCubed recall) when the two make up the whole person. So two halves of a
person come before a face for someone already large. The chance comes from a logistic model over how
close the two sides' faces lie; answers inform the rest: a "yes" merges the sides (so their
questions are re-asked about the whole person), a "no" is recorded and bounds the chance of every
question linking either side to someone much like the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from facecluster.grouping.neighbours import nearest_neighbours

NEIGHBOURS = 10
"""Nearest faces searched per face: a question is asked only about sides with faces this near."""
MAX_SIDE = 256
"""Faces per side compared when measuring a pair (the best-quality ones of larger people)."""
WEIGHTS = (5.105, -7.533, -12.288, -1.124, -0.835, 7.983)
"""Logistic weights of (1, the mean of the 3 closest face pairs' distances, the centroids' distance,
log faces of the smaller side, log faces of the larger side, the share of links): fitted by
tools/fit_suggest_model.py on LFW; see facecluster/models/same_person.md."""


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
    """What a "yes" brings together: ab / (a + b) for sides of a and b faces."""
    distance: float
    """The mean distance of the sides' three closest face pairs."""
    closest: tuple[int, int]
    """The nearest face pair: a face of ``person``, a face of the other side."""


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def features(closest: np.ndarray, centroid_distance: np.ndarray, sizes: np.ndarray, links: np.ndarray) -> np.ndarray:
    """The model's inputs, one row per pair of sides: the mean distance of their three closest face
    pairs, their centroids' distance, their (n, 2) sizes in faces, and their nearest-neighbour links."""
    small, large = sizes.min(axis=1), sizes.max(axis=1)
    share = links / (NEIGHBOURS * small)
    return np.column_stack([np.ones(len(small)), closest, centroid_distance, np.log(small), np.log(large), share])


def probability(x: np.ndarray) -> np.ndarray:
    """The model's chance of a "yes" for feature rows ``x``."""
    return 1.0 / (1.0 + np.exp(-(x @ np.asarray(WEIGHTS))))


@dataclass(frozen=True)
class _Units:
    """The sides questions are about: every person (unit i is ``people[i]``), then each unsorted face."""

    people: np.ndarray
    of_face: np.ndarray
    """The unit of each face row."""
    members: list[np.ndarray]
    """The face rows of each unit."""
    compared: list[np.ndarray]
    """The face rows each unit is measured by: its MAX_SIDE best."""

    def __len__(self) -> int:
        return len(self.members)

    @staticmethod
    def of(faces: Faces) -> _Units:
        owners = faces.owners
        people = np.unique(owners[owners >= 0])
        unsorted_rows = np.flatnonzero(owners < 0)
        of_face = np.empty(len(owners), dtype=np.int64)
        of_face[owners >= 0] = np.searchsorted(people, owners[owners >= 0])
        of_face[unsorted_rows] = len(people) + np.arange(len(unsorted_rows))
        count = len(people) + len(unsorted_rows)
        order = np.lexsort((-faces.quality, of_face))
        starts = np.searchsorted(of_face[order], np.arange(count + 1))
        members = [order[starts[u] : starts[u + 1]] for u in range(count)]
        return _Units(people, of_face, members, [m[:MAX_SIDE] for m in members])


def nearest_faces(vectors: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """The rows of each row's nearest other faces (n, k; -1 where fewer): what questions are asked
    about. It depends on the faces alone, not on who they are, so callers may keep it while the
    faces stay the same."""
    if len(vectors) < 2:
        return np.full((len(vectors), 0), -1, dtype=np.int64)
    return nearest_neighbours(vectors, min(neighbours, len(vectors) - 1)).indices


def _linked(nearest: np.ndarray, units: _Units) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of units (keys, see ``_keys``; the smaller unit a person) with faces among each other's
    nearest, and how many such links each has."""
    rows = np.repeat(np.arange(len(nearest)), nearest.shape[1])
    other = nearest.ravel()
    keep = other >= 0
    a, b = units.of_face[rows[keep]], units.of_face[other[keep]]
    useful = (a != b) & (np.minimum(a, b) < len(units.people))
    return np.unique(_keys(a[useful], b[useful], len(units)), return_counts=True)


def _keys(a: np.ndarray, b: np.ndarray, units: int) -> np.ndarray:
    """One number per unordered pair of units."""
    return np.minimum(a, b) * units + np.maximum(a, b)


def _sharing_a_photo(photos: np.ndarray, units: _Units) -> np.ndarray:
    """Keys of the unit pairs with faces in one photo (two faces of a photo are two people)."""
    order = np.argsort(photos, kind="stable")
    photo, unit = photos[order], units.of_face[order]
    keys = [np.zeros(0, dtype=np.int64)]
    for step in range(1, len(photo)):
        same = photo[step:] == photo[:-step]
        if not same.any():
            break
        keys.append(_keys(unit[:-step][same], unit[step:][same], len(units)))
    return np.unique(np.concatenate(keys))


def _said_keys(faces: Faces, units: _Units, said: Said) -> np.ndarray:
    """Keys of the unit pairs already answered "no"."""
    count, people = len(units), units.people
    known = set(people.tolist())
    unsorted = units.of_face >= len(people)
    unit_of_face = dict(zip(faces.ids[unsorted].tolist(), units.of_face[unsorted].tolist(), strict=True))
    pairs = [(p, q) for p, q in said.apart if p in known and q in known]
    keys = [_keys(np.searchsorted(people, p), np.searchsorted(people, q), count) for p, q in pairs]
    for face, refused in said.rejected.items():
        if face in unit_of_face:
            keys += [_keys(np.searchsorted(people, p), unit_of_face[face], count) for p in refused if p in known]
    return np.array(keys, dtype=np.int64)


def _closest_pairs(vectors: np.ndarray, units: _Units, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For unit pairs (a[i], b[i]): the mean distance of their three closest face pairs, and the
    closest pair's face rows (n, 2). Pairs are measured a side at a time: one matrix product
    against all the partners of a unit."""
    mean = np.empty(len(a))
    closest = np.empty((len(a), 2), dtype=np.int64)
    order = np.argsort(a, kind="stable")
    bounds = np.flatnonzero(np.diff(a[order])) + 1
    for pairs in np.split(order, bounds):
        if not len(pairs):
            continue
        rows = units.compared[int(a[pairs[0]])]
        partners = [units.compared[int(u)] for u in b[pairs]]
        lengths = np.array([len(p) for p in partners])
        columns = np.concatenate(partners)
        distances = np.sqrt(np.clip(2.0 - 2.0 * (vectors[rows] @ vectors[columns].T), 0.0, 4.0))
        # The three closest entries of a block are among the three closest of their columns.
        depth = min(3, len(rows))
        best_rows = (
            np.argpartition(distances, depth - 1, axis=0)[:depth]
            if len(rows) > depth
            else np.indices(distances.shape)[0]
        )
        values = np.take_along_axis(distances, best_rows, axis=0).ravel()
        column = np.tile(np.arange(len(columns)), depth)
        segment = np.repeat(np.arange(len(pairs)), lengths)[column]
        sort = np.lexsort((values, segment))
        starts = np.concatenate([[0], np.cumsum(lengths * depth)[:-1]])
        take = starts[:, None] + np.arange(3)
        valid = take < (starts + lengths * depth)[:, None]
        picked = values[sort][np.minimum(take, len(values) - 1)]
        mean[pairs] = (picked * valid).sum(axis=1) / valid.sum(axis=1)
        first = sort[starts]
        closest[pairs, 0] = rows[best_rows.ravel()[first]]
        closest[pairs, 1] = columns[column[first]]
    return mean, closest


@dataclass(frozen=True)
class Candidates:
    """The pairs of sides worth a question, and what the model sees of each."""

    units: _Units
    first: np.ndarray
    """The unit of each pair's person (the smaller unit)."""
    second: np.ndarray
    """The unit of each pair's other side: a person or an unsorted face."""
    features: np.ndarray
    """``features`` rows, one per pair."""
    closest: np.ndarray
    """(n, 2) face rows of each pair's nearest faces."""

    def keys(self) -> np.ndarray:
        return _keys(self.first, self.second, len(self.units))

    def sides(self, faces: Faces, i: int) -> tuple[int, int | None, int | None]:
        """Pair ``i`` as (person, other person, unsorted face)."""
        person, second = int(self.units.people[self.first[i]]), int(self.second[i])
        if second < len(self.units.people):
            return person, int(self.units.people[second]), None
        return person, None, int(faces.ids[self.units.members[second][0]])


def candidates(faces: Faces, said: Said, about: int | None = None, nearest: np.ndarray | None = None) -> Candidates:
    """Every pair of sides with faces among each other's nearest, not in one photo and not answered
    (with ``about``, only pairs with that person). ``nearest``: ``nearest_faces(faces.vectors)``, if kept."""
    units = _Units.of(faces)
    keys, links = _linked(nearest_faces(faces.vectors) if nearest is None else nearest, units)
    drop = np.isin(keys, _sharing_a_photo(faces.photos, units)) | np.isin(keys, _said_keys(faces, units, said))
    keys, links = keys[~drop], links[~drop]
    a, b = keys // len(units), keys % len(units)
    if about is not None:
        wanted = np.searchsorted(units.people, about)
        chosen = (a == wanted) | (b == wanted)
        links, a, b = links[chosen], a[chosen], b[chosen]
    sizes = np.array([len(m) for m in units.members], dtype=np.int64)
    mean, closest = _closest_pairs(faces.vectors, units, a, b)
    centroids = (
        _unit(np.stack([faces.vectors[m].mean(axis=0) for m in units.members])) if len(units) else faces.vectors[:0]
    )
    centroid_distance = np.sqrt(np.clip(2.0 - 2.0 * np.einsum("ij,ij->i", centroids[a], centroids[b]), 0.0, 4.0))
    x = features(mean, centroid_distance, np.column_stack([sizes[a], sizes[b]]), links)
    return Candidates(units, a, b, x, closest)


def rank(
    faces: Faces, said: Said, order: str = "gain", about: int | None = None, nearest: np.ndarray | None = None
) -> Iterator[Ranked]:
    """Every question worth asking about these faces (see ``candidates``), best first: by expected
    gain, or with ``order`` "closest" by the distance of the sides' closest faces (a simple ranker,
    for comparison). Lazily: a caller that wants the first few reads only those."""
    found = candidates(faces, said, about, nearest)
    chance = probability(found.features)
    _bound_by_answers(chance, found.keys(), found.units, faces, said)
    sizes = np.array([len(m) for m in found.units.members], dtype=np.float64)
    gain = sizes[found.first] * sizes[found.second] / (sizes[found.first] + sizes[found.second])
    mean = found.features[:, 1]
    first = mean if order == "closest" else -chance * gain
    for i in np.lexsort((mean, first)).tolist():
        closest = faces.ids[found.closest[i]]
        yield Ranked(
            *found.sides(faces, i), float(chance[i]), float(gain[i]), float(mean[i]), (int(closest[0]), int(closest[1]))
        )


def _bound_by_answers(chance: np.ndarray, keys: np.ndarray, units: _Units, faces: Faces, said: Said) -> None:
    """A "no" is information about more than its own pair: when A is not B, A is C at most as likely
    as C is not B. Lower ``chance`` (of the unit pairs ``keys``) accordingly."""
    count = len(units)
    differ: dict[int, set[int]] = {}
    for key in _said_keys(faces, units, said).tolist():
        low, high = divmod(key, count)
        differ.setdefault(low, set()).add(high)
        differ.setdefault(high, set()).add(low)
    if not differ:
        return
    position = {key: i for i, key in enumerate(keys.tolist())}
    original = chance.copy()
    touched = np.flatnonzero(np.isin(keys // count, list(differ)) | np.isin(keys % count, list(differ)))
    for i in touched.tolist():
        a, b = divmod(int(keys[i]), count)
        for side, other in ((a, b), (b, a)):
            for known in differ.get(side, ()):
                link = position.get(min(known, other) * count + max(known, other))
                if link is not None:
                    chance[i] = min(chance[i], 1.0 - original[link])
