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
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

from facecluster.outputs.files import display_text, write_atomic
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
    data = dumps(document).encode("ascii") + b"\n"
    path = Path(output) / FILE_NAME
    if not _holds(path, data):
        write_atomic(path, data)
    return path


def dumps(document: object) -> str:
    """``json.dumps(document, ensure_ascii=True, allow_nan=False, indent=1)``: the same text, about twice as fast.

    The standard library encodes indented JSON in pure Python; this writer handles what people.json
    holds (dicts with text keys, lists, tuples, text, numbers, booleans, None) and hands anything
    else to ``json.dumps`` (which then decides, errors included).
    """
    parts: list[str] = []
    try:
        _encode(document, "\n", parts)
    except _Unusual:
        return json.dumps(document, ensure_ascii=True, allow_nan=False, indent=1)
    return "".join(parts)


class _Unusual(Exception):
    """A value ``_encode`` leaves to ``json.dumps``."""


def _encode(value: object, newline: str, parts: list[str]) -> None:
    """Append ``value`` as indented JSON; ``newline`` is a line feed and the indentation of the current level."""
    scalar = _SCALARS.get(type(value))
    if scalar is not None:
        parts.append(scalar(value))
    elif isinstance(value, str):
        parts.append(_string(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        parts.append(_float(value))
    elif isinstance(value, list | tuple):
        if not value:
            parts.append("[]")
            return
        inner = newline + " "
        parts.append("[" + inner)
        separator = ""
        for item in value:
            scalar = _SCALARS.get(type(item))
            if scalar is not None:
                parts.append(separator + scalar(item))
            else:
                parts.append(separator)
                _encode(item, inner, parts)
            separator = "," + inner
        parts.append(newline + "]")
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        inner = newline + " "
        parts.append("{" + inner)
        separator = ""
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Unusual
            scalar = _SCALARS.get(type(item))
            if scalar is not None:
                parts.append(f"{separator}{_string(key)}: {scalar(item)}")
            else:
                parts.append(f"{separator}{_string(key)}: ")
                _encode(item, inner, parts)
            separator = "," + inner
        parts.append(newline + "}")
    else:
        raise _Unusual


_string = json.encoder.encode_basestring_ascii


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise _Unusual  # json.dumps refuses it (allow_nan=False)
    return float.__repr__(value)


_SCALARS: dict[type, Callable[[Any], str]] = {
    str: _string,
    int: int.__repr__,
    float: _float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
}
"""How ``_encode`` writes a value of exactly these types (subclasses take the longer way, as json does)."""


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a file holding exactly ``data`` (then it need not be written again)."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


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
