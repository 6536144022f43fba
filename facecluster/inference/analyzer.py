"""Photo -> faces: decode, detect, align, assess and embed, with per-stage timing."""

from __future__ import annotations

import io
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facecluster.errors import ImageLoadError
from facecluster.inference.aligner import EYE_DISTANCE, align_face
from facecluster.inference.detector import DEFAULT_SCORE_THRESHOLD, FaceDetector
from facecluster.inference.embedder import FaceEmbedder
from facecluster.inference.images import DEFAULT_DECODE_SIDE, LoadedImage, crop_region, load_image
from facecluster.inference.quality import assess
from facecluster.inference.runtime import Runtime, cpu_threads
from facecluster.types import AnalysisResult, Face

ImageInput = str | Path | bytes | np.ndarray | Image.Image
"""A photo file's path or bytes, a Pillow image, or an H x W x 3 RGB array."""


class StageTimer:
    """Accumulated wall time per pipeline stage, summed over the threads that run it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, stage: str, started: float) -> float:
        """Charge the time since ``started`` to ``stage``; return now."""
        now = time.perf_counter()
        with self._lock:
            self.seconds[stage] += now - started
        return now


THUMBNAIL_SIDE = 112
MAX_HELD_BYTES = 256 << 20
"""Photos given as bytes stop waiting for the embedder once together they hold this much (256 MiB)."""


def face_thumbnail(rgb: np.ndarray | Image.Image, box: np.ndarray) -> bytes:
    """A square JPEG of the face box with a 25 % margin, at most THUMBNAIL_SIDE pixels (black where
    the square leaves the photo)."""
    x1, y1, x2, y2 = box
    half = max(x2 - x1, y2 - y1) * 0.625
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    crop = crop_region(rgb, (round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    crop.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=82)
    return buffer.getvalue()


def _as_loaded(image: ImageInput, decode_side: int = DEFAULT_DECODE_SIDE) -> LoadedImage:
    """Accept a path, a file's bytes, a Pillow image or an RGB array (files reduced as ``load_image`` does)."""
    if isinstance(image, str | Path | bytes):
        return load_image(image, decode_side)
    if isinstance(image, Image.Image):
        return LoadedImage(pixels=image.convert("RGB"), scale=1.0)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageLoadError(f"expected an H x W x 3 RGB array, got shape {array.shape}")
    return LoadedImage(pixels=np.ascontiguousarray(array[:, :, :3]).astype(np.uint8), scale=1.0)


Prepared = tuple[ImageInput, list[tuple], list[np.ndarray], tuple[int, int]]
"""A photo ready for the embedder: the input, its faces' details, their aligned chips, its full size."""


def in_order(
    pool: ThreadPoolExecutor,
    work: Callable,
    items: Iterable,
    ahead: int,
    weigh: Callable[[Any], int],
    most: int,
) -> Iterator:
    """``work(item)`` for each item, run by ``pool`` in input order, with at most ``ahead`` items in flight
    and at most ``most`` of their ``weigh`` (or a single item, however heavy).

    Items are drawn from ``items`` by the calling thread.
    """
    flight: deque[tuple[Future, int]] = deque()
    weight = 0
    for item in items:
        flight.append((pool.submit(work, item), weigh(item)))
        weight += flight[-1][1]
        while flight and (len(flight) >= ahead or weight > most):
            future, heavy = flight.popleft()
            weight -= heavy
            yield future.result()
    while flight:
        yield flight.popleft()[0].result()


def _held_bytes(image: ImageInput) -> int:
    return len(image) if isinstance(image, bytes) else 0


def _batch_full(pending: list[Prepared], batch_size: int) -> bool:
    """Whether the photos waiting for the embedder should be embedded now."""
    held = sum(_held_bytes(entry[0]) for entry in pending)
    return len(pending) >= batch_size or sum(len(entry[2]) for entry in pending) >= batch_size or held > MAX_HELD_BYTES


class FaceAnalyzer:
    """The bundled detector and embedder, ready to turn photos into faces."""

    def __init__(
        self,
        device: str = "auto",
        flip: bool = True,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        thumbnails: bool = False,
        workers: int | None = None,
    ) -> None:
        self.thumbnails = thumbnails
        self.workers = workers or cpu_threads()
        """Photos decoded, detected and aligned at once, each in its own thread (default: one per core,
        or FACECLUSTER_THREADS)."""
        self.detector = FaceDetector(device=device, score_threshold=score_threshold)
        self.embedder = FaceEmbedder(device=device, flip=flip)
        self.timer = StageTimer()

    @property
    def runtime(self) -> Runtime:
        """Where the embedder (the heavy model) runs."""
        return self.embedder.runtime

    def analyze(self, image: ImageInput) -> list[Face]:
        """All faces in one photo, strongest detection first; raises ``ImageLoadError``."""
        result = next(self.analyze_many([image]))
        if result.error is not None:
            raise result.error
        return result.faces

    def analyze_many(self, images: Iterable[ImageInput], batch_size: int = 16) -> Iterator[AnalysisResult]:
        """Faces of many photos, in input order, embedding several photos' chips per call.

        ``workers`` threads decode, detect and align photos while the calling thread draws the
        inputs and embeds. At most ``batch_size`` photos (or their faces, or MAX_HELD_BYTES of
        photos given as bytes) wait for the embedder, and two per worker (or MAX_HELD_BYTES of
        photos given as bytes) are in the threads. A photo that cannot be decoded, or not in the
        memory left, is yielded with its ``ImageLoadError``; it never stops the others.
        """
        pending: list[Prepared] = []
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="facecluster-analysis")
        try:
            flow = in_order(pool, self._prepare, images, 2 * self.workers, _held_bytes, MAX_HELD_BYTES)
            for image, prepared in flow:
                if isinstance(prepared, ImageLoadError):
                    yield from self._embed(pending)
                    pending = []
                    yield AnalysisResult(source=image, faces=[], error=prepared)
                    continue
                pending.append(prepared)
                if _batch_full(pending, batch_size):
                    yield from self._embed(pending)
                    pending = []
            yield from self._embed(pending)
        finally:  # also when the consumer stops early: photos not started are dropped
            pool.shutdown(wait=True, cancel_futures=True)

    def _prepare(self, image: ImageInput) -> tuple[ImageInput, Prepared | ImageLoadError]:
        try:
            return image, self._detect_and_align(image)
        except ImageLoadError as error:
            return image, error
        except MemoryError:
            return image, ImageLoadError("not enough memory to analyse it")

    def _detect_and_align(self, image: ImageInput) -> Prepared:
        """Decode at the detection's own size (a JPEG's DCT scaling does most of it), detect, and align
        from those pixels; a photo with a face too small for them is decoded again, as finely as
        ``load_image`` allows, for its chips."""
        started = time.perf_counter()
        loaded = _as_loaded(image, self.detector.max_side)
        started = self.timer.add("decode", started)
        detections = self.detector.detect(loaded.pixels)
        started = self.timer.add("detect", started)
        sharp = loaded
        if loaded.scale > 1 and any(d.eye_distance < EYE_DISTANCE for d in detections):
            with suppress(ImageLoadError):  # too large to decode finely, or changed since: the first decode serves
                sharp = _as_loaded(image)
            started = self.timer.add("redecode", started)
        to_sharp = loaded.scale / sharp.scale
        metas, chips = [], []
        for detection in detections:
            chip = align_face(sharp.pixels, detection.landmarks * to_sharp)
            box = detection.box * loaded.scale
            quality = assess(box, detection.score, chip)
            thumbnail = face_thumbnail(loaded.pixels, detection.box) if self.thumbnails else None
            metas.append((box, detection.landmarks * loaded.scale, detection.score, quality, thumbnail))
            chips.append(chip)
        self.timer.add("align", started)
        return image, metas, chips, loaded.full_size

    def _embed(self, pending: list) -> Iterator[AnalysisResult]:
        chips = [chip for entry in pending for chip in entry[2]]
        started = time.perf_counter()
        vectors = self.embedder.embed(np.stack(chips)) if chips else np.zeros((0, 128), np.float32)
        self.timer.add("embed", started)
        cursor = 0
        for image, metas, _, size in pending:
            faces = []
            for box, landmarks, score, quality, thumbnail in metas:
                faces.append(
                    Face(
                        box=tuple(float(v) for v in box),
                        landmarks=[(float(x), float(y)) for x, y in landmarks],
                        score=float(score),
                        quality=quality,
                        embedding=vectors[cursor],
                        thumbnail=thumbnail,
                    )
                )
                cursor += 1
            yield AnalysisResult(source=image, faces=faces, size=size)
