"""Decode a photo into an upright 8-bit RGB image, whatever its format or mode."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF support is an optional Pillow plugin.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - depends on the installation
    HEIF_SUPPORTED = False

Image.MAX_IMAGE_PIXELS = None  # decompression bombs are refused by ``load_image`` itself

MAX_DECLARED_PIXELS = 400_000_000
"""Images declaring more pixels than this (and not reducible while decoding) are refused."""

DEFAULT_DECODE_SIDE = 2560
"""JPEGs are decoded at the smallest power-of-two reduction whose long side stays above this."""


class ImageLoadError(Exception):
    """A file could not be turned into an image; the message says why."""


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


def load_image(path: str | Path, decode_side: int = DEFAULT_DECODE_SIDE) -> LoadedImage:
    """Read ``path`` as an upright RGB image (first frame of animations).

    Large JPEGs are decoded at reduced size (Pillow draft mode) so that their long
    side stays at least ``decode_side``. Raises ``ImageLoadError`` with a reason.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
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
    except FileNotFoundError as error:
        raise ImageLoadError("file not found") from error
    except IsADirectoryError as error:
        raise ImageLoadError("is a directory") from error
    except PermissionError as error:
        raise ImageLoadError("permission denied") from error
    except UnidentifiedImageError as error:
        raise ImageLoadError("not an image file (unrecognised format)") from error
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise ImageLoadError(f"cannot decode image: {error}") from error
    return LoadedImage(rgb=np.asarray(rgb, dtype=np.uint8), scale=scale)
