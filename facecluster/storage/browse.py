"""Pages of people and faces straight from the index, for browsing a large library quickly.

``read_outcome`` builds the whole library (every photo, face and person) and suits writing the
outputs; a review of 5,000 people or a person with 3,000 faces needs only one page at a time.
These queries count and page in SQL, and see what ``read_outcome`` sees: faces of contents that
some present, readable path holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecluster.storage.index import FaceIndex, _relative
from facecluster.storage.people import NOBODY

_PRESENT = "EXISTS (SELECT 1 FROM photos p WHERE p.sha256 = f.sha256 AND p.missing_since IS NULL AND p.error IS NULL)"
_PATH = "(SELECT min(p.path) FROM photos p WHERE p.sha256 = f.sha256 AND p.missing_since IS NULL AND p.error IS NULL)"
_FORGOTTEN = f"EXISTS (SELECT 1 FROM rejections r WHERE r.face_id = f.id AND r.person_id = {NOBODY})"
_UNSORTED = "NOT EXISTS (SELECT 1 FROM memberships m WHERE m.face_id = f.id)"


@dataclass(frozen=True)
class PersonRow:
    person_id: int
    name: str | None
    faces: int
    photos: int
    best_face: int
    """The face with the largest size x detector score."""


@dataclass(frozen=True)
class FaceRow:
    face_id: int
    relative: str
    """The first present path holding the face's photo."""
    box: tuple[float, float, float, float]
    score: float
    size: float
    sharpness: float
    confirmed: bool
    forgotten: bool
    taken: str | None
    camera: str | None
    width: int
    height: int


_PERSON_ROWS = (
    "SELECT m.person_id, pe.name, count(*), count(DISTINCT f.sha256), f.id, max(f.size * f.score)"
    " FROM memberships m JOIN faces f ON f.id = m.face_id JOIN people pe ON pe.id = m.person_id"
    f" WHERE {{where}} AND {_PRESENT} GROUP BY m.person_id"
)
"""One row per person; SQLite takes a bare column (f.id, the best face) from the row of the max()."""


def person_rows(index: FaceIndex) -> list[PersonRow]:
    """Every person with a face in a present photo (in no particular order)."""
    return [PersonRow(*row[:5]) for row in index.db.execute(_PERSON_ROWS.format(where="1"))]


def unsorted_counts(index: FaceIndex) -> tuple[int, int]:
    """(unsorted faces that may still be grouped, forgotten faces), of present photos."""
    row = index.db.execute(
        f"SELECT count(*), coalesce(sum({_FORGOTTEN}), 0) FROM faces f WHERE {_UNSORTED} AND {_PRESENT}"
    ).fetchone()
    return int(row[0]) - int(row[1]), int(row[1])


def face_rows(
    index: FaceIndex, person: int | None, forgotten: bool = False, offset: int = 0, limit: int = -1
) -> tuple[int, list[FaceRow]]:
    """(how many, one page) of a person's faces, or of the unsorted faces (``person`` None; the forgotten
    ones when ``forgotten``), in present photos, by date taken (undated last), then path and id."""
    if person is None:
        where, args = f"{_UNSORTED} AND {'' if forgotten else 'NOT '}{_FORGOTTEN}", ()
    else:
        where, args = "f.id IN (SELECT face_id FROM memberships WHERE person_id = ?)", (person,)
    total = index.db.execute(f"SELECT count(*) FROM faces f WHERE {where} AND {_PRESENT}", args).fetchone()[0]
    rows = index.db.execute(
        f"SELECT f.id, {_PATH} AS path, f.x1, f.y1, f.x2, f.y2, f.score, f.size, f.sharpness,"
        " coalesce((SELECT confirmed FROM memberships m WHERE m.face_id = f.id), 0),"
        f" {_FORGOTTEN}, c.taken, c.camera, coalesce(c.width, 0), coalesce(c.height, 0)"
        " FROM faces f JOIN contents c ON c.sha256 = f.sha256"
        f" WHERE {where} AND path IS NOT NULL"
        " ORDER BY c.taken IS NULL, c.taken, path, f.id LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    return int(total), [
        FaceRow(r[0], _relative(r[1]), (r[2], r[3], r[4], r[5]), r[6], r[7], r[8], bool(r[9]), bool(r[10]), *r[11:])
        for r in rows
    ]


def face_path(index: FaceIndex, face: int) -> str | None:
    """The relative path of a present photo holding this face (None: no such face, or its photo is missing)."""
    row = index.db.execute(f"SELECT {_PATH} FROM faces f WHERE f.id = ?", (face,)).fetchone()
    return _relative(row[0]) if row and row[0] is not None else None


def embedding_matrix(index: FaceIndex) -> tuple[np.ndarray, np.ndarray]:
    """(face ids, their embeddings as one float32 matrix) of every face of the index, in id order."""
    ids, blobs = [], []
    for face, blob in index.db.execute("SELECT id, embedding FROM faces ORDER BY id"):
        ids.append(face)
        blobs.append(blob)
    vectors = np.frombuffer(b"".join(blobs), np.float32).reshape(len(ids), -1) if ids else np.zeros((0, 128))
    return np.array(ids, dtype=np.int64), vectors


def unsorted_ids(index: FaceIndex) -> list[int]:
    """The unsorted faces of present photos that a grouping may still place (not forgotten)."""
    rows = index.db.execute(f"SELECT f.id FROM faces f WHERE {_UNSORTED} AND NOT {_FORGOTTEN} AND {_PRESENT}")
    return [row[0] for row in rows]


def person_row(index: FaceIndex, person: int) -> PersonRow | None:
    """One person's row of ``person_rows`` (None when they have no face in a present photo)."""
    row = index.db.execute(_PERSON_ROWS.format(where="m.person_id = ?"), (person,)).fetchone()
    return PersonRow(*row[:5]) if row else None


@dataclass(frozen=True)
class AskableFaces:
    """Faces of present photos that "same person?" questions may be about (not forgotten), in id order."""

    ids: np.ndarray
    owners: np.ndarray
    """Person id, -1 unsorted."""
    photos: np.ndarray
    """A number per photo content."""
    size: np.ndarray
    score: np.ndarray
    sharpness: np.ndarray


def askable_faces(index: FaceIndex) -> AskableFaces:
    """Every face of a present photo that is in a person or unsorted and not forgotten."""
    rows = index.db.execute(
        "SELECT f.id, coalesce(m.person_id, -1), f.sha256, f.size, f.score, f.sharpness"
        " FROM faces f LEFT JOIN memberships m ON m.face_id = f.id"
        f" WHERE {_PRESENT} AND NOT {_FORGOTTEN} ORDER BY f.id"
    ).fetchall()
    photo_numbers: dict[str, int] = {}
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return AskableFaces(
        np.array(columns[0], dtype=np.int64),
        np.array(columns[1], dtype=np.int64),
        np.array([photo_numbers.setdefault(sha, len(photo_numbers)) for sha in columns[2]], dtype=np.int64),
        np.array(columns[3], dtype=np.float32),
        np.array(columns[4], dtype=np.float32),
        np.array(columns[5], dtype=np.float32),
    )
