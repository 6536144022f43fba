import numpy as np
import pytest

from facecluster.evaluation.lfw import best_threshold, evaluate_lfw, read_pairs, tar_at_far


def test_best_threshold_separates_clean_data():
    distances = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    labels = np.array([True, True, True, False, False, False])
    assert 0.3 < best_threshold(distances, labels) < 0.7


def test_best_threshold_maximises_accuracy_on_overlapping_data():
    distances = np.array([0.1, 0.5, 0.4, 0.6, 0.9, 0.2])
    labels = np.array([True, True, False, False, False, True])
    threshold = best_threshold(distances, labels)
    assert np.mean((distances < threshold) == labels) == pytest.approx(5 / 6)


def test_tar_at_far_counts_only_allowed_false_accepts():
    negatives = np.linspace(0.5, 1.5, 1000)
    positives = np.array([0.2, 0.4, 0.49, 0.6])
    distances = np.concatenate([positives, negatives])
    labels = np.concatenate([np.ones(4, bool), np.zeros(1000, bool)])
    tar, threshold = tar_at_far(distances, labels, far=1e-3)
    assert np.sum(negatives < threshold) <= 1
    assert tar == pytest.approx(0.75)


def test_read_pairs_parses_both_kinds(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\t1\nA\t1\t2\nB\t1\tC\t3\nD\t2\t4\nE\t1\tF\t1\n")
    folds = read_pairs(pairs)
    assert len(folds) == 2
    assert folds[0][0].first == "A/A_0001.jpg" and folds[0][0].same
    assert folds[0][1].second == "C/C_0003.jpg" and not folds[0][1].same


def test_lfw_subset_accuracy(lfw_dir, analyzer, tmp_path):
    """Two folds of 60 + 60 pairs from pairs.txt, through the whole pipeline."""
    lines = (lfw_dir / "pairs.txt").read_text().splitlines()[1:]
    subset = []
    for fold in range(2):
        chunk = lines[fold * 600 : (fold + 1) * 600]
        subset += chunk[:60] + chunk[300:360]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\t60\n" + "\n".join(subset) + "\n")
    reports = evaluate_lfw(lfw_dir, analyzer, pairs_file=pairs)
    assert reports["flip"].pairs == 240
    assert reports["flip"].mean_accuracy >= 0.97
