"""What a scan will do: the folders checked, the photos found, and which of them are new, changed or gone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from facecluster.errors import InvalidInput
from facecluster.grouping import GroupingOptions
from facecluster.pipeline.walk import FoundFile, walk_photos
from facecluster.storage.index import FaceIndex
from facecluster.types import SkippedFile


@dataclass
class ScanOptions:
    """Everything a scan can be told."""

    new_folder: bool = False
    """Scan into an index made from another photo folder (its photos not found here become missing)."""
    allow_empty: bool = False
    """Scan a folder without photos into an index that has some (they all become missing)."""
    include_hidden: bool = False
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = True
    """Follow symbolic links to photos and folders, wherever they lead (loops are detected)."""
    grouping: GroupingOptions = field(default_factory=GroupingOptions)
    device: str = "auto"
    workers: int | None = None
    """Photos analysed at once, each in its own thread (None: one per core)."""
    scheduler: str | None = None
    """Address of a Dask scheduler (tcp://host:8786): the photos are analysed on its workers."""
    xmp: bool = False
    """Also write face regions as XMP sidecars into OUT/xmp/ (facecluster.outputs.xmp)."""

    def __post_init__(self) -> None:
        if self.scheduler is not None and self.workers is not None:
            raise InvalidInput(
                "workers are threads of this machine; with a Dask scheduler, the cluster's workers analyse the "
                "photos (set their threads with 'dask worker --nthreads')"
            )


@dataclass
class ScanPlan:
    """What a scan will do with the files it found."""

    found: list[FoundFile]
    to_read: list[FoundFile]
    """New or changed files (also files that failed before)."""
    vanished: list[str]
    """Indexed paths no longer found (their photos are kept as missing, or as moved)."""
    returned: list[str]
    """Missing paths found again, unchanged."""
    problems: list[SkippedFile]
    """Folders that could not be listed, links not followed."""


def check_folders(photos: Path, output: Path) -> tuple[Path, Path]:
    """Resolve both folders; the output may not lie inside the photo folder or hold it."""
    if not photos.exists():
        raise InvalidInput(f"{photos}: no such folder")
    if not photos.is_dir():
        raise InvalidInput(f"{photos}: not a folder")
    root, out = photos.resolve(), output.resolve()
    if out == root or root in out.parents:
        raise InvalidInput(f"output folder {out} is inside the photo folder {root}; choose another with -o")
    if out in root.parents:
        raise InvalidInput(f"output folder {out} contains the photo folder {root}; choose another with -o")
    return root, out


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
    unchanged = {f.relative for f in found}.difference(f.relative for f in to_read)
    returned = sorted(r for r in unchanged if stored[r].missing_since is not None)
    seen = {f.relative for f in found}
    unlisted = tuple(p.relative.rstrip("/") + "/" for p in problems if p.relative != ".")
    vanished = [
        r for r, s in stored.items() if r not in seen and s.missing_since is None and not r.startswith(unlisted)
    ]
    return ScanPlan(found=found, to_read=to_read, vanished=vanished, returned=returned, problems=problems)
