import numpy as np
import pytest

from facecluster.evaluation.clustering import score_clustering
from facecluster.grouping import AGGLOMERATIVE_MAX_FACES, METHODS, GroupingOptions, group_embeddings


def _identities(people: int, per_person: int, noise: float, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = np.repeat(centres, per_person, axis=0) + noise * rng.normal(size=(people * per_person, 128))
    return points / np.linalg.norm(points, axis=1, keepdims=True), list(np.repeat(np.arange(people), per_person))


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


def test_agglomerative_gives_way_above_its_memory_limit():
    assert GroupingOptions().for_count(AGGLOMERATIVE_MAX_FACES + 1).method == "hdbscan"
    assert GroupingOptions().for_count(100).method == "agglomerative"


def test_clustering_scores_count_unsorted_as_singletons():
    scores = score_clustering(["a", "a", "b"], [-1, -1, -1])
    assert scores.pairwise_recall == 0.0 and scores.bcubed_precision == 1.0 and scores.groups == 3


def test_two_faces_of_one_photo_never_share_a_group():
    embeddings, _ = _identities(people=1, per_person=4, noise=0.01)
    photos = ["p1", "p1", "p2", "p3"]
    labels = group_embeddings(embeddings, GroupingOptions("agglomerative"), photos)
    assert labels[0] == -1 or labels[0] != labels[1]
    assert labels[2] == labels[3] >= 0
    assert group_embeddings(embeddings, GroupingOptions("agglomerative"))[0] == 0  # without photos: one group
