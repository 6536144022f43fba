"""The standard LFW verification protocol (pairs.txt, 10 folds) run through the full pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecluster.evaluation.labels import CONFIDENT_SCORE
from facecluster.inference.aligner import align_face
from facecluster.inference.analyzer import FaceAnalyzer
from facecluster.inference.embedder import l2_normalise
from facecluster.inference.images import load_image

FAR_TARGET = 1e-3
EVAL_SCORE_THRESHOLD = 0.02
"""LFW photos always hold their face: keep even weak detections in case it is the only one."""


@dataclass(frozen=True)
class Pair:
    """Two LFW images and whether they show the same person."""

    first: str
    second: str
    same: bool


@dataclass
class LfwReport:
    """Outcome of the 10-fold protocol."""

    fold_accuracies: list[float]
    fold_thresholds: list[float]
    tar_at_far: float
    far_threshold: float
    pairs: int
    images: int
    fallbacks: int
    """Images where no face was detected and the central fallback crop was embedded."""
    distances: np.ndarray
    labels: np.ndarray

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.fold_accuracies))

    @property
    def std_accuracy(self) -> float:
        return float(np.std(self.fold_accuracies))

    @property
    def threshold(self) -> float:
        """The mean of the ten chosen thresholds: a default for ``verify``."""
        return float(np.mean(self.fold_thresholds))


def image_path(name: str, number: int) -> str:
    """Relative path of an LFW image."""
    return f"{name}/{name}_{number:04d}.jpg"


def read_pairs(pairs_file: Path) -> list[list[Pair]]:
    """The folds of ``pairs.txt``: its header line gives fold count and pairs per half."""
    lines = pairs_file.read_text().splitlines()
    folds_count, per_half = (int(v) for v in lines[0].split())
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    if len(rows) != folds_count * per_half * 2:
        raise ValueError(f"{pairs_file}: expected {folds_count * per_half * 2} pairs, found {len(rows)}")
    folds = []
    for fold in range(folds_count):
        chunk = rows[fold * 2 * per_half : (fold + 1) * 2 * per_half]
        pairs = []
        for row in chunk:
            if len(row) == 3:
                pairs.append(Pair(image_path(row[0], int(row[1])), image_path(row[0], int(row[2])), True))
            elif len(row) == 4:
                pairs.append(Pair(image_path(row[0], int(row[1])), image_path(row[2], int(row[3])), False))
            else:
                raise ValueError(f"{pairs_file}: malformed line {row!r}")
        folds.append(pairs)
    return folds


def best_threshold(distances: np.ndarray, labels: np.ndarray) -> float:
    """The distance threshold maximising accuracy (same when distance < threshold)."""
    order = np.argsort(distances)
    sorted_distances, sorted_labels = distances[order], labels[order]
    # accepting the first k pairs: correct = positives among them + negatives after them
    positives_before = np.concatenate([[0], np.cumsum(sorted_labels)])
    negatives_after = (~sorted_labels).sum() - np.concatenate([[0], np.cumsum(~sorted_labels)])
    correct = positives_before + negatives_after
    k = int(np.argmax(correct))
    if k == 0:
        return float(sorted_distances[0]) - 1e-6
    if k == len(sorted_distances):
        return float(sorted_distances[-1]) + 1e-6
    return float((sorted_distances[k - 1] + sorted_distances[k]) / 2)


def tar_at_far(distances: np.ndarray, labels: np.ndarray, far: float = FAR_TARGET) -> tuple[float, float]:
    """True-accept rate at the largest threshold whose false-accept rate is <= ``far``."""
    negatives = np.sort(distances[~labels])
    allowed = int(np.floor(far * len(negatives)))
    threshold = float(negatives[allowed]) if allowed < len(negatives) else float("inf")
    return float(np.mean(distances[labels] < threshold)), threshold


class _LfwEmbedder:
    """Embeds LFW images: the confident detection nearest the image centre."""

    def __init__(self, analyzer: FaceAnalyzer) -> None:
        self.analyzer = analyzer
        self.fallbacks = 0
        self._fallback_landmarks: np.ndarray | None = None

    def chip(self, path: Path) -> np.ndarray:
        rgb = load_image(path).rgb
        detections = self.analyzer.detector.detect(rgb, score_threshold=EVAL_SCORE_THRESHOLD)
        centre = np.array([rgb.shape[1], rgb.shape[0]]) / 2
        if detections:
            confident = [d for d in detections if d.score >= CONFIDENT_SCORE] or [detections[0]]
            nearest = min(confident, key=lambda d: np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - centre))
            landmarks = nearest.landmarks
        else:
            self.fallbacks += 1
            landmarks = _CENTRAL_LANDMARKS * np.array([rgb.shape[1], rgb.shape[0]]) / 250.0
        return align_face(rgb, landmarks)


_CENTRAL_LANDMARKS = np.array([[106.0, 113.0], [144.0, 113.0], [125.0, 135.0], [109.0, 157.0], [141.0, 157.0]])
"""Typical landmark positions in a 250 x 250 deep-funneled LFW image, for undetected faces."""


VARIANTS = {
    "flip": "chip + mirror averaged, L2-normalised (the default)",
    "plain": "chip only, L2-normalised",
    "raw": "chip only, unnormalised (dlib's own descriptor)",
}


def _fold_report(vectors: dict[str, np.ndarray], folds: list[list[Pair]], fallbacks: int) -> LfwReport:
    """Protocol numbers for one set of embeddings."""
    fold_distances = [np.array([np.linalg.norm(vectors[p.first] - vectors[p.second]) for p in fold]) for fold in folds]
    fold_labels = [np.array([p.same for p in fold]) for fold in folds]
    accuracies, thresholds = [], []
    for test in range(len(folds)):
        train_d = np.concatenate([d for i, d in enumerate(fold_distances) if i != test])
        train_l = np.concatenate([lab for i, lab in enumerate(fold_labels) if i != test])
        threshold = best_threshold(train_d, train_l)
        thresholds.append(threshold)
        accuracies.append(float(np.mean((fold_distances[test] < threshold) == fold_labels[test])))
    distances, labels = np.concatenate(fold_distances), np.concatenate(fold_labels)
    tar, far_threshold = tar_at_far(distances, labels)
    return LfwReport(
        fold_accuracies=accuracies,
        fold_thresholds=thresholds,
        tar_at_far=tar,
        far_threshold=far_threshold,
        pairs=len(distances),
        images=len(vectors),
        fallbacks=fallbacks,
        distances=distances,
        labels=labels,
    )


def evaluate_lfw(
    lfw_dir: Path,
    analyzer: FaceAnalyzer,
    progress: Callable[[int, int], None] | None = None,
    pairs_file: Path | None = None,
) -> dict[str, LfwReport]:
    """Run the 10-fold protocol (threshold chosen on 9 folds, accuracy on the 10th).

    Returns one report per embedding variant in ``VARIANTS``, all from the same chips.
    """
    lfw_dir = Path(lfw_dir)
    images_dir = lfw_dir / "images" if (lfw_dir / "images").is_dir() else lfw_dir
    folds = read_pairs(pairs_file or lfw_dir / "pairs.txt")
    names = sorted({p for fold in folds for pair in fold for p in (pair.first, pair.second)})
    embedder = _LfwEmbedder(analyzer)
    raw: dict[str, np.ndarray] = {}
    mirrored: dict[str, np.ndarray] = {}
    for start in range(0, len(names), 32):
        batch = names[start : start + 32]
        chips = np.stack([embedder.chip(images_dir / item) for item in batch])
        raw.update(zip(batch, analyzer.embedder.raw(chips), strict=True))
        mirrored.update(zip(batch, analyzer.embedder.raw(np.ascontiguousarray(chips[:, :, ::-1])), strict=True))
        if progress:
            progress(start + len(batch), len(names))
    variants = {
        "flip": {k: l2_normalise(raw[k] + mirrored[k]) for k in names},
        "plain": {k: l2_normalise(raw[k]) for k in names},
        "raw": raw,
    }
    return {name: _fold_report(vectors, folds, embedder.fallbacks) for name, vectors in variants.items()}
