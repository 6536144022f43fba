"""Face quality: how much a face can be trusted for identity decisions."""

from __future__ import annotations

import numpy as np

from facecluster.types import FaceQuality


def sharpness(chip: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the chip's central region."""
    grey = chip[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    height, width = grey.shape
    core = grey[height // 6 : height - height // 6, width // 6 : width - width // 6]
    laplacian = core[:-2, 1:-1] + core[2:, 1:-1] + core[1:-1, :-2] + core[1:-1, 2:] - 4 * core[1:-1, 1:-1]
    return float(laplacian.var())


def assess(box: np.ndarray, score: float, chip: np.ndarray) -> FaceQuality:
    """Quality of a detected face from its full-resolution box, score and aligned chip."""
    size = float(min(box[2] - box[0], box[3] - box[1]))
    return FaceQuality(size=size, score=float(score), sharpness=sharpness(chip))
