"""Find the photos under a folder: recursive, through symbolic links, loop-safe, hidden files and exclusions kept."""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

PHOTO_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif"}
)


@dataclass(frozen=True)
class FoundFile:
    """A photo file and the facts that tell whether it changed."""

    path: Path
    """The path below the scanned folder (it may pass through symbolic links)."""
    relative: str
    """Path below the scanned folder with '/' separators (undecodable bytes kept as surrogates)."""
    size: int
    """Size of the file the path leads to (after links)."""
    mtime_ns: int


def is_photo_name(name: str) -> bool:
    """Whether a file name has one of the supported photo extensions."""
    return os.path.splitext(name)[1].lower() in PHOTO_EXTENSIONS


def _excluded(relative: str, name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _real(path: str) -> str:
    """The path with every link resolved, in the case the file system compares by."""
    return os.path.normcase(os.path.realpath(path))


def _folder_key(path: str, info: os.stat_result) -> Hashable:
    """What identifies a folder: device and inode, or the resolved path where the file system has no inode numbers."""
    if info.st_ino:
        return (info.st_dev, info.st_ino)
    return _real(path)


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(os.path.join(folder, "")) for folder in folders)


def _leads_into(link: str, target: str, folders: tuple[str, ...]) -> bool:
    """Whether a link's first hop or its final target lies in one of ``folders`` (all resolved)."""
    if not folders:
        return False
    hop = os.path.join(os.path.dirname(link), os.readlink(link))
    first = os.path.join(_real(os.path.dirname(hop)), os.path.basename(hop))
    return _inside(target, folders) or _inside(first, folders)


def _not_followed(error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "broken symbolic link (its target does not exist); not followed"
    if error.errno == errno.ELOOP:
        return "symbolic link that leads back to itself; not followed"
    return f"symbolic link cannot be followed: {error.strerror or error}"


def _seen_again(prefix: str, first: str, link: bool) -> str:
    """Why a folder already scanned under ``first`` is not entered again under ``prefix``."""
    shown = f"'{first[:-1]}'" if first else "the scanned folder"
    if prefix.startswith(first):
        return f"{'symbolic link' if link else 'folder'} loop: leads back to {shown}, which holds it; not followed"
    return f"{'symbolic link to' if link else 'another path of'} the same folder as {shown}, scanned once; not followed"


def _special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def walk_photos(
    root: Path,
    include_hidden: bool = False,
    exclude: tuple[str, ...] = (),
    follow_symlinks: bool = True,
    skip_dirs: tuple[Path, ...] = (),
    on_problem: Callable[[str, str], None] | None = None,
) -> Iterator[FoundFile]:
    """Yield every photo below ``root``: its own folders depth first in sorted order, then linked folders.

    Hidden entries (leading '.') are skipped unless ``include_hidden``; ``exclude`` holds glob
    patterns matched against the relative path and the name. Symbolic links to photos and folders
    are followed wherever they lead (originals are only read), unless ``follow_symlinks`` is off.
    Folders reached through links are entered after every real folder, so a folder that is both
    inside ``root`` and linked is scanned under its own path; a folder is never entered twice
    (a loop, or a second link to it). Nothing in ``skip_dirs`` (the output folder) is entered.

    ``on_problem(relative, reason)`` hears about folders that cannot be listed, links not followed
    (broken, looping, into ``skip_dirs``, to a folder already scanned, or all links when
    ``follow_symlinks`` is off) and photo names that are no regular file (a FIFO is never opened).
    """
    report = on_problem or (lambda relative, reason: None)
    skip = tuple(_real(os.fspath(d)) for d in skip_dirs)
    top = os.fspath(root)
    first_seen: dict[Hashable, str] = {_folder_key(top, os.stat(top)): ""}
    """Folder -> the prefix it is scanned under ('' for ``root``)."""
    pending: list[tuple[str, str]] = [(top, "")]
    """Real folders to list, depth first."""
    linked: deque[tuple[str, str, Hashable]] = deque()
    """Folders reached through a link, entered once no real folder is left."""
    while pending or linked:
        if pending:
            directory, prefix = pending.pop()
        else:
            directory, prefix, key = linked.popleft()
            if key in first_seen:
                report(prefix[:-1], _seen_again(prefix, first_seen[key], link=True))
                continue
            first_seen[key] = prefix
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as error:
            report(prefix or ".", f"cannot list folder: {error.strerror or error}")
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            relative = f"{prefix}{name}"
            if (name.startswith(".") and not include_hidden) or _excluded(relative, name, exclude):
                continue
            link = False
            try:
                link = entry.is_symlink()
                if link and not follow_symlinks:
                    if is_photo_name(name) or entry.is_dir():
                        report(relative, "symbolic link; not followed (following links is turned off)")
                    continue
                info = entry.stat()
                folder = stat.S_ISDIR(info.st_mode)
                target = _real(entry.path) if link or folder else ""
                into_output = link and _leads_into(entry.path, target, skip)
                if folder and not info.st_ino:  # Windows fills in inode numbers only on an explicit stat
                    info = os.stat(entry.path)
            except OSError as error:
                if link:
                    report(relative, _not_followed(error))
                continue  # otherwise an entry that vanished while looked at
            if into_output:
                report(relative, "symbolic link into the output folder; not followed")
            elif folder:
                key = _folder_key(target, info)
                if link:
                    linked.append((entry.path, f"{relative}/", key))
                elif _inside(target, skip):
                    continue
                elif key in first_seen:
                    report(relative, _seen_again(f"{relative}/", first_seen[key], link=False))
                else:
                    first_seen[key] = f"{relative}/"
                    subdirs.append((entry.path, f"{relative}/"))
            elif stat.S_ISREG(info.st_mode):
                if is_photo_name(name):
                    yield FoundFile(Path(entry.path), relative, info.st_size, info.st_mtime_ns)
            elif link or is_photo_name(name):
                kind = _special(info.st_mode)
                report(relative, f"symbolic link to {kind}; not followed" if link else f"{kind}; not read")
        pending.extend(reversed(subdirs))
