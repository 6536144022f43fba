"""people.json: the scan outcome as machine-readable JSON.

File names that are not valid UTF-8 reach us as ``os.fsdecode`` strings holding lone surrogates
(``surrogateescape``). ``json.dumps(..., ensure_ascii=True)`` does not fail on them, but writes
them as lone ``\\udcXX`` escapes, which are not valid Unicode and which strict JSON parsers reject.
Every string is therefore written with its undecodable bytes replaced by U+FFFD: such paths are
shown faithfully enough to find the file, but cannot be used to open it byte for byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePath
from typing import Any

from facecluster.outputs.files import display_text, holds, write_atomic
from facecluster.types import FaceRecord, Person, ScanOutcome

VERSION = 2
FILE_NAME = "people.json"


def write_people_json(outcome: ScanOutcome, output: Path) -> Path:
    """Write ``output/people.json`` atomically (unless it holds the same text already) and return its path.

    The document is ``{"version": 2, "root", "summary", "people": [person...], "unsorted": [face...],
    "no_faces": [relative path...], "missing": [relative path...], "skipped": [{"path", "reason"}]}``;
    see ``person_document`` and ``face_document``. A person's ``id`` and ``key`` never change
    (naming changes only ``name`` and ``album``). Faces are ordered by the date their photo was
    taken (undated last), then path.
    """
    document = {
        "version": VERSION,
        "root": display_text(str(outcome.root)),
        "summary": _jsonable(outcome.stats.as_dict()),
        "people": [person_document(person) for person in outcome.people],
        "unsorted": [face_document(face) for face in sort_faces(outcome.unsorted)],
        "no_faces": sorted(display_text(photo.relative) for photo in outcome.no_faces),
        "missing": [display_text(relative) for relative in outcome.missing],
        "skipped": [
            {"path": display_text(item.relative), "reason": display_text(item.reason)}
            for item in sorted(outcome.skipped, key=lambda item: item.relative)
        ],
    }
    data = json.dumps(document, ensure_ascii=True, allow_nan=False, indent=1).encode("ascii") + b"\n"
    path = Path(output) / FILE_NAME
    if not holds(path, data):
        write_atomic(path, data)
    return path


def person_document(person: Person) -> dict[str, Any]:
    """One person as people.json and ``facecluster people --json`` show them.

    ``{"id": 7, "key": "p7" (what commands take), "album" (folder under people/), "name",
    "photo_count", "face_count", "photos": [relative path...], "faces": [face...]}``.
    """
    return {
        "id": person.id,
        "key": f"p{person.id}",
        "album": display_text(person.album),
        "name": None if person.name is None else display_text(person.name),
        "photo_count": len(person.photos),
        "face_count": len(person.faces),
        "photos": [display_text(photo.relative) for photo in person.photos],
        "faces": [face_document(face) for face in sort_faces(person.faces)],
    }


def sort_faces(faces: list[FaceRecord]) -> list[FaceRecord]:
    """Faces ordered by when their photo was taken (undated last), then photo path, then id."""
    return sorted(faces, key=lambda f: (f.photo.taken is None, f.photo.taken or "", f.photo.relative, f.face_id))


def face_document(face: FaceRecord) -> dict[str, object]:
    """``{"face_id": 12, "key": "f12", "photo" (relative path), "path" (absolute), "box" (x1, y1, x2, y2),
    "score", "size", "sharpness", "taken", "usable"}``."""
    return {
        "face_id": int(face.face_id),
        "key": f"f{face.face_id}",
        "photo": display_text(face.photo.relative),
        "path": display_text(str(face.photo.path)),
        "box": [round(float(value), 2) for value in face.box],
        "score": _number(face.score, 4),
        "size": _number(face.size, 2),
        "sharpness": _number(face.sharpness, 2),
        "taken": face.photo.taken,
        "usable": bool(face.usable),
    }


def _number(value: object, digits: int) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return round(number, digits) if math.isfinite(number) else None


def _jsonable(value: object) -> object:
    """Summary values as JSON: paths and unknown objects as text, numpy scalars as numbers."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return display_text(value)
    if isinstance(value, PurePath):
        return display_text(str(value))
    if isinstance(value, dict):
        return {display_text(str(key)): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    item = getattr(value, "item", None)
    if callable(item):  # numpy scalar
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return display_text(str(value))
