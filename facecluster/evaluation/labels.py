"""Labelled photos for grouping evaluation: where labels come from and which face each one scores."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from facecluster.errors import LabelError
from facecluster.types import FaceRecord, ScanOutcome

CONFIDENT_SCORE = 0.5
"""Detection score from which a face counts as confident when picking a labelled photo's face."""


@dataclass(frozen=True)
class LabelledFaces:
    """The faces a grouping is scored on, and the labelled photos that have none."""

    identity: dict[int, str]
    """Face id -> label, one face per labelled photo. A content found under several labelled
    paths is scored once, with the label of its first path in sorted order."""
    without_face: list[str]
    """Labelled photos in which the scan found no face."""
    not_analysed: list[str]
    """Labelled paths the scan has no result for: no such photo, excluded, hidden or unreadable."""


def folder_labels(relatives: Iterable[str]) -> dict[str, str]:
    """Label each photo with the name of the folder holding it; photos directly in the root get none."""
    return {relative: relative.split("/")[-2] for relative in relatives if "/" in relative}


def read_label_csv(path: Path) -> dict[str, str]:
    """Relative path -> label from a UTF-8 CSV whose header names the columns ``path`` and ``label``.

    Raises LabelError when the file cannot be read, lacks the header, has a row without a path
    or label, an absolute path, a path given two labels, or no rows at all.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return _parse_labels(csv.reader(handle), path)
    except OSError as error:
        raise LabelError(f"{path}: cannot read the label file ({error.strerror or error})") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise LabelError(f"{path}: not a UTF-8 CSV file ({error})") from error


def _parse_labels(reader: Iterator[list[str]], path: Path) -> dict[str, str]:
    header = [name.strip() for name in next(reader, [])]
    if "path" not in header or "label" not in header:
        raise LabelError(f"{path}: the first line must be the header 'path,label'")
    columns = header.index("path"), header.index("label")
    labels: dict[str, str] = {}
    for number, row in enumerate(reader, start=2):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        relative, label = (cells[c] if c < len(cells) else "" for c in columns)
        if not relative or not label:
            raise LabelError(f"{path}, row {number}: expected a path and a label")
        name = PurePosixPath(relative)
        if name.is_absolute():
            raise LabelError(f"{path}, row {number}: {relative} is not relative to the photo folder")
        if labels.setdefault(str(name), label) != label:
            raise LabelError(f"{path}, row {number}: {relative} is labelled both {labels[str(name)]} and {label}")
    if not labels:
        raise LabelError(f"{path}: no labels below the header")
    return labels


def labelled_faces(outcome: ScanOutcome, labels: Mapping[str, str]) -> LabelledFaces:
    """Pick the face each labelled photo of a scan is scored on.

    ``labels`` maps paths relative to the scanned folder to labels. A photo's scored face is its
    confident detection (score >= CONFIDENT_SCORE) nearest the image centre, or its face nearest
    the centre when none is confident. Its other faces (bystanders) and the faces of unlabelled
    photos are grouped but not scored.
    """
    faces_of: dict[str, list[FaceRecord]] = {}
    everyone = [face for person in outcome.people for face in person.faces] + outcome.unsorted
    for face in sorted(everyone, key=lambda f: f.face_id):
        faces_of.setdefault(face.photo.relative, []).append(face)
    identity: dict[int, str] = {}
    with_faces: set[str] = set()
    for faces in faces_of.values():
        photo = faces[0].photo
        paths = sorted((photo.relative, *photo.copies))
        with_faces.update(paths)
        label = next((labels[p] for p in paths if p in labels), None)
        if label is None:
            continue
        confident = [f for f in faces if f.score >= CONFIDENT_SCORE] or faces
        chosen = min(
            confident,
            key=lambda f: math.hypot((f.box[0] + f.box[2] - photo.width) / 2, (f.box[1] + f.box[3] - photo.height) / 2),
        )
        identity[chosen.face_id] = label
    no_faces = {p for photo in outcome.no_faces for p in (photo.relative, *photo.copies)}
    return LabelledFaces(
        identity=identity,
        without_face=sorted(no_faces & labels.keys()),
        not_analysed=sorted(labels.keys() - with_faces - no_faces),
    )
