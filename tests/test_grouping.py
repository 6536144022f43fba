import numpy as np
import pytest

import facecluster.grouping.neighbours as neighbours_module
from facecluster.errors import CorrectionsNotSupported
from facecluster.evaluation.clustering import score_clustering
from facecluster.grouping import METHODS, GroupingOptions, group_embeddings
from facecluster.grouping.linkage import MergeRule, average_linkage
from facecluster.grouping.neighbours import Neighbours, nearest_neighbours


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _identities(people: int, per_person: int, noise: float, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(people, 128)))
    points = np.repeat(centres, per_person, axis=0) + noise * rng.normal(size=(people * per_person, 128))
    return _unit(points), list(np.repeat(np.arange(people), per_person))


def _around(centre: np.ndarray, count: int, distance: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` unit vectors, each at about ``distance`` from ``centre`` in a random direction."""
    directions = rng.normal(size=(count, len(centre)))
    directions -= np.outer(directions @ centre, centre)
    directions = _unit(directions)
    angle = 2 * np.arcsin(distance / 2)
    return _unit(np.cos(angle) * centre + np.sin(angle) * directions)


@pytest.mark.parametrize("method", METHODS)
def test_well_separated_identities_are_recovered(method):
    embeddings, truth = _identities(people=6, per_person=5, noise=0.01)
    labels = group_embeddings(embeddings, GroupingOptions(method))
    scores = score_clustering([str(t) for t in truth], list(labels))
    assert scores.bcubed_f1 == 1.0 and scores.groups == 6


def test_lone_faces_are_unsorted_and_labels_ordered_by_size():
    embeddings, _ = _identities(people=3, per_person=4, noise=0.01)
    extra, _ = _identities(people=1, per_person=1, noise=0.0, seed=9)
    big, _ = _identities(people=1, per_person=7, noise=0.01, seed=5)
    labels = group_embeddings(np.concatenate([embeddings, extra, big]))
    assert labels[12] == -1
    assert set(labels[13:]) == {0}
    assert sorted(set(labels[:12])) == [1, 2, 3]


def test_clustering_scores_count_unsorted_as_singletons():
    scores = score_clustering(["a", "a", "b"], [-1, -1, -1])
    assert scores.pairwise_recall == 0.0 and scores.bcubed_precision == 1.0 and scores.groups == 3


@pytest.mark.parametrize("method", ["adaptive", "agglomerative"])
def test_two_faces_of_one_photo_never_share_a_group(method):
    embeddings, _ = _identities(people=1, per_person=4, noise=0.01)
    photos = ["p1", "p1", "p2", "p3"]
    labels = group_embeddings(embeddings, GroupingOptions(method), photos)
    assert labels[0] == -1 or labels[0] != labels[1]
    assert labels[2] == labels[3] >= 0
    assert set(group_embeddings(embeddings, GroupingOptions(method))) == {0}  # without photos: one group


def test_adaptive_asks_more_of_two_lone_faces_than_of_two_groups():
    rng = np.random.default_rng(1)
    centre = _unit(rng.normal(size=(1, 128)))[0]
    # Two faces 0.34 apart: below the 0.374 threshold, above the 0.316 asked of two lone faces.
    pair = _around(centre, 2, 0.24, rng)
    distance = np.linalg.norm(pair[0] - pair[1])
    assert 0.32 < distance < 0.37
    assert list(group_embeddings(pair, GroupingOptions("agglomerative", 0.374))) == [0, 0]
    assert list(group_embeddings(pair, GroupingOptions("adaptive"))) == [-1, -1]


def test_settled_look_alike_groups_stay_apart():
    rng = np.random.default_rng(2)
    sister = _unit(rng.normal(size=(1, 128)))[0]
    brother = _around(sister, 1, 0.22, rng)[0]
    # Each sibling: 8 faces 0.2 from their centre (cohesion about 0.96); the centres are 0.22 apart.
    first, second = _around(sister, 8, 0.2, rng), _around(brother, 8, 0.2, rng)
    embeddings = np.concatenate([first, second])
    between = 1 - np.mean(np.sum((first[:, None] - second[None]) ** 2, axis=2)) / 2
    assert 1 - 0.374**2 / 2 < between < 0.96 - 0.02
    assert len(set(group_embeddings(embeddings, GroupingOptions("agglomerative", 0.374)))) == 1
    labels = group_embeddings(embeddings, GroupingOptions("adaptive"))
    assert len(set(labels[:8])) == 1 and len(set(labels[8:])) == 1 and labels[0] != labels[8] >= 0


def test_average_linkage_matches_scipy_on_the_full_graph():
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    embeddings, _ = _identities(people=12, per_person=6, noise=0.05, seed=3)
    similarity = 1 - pdist(embeddings, "sqeuclidean") / 2
    threshold = 0.2
    ours = average_linkage(embeddings, nearest_neighbours(embeddings, len(embeddings) - 1), MergeRule(1 - threshold))
    # Average linkage of (1 - similarity) cut at `threshold`.
    theirs = fcluster(linkage(1 - similarity, method="average"), t=threshold, criterion="distance")
    assert score_clustering([str(t) for t in theirs], list(ours)).bcubed_f1 == 1.0
    assert len(set(ours)) == len(set(theirs)) > 12


def test_neighbours_exact_and_approximate_agree(monkeypatch):
    embeddings, _ = _identities(people=300, per_person=4, noise=0.05, seed=4)
    exact = nearest_neighbours(embeddings, 3)
    assert not (exact.indices == np.arange(len(embeddings))[:, None]).any()
    assert np.all(np.diff(exact.similarities, axis=1) <= 1e-6)
    monkeypatch.setattr(neighbours_module, "EXACT_LIMIT", 100)
    approximate = nearest_neighbours(embeddings, 3)
    assert np.mean(approximate.indices[:, 0] == exact.indices[:, 0]) > 0.99


@pytest.mark.parametrize("method", ["adaptive", "agglomerative"])
def test_float16_embeddings_group_as_float32(method):
    embeddings, _ = _identities(people=40, per_person=6, noise=0.02, seed=3)
    photos = [f"p{i % 120}" for i in range(len(embeddings))]  # two people per photo
    as_float32 = group_embeddings(embeddings, GroupingOptions(method), photos)
    assert len(set(as_float32)) > 30
    assert list(group_embeddings(embeddings.astype(np.float16), GroupingOptions(method), photos)) == list(as_float32)


def test_inverted_file_index_of_float16_added_in_blocks_finds_the_neighbours(monkeypatch):
    embeddings, _ = _identities(people=300, per_person=4, noise=0.05, seed=4)
    exact = nearest_neighbours(embeddings, 3)
    monkeypatch.setattr(neighbours_module, "EXACT_LIMIT", 100)
    monkeypatch.setattr(neighbours_module, "COMPACT_LIMIT", 500)
    monkeypatch.setattr(neighbours_module, "BLOCK", 256)
    monkeypatch.setattr(neighbours_module, "LIST_SIZE", 16)
    compact = nearest_neighbours(embeddings.astype(np.float16), 3)
    assert compact.indices.dtype == np.int32
    same = compact.indices == exact.indices
    assert same[:, 0].mean() > 0.99 and same.mean() > 0.97
    assert np.abs(compact.similarities - exact.similarities)[same].max() < 0.001  # float16 codes


def test_refining_finds_the_neighbours_a_graph_missed_among_its_neighbours_neighbours():
    embeddings, _ = _identities(people=200, per_person=5, noise=0.05, seed=5)
    exact = nearest_neighbours(embeddings, 4)
    # Every other row lost its nearest neighbour (a face of the same person, whom the rows that
    # kept theirs all list).
    similarities, indices = exact.similarities.copy(), exact.indices.copy()
    similarities[::2] = np.concatenate([similarities[::2, 1:], np.full((500, 1), -np.inf, np.float32)], 1)
    indices[::2] = np.concatenate([indices[::2, 1:], np.full((500, 1), -1, np.int32)], 1)
    assert (indices == exact.indices).mean() <= 0.5
    neighbours_module._refine(embeddings, similarities, indices, rounds=1)
    assert (indices == exact.indices).mean() > 0.99
    assert np.abs(similarities - exact.similarities).max() < 1e-5
    assert np.all(np.diff(similarities, axis=1) <= 0)


def test_reverse_neighbours_list_the_rows_that_list_each_row():
    indices = np.array([[1, 2], [2, -1], [0, 1], [1, 0]], dtype=np.int32)
    reverse = neighbours_module._reverse_neighbours(indices, 2)
    assert reverse.tolist() == [[2, 3], [0, 2], [0, 1], [-1, -1]]
    assert neighbours_module._reverse_neighbours(indices, 1).tolist() == [[2], [0], [0], [-1]]


def test_refining_never_adds_a_row_itself_a_repeat_or_a_missing_neighbour():
    embeddings, _ = _identities(people=2, per_person=2, noise=0.05, seed=2)
    found = nearest_neighbours(embeddings, 3)  # one pair per person: row 0 has 1 and two strangers
    found.indices[:, 2] = -1
    found.similarities[:, 2] = -np.inf
    neighbours_module._refine(embeddings, found.similarities, found.indices, rounds=2)
    for row, others in enumerate(found.indices):
        listed = others[others >= 0]
        assert row not in listed and len(set(listed)) == len(listed) == 3
    assert list(found.indices[0][:1]) == [1] and list(found.indices[2][:1]) == [3]


def test_inverted_file_with_too_few_probes_is_repaired_by_refining_and_walking(monkeypatch):
    # Each person's 20 faces fill several small lists; a query reaches only the nearest two.
    embeddings, _ = _identities(people=100, per_person=20, noise=0.1, seed=8)
    exact = nearest_neighbours(embeddings, 5).indices
    monkeypatch.setattr(neighbours_module, "EXACT_LIMIT", 100)
    monkeypatch.setattr(neighbours_module, "COMPACT_LIMIT", 500)
    monkeypatch.setattr(neighbours_module, "LIST_SIZE", 8)
    monkeypatch.setattr(neighbours_module, "PROBES", 2)
    walk = neighbours_module._walk

    def recall(rounds: int, walking: bool) -> float:
        monkeypatch.setattr(neighbours_module, "REFINE_ROUNDS", rounds)
        monkeypatch.setattr(neighbours_module, "_walk", walk if walking else lambda *arguments: None)
        found = nearest_neighbours(embeddings.astype(np.float16), 5).indices
        return np.mean([len(set(a) & set(b)) / 5 for a, b in zip(found, exact, strict=True)])

    searched, refined, walked, both = recall(0, False), recall(1, False), recall(0, True), recall(1, True)
    assert searched < 0.94 and refined > 0.96 and walked > 0.99 and both > 0.99, (searched, refined, walked, both)


def _chained(per_person: int, k: int, dtype: type) -> tuple[np.ndarray, Neighbours, Neighbours]:
    """Faces of 100 people, their exact k nearest, and a graph that links each face only to the
    next face of the same person (in a ring), the other slots missing."""
    embeddings, _ = _identities(people=100, per_person=per_person, noise=0.05, seed=9)
    embeddings = embeddings.astype(dtype)
    exact = nearest_neighbours(embeddings, k)
    rows = np.arange(len(embeddings))
    indices = np.full((len(rows), k), -1, dtype=np.int32)
    indices[:, 0] = rows // per_person * per_person + (rows + 1) % per_person
    similarities = np.full((len(rows), k), -np.inf, dtype=np.float32)
    similarities[:, 0] = np.einsum("ij,ij->i", embeddings[rows].astype(np.float32), embeddings[indices[:, 0]])
    return embeddings, exact, Neighbours(similarities, indices)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_walking_the_graph_finds_neighbours_beyond_the_neighbours_of_neighbours(dtype):
    embeddings, exact, chain = _chained(per_person=8, k=4, dtype=dtype)
    refined = Neighbours(chain.similarities.copy(), chain.indices.copy())
    neighbours_module._refine(embeddings, refined.similarities, refined.indices, rounds=1)
    neighbours_module._walk(embeddings, chain.similarities, chain.indices, depth=8, rewalk_depth=8)

    def recall(found: Neighbours) -> float:
        return np.mean([len(set(a) & set(b)) / 4 for a, b in zip(found.indices, exact.indices, strict=True)])

    assert recall(refined) < 0.8 and recall(chain) > 0.99, (recall(refined), recall(chain))
    same = chain.indices == exact.indices
    assert np.abs(chain.similarities - exact.similarities)[same].max() < 1e-5
    assert np.all(np.diff(chain.similarities, axis=1) <= 0)


def test_later_walks_search_only_the_rows_the_last_walk_changed_and_complete_the_graph(monkeypatch):
    # Rings of 20 faces: one walk keeping 5 candidates finds less than half of each face's 4 nearest.
    embeddings, exact, chain = _chained(per_person=20, k=4, dtype=np.float16)
    searched: list[np.ndarray] = []
    changed: list[np.ndarray] = []
    keep_others = neighbours_module._keep_others

    def recording(found_sims, found, rows, similarities, indices):
        before = np.sort(indices[rows], axis=1)
        keep_others(found_sims, found, rows, similarities, indices)
        searched.append(rows.copy())
        changed.append(rows[(np.sort(indices[rows], axis=1) != before).any(axis=1)])

    def recall(walks: int) -> float:
        searched.clear()
        changed.clear()
        monkeypatch.setattr(neighbours_module, "MAX_WALKS", walks)
        found = Neighbours(chain.similarities.copy(), chain.indices.copy())
        neighbours_module._walk(embeddings, found.similarities, found.indices, depth=5, rewalk_depth=16)
        return np.mean([len(set(a) & set(b)) / 4 for a, b in zip(found.indices, exact.indices, strict=True)])

    monkeypatch.setattr(neighbours_module, "_keep_others", recording)
    once = recall(1)
    assert len(searched) == 1 and len(searched[0]) == len(embeddings)  # one block: every row
    settled = recall(8)
    assert once < 0.6 and settled > 0.99, (once, settled)
    assert 2 < len(searched) < 8 and len(searched[0]) == len(embeddings) and len(searched[-1]) < 100
    for changed_rows, next_rows in zip(changed, searched[1:], strict=False):
        assert np.array_equal(changed_rows, next_rows)


def test_walking_never_adds_a_row_itself_a_repeat_or_a_missing_neighbour_and_ignores_threads():
    import faiss

    embeddings, _, chain = _chained(per_person=3, k=4, dtype=np.float16)  # two others per person
    results, threads_before = [], faiss.omp_get_max_threads()
    try:
        for threads in (1, 2):
            faiss.omp_set_num_threads(threads)
            found = Neighbours(chain.similarities.copy(), chain.indices.copy())
            neighbours_module._walk(embeddings, found.similarities, found.indices, depth=8, rewalk_depth=16)
            results.append(found)
    finally:
        faiss.omp_set_num_threads(threads_before)
    assert np.array_equal(results[0].indices, results[1].indices)
    for row, others in enumerate(results[0].indices):
        listed = others[others >= 0]
        assert row not in listed and len(set(listed)) == len(listed) == 2
        assert set(listed) == set(range(row // 3 * 3, row // 3 * 3 + 3)) - {row}
    assert np.isneginf(results[0].similarities[:, 2:]).all()


def test_neighbours_of_a_tiny_set_are_padded():
    embeddings, _ = _identities(people=1, per_person=2, noise=0.05)
    found = nearest_neighbours(embeddings, 4)
    assert list(found.indices[0]) == [1, -1, -1, -1] and np.isneginf(found.similarities[0, 1:]).all()


def test_seeds_start_together_and_apart_pairs_never_meet():
    embeddings, _ = _identities(people=3, per_person=4, noise=0.01, seed=6)
    loner, _ = _identities(people=1, per_person=1, noise=0.0, seed=11)
    embeddings = np.concatenate([embeddings, loner])
    # Rows 0 and 4 are different people the user confirmed as one; row 12, a stranger, is confirmed alone.
    seeds = np.full(13, -1)
    seeds[[0, 4]] = 7
    seeds[12] = 9
    assert group_embeddings(embeddings)[12] == -1
    labels = group_embeddings(embeddings, GroupingOptions(), seeds=seeds)
    assert labels[0] == labels[4] >= 0
    assert labels[12] >= 0 and list(labels).count(labels[12]) == 1
    # Keep row 1 away from row 2 (same person): row 1 ends apart from 2 and 3.
    apart = np.array([[1, 2]])
    labels = group_embeddings(embeddings[:12], GroupingOptions(), apart=apart)
    assert labels[1] != labels[2] and labels[2] == labels[3] >= 0


def test_hdbscan_refuses_corrections():
    embeddings, _ = _identities(people=2, per_person=3, noise=0.01)
    with pytest.raises(CorrectionsNotSupported, match="hdbscan cannot honour"):
        group_embeddings(embeddings, GroupingOptions("hdbscan"), apart=np.array([[0, 1]]))


def test_consensus_is_the_larger_share_of_faces_pointing_at_the_other_group():
    from facecluster.grouping.linkage import _agreed, _NearestOutside

    labels = np.array([0, 0, 2, 2, 4])
    sizes = np.array([2, 0, 2, 0, 1])
    # Each face's neighbours, nearest first; the first one outside its own group counts.
    indices = np.array([[1, 2], [0, 4], [3, 4], [2, 0], [2, 0]])
    outside = _NearestOutside(indices, labels)
    edges = np.array([0, 2, 0]), np.array([2, 4, 4])
    # Shares: 0 -> 2 is 1/2 (2 -> 0 too), 4 -> 2 is 1/1, 0 -> 4 is 1/2 (4 -> 0 none).
    assert list(_agreed(*edges, labels, sizes, outside, 0.5)) == [True, True, True]
    assert list(_agreed(*edges, labels, sizes, outside, 0.6)) == [False, True, False]
    assert list(_agreed(*edges, labels, sizes, outside, 1.0)) == [False, True, False]
    # Groups 2 and 4 merge: faces 3 and 4 look past face 2 (their group) to face 0; face 2 has none left.
    labels = np.array([0, 0, 2, 2, 2])
    outside.update(np.array([2, 3, 4]), labels)
    assert list(outside.groups(np.arange(5), labels)) == [2, 2, -1, 0, 0]
