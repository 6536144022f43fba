"""Photos into the index: each file is read once, and its bytes are hashed, searched for EXIF and decoded.

A content (by SHA-256) is analysed once however many paths hold it, and never again while the
index knows it. Every analysed content is committed with its faces and paths in one transaction,
so a scan killed at any moment resumes with nothing lost or counted twice.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from facecluster.inference.exif import PhotoMetadata, read_metadata
from facecluster.inference.images import open_regular
from facecluster.pipeline.walk import FoundFile
from facecluster.storage.index import FaceIndex, StoredContent, StoredPhoto
from facecluster.storage.people import People
from facecluster.types import AnalysisResult

MAX_FILE_BYTES = 2 << 30
"""Files larger than this (2 GiB) are skipped rather than read into memory."""
PATH_BATCH = 500
"""Paths of already known contents (and unreadable files) are committed this many at a time."""


class Placement(Protocol):
    """Where an analyzer's models run: ``Runtime`` on this machine, ``ClusterRuntime`` on a Dask cluster."""

    @property
    def label(self) -> str: ...


class Analyzer(Protocol):
    """What a scan needs of an analyzer: ``FaceAnalyzer``, ``ClusterAnalyzer``, or a stand-in in tests."""

    @property
    def runtime(self) -> Placement:
        """Where the models run (its ``label`` is shown in the summary)."""
        ...

    def analyze_many(self, images: Iterable[Any]) -> Iterator[AnalysisResult]:
        """One result per input, in input order; a photo that cannot be decoded carries its error."""
        ...


@dataclass
class Progress:
    """Callbacks a front end may give to follow the analysis."""

    start: Callable[[int], None] = lambda total: None
    """Called once with the number of files to read."""
    advance: Callable[[int], None] = lambda faces: None
    """Called once per file read, with the number of faces found in it (0 for known contents)."""


def read_file(path: Path) -> bytes:
    """A photo file's bytes, in one read; OSError when it cannot be read, is too large or is not a
    regular file (a FIFO or device is refused without blocking: ``open_regular``)."""
    with open_regular(path) as handle:
        facts = os.fstat(handle.fileno())
        if facts.st_size > MAX_FILE_BYTES:
            raise OSError(f"larger than {MAX_FILE_BYTES >> 30} GiB; not read")
        data = handle.read(facts.st_size + 1)
    if len(data) > facts.st_size:
        raise OSError("file grew while it was read")
    return data


def _reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "file vanished during the scan"
    if isinstance(error, PermissionError):
        return "permission denied"
    return f"cannot read file: {error.strerror or error}"


def ingest(index: FaceIndex, files: list[FoundFile], analyzer: Analyzer, progress: Progress | None = None) -> int:
    """Read, hash and analyse ``files`` into the index; return how many distinct contents were analysed."""
    progress = progress or Progress()
    progress.start(len(files))
    stored = index.photos()
    # The content each changed path held before and holds now, so corrections follow a photo edited in place.
    before = {f.relative: stored[f.relative].sha256 for f in files if f.relative in stored}
    read: dict[str, str] = {}
    waiting: dict[str, list[StoredPhoto]] = {}
    """Content -> its paths, while the content is being analysed."""
    queue: deque[tuple[str, PhotoMetadata]] = deque()
    """Contents handed to the analyzer, in order, with their EXIF."""
    known: list[StoredPhoto] = []
    finished: set[str] = set()
    """Contents this run could not decode (the index retries them, but not twice in one run)."""

    def flush_known() -> None:
        index.record_paths(known)
        known.clear()

    def new_contents() -> Iterator[bytes]:
        for found in files:
            try:
                data = read_file(found.path)
            except OSError as error:
                known.append(StoredPhoto(found.relative, found.size, found.mtime_ns, error=_reason(error)))
            else:
                sha = hashlib.sha256(data).hexdigest()
                read[found.relative] = sha
                path = StoredPhoto(found.relative, found.size, found.mtime_ns, sha)
                if sha in waiting:
                    waiting[sha].append(path)
                elif sha in finished or index.has_content(sha):
                    known.append(path)
                else:
                    waiting[sha] = [path]
                    queue.append((sha, read_metadata(data)))
                    yield data
                    continue
            progress.advance(0)
            if len(known) >= PATH_BATCH:
                flush_known()

    analysed = 0
    for result in analyzer.analyze_many(new_contents()):
        sha, metadata = queue.popleft()
        index.record_analysis(_content(sha, result, metadata), result.faces, waiting.pop(sha))
        if result.error is not None:
            finished.add(sha)
        analysed += 1
        progress.advance(len(result.faces))
    flush_known()
    people = People(index)
    for relative, sha in read.items():
        if before.get(relative) not in (None, sha):
            people.carry_over(before[relative], sha)
    index.drop_orphans()
    return analysed


def _content(sha: str, result: AnalysisResult, metadata: PhotoMetadata) -> StoredContent:
    if result.error is not None:
        return StoredContent(sha, "skipped", reason=str(result.error))
    width, height = result.size
    status = "faces" if result.faces else "no_faces"
    return StoredContent(sha, status, None, width, height, metadata.taken, metadata.camera)
