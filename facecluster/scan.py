"""`facecluster scan`: index new and changed photos, group the faces, write the outputs."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from facecluster.albums import RESERVED_FOLDERS, write_albums
from facecluster.analysis import FaceAnalyzer
from facecluster.export import write_people_json
from facecluster.grouping import CorrectionsNotSupported, GroupingOptions, group_embeddings
from facecluster.index import INDEX_FILE, FaceIndex, IndexUnavailable, StoredFace
from facecluster.metadata import read_metadata
from facecluster.names import default_key, folder_name
from facecluster.outcome import FaceInfo, PersonGroup, PhotoInfo, ScanOutcome, SkippedFile
from facecluster.people import People
from facecluster.report import write_report
from facecluster.walk import FoundFile, walk_photos
from facecluster.xmp import write_sidecars

LOCK_FILE = ".lock"
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


class ScanError(Exception):
    """The scan cannot run; the message says why. ``exit_code`` is the CLI's status."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class ScanOptions:
    """Everything `scan` can be told."""

    include_hidden: bool = False
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False
    grouping: GroupingOptions = field(default_factory=GroupingOptions)
    device: str = "auto"
    xmp: bool = False
    """Also write face regions as XMP sidecars into OUT/xmp/ (facecluster.xmp)."""


@dataclass
class ScanPlan:
    """What a scan will do with the files it found."""

    found: list[FoundFile]
    to_read: list[FoundFile]
    """New or changed files (also files that failed before)."""
    removed: list[str]
    """Indexed paths that no longer exist."""
    problems: list[SkippedFile]
    """Folders that could not be listed."""


@dataclass
class Progress:
    """Callbacks a front end may give to follow the scan."""

    start: Callable[[int], None] = lambda total: None
    advance: Callable[[int], None] = lambda faces: None


def check_folders(photos: Path, output: Path) -> tuple[Path, Path]:
    """Resolve both folders; the output may not lie inside the photo folder or hold it."""
    if not photos.exists():
        raise ScanError(f"{photos}: no such folder")
    if not photos.is_dir():
        raise ScanError(f"{photos}: not a folder")
    root, out = photos.resolve(), output.resolve()
    if out == root or root in out.parents:
        raise ScanError(f"output folder {out} is inside the photo folder {root}; choose another with -o")
    if out in root.parents:
        raise ScanError(f"output folder {out} contains the photo folder {root}; choose another with -o")
    return root, out


class OutputLock:
    """An exclusive lock on the output folder, so two scans never write one index at once."""

    def __init__(self, output: Path) -> None:
        try:
            output.mkdir(parents=True, exist_ok=True)
            self.handle = open(output / LOCK_FILE, "a+")  # noqa: SIM115 - held for the scan's lifetime
        except OSError as error:
            raise ScanError(f"cannot write to the output folder {output}: {error.strerror}", exit_code=4) from error
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            self.handle.close()
            raise ScanError(f"another facecluster scan is using {output}; wait for it to finish", 3) from error

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def plan_scan(root: Path, output: Path, index: FaceIndex | None, options: ScanOptions) -> ScanPlan:
    """Walk the folder and compare with the index (None: nothing indexed yet)."""
    problems: list[SkippedFile] = []
    found = list(
        walk_photos(
            root,
            include_hidden=options.include_hidden,
            exclude=options.exclude,
            follow_symlinks=options.follow_symlinks,
            skip_dirs=(output,),
            on_problem=lambda relative, reason: problems.append(SkippedFile(relative, reason)),
        )
    )
    stored = index.photos() if index is not None else {}
    to_read = [
        f
        for f in found
        if (s := stored.get(f.relative)) is None or s.error or s.size != f.size or s.mtime_ns != f.mtime_ns
    ]
    seen = {f.relative for f in found}
    unlisted = tuple(p.relative.rstrip("/") + "/" for p in problems if p.relative != ".")
    removed = [r for r in stored if r not in seen and not r.startswith(unlisted)]
    return ScanPlan(found=found, to_read=to_read, removed=removed, problems=problems)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "file vanished during the scan"
    if isinstance(error, PermissionError):
        return "permission denied"
    return f"cannot read file: {error.strerror or error}"


def analyse_files(index: FaceIndex, files: list[FoundFile], analyzer: FaceAnalyzer, progress: Progress) -> int:
    """Hash, analyse and index ``files``; each distinct content is analysed once.

    Returns the number of contents analysed. Every content is committed with its faces
    and paths in one transaction.
    """
    by_content: dict[str, list[FoundFile]] = defaultdict(list)
    failed = []
    for found in files:
        try:
            by_content[file_sha256(found.path)].append(found)
        except OSError as error:
            failed.append((found.relative, found.size, found.mtime_ns, None, _reason(error)))
    index.record_paths(failed)
    known = [sha for sha in by_content if index.has_content(sha)]
    index.record_paths((f.relative, f.size, f.mtime_ns, sha, None) for sha in known for f in by_content.pop(sha))
    progress.start(len(by_content))
    owners = {by_content[sha][0].path: sha for sha in by_content}
    for result in analyzer.analyze_many(list(owners)):
        sha = owners[result.source]
        paths = [(f.relative, f.size, f.mtime_ns) for f in by_content[sha]]
        if result.error is not None:
            index.record_analysis(sha, paths, "skipped", str(result.error), None, None, None, None, [])
        else:
            metadata = read_metadata(result.source)
            width, height = result.size
            status = "faces" if result.faces else "no_faces"
            index.record_analysis(
                sha, paths, status, None, width, height, metadata.taken, metadata.camera, result.faces
            )
        progress.advance(len(result.faces))
    index.drop_orphans()
    return len(owners)


def usable(face: StoredFace) -> bool:
    """Whether a face is good enough to seed or join a group."""
    return face.size >= MIN_FACE_SIZE and face.score >= MIN_GROUP_SCORE and face.sharpness >= MIN_SHARPNESS


def build_outcome(root: Path, index: FaceIndex, plan: ScanPlan, grouping: GroupingOptions) -> ScanOutcome:
    """Group the indexed faces and assemble what the writers need."""
    contents = index.contents()
    paths_of: dict[str, list[str]] = defaultdict(list)
    skipped = list(plan.problems)
    for relative, stored in sorted(index.photos().items()):
        if stored.error:
            skipped.append(SkippedFile(relative, stored.error))
        elif stored.sha256 in contents:
            paths_of[stored.sha256].append(relative)
    photos: dict[str, PhotoInfo] = {}
    no_faces = []
    for sha, relatives in paths_of.items():
        status, reason, width, height, taken, camera = contents[sha]
        if status == "skipped":
            skipped.extend(SkippedFile(r, reason or "could not be read") for r in relatives)
            continue
        photo = PhotoInfo(
            root / relatives[0], relatives[0], taken, camera, width or 0, height or 0, tuple(relatives[1:])
        )
        photos[sha] = photo
        if status == "no_faces":
            no_faces.append(photo)
    faces = [f for f in index.faces() if f.sha256 in photos]
    people = People(index)
    corrections = people.corrections()
    good = [
        f for f in faces if (usable(f) or f.face_id in corrections.confirmed) and not corrections.forgotten(f.face_id)
    ]
    seeds, apart = corrections.constraints([f.face_id for f in good])
    try:
        labels = group_embeddings(
            np.stack([f.embedding for f in good]) if good else np.zeros((0, 128), np.float32),
            grouping,
            [f.sha256 for f in good],
            seeds,
            apart,
        )
    except CorrectionsNotSupported as error:
        raise ScanError(str(error), exit_code=2) from error
    label_of = {f.face_id: int(label) for f, label in zip(good, labels, strict=True) if label >= 0}
    groups: list[list[int]] = [[] for _ in range(int(labels.max(initial=-1)) + 1)]
    for face_id, label in label_of.items():
        groups[label].append(face_id)
    person_of = people.assign(groups)
    grouped = {f.face_id for f in good}
    names = people.names()

    def info(face: StoredFace) -> FaceInfo:
        return FaceInfo(
            face.face_id,
            photos[face.sha256],
            face.box,
            face.score,
            face.size,
            face.sharpness,
            usable=face.face_id in grouped,
            load_thumbnail=partial(index.thumbnail, face.face_id),
        )

    reserved = {default_key(person).casefold() for person in person_of} | set(RESERVED_FOLDERS)
    albums: dict[int, PersonGroup] = {}
    for label, person in enumerate(person_of):
        key = folder_name(names.get(person), person, reserved)
        reserved.add(key.casefold())
        albums[label] = PersonGroup(key=key, person_id=person, name=names.get(person))
    unsorted = []
    for face in faces:
        label = label_of.get(face.face_id, -1)
        if label < 0:
            unsorted.append(info(face))
        else:
            albums[label].faces.append(info(face))
    skipped.sort(key=lambda s: s.relative)
    return ScanOutcome(
        root=root,
        people=[albums[k] for k in sorted(albums)],
        unsorted=unsorted,
        no_faces=sorted(no_faces, key=lambda p: p.relative),
        skipped=skipped,
        summary={"method": grouping.method, "threshold": grouping.effective_threshold},
    )


def plan_only(photos: Path, output: Path, options: ScanOptions) -> ScanPlan:
    """What a scan would do, without writing anything anywhere (``--dry-run``)."""
    root, out = check_folders(photos, output)
    try:
        index = FaceIndex(out, readonly=True) if (out / INDEX_FILE).is_file() else None
    except IndexUnavailable as error:
        raise ScanError(f"{error}; move it aside to start a new index", exit_code=4) from error
    try:
        return plan_scan(root, out, index, options)
    finally:
        if index is not None:
            index.close()


def write_outputs(outcome: ScanOutcome, out: Path, album_mode: str, xmp: bool) -> None:
    """Albums, people.json, report.html and (when asked) XMP sidecars, each replaced atomically."""
    write_albums(outcome, out, album_mode)
    write_people_json(outcome, out)
    write_report(outcome, out)
    if xmp:
        write_sidecars(outcome, out)


def run_scan(
    photos: Path, output: Path, options: ScanOptions, progress: Progress | None = None, album_mode: str = "symlink"
) -> ScanOutcome:
    """The whole scan: lock, walk, index, group, write albums, people.json and report.html."""
    started = time.perf_counter()
    root, out = check_folders(photos, output)
    lock = OutputLock(out)
    index = None
    try:
        index = FaceIndex(out)
        plan = plan_scan(root, out, index, options)
        index.remove_paths(plan.removed)
        device = "not needed (nothing new)"
        analysed = 0
        if plan.to_read:
            analyzer = FaceAnalyzer(device=options.device, thumbnails=True)
            device = analyzer.runtime.label
            analysed = analyse_files(index, plan.to_read, analyzer, progress or Progress())
        outcome = build_outcome(root, index, plan, options.grouping)
        face_count = sum(len(p.faces) for p in outcome.people) + len(outcome.unsorted)
        photos_with_faces = {f.photo.relative for p in outcome.people for f in p.faces}
        photos_with_faces |= {f.photo.relative for f in outcome.unsorted}
        outcome.summary = {
            **outcome.summary,
            "files": len(plan.found),
            "photos": len(photos_with_faces) + len(outcome.no_faces),
            "new_or_changed": len(plan.to_read),
            "analysed": analysed,
            "removed": len(plan.removed),
            "faces": face_count,
            "people": len(outcome.people),
            "unsorted": len(outcome.unsorted),
            "no_faces": len(outcome.no_faces),
            "skipped": len(outcome.skipped),
            "device": device,
            "seconds": round(time.perf_counter() - started, 2),
        }
        index.set_meta(
            {
                "root": os.fsencode(root).hex(),
                **options.grouping.as_meta(),
                "album_mode": album_mode,
                "xmp": "1" if options.xmp else "",
            }
        )
        write_outputs(outcome, out, album_mode, options.xmp)
        return outcome
    except sqlite3.OperationalError as error:
        raise ScanError(f"cannot write the face index in {out}: {error}", exit_code=4) from error
    except IndexUnavailable as error:
        raise ScanError(f"{error}; move it aside to start a new index", exit_code=4) from error
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
            raise ScanError(f"cannot write to the output folder {out}: {error.strerror}", exit_code=4) from error
        raise
    finally:
        if index is not None:
            index.close()
        lock.release()
