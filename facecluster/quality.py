"""Face quality: how much a face can be trusted for identity decisions."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FaceQuality:
    """Size, detection confidence and sharpness of one face."""

    size: float
    """Shorter side of the face box, in full-resolution pixels."""
    score: float
    """Detector confidence."""
    sharpness: float
    """Variance of the Laplacian of the aligned grey chip (higher is sharper)."""

    def to_dict(self) -> dict[str, float]:
        """JSON-ready form."""
        return {key: round(value, 4) for key, value in asdict(self).items()}


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
