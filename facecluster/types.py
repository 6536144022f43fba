"""The vocabulary shared by every stage: faces, photos, people, matches and what a scan produced.

Plain data only (numpy for embeddings): importing this module loads no model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from facecluster.errors import ImageLoadError


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


@dataclass
class Face:
    """One face found in a photo, in the photo's full-resolution upright pixel coordinates."""

    box: tuple[float, float, float, float]
    """x1, y1, x2, y2."""
    landmarks: list[tuple[float, float]]
    """Left eye, right eye, nose tip, left and right mouth corner (as seen in the image)."""
    score: float
    quality: FaceQuality
    embedding: np.ndarray = field(repr=False)
    """128 floats, unit length."""
    thumbnail: bytes | None = field(default=None, repr=False)
    """A small JPEG of the face, when the analyzer was asked for thumbnails."""

    def to_dict(self, with_embedding: bool = False) -> dict:
        """JSON-ready form."""
        data = {
            "box": [round(v, 2) for v in self.box],
            "landmarks": [[round(x, 2), round(y, 2)] for x, y in self.landmarks],
            "score": round(self.score, 5),
            "quality": self.quality.to_dict(),
        }
        if with_embedding:
            data["embedding"] = [round(float(v), 7) for v in self.embedding]
        return data


@dataclass
class AnalysisResult:
    """The faces found in one input, or why it could not be read."""

    source: object
    """The input as given (a path, bytes, a Pillow image or an array)."""
    faces: list[Face]
    error: ImageLoadError | None = None
    size: tuple[int, int] = (0, 0)
    """(width, height) of the upright photo at full resolution."""


@dataclass(frozen=True)
class Verification:
    """Distance between two faces and the decision at a threshold."""

    distance: float
    threshold: float

    @property
    def same(self) -> bool:
        return self.distance < self.threshold


@dataclass(frozen=True)
class Photo:
    """One distinct photo (by content) of a library and where it lives."""

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
class FaceRecord:
    """A face of a library's photo, as the index keeps it."""

    face_id: int
    photo: Photo
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


def photos_by_date(photos: list[Photo]) -> list[Photo]:
    """Photos oldest first (undated last), then by path."""
    return sorted(photos, key=lambda p: (p.taken is None, p.taken or "", p.relative))


@dataclass
class Person:
    """Faces grouped as one person."""

    album: str
    """The album folder name: the person's name made folder-safe, or 'person_NNNN' from the id."""
    faces: list[FaceRecord] = field(default_factory=list)
    id: int = 0
    """Stable across re-scans."""
    name: str | None = None
    """The name the user gave, exactly as given."""

    @property
    def photos(self) -> list[Photo]:
        """Distinct photos of this person, oldest first (undated last), then by path."""
        return photos_by_date(list({face.photo.relative: face.photo for face in self.faces}.values()))

    @property
    def representative(self) -> FaceRecord | None:
        """The face that shows the person best: the largest, most confident one."""
        return max(self.faces, key=lambda f: f.size * f.score, default=None)


@dataclass(frozen=True)
class PersonSummary:
    """A person at a glance, for lists of thousands: counts and the best face, without the faces."""

    id: int
    name: str | None
    faces: int
    photos: int
    best_face: int
    """The largest, most confident face (as ``Person.representative``)."""

    @property
    def label(self) -> str:
        """The name, or 'p7' for an unnamed person."""
        return self.name or f"p{self.id}"


@dataclass(frozen=True)
class Overview:
    """Everyone in a library: named people first, then by number of faces; and the faces of no one."""

    people: list[PersonSummary]
    unsorted: int
    """Faces of no person that a grouping may still place."""
    forgotten: int
    """Faces the user said are nobody (not a face, or a stranger)."""


@dataclass(frozen=True)
class SkippedFile:
    """A file that could not be analysed, and why."""

    relative: str
    reason: str


@dataclass(frozen=True)
class Match:
    """How close a face is to one person."""

    person_id: int
    distance: float
    """Root-mean-square distance between the face and the person's faces."""
    limit: float
    """The largest distance at which the grouping would let the face join this person."""
    person: Person | None = field(default=None, compare=False, repr=False)
    """The person, when the caller had the library's people at hand."""
    face_id: int | None = None
    """The face of the library the match is about, when it is one."""

    @property
    def accepted(self) -> bool:
        return self.distance <= self.limit


@dataclass(frozen=True)
class FindResult:
    """The people nearest to one looked-up face, nearest first."""

    query: str
    """What was looked up: 'face 17', or the photo and the face's position in it."""
    matches: list[Match]


@dataclass(frozen=True)
class QuestionSide:
    """One side of a "same person?" question: a person, or an unsorted face."""

    person: int | None
    """The person's id; None for an unsorted face."""
    name: str | None
    faces: list[int]
    """Face ids to show (a few), the one nearest the other side first."""
    face_count: int
    """All the side's faces (1 for an unsorted face)."""
    photo: Path
    """The photo holding ``faces[0]``."""

    @property
    def label(self) -> str:
        """'p7 "Alice"', 'p7' or 'f12'."""
        if self.person is None:
            return f"f{self.faces[0]}"
        return f"p{self.person} {self.name!r}" if self.name else f"p{self.person}"


@dataclass(frozen=True)
class Question:
    """Are these the same person? A "yes" merges ``second`` into ``first`` (a face: moves it there);
    a "no" keeps them apart for good (a face: rejects it from ``first``). Either is a correction."""

    id: str
    """'p3-p7' (two people, smaller id first) or 'p3-f12' (a person and an unsorted face): the same
    while both sides exist, whatever else changes."""
    first: QuestionSide
    """The person who stays: the named one, else the one with more faces."""
    second: QuestionSide
    probability: float
    """The estimated chance of a "yes"."""
    gain: float
    """What a "yes" brings together: ab / (a + b) for sides of a and b faces (the ranking is by
    probability x gain)."""

    @property
    def kind(self) -> str:
        """'people' (two people) or 'face' (an unsorted face and a person)."""
        return "face" if self.second.person is None else "people"


@dataclass
class ScanStats:
    """Counts, timing and device of a scan (run facts are None after a correction, which only regroups)."""

    method: str
    threshold: float
    files: int | None = None
    """Photo files found in the folder."""
    photos: int = 0
    """Distinct photos with a face or with none (copies count once)."""
    new_or_changed: int | None = None
    analysed: int | None = None
    """Distinct contents run through the models."""
    vanished: int | None = None
    """Indexed paths this scan did not find."""
    moved: int | None = None
    """Of those, paths whose photo is still present at another path (moved, renamed, a copy removed)."""
    returned: int | None = None
    """Missing photos found again (at any path), with their faces and corrections, without re-analysis."""
    missing: int = 0
    """Photos no longer found: kept with their faces and corrections, out of albums, until pruned."""
    faces: int = 0
    people: int = 0
    unsorted: int = 0
    no_faces: int = 0
    skipped: int = 0
    device: str | None = None
    seconds: float | None = None

    def as_dict(self) -> dict[str, object]:
        """The known values, in field order (the CLI's --json summary and people.json's 'summary')."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class ScanOutcome:
    """A library's people and photos after a scan or a correction: everything the outputs show."""

    root: Path
    people: list[Person]
    unsorted: list[FaceRecord]
    """Faces that belong to no group (alone, too small or too blurred)."""
    no_faces: list[Photo]
    skipped: list[SkippedFile]
    stats: ScanStats
    missing: list[str] = field(default_factory=list)
    """Photos no longer found (a path each, relative to the scanned folder): kept until pruned."""
    library_id: str = ""
    """The index's own id (face ids restart in every index): files named by face id are kept only for it."""
