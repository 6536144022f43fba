"""Find the photos under a folder: recursive, loop-safe, hidden files and exclusions honoured."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

PHOTO_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif"}
)


@dataclass(frozen=True)
class FoundFile:
    """A photo file and the facts that tell whether it changed."""

    path: Path
    relative: str
    """Path below the scanned folder with '/' separators (undecodable bytes kept as surrogates)."""
    size: int
    mtime_ns: int


def is_photo_name(name: str) -> bool:
    """Whether a file name has one of the supported photo extensions."""
    return os.path.splitext(name)[1].lower() in PHOTO_EXTENSIONS


def _excluded(relative: str, name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)


def walk_photos(
    root: Path,
    include_hidden: bool = False,
    exclude: tuple[str, ...] = (),
    follow_symlinks: bool = False,
    skip_dirs: tuple[Path, ...] = (),
    on_problem: Callable[[str, str], None] | None = None,
) -> Iterator[FoundFile]:
    """Yield every photo below ``root``, depth first, in sorted order.

    Hidden entries (leading '.') are skipped unless ``include_hidden``; ``exclude`` holds
    glob patterns matched against the relative path and the name; symbolic links are not
    followed unless ``follow_symlinks``, and a folder already visited (a link loop) is never
    entered twice, nor one that leads outside ``root`` (albums only ever point inside it).
    Folders in ``skip_dirs`` (e.g. the output folder) are not entered. ``on_problem(relative,
    reason)`` hears about folders that cannot be listed and links that lead outside ``root``.
    """
    root = Path(root)
    inside = os.path.join(os.path.realpath(root), "")
    skip = {os.path.realpath(d) for d in skip_dirs}
    root_stat = os.stat(root)
    visited = {(root_stat.st_dev, root_stat.st_ino)}
    pending: list[tuple[str, str]] = [(os.fspath(root), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name, reverse=True)
        except OSError as error:
            if on_problem:
                on_problem(prefix or ".", f"cannot list folder: {error.strerror or error}")
            continue
        subdirs = []
        for entry in reversed(entries):
            name = entry.name
            relative = f"{prefix}{name}"
            if (name.startswith(".") and not include_hidden) or _excluded(relative, name, exclude):
                continue
            try:
                if entry.is_symlink():
                    if not follow_symlinks:
                        continue
                    if not os.path.realpath(entry.path).startswith(inside):
                        if on_problem:
                            on_problem(relative, "symbolic link leads outside the scanned folder; not followed")
                        continue
                info = entry.stat(follow_symlinks=True)
            except OSError:
                continue  # dangling link or vanished entry
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in visited or os.path.realpath(entry.path) in skip:
                    continue
                visited.add(key)
                subdirs.append((entry.path, f"{relative}/"))
            elif stat.S_ISREG(info.st_mode) and is_photo_name(name):
                yield FoundFile(Path(entry.path), relative, info.st_size, info.st_mtime_ns)
        pending.extend(reversed(subdirs))
