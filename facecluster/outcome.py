"""What a scan produced, as plain data for the album, JSON and report writers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PhotoInfo:
    """One distinct photo (by content) and where it lives."""

    path: Path
    """Absolute path of the photo (the first path if the same content exists several times)."""
    relative: str
    """Path relative to the scanned folder, with '/' separators."""
    taken: str | None
    """Date taken from EXIF as 'YYYY-MM-DD HH:MM:SS', or None."""
    camera: str | None
    width: int
    height: int
    copies: tuple[str, ...] = ()
    """Other relative paths holding the same bytes."""


@dataclass(frozen=True)
class FaceInfo:
    """One face of a photo."""

    face_id: int
    photo: PhotoInfo
    box: tuple[float, float, float, float]
    """x1, y1, x2, y2 in the upright full-resolution photo."""
    score: float
    size: float
    sharpness: float
    usable: bool
    """Whether the face was good enough to take part in grouping."""
    load_thumbnail: Callable[[], bytes] = field(default=lambda: b"", repr=False, compare=False)
    """Reads the face's small JPEG on demand, so a large library's thumbnails never sit in memory."""

    @property
    def thumbnail(self) -> bytes:
        """A small JPEG of the face (empty when none)."""
        return self.load_thumbnail()


@dataclass
class PersonGroup:
    """Faces grouped as one person."""

    key: str
    """The album folder name: the person's name made folder-safe, or 'person_NNNN' from the id."""
    faces: list[FaceInfo] = field(default_factory=list)
    person_id: int = 0
    """Stable across re-scans (facecluster.people)."""
    name: str | None = None
    """The name the user gave, exactly as given."""

    @property
    def photos(self) -> list[PhotoInfo]:
        """Distinct photos of this person, oldest first (undated last), then by path."""
        unique = {face.photo.relative: face.photo for face in self.faces}
        return sorted(unique.values(), key=lambda p: (p.taken is None, p.taken or "", p.relative))


@dataclass(frozen=True)
class SkippedFile:
    """A file that could not be analysed, and why."""

    relative: str
    reason: str


@dataclass
class ScanOutcome:
    """Everything the output writers need."""

    root: Path
    people: list[PersonGroup]
    unsorted: list[FaceInfo]
    """Faces that belong to no group (alone, too small or too blurred)."""
    no_faces: list[PhotoInfo]
    skipped: list[SkippedFile]
    summary: dict[str, object]
    """Counts, timing and device, as shown at the end of the scan."""
