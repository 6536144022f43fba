"""Decode a photo into an upright 8-bit RGB image, whatever its format or mode.

Importing this module changes nothing in Pillow: the HEIC/HEIF opener is registered on the first
decode, and Pillow's own decompression-bomb limit is loosened only while ``load_image`` decodes
(under a lock, restored after), so that this module can apply its own limit after choosing a
reduced JPEG decode size; ``crop_region`` loosens it the same way while it crops, so a face's
crop never meets a host application's stricter limit.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from facecluster.errors import ImageLoadError

MAX_DECLARED_PIXELS = 400_000_000
"""Images declaring more pixels than this (and not reducible while decoding) are refused."""

DEFAULT_DECODE_SIDE = 2560
"""Large photos are brought down to a long side of at least this: JPEGs while they are decoded (the
smallest power-of-two DCT reduction, at most 8), other formats right after (an integer box reduction)."""

_GIB = 1 << 30
MAX_DECODE_BYTES = _GIB
"""The most memory (1 GiB) one photo may need to be decoded; a photo estimated above it is skipped
before any pixel is decoded (``ImageLoadError``).

The estimate, from the header's format, mode and size (after any JPEG reduction), is the pixels as
Pillow holds them (``_stored_bytes_per_pixel``) times DECODE_COPIES (the decoded image and working
copies), plus CONVERT_BYTES_PER_PIXEL for each pixel of the reduced image. It is an upper bound:
measured peaks were 45-100 % of it (PNG, TIFF, JPEG, WebP, HEIC, AVIF; 8 and 16 bits; grey, RGB,
RGBA). A 16-bit 20000 x 20000 grey PNG (a 1 MB file) is estimated at 1.7 GiB and skipped; a
100-megapixel 8-bit RGB PNG (0.99 GiB) is decoded."""

DECODE_COPIES = {"WEBP": 4}
"""Copies of the pixels held at once while decoding, by format: 2 unless listed (the image, and a
decoder's buffer or the box reduction's premultiplied copy); WebP's decoder hands its pixels over
through two buffers of its own."""

CONVERT_BYTES_PER_PIXEL = 24
"""Memory per pixel of the reduced image for turning it upright and into 8-bit RGB (flattening
transparency takes the most: four RGBA images, the RGB image and its array)."""


@dataclass(frozen=True)
class LoadedImage:
    """An upright RGB image and how it relates to the file's full resolution."""

    pixels: Image.Image | np.ndarray
    """Upright 8-bit RGB: a decoded file's Pillow image (turned into an array only where needed:
    Pillow's conversion costs as much as decoding a JPEG), or an H x W x 3 uint8 array."""
    scale: float
    """Full-resolution pixels per decoded pixel (> 1 when decoded at reduced size)."""
    upright_size: tuple[int, int] | None = None
    """(width, height) of the upright photo at full resolution, when known exactly."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the decoded pixels."""
        return pixel_size(self.pixels)

    @functools.cached_property
    def rgb(self) -> np.ndarray:
        """H x W x 3 uint8 pixels, EXIF orientation applied (converted on first use)."""
        return np.asarray(self.pixels)

    @property
    def image(self) -> Image.Image:
        """The pixels as a Pillow image (a decoded file's own image, not converted)."""
        return self.pixels if isinstance(self.pixels, Image.Image) else Image.fromarray(self.pixels)

    @property
    def full_size(self) -> tuple[int, int]:
        """(width, height) of the upright photo at full resolution."""
        if self.upright_size is not None:
            return self.upright_size
        width, height = self.size
        return round(width * self.scale), round(height * self.scale)


def pixel_size(pixels: Image.Image | np.ndarray) -> tuple[int, int]:
    """(width, height) of a Pillow image or an H x W (x C) array."""
    return pixels.size if isinstance(pixels, Image.Image) else (pixels.shape[1], pixels.shape[0])


def crop_region(pixels: Image.Image | np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    """The ``box`` (left, top, right, bottom) of a Pillow image or an RGB array as a Pillow image,
    black where it leaves the pixels (as Pillow's crop). A host application's strict pixel limit
    does not apply to it, as while decoding."""
    if isinstance(pixels, Image.Image):
        with _decoding_settings():
            return pixels.crop(box)
    left, top, right, bottom = box
    height, width = pixels.shape[:2]
    crop = np.zeros((max(0, bottom - top), max(0, right - left), 3), dtype=np.uint8)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if x1 > x0 and y1 > y0:
        crop[y0 - top : y1 - top, x0 - left : x1 - left] = pixels[y0:y1, x0:x1]
    return Image.fromarray(crop)


class NotRegularFile(OSError):
    """A path naming a directory, FIFO, device or socket: refused instead of read (which could block)."""


_SPECIAL_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "a special file")
        raise NotRegularFile(f"not a regular file ({kind})")


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for binary reading; raise ``NotRegularFile`` for anything else, never blocking.

    The path is checked with ``os.stat`` before it is opened, opened with ``O_NONBLOCK`` where the
    platform has it (so a FIFO or device swapped in meanwhile cannot block the open) and checked
    again with ``fstat``. Other failures (missing, permission denied) raise their own ``OSError``.
    """
    _require_regular(os.stat(path).st_mode)
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    flags = os.O_RDONLY | nonblocking | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        _require_regular(os.fstat(descriptor).st_mode)
        if nonblocking:
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


_PILLOW_SETTINGS = threading.Lock()
_host_limit: list[int | None] = []
"""Pillow's limit as the host had it, while decodes have it loosened."""
_decoding = [0]
"""Decodes in progress (in any thread): the first loosens the limit, the last restores it."""
_quiet: list[warnings.catch_warnings] = []
"""The warnings silenced while decodes are in progress."""
_LIFTED_PIXEL_LIMIT = MAX_DECLARED_PIXELS * 32
"""Pillow refuses twice this: more pixels than an 8 x 8 JPEG draft can bring under MAX_DECLARED_PIXELS."""
_heif_registered: bool | None = None


def heif_supported() -> bool:
    """Register pillow-heif's opener once (on first use); whether HEIC/HEIF photos can be read."""
    global _heif_registered
    if _heif_registered is None:
        try:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _heif_registered = True
        except ImportError:  # pragma: no cover - depends on the installation
            _heif_registered = False
    return _heif_registered


@contextmanager
def _decoding_settings() -> Iterator[None]:
    """Loosen Pillow's pixel limit (``load_image`` checks after draft) and silence warnings while photos
    are decoded; both restored after.

    Decodes in several threads run side by side: the first to start changes the settings and the
    last to end restores them (one ``catch_warnings`` for all, which no thread restores too early
    or too late). Pillow still refuses what no JPEG draft could bring under MAX_DECLARED_PIXELS,
    so other threads of a host application keep a bound meanwhile.
    """
    with _PILLOW_SETTINGS:
        if _decoding[0] == 0:
            previous = Image.MAX_IMAGE_PIXELS
            _host_limit.append(previous)
            if previous is not None:
                Image.MAX_IMAGE_PIXELS = max(previous, _LIFTED_PIXEL_LIMIT)
            quiet = warnings.catch_warnings()
            quiet.__enter__()
            warnings.simplefilter("ignore")
            _quiet.append(quiet)
        _decoding[0] += 1
    try:
        yield
    finally:
        with _PILLOW_SETTINGS:
            _decoding[0] -= 1
            if _decoding[0] == 0:
                Image.MAX_IMAGE_PIXELS = _host_limit.pop()
                _quiet.pop().__exit__(None, None, None)


class _DecodeBudget:
    """MAX_DECODE_BYTES shared by every decode of the process: a photo waits until its estimate fits."""

    def __init__(self, total: int) -> None:
        self.free = total
        self.changed = threading.Condition()

    @contextmanager
    def held(self, amount: int) -> Iterator[None]:
        with self.changed:
            self.changed.wait_for(lambda: self.free >= amount)
            self.free -= amount
        try:
            yield
        finally:
            with self.changed:
                self.free += amount
                self.changed.notify_all()


_budget = _DecodeBudget(MAX_DECODE_BYTES)


def _after_fork_in_child() -> None:
    """A child forked during a decode gets free locks, a whole budget and the host's own settings back."""
    global _PILLOW_SETTINGS, _budget
    _PILLOW_SETTINGS = threading.Lock()
    _budget = _DecodeBudget(MAX_DECODE_BYTES)
    _decoding[0] = 0
    if _host_limit:
        Image.MAX_IMAGE_PIXELS = _host_limit[0]
        _host_limit.clear()
    if _quiet:
        _quiet[0].__exit__(None, None, None)
        _quiet.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_NEAREST_MODES = ("1", "P", "PA")
"""Modes whose values are not intensities (palette indices, bits): reduced by picking, not averaging."""
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation tag -> the transposition that makes the photo upright (as ImageOps.exif_transpose)."""
_SIDEWAYS = (
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
)
"""Transpositions that swap width and height."""


def _stored_bytes_per_pixel(mode: str) -> int:
    """Bytes per pixel of an image of ``mode`` as Pillow holds it (three bands take four bytes)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def _reduction(size: tuple[int, int], decode_side: int) -> int:
    """The integer factor that brings ``size`` down to a long side of at least ``decode_side`` (1: none)."""
    return max(1, max(size) // max(1, decode_side))


def _reduced_size(size: tuple[int, int], factor: int) -> tuple[int, int]:
    return -(-size[0] // factor), -(-size[1] // factor)


def decode_bytes(format: str | None, mode: str, size: tuple[int, int], decode_side: int = DEFAULT_DECODE_SIDE) -> int:
    """Estimated memory to decode an image and turn it into upright 8-bit RGB (see MAX_DECODE_BYTES).

    ``format`` is Pillow's name for the file format, ``size`` what the decoder will produce (after a JPEG draft).
    """
    width, height = _reduced_size(size, _reduction(size, decode_side))
    stored = size[0] * size[1] * _stored_bytes_per_pixel(mode) * DECODE_COPIES.get(format or "", 2)
    return stored + width * height * CONVERT_BYTES_PER_PIXEL


def _high_bit_to_grey(image: Image.Image) -> Image.Image:
    """An 8-bit grey image from a 16-bit, 32-bit integer or float one: 0-65535 (or 0-peak when
    values go higher) scaled to 0-255 and rounded; images whose values stay within 0-255 kept as they are."""
    values = np.asarray(image)
    peak = float(values.max()) if values.size else 0.0
    scaled = values.astype(np.float32)
    if peak > 255:
        scaled *= np.float32(255.0 / (65535.0 if peak <= 65535 else peak))
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return Image.fromarray(scaled.astype(np.uint8))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is flattened onto white."""
    if image.mode in _HIGH_BIT_MODES:
        return _high_bit_to_grey(image).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _orientation(image: Image.Image) -> Image.Transpose | None:
    """The transposition that the EXIF orientation tag asks for; None when missing, absurd or corrupt."""
    try:
        return _ORIENTATIONS.get(image.getexif().get(0x0112))
    except Exception:
        return None


def load_image(source: str | Path | bytes, decode_side: int = DEFAULT_DECODE_SIDE) -> LoadedImage:
    """Read a photo file, or a photo file's bytes, as an upright RGB image (first frame of animations).

    A path that is not a regular file (a FIFO, device, socket or directory) is refused without
    being read (``open_regular``).

    Large photos are brought down to a long side of at least ``decode_side``: JPEGs while they
    are decoded (Pillow draft mode), others right after. A photo whose decoding would take more
    than MAX_DECODE_BYTES (estimated from its header before decoding) is refused. 16-bit and
    float images are scaled to 8 bits (see ``_high_bit_to_grey``). Raises ``ImageLoadError`` with a reason.
    """
    heif_supported()
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else open_regular(source)
        with stream, _decoding_settings(), Image.open(stream) as image:
            full_width, full_height = image.size
            if full_width < 1 or full_height < 1:
                raise ImageLoadError("image has no pixels")
            if image.format == "JPEG" and max(full_width, full_height) > decode_side:
                reduction = 1
                while max(full_width, full_height) // (reduction * 2) >= decode_side and reduction < 8:
                    reduction *= 2
                if reduction > 1:
                    image.draft("RGB", (full_width // reduction, full_height // reduction))
            if image.size[0] * image.size[1] > MAX_DECLARED_PIXELS:
                raise ImageLoadError(
                    f"declares {full_width}x{full_height} pixels, more than the "
                    f"{MAX_DECLARED_PIXELS:,}-pixel limit (possible decompression bomb)"
                )
            needed = decode_bytes(image.format, image.mode, image.size, decode_side)
            if needed > MAX_DECODE_BYTES:
                raise ImageLoadError(
                    f"{full_width}x{full_height} pixels in mode {image.mode} would need about "
                    f"{needed / _GIB:.1f} GiB to decode, more than the {MAX_DECODE_BYTES / _GIB:g} GiB limit"
                )
            with _budget.held(needed):  # decodes in other threads share the same MAX_DECODE_BYTES
                image.load()
                orientation = _orientation(image)
                factor = _reduction(image.size, decode_side)
                if factor > 1:
                    resample = Image.Resampling.NEAREST if image.mode in _NEAREST_MODES else Image.Resampling.BOX
                    image = image.resize(_reduced_size(image.size, factor), resample)
                scale = full_width / image.size[0]
                rgb = _to_rgb(image)
                if orientation is not None:
                    rgb = rgb.transpose(orientation)
                elif rgb is image:  # the opened file's own object stays tied to its file
                    rgb = image.copy()
    except ImageLoadError:
        raise
    except NotRegularFile as error:
        raise ImageLoadError(str(error)) from error
    except FileNotFoundError as error:
        raise ImageLoadError("file not found") from error
    except PermissionError as error:
        raise ImageLoadError("permission denied") from error
    except UnidentifiedImageError as error:
        raise ImageLoadError("not an image file (unrecognised format)") from error
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise ImageLoadError(f"cannot decode image: {error}") from error
    upright = (full_height, full_width) if orientation in _SIDEWAYS else (full_width, full_height)
    return LoadedImage(pixels=rgb, scale=scale, upright_size=upright)
