"""Per-person albums: folders of links (or copies) to the original photos.

Layout under the output folder::

    people/<person key>/<photo name>   one entry per distinct photo of the person
    people/unsorted/<photo name>       photos holding faces that belong to no person
    people/no-faces.txt                relative paths of the photos with no face, one a line

Entry names too long for a file name (255 bytes) are shortened (``files.fit_name``). In no-faces.txt each
path is written as its own bytes, with backslash, line feed and carriage return as ``\\\\``,
``\\n`` and ``\\r``, so that every line is one path.

The whole ``people`` folder is rebuilt on every run and swapped in at the end, so a run that is
killed half-way leaves either the previous albums or the new ones, never a mixture.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from facecluster.outputs.files import fit_name, fresh_folder, fs_bytes, swap_in
from facecluster.pipeline.album_names import NO_FACES, RESERVED_FOLDERS, UNSORTED
from facecluster.types import Photo, ScanOutcome, photos_by_date

log = logging.getLogger(__name__)

MODES = ("symlink", "copy", "hardlink")
PEOPLE = "people"
_TMP_PREFIX = ".people-tmp-"
_OLD_PREFIX = ".people-old-"


def write_albums(outcome: ScanOutcome, output: Path, mode: str = "symlink") -> None:
    """Build ``output/people`` from a scan outcome, replacing any previous albums atomically.

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
    before anything is written. Nothing is written outside ``output``: the new albums
    are built in a temporary folder inside it, then renamed into place. Photos that vanished since
    the scan are left out (with a logged warning) in copy and hard-link modes.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    albums = _plan(outcome)
    _check_targets(outcome.root, (photo for photos in albums.values() for photo in photos))

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(output)
    build = fresh_folder(output, _TMP_PREFIX)
    try:
        fallback = [False]
        for folder, photos in albums.items():
            album = build / folder
            album.mkdir()
            for name, photo in _entry_names(photos):
                _place(Path(os.path.realpath(photo.path)), album / name, mode, fallback)
        no_faces = sorted({photo.relative for photo in outcome.no_faces})
        (build / NO_FACES).write_bytes(b"".join(_listing_line(rel) for rel in no_faces))
        if fallback[0]:
            log.warning("hard links are not possible from %s to some photos; copied those instead", output)
        swap_in(build, output / PEOPLE, _OLD_PREFIX)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


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
    roots = {Path(os.path.abspath(root)), Path(root).resolve()}
    for photo in photos:
        path = Path(photo.path)
        if not path.is_absolute():
            raise ValueError(f"photo path is not absolute: {path}")
        if ".." in path.parts or roots.isdisjoint(path.parents):
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
    names = [fit_name(*os.path.splitext(Path(photo.path).name)) for photo in photos]
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
