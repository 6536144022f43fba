"""Clustering quality against known identities: pairwise and BCubed precision, recall, F1."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class ClusteringScores:
    """Pairwise and BCubed precision/recall/F1, and the number of groups vs true people."""

    pairwise_precision: float
    pairwise_recall: float
    bcubed_precision: float
    bcubed_recall: float
    groups: int
    people: int

    @property
    def pairwise_f1(self) -> float:
        return _f1(self.pairwise_precision, self.pairwise_recall)

    @property
    def bcubed_f1(self) -> float:
        return _f1(self.bcubed_precision, self.bcubed_recall)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def score_clustering(truth: list[str], predicted: list[int]) -> ClusteringScores:
    """Compare predicted labels (-1 = alone) with true identities, item by item.

    Items labelled -1 count as singleton groups.
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted must have the same length")
    next_label = max(predicted, default=0) + 1
    groups = []
    for label in predicted:
        if label < 0:
            groups.append(next_label)
            next_label += 1
        else:
            groups.append(label)
    joint = Counter(zip(groups, truth, strict=True))
    group_sizes, true_sizes = Counter(groups), Counter(truth)
    same_both = sum(n * (n - 1) / 2 for n in joint.values())
    same_group = sum(n * (n - 1) / 2 for n in group_sizes.values())
    same_truth = sum(n * (n - 1) / 2 for n in true_sizes.values())
    count = len(truth)
    # BCubed: for each item, the share of its group that has its identity, and vice versa.
    bcubed_precision = sum(n * n / group_sizes[g] for (g, _), n in joint.items()) / count if count else 1.0
    bcubed_recall = sum(n * n / true_sizes[t] for (_, t), n in joint.items()) / count if count else 1.0
    return ClusteringScores(
        pairwise_precision=same_both / same_group if same_group else 1.0,
        pairwise_recall=same_both / same_truth if same_truth else 1.0,
        bcubed_precision=float(bcubed_precision),
        bcubed_recall=float(bcubed_recall),
        groups=len(group_sizes),
        people=len(true_sizes),
    )


def as_row(scores: ClusteringScores) -> list[str]:
    """Formatted cells: pairwise P/R/F1, BCubed P/R/F1, groups/people."""
    values = [
        scores.pairwise_precision,
        scores.pairwise_recall,
        scores.pairwise_f1,
        scores.bcubed_precision,
        scores.bcubed_recall,
        scores.bcubed_f1,
    ]
    return [f"{v:.3f}" for v in values] + [f"{scores.groups}/{scores.people}"]
