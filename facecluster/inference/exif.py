"""Date taken and camera from a photo's EXIF, read with exifread from bytes already in memory.

Photos without EXIF are recognised before exifread is asked (it would log a warning for each);
exifread's complaints about damaged EXIF go to its logger ``exifread``, which the library leaves
alone (the command line quietens it).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import exifread

try:  # exifread's own test for EXIF, to skip photos without any (3.5 layout)
    from exifread.core.exceptions import ExifNotFound, InvalidExif
    from exifread.core.find_exif import determine_type
except ImportError:  # pragma: no cover - another exifread layout: every photo goes to process_file
    determine_type = None  # type: ignore[assignment]

_DATE_TAGS = ("EXIF DateTimeOriginal", "EXIF DateTimeDigitized", "Image DateTime")
_DATE = re.compile(r"^(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


@dataclass(frozen=True)
class PhotoMetadata:
    """What the EXIF says about when and with what a photo was taken."""

    taken: str | None
    """'YYYY-MM-DD HH:MM:SS' or None."""
    camera: str | None


def _date(value: str) -> str | None:
    match = _DATE.match(value.strip())
    if not match or match.group(1) == "0000":
        return None
    year, month, day, hour, minute, second = match.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31 and int(hour) < 24):
        return None
    return f"{year}-{month}-{day} {hour}:{minute}:{second}"


def read_metadata(data: bytes) -> PhotoMetadata:
    """Date taken and camera of a photo file's bytes; missing or corrupt EXIF gives None fields, never an error."""
    if determine_type is not None:
        try:
            determine_type(io.BytesIO(data))
        except (ExifNotFound, InvalidExif):
            return PhotoMetadata(taken=None, camera=None)
        except Exception:
            pass  # let exifread itself decide below
    try:
        tags = exifread.process_file(io.BytesIO(data), details=False, extract_thumbnail=False)
    except Exception:
        return PhotoMetadata(taken=None, camera=None)
    taken = next((d for d in (_date(str(tags[t])) for t in _DATE_TAGS if t in tags) if d), None)
    make = str(tags.get("Image Make", "")).strip()
    model = str(tags.get("Image Model", "")).strip()
    camera = model if make and model.lower().startswith(make.lower()) else " ".join(p for p in (make, model) if p)
    return PhotoMetadata(taken=taken, camera=camera[:100] or None)
