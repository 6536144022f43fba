"""Faces into people: group the indexed faces under the user's corrections, then read the people back.

``regroup`` is the one step that decides who is who and records it (the index's memberships);
``read_outcome`` only reads: the people, unsorted faces and photos exactly as the index holds them,
so a scan, a correction, ``Library.people()`` and ``find`` all see one truth.
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from pathlib import Path

import numpy as np

from facecluster.grouping import GroupingOptions, group_embeddings
from facecluster.pipeline.album_names import RESERVED_FOLDERS, default_key, folder_name
from facecluster.storage.index import FaceIndex, StoredFace, ThumbnailReader
from facecluster.storage.people import Corrections, People
from facecluster.types import FaceRecord, Person, Photo, ScanOutcome, ScanStats, SkippedFile

LIBRARY_ID_KEY = "library_id"
"""Meta key of the random id a library's first scan gives its index."""
MIN_FACE_SIZE = 32.0
"""Faces whose box is narrower than this (full-resolution pixels) stay out of groups.

Measured on 1,200 LFW pairs downscaled to median face sizes of 94 / 48 / 38 / 29 / 24 / 18 px:
verification accuracy 99.3 / 98.8 / 98.9 / 97.5 / 96.3 / 90.3 % (and fewer faces detected
below 24 px)."""
MIN_GROUP_SCORE = 0.9
"""Detections less confident than this stay out of groups."""
MIN_SHARPNESS = 2.0
"""Chips whose Laplacian variance is below this are too blurred to join groups.

Measured on 1,200 LFW pairs blurred with a Gaussian of sigma 0 / 1.5 / 2 / 3 pixels: median
sharpness 32.9 / 4.7 / 2.8 / 1.5, verification accuracy 99.3 / 98.8 / 97.3 / 91.8 %; 95 % of
unblurred LFW faces score above 13.6."""


def usable(face: StoredFace) -> bool:
    """Whether a face is good enough to seed or join a group."""
    return good_enough(face.size, face.score, face.sharpness)


def good_enough(size: float, score: float, sharpness: float) -> bool:
    """Whether a face of this size, detector score and sharpness may seed or join a group."""
    return size >= MIN_FACE_SIZE and score >= MIN_GROUP_SCORE and sharpness >= MIN_SHARPNESS


def _grouped(faces: list[StoredFace], corrections: Corrections) -> list[StoredFace]:
    """The faces that take part in grouping: usable or confirmed by the user, and not forgotten."""
    return [
        f for f in faces if (usable(f) or f.face_id in corrections.confirmed) and not corrections.forgotten(f.face_id)
    ]


def regroup(index: FaceIndex, grouping: GroupingOptions) -> None:
    """Group the indexed faces, honouring corrections, and record which person each group is.

    Raises CorrectionsNotSupported when the method cannot honour the corrections (HDBSCAN).
    """
    people = People(index)
    corrections = people.corrections()
    good = _grouped(index.faces(), corrections)
    seeds, apart = corrections.constraints([f.face_id for f in good])
    labels = group_embeddings(
        np.stack([f.embedding for f in good]) if good else np.zeros((0, 128), np.float32),
        grouping,
        [f.sha256 for f in good],
        seeds,
        apart,
    )
    groups: list[list[int]] = [[] for _ in range(int(labels.max(initial=-1)) + 1)]
    for face, label in zip(good, labels, strict=True):
        if label >= 0:
            groups[label].append(face.face_id)
    people.assign(groups)


def read_outcome(
    index: FaceIndex,
    root: Path,
    grouping: GroupingOptions,
    problems: list[SkippedFile],
) -> ScanOutcome:
    """The library as the index holds it (people by decreasing size, then first face), without changing it.

    ``problems`` (folders that could not be listed, links not followed) join the skipped files.
    Thumbnails are read when asked for, also after ``index`` is closed. The outcome's stats hold
    the counts; the caller adds what its run did.
    """
    contents = index.contents()
    paths_of: dict[str, list[str]] = defaultdict(list)
    skipped = list(problems)
    for relative, stored in sorted(index.photos().items()):
        if stored.missing_since is not None:
            continue
        if stored.error:
            skipped.append(SkippedFile(relative, stored.error))
        elif stored.sha256 in contents:
            paths_of[stored.sha256].append(relative)
    photos: dict[str, Photo] = {}
    no_faces = []
    for sha, relatives in paths_of.items():
        content = contents[sha]
        if content.status == "skipped":
            skipped.extend(SkippedFile(r, content.reason or "could not be read") for r in relatives)
            continue
        photo = Photo(
            root / relatives[0],
            relatives[0],
            content.taken,
            content.camera,
            content.width or 0,
            content.height or 0,
            tuple(relatives[1:]),
        )
        photos[sha] = photo
        if content.status == "no_faces":
            no_faces.append(photo)
    faces = [f for f in index.faces(embeddings=False) if f.sha256 in photos]
    people = People(index)
    grouped = {f.face_id for f in _grouped(faces, people.corrections())}
    members: dict[int, list[StoredFace]] = defaultdict(list)
    person_of = {face: person for face, (person, _) in people.members().items()}
    for face in faces:
        if face.face_id in person_of:
            members[person_of[face.face_id]].append(face)
    order = sorted(members, key=lambda person: (-len(members[person]), members[person][0].face_id))

    def record(face: StoredFace) -> FaceRecord:
        return FaceRecord(
            face.face_id,
            photos[face.sha256],
            face.box,
            face.score,
            face.size,
            face.sharpness,
            usable=face.face_id in grouped,
            load_thumbnail=partial(thumbnails, face.face_id),
        )

    names = people.names()
    thumbnails = ThumbnailReader(index)
    reserved = {default_key(person).casefold() for person in order} | set(RESERVED_FOLDERS)
    persons = []
    for person in order:
        album = folder_name(names.get(person), person, reserved)
        reserved.add(album.casefold())
        persons.append(
            Person(album=album, faces=[record(f) for f in members[person]], id=person, name=names.get(person))
        )
    unsorted = [record(f) for f in faces if f.face_id not in person_of]
    skipped.sort(key=lambda s: s.relative)
    missing = [paths[0] for sha, paths in index.missing_contents().items() if sha not in photos]
    stats = ScanStats(
        method=grouping.method,
        threshold=grouping.effective_threshold,
        photos=len(photos),
        faces=len(faces),
        people=len(persons),
        unsorted=len(unsorted),
        no_faces=len(no_faces),
        skipped=len(skipped),
        missing=len(missing),
    )
    return ScanOutcome(
        root=root,
        people=persons,
        unsorted=unsorted,
        no_faces=sorted(no_faces, key=lambda p: p.relative),
        skipped=skipped,
        stats=stats,
        missing=sorted(missing),
        library_id=index.meta(LIBRARY_ID_KEY) or "",
    )
