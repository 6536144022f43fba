"""Face detection with the bundled RetinaFace (MobileNet-0.25) ONNX model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from facecluster.inference.images import pixel_size
from facecluster.inference.runtime import open_session

MODEL_FILE = "retinaface_mnet025.onnx"
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2

DEFAULT_SCORE_THRESHOLD = 0.8
DEFAULT_NMS_THRESHOLD = 0.4
DEFAULT_DETECT_SIDE = 1600
"""Images are downscaled so their long side is at most this before detection."""
DEFAULT_MIN_DETECT_SIDE = 480
"""Smaller images are also searched enlarged to this long side: the network misses faces with fewer
than about 8 pixels between the eyes, common in small web photos."""
LANDMARK_EYES = 20.0
"""A face found in both views keeps the landmarks of the image as it is from this many pixels between
the eyes (WebFaces: recall 97.6 % against 96.5 % when the image as it is always wins)."""


@dataclass(frozen=True)
class Detection:
    """One detected face in image pixel coordinates (pixel i spans [i, i+1))."""

    box: np.ndarray
    """x1, y1, x2, y2."""
    landmarks: np.ndarray
    """5 x 2: left eye, right eye, nose tip, left and right mouth corner (as seen in the image)."""
    score: float

    @property
    def eye_distance(self) -> float:
        """Pixels between the two eye landmarks."""
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


@lru_cache(maxsize=16)
def _priors(height: int, width: int) -> np.ndarray:
    """Anchor boxes (cx, cy, w, h), normalised, in the order the network emits them."""
    rows = []
    for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
        grid_h, grid_w = math.ceil(height / step), math.ceil(width / step)
        ys, xs = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
        centers = np.stack([(xs + 0.5) * step / width, (ys + 0.5) * step / height], axis=-1)
        centers = np.repeat(centers.reshape(-1, 1, 2), len(sizes), axis=1)
        extents = np.broadcast_to(np.array([[s / width, s / height] for s in sizes]), centers.shape)
        rows.append(np.concatenate([centers, extents], axis=-1).reshape(-1, 4))
    return np.concatenate(rows).astype(np.float32)


def _network_input(rgb: np.ndarray) -> np.ndarray:
    """The network's 1 x 3 x H x W float32 BGR input, mean subtracted, in one pass (7x faster than
    converting, subtracting and transposing in steps: 8 against 55 ms at 1600 x 1200)."""
    blob = np.empty((1, 3, *rgb.shape[:2]), dtype=np.float32)
    np.subtract(rgb.transpose(2, 0, 1)[::-1], BGR_MEAN[:, None, None], out=blob[0])
    return blob


def _resized(rgb: np.ndarray | Image.Image, factor: float) -> np.ndarray:
    """``rgb`` resized by ``factor`` as an H x W x 3 array: a Pillow image is converted only once
    resized (a 12-MP photo's conversion costs as much as its network input)."""
    if factor == 1.0:
        return np.asarray(rgb)
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    width, height = image.size
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if factor < 1.0:
        return np.asarray(image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    return np.asarray(image.resize(size, Image.Resampling.BICUBIC))


def _overlaps(face: Detection, others: list[Detection], threshold: float) -> bool:
    """Whether ``face`` overlaps one of ``others`` by more than ``threshold`` (intersection over union)."""
    return any(iou(face.box, other.box) > threshold for other in others)


def iou(box: np.ndarray, other: np.ndarray) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    width = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    height = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    overlap = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1]) - overlap
    return overlap / union if union > 0 else 0.0


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression; returns kept indices, best first."""
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        overlap = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        iou = overlap / (areas[best] + areas[rest] - overlap + 1e-12)
        order = rest[iou <= threshold]
    return keep


class FaceDetector:
    """RetinaFace detector: boxes, five landmarks and a confidence per face."""

    def __init__(
        self,
        device: str = "auto",
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float = DEFAULT_NMS_THRESHOLD,
        max_side: int = DEFAULT_DETECT_SIDE,
        min_side: int = DEFAULT_MIN_DETECT_SIDE,
    ) -> None:
        self.session, self.runtime = open_session(MODEL_FILE, device)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self.min_side = min_side

    def detect(self, rgb: np.ndarray | Image.Image, score_threshold: float | None = None) -> list[Detection]:
        """Detect faces in an H x W x 3 uint8 RGB array or an RGB Pillow image, strongest first.

        An image larger than ``max_side`` is searched shrunk to it. One smaller than ``min_side``,
        where faces with few pixels are missed, is searched twice: as it is and enlarged to
        ``min_side``. A face found both ways keeps the landmarks of the image as it is when its
        eyes lie LANDMARK_EYES apart or more there (the alignment template was fitted to such
        landmarks: taken from the enlarged image they cost LFW 0.46 points), else those of the
        enlarged view. ``score_threshold`` overrides the detector's own for this call.
        """
        threshold = self.score_threshold if score_threshold is None else score_threshold
        side = max(pixel_size(rgb))
        found = self._detect_at(rgb, min(1.0, self.max_side / side), threshold)
        if side >= self.min_side:
            return found
        enlarged = self._detect_at(rgb, self.min_side / side, threshold)
        kept = [face for face in found if face.eye_distance >= LANDMARK_EYES]
        small = [face for face in found if face.eye_distance < LANDMARK_EYES]
        more = [face for face in enlarged if not _overlaps(face, kept, self.nms_threshold)]
        rest = [face for face in small if not _overlaps(face, more, self.nms_threshold)]
        return sorted(kept + more + rest, key=lambda face: -face.score)

    def _detect_at(self, rgb: np.ndarray | Image.Image, factor: float, threshold: float) -> list[Detection]:
        """Faces found in ``rgb`` resized by ``factor``, in ``rgb``'s own coordinates, strongest first."""
        rgb = _resized(rgb, factor)
        net_height, net_width = rgb.shape[:2]
        loc, conf, landmarks = self.session.run(None, {"input": _network_input(rgb)})
        scores = conf[0, :, 1]
        candidates = np.flatnonzero(scores > threshold)
        if candidates.size == 0:
            return []
        priors = _priors(net_height, net_width)[candidates]
        deltas = loc[0, candidates]
        centers = priors[:, :2] + deltas[:, :2] * CENTER_VARIANCE * priors[:, 2:]
        extents = priors[:, 2:] * np.exp(deltas[:, 2:] * SIZE_VARIANCE)
        frame = np.array([net_width, net_height], dtype=np.float32)
        boxes = np.concatenate([centers - extents / 2, centers + extents / 2], axis=1) * np.tile(frame, 2)
        points = landmarks[0, candidates].reshape(-1, 5, 2)
        points = (priors[:, None, :2] + points * CENTER_VARIANCE * priors[:, None, 2:]) * frame
        keep = _nms(boxes, scores[candidates], self.nms_threshold)
        return [
            Detection(
                box=(boxes[i] / factor).astype(np.float64),
                landmarks=(points[i] / factor).astype(np.float64),
                score=float(scores[candidates][i]),
            )
            for i in keep
        ]
