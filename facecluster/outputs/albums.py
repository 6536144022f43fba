"""Per-person albums: folders of links (or copies) to the original photos.

Layout under the output folder::

    people/<person key>/<photo name>   one entry per distinct photo of the person
    people/unsorted/<photo name>       photos holding faces that belong to no person
    people/no-faces.txt                relative paths of the photos with no face, one a line

Entry names too long for a file name (255 bytes) are shortened (``files.fit_name``). In no-faces.txt each
path is written as its own bytes, with backslash, line feed and carriage return as ``\\\\``,
``\\n`` and ``\\r``, so that every line is one path.

Each run compares the albums wanted with the albums on disk (the disk is the reference, not a
record of earlier runs: a link's target, or an entry's size, modification time and inode) and
rewrites only what differs. An album whose entries differ is rebuilt whole in a temporary folder
inside the output folder and renamed into place; albums of people who are gone (or renamed) are
removed; identical albums are left alone, so a change to one person costs one album. A reader
thus never sees a half-written album, only (for an instant) a missing one while it is replaced.
A run killed half-way may leave some albums new and others old or missing; the library marks its
outputs stale before rewriting them, and the next run repairs whatever differs. Where ``people``
does not exist yet (or is not a plain folder) it is built whole and swapped in at once.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path, PurePath

from facecluster.outputs.files import fit_name, fresh_folder, fs_bytes, holds, swap_in
from facecluster.pipeline.album_names import NO_FACES, RESERVED_FOLDERS, UNSORTED
from facecluster.types import Photo, ScanOutcome, photos_by_date

log = logging.getLogger(__name__)

MODES = ("symlink", "copy", "hardlink")
PEOPLE = "people"
_TMP_PREFIX = ".people-tmp-"
_OLD_PREFIX = ".people-old-"


def write_albums(outcome: ScanOutcome, output: Path, mode: str = "symlink") -> None:
    """Bring ``output/people`` up to date with a scan outcome, replacing each changed album atomically.

    ``mode`` picks how each album entry refers to its photo:

    - ``"symlink"``: a symbolic link holding the absolute, link-free path of the original photo;
    - ``"copy"``: a copy made with :func:`shutil.copy2` (the original is only read);
    - ``"hardlink"``: a hard link to the original. Where a hard link cannot be made (the photo
      is on another device or file system, the file system has no hard links, or the photo is
      not the user's own) that photo is copied instead, without error.

    A photo found through symbolic links (perhaps leading out of the scanned folder) gets an
    entry for the file they lead to, so the albums work wherever they are viewed from. Every
    photo's path must lie inside ``outcome.root`` (before resolving links), and every person key
    must be a plain folder name other than ``unsorted``; otherwise :class:`ValueError` is raised
    before anything is written. Nothing is written outside ``output``: changed albums are built
    in a temporary folder inside it, then renamed into place (see the module's docstring). Photos
    that vanished since the scan are left out (with a logged warning) in copy and hard-link modes.
    Anything else found in ``people`` (files, folders of no one) is removed.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    albums = _plan(outcome)
    _check_targets(outcome.root, (photo for photos in albums.values() for photo in photos))

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(output)
    real = _RealPaths()
    wanted = {
        folder: {name: real(photo.path) for name, photo in _entry_names(photos)} for folder, photos in albums.items()
    }
    no_faces = b"".join(_listing_line(rel) for rel in sorted({photo.relative for photo in outcome.no_faces}))
    people = output / PEOPLE
    build = fresh_folder(output, _TMP_PREFIX)
    trash: list[Path] = []
    fallback = [False]
    try:
        if _plain_folder(people):
            _update(people, wanted, no_faces, mode, build, trash, fallback)
        else:
            for folder, entries in wanted.items():
                _build_album(build / folder, entries, mode, fallback)
            (build / NO_FACES).write_bytes(no_faces)
            swap_in(build, people, _OLD_PREFIX)
        if fallback[0]:
            log.warning("hard links are not possible from %s to some photos; copied those instead", output)
    finally:
        for folder in (build, *trash):
            shutil.rmtree(folder, ignore_errors=True)


def _update(
    people: Path,
    wanted: dict[str, dict[str, str]],
    no_faces: bytes,
    mode: str,
    build: Path,
    trash: list[Path],
    fallback: list[bool],
) -> None:
    """Rewrite what differs in the existing ``people`` folder; old entries are moved into a trash folder.

    Entries that no album wants go first (on a case-insensitive file system, 'Alice' must be gone
    before 'alice' comes); then each changed album is swapped for its new build; no-faces.txt last.
    """

    def discard(entry: Path) -> None:
        if not trash:
            trash.append(fresh_folder(people.parent, _OLD_PREFIX))
        os.rename(entry, trash[0] / entry.name)

    with os.scandir(people) as scan:
        present = {entry.name: entry for entry in scan}
    for name in present:
        if name not in wanted and name != NO_FACES:
            discard(people / name)
    for folder, entries in wanted.items():
        current = present.get(folder)
        if current is not None and _album_matches(current, entries, mode):
            continue
        album = build / folder
        _build_album(album, entries, mode, fallback)
        if current is not None:
            discard(people / folder)
            try:
                os.rename(album, people / folder)
            except BaseException:
                os.rename(trash[0] / folder, people / folder)
                raise
        else:
            os.rename(album, people / folder)
    listing = present.get(NO_FACES)
    if listing is not None and not listing.is_file(follow_symlinks=False):
        discard(people / NO_FACES)
    elif listing is not None and holds(people / NO_FACES, no_faces):
        return
    (build / NO_FACES).write_bytes(no_faces)
    os.replace(build / NO_FACES, people / NO_FACES)


def _build_album(album: Path, entries: dict[str, str], mode: str, fallback: list[bool]) -> None:
    album.mkdir()
    for name, source in entries.items():
        _place(Path(source), album / name, mode, fallback)


def _plain_folder(path: Path) -> bool:
    """Whether ``path`` is a folder itself (not a link to one)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _album_matches(current: os.DirEntry[str], entries: dict[str, str], mode: str) -> bool:
    """Whether the album on disk is what building ``entries`` in ``mode`` would make now."""
    if not current.is_dir(follow_symlinks=False):
        return False
    try:
        with os.scandir(current.path) as scan:
            found = {entry.name: entry for entry in scan}
    except OSError:
        return False
    if mode == "symlink":
        if found.keys() != entries.keys():
            return False
        for name, entry in found.items():
            if not entry.is_symlink():
                return False
            try:
                if os.readlink(entry.path) != entries[name]:
                    return False
            except OSError:
                return False
        return True
    expected = 0
    for name, source in entries.items():
        try:
            original = os.stat(source)
        except FileNotFoundError:
            if name in found:  # a build leaves a vanished photo out
                return False
            continue
        except OSError:
            return False
        expected += 1
        entry = found.get(name)
        if entry is None or not _entry_matches(entry, original, mode):
            return False
    return expected == len(found)


def _entry_matches(entry: os.DirEntry[str], original: os.stat_result, mode: str) -> bool:
    """Whether a copy or hard-link entry is what ``_place`` would make of ``original`` now.

    A hard link is the same file; a copy is another file of the same size and modification time.
    In hard-link mode a copy stands only where the link is impossible for a reason that lasts
    (another file system, or a photo that is not the user's own).
    """
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    same = (info.st_dev, info.st_ino) == (original.st_dev, original.st_ino)
    if mode == "hardlink" and same:
        return True
    if same:
        return False  # copy mode wants a file of its own
    copied = info.st_size == original.st_size and info.st_mtime_ns == original.st_mtime_ns
    if mode == "copy":
        return copied
    return copied and (info.st_dev != original.st_dev or original.st_uid != _euid())


def _euid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else -1


class _RealPaths:
    """``os.path.realpath`` of many photo paths, resolving each folder once.

    A path's folder is resolved once per run (photos share few folders); the file itself is
    resolved again only when it is a symbolic link. Same results as ``os.path.realpath``.
    """

    def __init__(self) -> None:
        self.folders: dict[str, str] = {}

    def __call__(self, path: str | os.PathLike[str]) -> str:
        head, tail = os.path.split(os.fspath(path))
        folder = self.folders.get(head)
        if folder is None:
            folder = self.folders[head] = os.path.realpath(head)
        joined = os.path.join(folder, tail)
        try:
            link = stat.S_ISLNK(os.lstat(joined).st_mode)
        except OSError:
            link = False
        return os.path.realpath(joined) if link else joined


def _plan(outcome: ScanOutcome) -> dict[str, list[Photo]]:
    """Album folder name -> its distinct photos, after checking the person keys."""
    albums: dict[str, list[Photo]] = {}
    seen: set[str] = set()
    for person in outcome.people:
        key = person.album
        if (
            not key
            or key in (".", "..")
            or key.startswith(".")
            or "/" in key
            or "\\" in key
            or "\0" in key
            or os.sep in key
            or key.casefold() in RESERVED_FOLDERS
        ):
            raise ValueError(f"person key {key!r} cannot be used as an album folder name")
        if key.casefold() in seen:
            raise ValueError(f"two people share the album folder name {key!r}")
        seen.add(key.casefold())
        albums[key] = person.photos
    unsorted = {face.photo.relative: face.photo for face in outcome.unsorted}
    albums[UNSORTED] = photos_by_date(list(unsorted.values()))
    return albums


def _check_targets(root: Path, photos: Iterable[Photo]) -> None:
    """Raise ValueError unless every photo's path is absolute, without '..', below the scanned folder.

    The path itself is checked, not where its links lead: a followed link may lead anywhere.
    """
    roots = {os.path.normcase(str(Path(os.path.abspath(root)))), os.path.normcase(str(Path(root).resolve()))}
    prefixes = tuple(folder if folder.endswith(os.sep) else folder + os.sep for folder in roots)
    for photo in photos:
        path = photo.path if isinstance(photo.path, Path) else Path(photo.path)
        text = str(path)  # normalised, with os.sep: as Path compares its parts
        if not (os.path.isabs(text) and (os.name != "nt" or os.path.splitdrive(text)[0])):
            raise ValueError(f"photo path is not absolute: {path}")
        if ".." in text.split(os.sep) or not os.path.normcase(text).startswith(prefixes):
            raise ValueError(f"photo {path} lies outside the scanned folder {root}; not linking it")


def _listing_line(relative: str) -> bytes:
    """One line of no-faces.txt (see the module's docstring)."""
    return fs_bytes(relative).replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r") + b"\n"


def _entry_names(photos: list[Photo]) -> list[tuple[str, Photo]]:
    """File names for an album's entries: the photo's own name, plus a short hash on collisions.

    Names are compared case-insensitively (albums may live on a case-insensitive file system);
    every photo of a colliding name gets the hash of its relative path, so names stay stable.
    A name too long for a file name is shortened, keeping its extension (``fit_name``).
    """
    names = [fit_name(*os.path.splitext(_name(photo))) for photo in photos]
    counts: dict[str, int] = {}
    for name in names:
        counts[name.casefold()] = counts.get(name.casefold(), 0) + 1
    used: set[str] = {name.casefold() for name in names if counts[name.casefold()] == 1}
    entries = []
    for name, photo in zip(names, photos, strict=True):
        if counts[name.casefold()] > 1:
            stem, suffix = os.path.splitext(name)
            digest = hashlib.sha1(fs_bytes(photo.relative)).hexdigest()
            length = 8
            name = fit_name(f"{stem}-{digest[:length]}", suffix)
            while name.casefold() in used:
                length += 2
                name = fit_name(f"{stem}-{digest[:length]}", suffix)
            used.add(name.casefold())
        entries.append((name, photo))
    return entries


def _name(photo: Photo) -> str:
    """The photo's file name (without parsing its path again when it is a Path already)."""
    return photo.path.name if isinstance(photo.path, PurePath) else Path(photo.path).name


def _place(source: Path, entry: Path, mode: str, fallback: list[bool]) -> None:
    """Create one album entry for ``source``; ``fallback[0]`` is set once a hard link had to be a copy."""
    if mode == "symlink":
        os.symlink(source, entry)
        return
    if mode == "hardlink":
        try:
            os.link(source, entry)
            return
        except FileNotFoundError:
            log.warning("photo vanished since the scan, left out of the albums: %s", source)
            return
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
            fallback[0] = True
    try:
        shutil.copy2(source, entry)
    except FileNotFoundError:
        log.warning("photo vanished since the scan, left out of the albums: %s", source)


def _remove_leftovers(output: Path) -> None:
    """Delete temporary folders left by earlier runs that were killed half-way."""
    for child in output.iterdir():
        if child.name.startswith((_TMP_PREFIX, _OLD_PREFIX)) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
