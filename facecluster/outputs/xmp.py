"""XMP sidecars holding face regions in the Metadata Working Group (MWG) regions format.

digiKam, Lightroom, PhotoPrism and exiftool read these regions as (named or unnamed) faces.
Layout under the output folder::

    xmp/<relative path of the photo>.xmp     e.g. xmp/2019/beach.jpg.xmp

A photo whose name is too long for ``<name>.xmp`` (255 bytes) gets a shortened sidecar name: as much
of its name as fits, '~' and a hash of the whole name, then '.xmp' (``files.fit_name``).

The whole ``xmp`` folder is rebuilt on every export and swapped in at the end, so sidecars of
photos that no longer hold a person disappear, and a killed export leaves the previous folder.
On request the sidecars go next to the original photos instead, where an existing file (another
tool's sidecar) is never replaced.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import secrets
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from facecluster.outputs.files import (
    MAX_NAME_BYTES,
    display_text,
    fit_name,
    fresh_folder,
    fs_bytes,
    swap_in,
    temporary_prefix,
    write_atomic,
)
from facecluster.types import FaceRecord, Photo, ScanOutcome

XMP = "xmp"
SUFFIX = ".xmp"
NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
}
_PACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
_PACKET_END = '\n<?xpacket end="w"?>\n'
_RESOURCE = {"rdf:parseType": "Resource"}
_NOT_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold (carriage returns are turned into line feeds first)."""
_TMP_PREFIX = ".xmp-tmp-"
_OLD_PREFIX = ".xmp-old-"
_NO_HARD_LINKS = {errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


@dataclass
class SidecarReport:
    """What :func:`write_sidecars` did."""

    written: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(relative path of the photo, reason) for each sidecar not written."""


def sidecar_xml(photo: Photo, regions: list[tuple[FaceRecord, str | None]]) -> bytes:
    """A complete XMP packet (UTF-8) with one MWG face region per ``(face, person name)``.

    Boxes are clamped to the photo; a box with nothing inside it is left out. Coordinates are the
    box centre and size as fractions of the photo's upright size, to 6 decimals. A name of None
    (or one left empty once characters XML cannot hold are dropped) gives a region without a
    name. Undecodable file-name bytes in a name become U+FFFD and carriage returns line feeds.
    Raises ValueError when the photo's size is unknown.
    """
    if photo.width <= 0 or photo.height <= 0:
        raise ValueError(f"size of {photo.relative!r} is unknown; face regions need it")
    meta = ET.Element("x:xmpmeta", {"xmlns:x": NAMESPACES["x"]})
    rdf = ET.SubElement(meta, "rdf:RDF", {"xmlns:rdf": NAMESPACES["rdf"]})
    description = ET.SubElement(
        rdf, "rdf:Description", {"rdf:about": ""} | {f"xmlns:{p}": NAMESPACES[p] for p in ("mwg-rs", "stDim", "stArea")}
    )
    info = ET.SubElement(description, "mwg-rs:Regions", _RESOURCE)
    dimensions = ET.SubElement(info, "mwg-rs:AppliedToDimensions", _RESOURCE)
    _property(dimensions, "stDim:w", str(photo.width))
    _property(dimensions, "stDim:h", str(photo.height))
    _property(dimensions, "stDim:unit", "pixel")
    bag = ET.SubElement(ET.SubElement(info, "mwg-rs:RegionList"), "rdf:Bag")
    for face, name in regions:
        area = _area(face.box, photo.width, photo.height)
        if area is None:
            continue
        region = ET.SubElement(bag, "rdf:li", _RESOURCE)
        _property(region, "mwg-rs:Type", "Face")
        text = "" if name is None else _xml_text(name)
        if text:
            _property(region, "mwg-rs:Name", text)
        shape = ET.SubElement(region, "mwg-rs:Area", _RESOURCE)
        for key, value in zip("xywh", area, strict=True):
            _property(shape, f"stArea:{key}", f"{value:.6f}")
        _property(shape, "stArea:unit", "normalized")
    ET.indent(meta, space=" ")
    return (_PACKET_BEGIN + ET.tostring(meta, encoding="unicode") + _PACKET_END).encode("utf-8")


def write_sidecars(outcome: ScanOutcome, destination: Path, beside_originals: bool = False) -> SidecarReport:
    """Write an XMP sidecar for every photo holding a person's face, under ``destination/xmp``.

    Each sidecar holds the regions of all faces of people in the photo (named or not); unsorted
    faces are left out, and a photo with no person's face gets no sidecar. A photo found under
    several paths gets one sidecar per path. ``destination/xmp`` is rebuilt in a temporary folder
    beside it and swapped in, so stale sidecars vanish.

    With ``beside_originals`` the sidecar of ``<root>/<relative>`` is ``<root>/<relative>.xmp``
    instead (``destination`` is not used). A path where something already exists, a folder that
    leads out of ``outcome.root`` through a symbolic link and a vanished photo are skipped and
    reported. Each sidecar appears whole or not at all (where the file system has hard links).

    Raises ValueError, before writing anything, for a photo path that is absolute or has '..'.
    """
    plan = _plan(outcome)
    report = SidecarReport()
    if beside_originals:
        root = Path(outcome.root)
        resolved_root = root.resolve()
        for photo, regions in plan:
            data = _data(photo, regions, report)
            if data is None:
                continue
            for relative in (photo.relative, *photo.copies):
                reason = _write_beside(root, resolved_root, relative, data)
                if reason is None:
                    report.written += 1
                else:
                    report.skipped.append((relative, reason))
        return report

    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(destination)
    build = fresh_folder(destination, _TMP_PREFIX)
    try:
        for photo, regions in plan:
            data = _data(photo, regions, report)
            if data is None:
                continue
            for relative in (photo.relative, *photo.copies):
                try:
                    # Not synced one by one (a large library would wait minutes): until the swap the
                    # previous xmp/ stays in place, as with the albums.
                    write_atomic(_sidecar_path(build, relative), data, sync=False)
                    report.written += 1
                except (FileExistsError, IsADirectoryError, NotADirectoryError):
                    report.skipped.append((relative, "its sidecar's name clashes with another sidecar's folder"))
                except OSError as error:
                    if error.errno != errno.ENAMETOOLONG:
                        raise
                    report.skipped.append((relative, "its sidecar's path would be too long"))
        swap_in(build, destination / XMP, _OLD_PREFIX)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return report


def _plan(outcome: ScanOutcome) -> list[tuple[Photo, list[tuple[FaceRecord, str | None]]]]:
    """Photos holding a person's face, by path, each with its regions left to right; paths checked."""
    photos: dict[str, tuple[Photo, list[tuple[FaceRecord, str | None]]]] = {}
    for person in outcome.people:
        for face in person.faces:
            photos.setdefault(face.photo.relative, (face.photo, []))[1].append((face, person.name))
    plan = []
    for relative in sorted(photos):
        photo, regions = photos[relative]
        for path in (photo.relative, *photo.copies):
            _parts(path)
        regions.sort(key=lambda region: (region[0].box[0], region[0].box[1], region[0].face_id))
        plan.append((photo, regions))
    return plan


def _data(photo: Photo, regions: list[tuple[FaceRecord, str | None]], report: SidecarReport) -> bytes | None:
    """The sidecar of a photo, or None (with every path of the photo reported) when there is none to write."""
    if photo.width <= 0 or photo.height <= 0:
        reason = "the photo's size is unknown"
    elif all(_area(face.box, photo.width, photo.height) is None for face, _ in regions):
        reason = "no face box lies inside the photo"
    else:
        return sidecar_xml(photo, regions)
    report.skipped.extend((relative, reason) for relative in (photo.relative, *photo.copies))
    return None


def _property(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _area(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, float, float, float] | None:
    """Centre x, centre y, width and height of ``box`` clamped to the photo, as fractions of its size.

    None when the clamped box is empty or a coordinate is not a finite number.
    """
    x1, y1, x2, y2 = (float(value) for value in box)
    if not all(math.isfinite(value) for value in (x1, y1, x2, y2)):
        return None
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height


def _xml_text(text: str) -> str:
    """``text`` as XML 1.0 holds it: undecodable bytes as U+FFFD, CR as LF, control characters dropped."""
    return _NOT_XML.sub("", display_text(text).replace("\r\n", "\n").replace("\r", "\n"))


def _parts(relative: str) -> tuple[str, ...]:
    """Folders and file name of a photo's path relative to the scanned folder; ValueError if it can leave it."""
    path = PurePath(relative)
    if not path.parts or path.anchor or ".." in path.parts or "\0" in relative:
        raise ValueError(f"photo path {relative!r} is not a plain relative path; not writing sidecars")
    return path.parts


def _sidecar_path(folder: Path, relative: str) -> Path:
    """``folder/<relative>.xmp``, its name shortened when too long (see the module's docstring)."""
    *folders, name = _parts(relative)
    return folder.joinpath(*folders, fit_name(name, SUFFIX))


def _write_beside(root: Path, resolved_root: Path, relative: str, data: bytes) -> str | None:
    """Write the sidecar of ``root/relative`` next to it; the reason when it was not written."""
    photo = root.joinpath(*_parts(relative))
    target = photo.with_name(photo.name + SUFFIX)
    if len(fs_bytes(target.name)) > MAX_NAME_BYTES:  # a shortened name would be found by no other tool
        return f"its sidecar's name would be longer than {MAX_NAME_BYTES} bytes"
    try:
        folder = photo.parent.resolve(strict=True)
    except OSError:
        return "its folder no longer exists"
    if folder != resolved_root and resolved_root not in folder.parents:
        return "its folder lies outside the scanned folder (symbolic link)"
    if not photo.is_file():
        return "the photo no longer exists"
    exists = f"{target.name} already exists there; not replacing it"
    if os.path.lexists(target):
        return exists
    try:
        return None if _create(target, data) else exists
    except OSError as error:
        return f"cannot write {target.name}: {error.strerror or error}"


def _create(target: Path, data: bytes) -> bool:
    """Write a new file ``target`` in one step; False, touching nothing, when something is already there.

    The data goes to a temporary file that is then hard-linked as ``target`` (which fails rather
    than replace anything). Where the file system has no hard links, ``target`` is created
    exclusively and written in place.
    """
    temporary = target.with_name(f"{temporary_prefix(target.name)}{secrets.token_hex(4)}.tmp")
    _write_new(temporary, data)
    try:
        os.link(temporary, target)
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        try:
            _write_new(target, data)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return True


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (FileExistsError if anything, even a dangling link, is there), write and sync it."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


def _remove_leftovers(destination: Path) -> None:
    """Delete temporary folders left by earlier exports that were killed half-way."""
    for child in destination.iterdir():
        if child.name.startswith((_TMP_PREFIX, _OLD_PREFIX)) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
