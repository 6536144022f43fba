"""Decode a photo into an upright 8-bit RGB image, whatever its format or mode.

Importing this module changes nothing in Pillow: the HEIC/HEIF opener is registered on the first
decode, and Pillow's own decompression-bomb limit is loosened only while ``load_image`` decodes
(under a lock, restored after), so that this module can apply its own limit after choosing a
reduced JPEG decode size. Crops elsewhere are made with numpy, so they never meet Pillow's limit.
"""

from __future__ import annotations

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
from PIL import Image, ImageOps, UnidentifiedImageError

from facecluster.errors import ImageLoadError

MAX_DECLARED_PIXELS = 400_000_000
"""Images declaring more pixels than this (and not reducible while decoding) are refused."""

DEFAULT_DECODE_SIDE = 2560
"""JPEGs are decoded at the smallest power-of-two reduction whose long side stays above this."""


@dataclass(frozen=True)
class LoadedImage:
    """An upright RGB image and how it relates to the file's full resolution."""

    rgb: np.ndarray
    """H x W x 3 uint8 pixels, EXIF orientation applied."""
    scale: float
    """Full-resolution pixels per decoded pixel (> 1 when decoded at reduced size)."""

    @property
    def full_size(self) -> tuple[int, int]:
        """(width, height) of the upright photo at full resolution."""
        height, width = self.rgb.shape[:2]
        return round(width * self.scale), round(height * self.scale)


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


_PILLOW_SETTINGS = threading.RLock()
_host_limit: list[int | None] = []
"""Pillow's limit as the host had it, while a decode has it loosened."""
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
def _own_pixel_limit() -> Iterator[None]:
    """Loosen Pillow's pixel limit while a photo is decoded (``load_image`` checks after draft); restored after.

    Pillow still refuses what no JPEG draft could bring under MAX_DECLARED_PIXELS, so other threads
    of a host application keep a bound meanwhile.
    """
    with _PILLOW_SETTINGS:
        previous = Image.MAX_IMAGE_PIXELS
        if previous is not None:
            Image.MAX_IMAGE_PIXELS = max(previous, _LIFTED_PIXEL_LIMIT)
        _host_limit.append(previous)
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = _host_limit.pop()


def _after_fork_in_child() -> None:
    """A child forked during a decode gets a free lock and the host's own limit back."""
    global _PILLOW_SETTINGS
    _PILLOW_SETTINGS = threading.RLock()
    if _host_limit:
        Image.MAX_IMAGE_PIXELS = _host_limit[0]
        _host_limit.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is flattened onto white."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        peak = values.max() if values.size else 0.0
        if peak > 255:
            values = values * (255.0 / (65535.0 if peak <= 65535 else peak))
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a missing, absurd or corrupt tag leaves it as is."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def load_image(source: str | Path | bytes, decode_side: int = DEFAULT_DECODE_SIDE) -> LoadedImage:
    """Read a photo file, or a photo file's bytes, as an upright RGB image (first frame of animations).

    A path that is not a regular file (a FIFO, device, socket or directory) is refused without
    being read (``open_regular``).

    Large JPEGs are decoded at reduced size (Pillow draft mode) so that their long
    side stays at least ``decode_side``. Raises ``ImageLoadError`` with a reason.
    """
    heif_supported()
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else open_regular(source)
        with stream, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _own_pixel_limit(), Image.open(stream) as image:
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
                scale = full_width / image.size[0]
                image.load()
                rgb = _to_rgb(_upright(image))
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
    return LoadedImage(rgb=np.asarray(rgb, dtype=np.uint8), scale=scale)
