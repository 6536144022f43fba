"""Fit the "same person?" model (facecluster/pipeline/suggest.py WEIGHTS) on LFW photo sets.

The model is a logistic regression over the features of ``suggest.features`` (the sides' three
closest face pairs, their centroids, their sizes, their nearest-neighbour links). Its examples are
every question the engine would ask on the grouping of benchmarks/suggest_lfw.py's two sets
(clean LFW photos and the same photos degraded), labelled from the LFW identities: "yes" when
both sides' majority identities agree; questions with a side of unknown identity (bystanders)
are left out. Identities are split in two halves (benchmarks/labelled_lfw.half): it prints how a
model fitted on one half predicts the other (log loss, AUC, calibration by decile of predicted
chance), for the new weights and for the shipped ones, then the weights fitted on everything.
See facecluster/models/same_person.md.

    python -m tools.fit_suggest_model [--work /tmp/facecluster-bench-suggest] [--shared ../shared]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from benchmarks.labelled_lfw import DEFAULT_SHARED, half, lfw_images
from benchmarks.suggest_lfw import SETS, build_set, face_identities
from facecluster import Library
from facecluster.pipeline.suggest import WEIGHTS, Faces, candidates, probability

STRENGTH = 10.0
"""Inverse regularisation strength (sklearn's C); the features are few and the examples many."""


def examples(output: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, same?, half of the person side's identity) of every question about a scanned set."""
    faces, said = Library.open(output).askable()
    found = candidates(faces, said)
    truth = face_identities(output)
    identity = [_majority(faces, rows, truth) for rows in found.units.members]
    first = [identity[u] for u in found.first.tolist()]
    second = [identity[u] for u in found.second.tolist()]
    known = np.array([a is not None and b is not None for a, b in zip(first, second, strict=True)])
    same = np.array([a == b for a, b in zip(first, second, strict=True)])
    halves = np.array([half(a or "") for a in first])
    return found.features[known], same[known], halves[known]


def _majority(faces: Faces, rows: np.ndarray, truth: dict[int, str]) -> str | None:
    labels = Counter(truth[f] for f in faces.ids[rows].tolist() if f in truth)
    return labels.most_common(1)[0][0] if labels else None


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    model = LogisticRegression(C=STRENGTH, fit_intercept=False, max_iter=5000).fit(x, y)
    return model.coef_[0]


def report(name: str, chance: np.ndarray, y: np.ndarray) -> None:
    deciles = np.minimum((chance * 10).astype(int), 9)
    calibration = " ".join(
        f"{(deciles == d).sum()}:{chance[deciles == d].mean():.2f}/{y[deciles == d].mean():.2f}"
        for d in range(10)
        if (deciles == d).any()
    )
    print(f"  {name:8} log loss {log_loss(y, chance, labels=[0, 1]):.4f}  AUC {roc_auc_score(y, chance):.4f}")
    print(f"           by decile (questions: predicted / observed yes) {calibration}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/facecluster-bench-suggest"))
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    args = parser.parse_args()
    images = lfw_images(args.shared)
    parts = [examples(build_set(name, images, args.work)) for name in SETS]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts]).astype(int)
    halves = np.concatenate([p[2] for p in parts])
    print(f"{len(y)} questions, {y.sum()} of them 'yes' ({', '.join(SETS)})")
    for train, test in (("A", "B"), ("B", "A")):
        weights = fit(x[halves == train], y[halves == train])
        print(f"fitted on half {train}, tested on half {test} ({(halves == test).sum()} questions):")
        report("fitted", 1.0 / (1.0 + np.exp(-(x[halves == test] @ weights))), y[halves == test])
        report("shipped", probability(x[halves == test]), y[halves == test])
    weights = fit(x, y)
    print(f"shipped: WEIGHTS = ({', '.join(f'{w:.3f}' for w in WEIGHTS)})")
    print(f"fitted:  WEIGHTS = ({', '.join(f'{w:.3f}' for w in weights)})")


if __name__ == "__main__":
    main()
