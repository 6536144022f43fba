"""Align a face onto the embedder's 150 x 150 chip with a 5-point similarity transform."""

from __future__ import annotations

import numpy as np
from PIL import Image

from facecluster.inference.images import crop_region, pixel_size

CHIP_SIZE = 150

# Where dlib's own chips (``get_face_chip``, size 150, padding 0.25) put RetinaFace's five
# landmarks, averaged over 2,979 LFW photos, then spread by TEMPLATE_ZOOM about the chip
# centre; pixel i spans [i, i+1). Order: left eye, right eye, nose tip, left and right mouth
# corner. Rebuilt by tools/derive_alignment_template.py (see facecluster/models/dlib_resnet_v1.md).
TEMPLATE_ZOOM = 1.10
"""Chosen on LFW View 1 (pairsDevTrain + pairsDevTest): dev errors 32 at 1.00, 29 at 1.05,
24 at 1.10, 29 at 1.12, 36 at 1.20 of 3,200 pairs; the network prefers a slightly tighter crop."""
TEMPLATE = np.array(
    [
        [43.7274, 42.1193],
        [104.5310, 41.9637],
        [74.1281, 76.5071],
        [48.3393, 105.6585],
        [99.5446, 105.6347],
    ],
    dtype=np.float64,
)
EYE_DISTANCE = float(np.linalg.norm(TEMPLATE[1] - TEMPLATE[0]))
"""Pixels between the eyes on a chip (about 61): a face with fewer in the photo is enlarged onto it."""


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping source onto target.

    Umeyama's method without reflection; returns a 2 x 3 matrix.
    """
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centered, target_centered = source - source_mean, target - target_mean
    covariance = target_centered.T @ source_centered / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (source_centered**2).sum() / len(source)
    scale = float(np.trace(np.diag(singular) @ sign) / variance) if variance > 0 else 1.0
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(rgb: np.ndarray | Image.Image, landmarks: np.ndarray, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """Warp the face with these five landmarks (in an H x W x 3 array or an RGB Pillow image) onto a
    CHIP_SIZE x CHIP_SIZE RGB chip.

    Only the region the chip covers is read (and converted, from a Pillow image). Faces much
    larger than the chip are first box-filtered down by an integer factor (as an image pyramid
    would), so the bilinear warp never aliases.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    matrix = similarity_transform(landmarks, template)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    reduction = max(1, int(1.0 / scale)) if scale > 0 else 1
    inverse = _invert(matrix)
    corners = np.array([[0, 0], [CHIP_SIZE, 0], [0, CHIP_SIZE], [CHIP_SIZE, CHIP_SIZE]], dtype=np.float64)
    footprint = corners @ inverse[:, :2].T + inverse[:, 2]
    margin = reduction if reduction >= 2 else 2  # bilinear sampling reads one pixel beyond the footprint
    left, top = np.floor(footprint.min(axis=0)).astype(int) - margin
    right, bottom = np.ceil(footprint.max(axis=0)).astype(int) + margin
    left, top = max(0, left), max(0, top)
    width, height = pixel_size(rgb)
    right, bottom = min(width, right), min(height, bottom)
    if right - left < reduction or bottom - top < reduction:  # the chip lies outside the photo
        return np.zeros((CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    image = crop_region(rgb, (left, top, right, bottom))
    if reduction >= 2:
        image = image.reduce(reduction)
    inverse = _invert(similarity_transform((landmarks - np.array([left, top], dtype=np.float64)) / reduction, template))
    chip = image.transform(
        (CHIP_SIZE, CHIP_SIZE),
        Image.Transform.AFFINE,
        data=tuple(inverse.ravel()),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return np.asarray(chip, dtype=np.uint8)


def _invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2 x 3 affine matrix."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]
