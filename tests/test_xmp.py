"""XMP sidecars with MWG face regions, on a synthetic scan outcome."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from facecluster.outputs import xmp
from facecluster.outputs.xmp import sidecar_xml, write_sidecars
from facecluster.types import FaceRecord, Person, Photo, ScanOutcome, ScanStats

MWG = "{http://www.metadataworkinggroup.com/schemas/regions/}"
AREA = "{http://ns.adobe.com/xmp/sType/Area#}"
DIM = "{http://ns.adobe.com/xap/1.0/sType/Dimensions#}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
NON_UTF8 = os.fsdecode(b"caf\xe9.jpg")
TRICKY = "Zoë <b> & \"Ann\" 'O'Neil'\nsecond line \u05e9\u05dc\u05d5\u05dd \u202eRTL\tx"

STATS = ScanStats(method="adaptive", threshold=0.374)


def photo(root: Path, relative: str, width: int = 400, height: int = 200, copies: tuple[str, ...] = ()) -> Photo:
    """A Photo, with its file (and its copies) created under ``root``."""
    for path in (relative, *copies):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"jpeg " + path.encode("utf-8", "surrogateescape"))
    return Photo(root / relative, relative, None, None, width, height, copies)


def face(info: Photo, box: tuple[float, float, float, float], face_id: int = 1) -> FaceRecord:
    return FaceRecord(face_id, info, box, 0.99, 50.0, 10.0, True)


def regions(data: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    """AppliedToDimensions and each region as {'Type', 'Name', 'x', 'y', 'w', 'h', 'unit'}."""
    tree = ET.fromstring(data)
    info = tree.find(f"{RDF}RDF/{RDF}Description/{MWG}Regions")
    assert info is not None
    dimensions = {child.tag.removeprefix(DIM): child.text for child in info.find(f"{MWG}AppliedToDimensions")}
    found = []
    for item in info.findall(f"{MWG}RegionList/{RDF}Bag/{RDF}li"):
        region = {child.tag.removeprefix(MWG): child.text for child in item if child.tag != f"{MWG}Area"}
        region |= {child.tag.removeprefix(AREA): child.text for child in item.find(f"{MWG}Area")}
        found.append(region)
    return dimensions, found


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``: file bytes, or 'dir' / 'link -> target'."""
    entries: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            entries[key] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            entries[key] = "dir"
        else:
            entries[key] = path.read_bytes()
    return entries


@pytest.fixture
def library(tmp_path: Path) -> ScanOutcome:
    """Alice (named) and an unnamed person across nested folders, a copied photo, unsorted faces."""
    root = tmp_path / "photos"
    beach = photo(root, "2019/beach.jpg", 400, 200)
    party = photo(root, "2020/summer/party.jpg", 1000, 500, copies=("backup/party.jpg",))
    odd = photo(root, NON_UTF8, 100, 100)
    lonely = photo(root, "lonely.jpg")
    people = [
        Person("Alice", [face(beach, (100, 50, 200, 150), 1), face(party, (0, 0, 100, 100), 2)], 1, "Alice"),
        Person("person_0002", [face(party, (500, 100, 700, 400), 3), face(odd, (10, 10, 20, 20), 4)], 2),
    ]
    unsorted = [face(beach, (300, 20, 350, 80), 5), face(lonely, (10, 10, 60, 60), 6)]
    return ScanOutcome(root, people, unsorted, [], [], STATS)


def test_regions_have_normalised_centres_clamped_to_the_photo() -> None:
    info = Photo(Path("/p/beach.jpg"), "beach.jpg", None, None, 400, 200)
    data = sidecar_xml(
        info,
        [
            (face(info, (100, 50, 200, 150), 1), "Alice"),
            (face(info, (-20, 150, 60, 260), 2), "Bob"),  # clamped to x 0..60, y 150..200
            (face(info, (500, 0, 600, 50), 3), "Nobody"),  # wholly outside: left out
            (face(info, (10, 10, float("nan"), 20), 4), "Nan"),  # not a box: left out
        ],
    )
    assert data.startswith(b"<?xpacket begin=") and data.rstrip().endswith(b'<?xpacket end="w"?>')
    dimensions, found = regions(data)
    assert dimensions == {"w": "400", "h": "200", "unit": "pixel"}
    assert found == [
        {"Type": "Face", "Name": "Alice", "x": "0.375000", "y": "0.500000", "w": "0.250000", "h": "0.500000"}
        | {"unit": "normalized"},
        {"Type": "Face", "Name": "Bob", "x": "0.075000", "y": "0.875000", "w": "0.150000", "h": "0.250000"}
        | {"unit": "normalized"},
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (TRICKY, TRICKY),
        ("bell\x07 and nul\x00 and esc\x1b and \ufffe", "bell and nul and esc and "),
        ("cr\r\nlf\rend", "cr\nlf\nend"),
        (os.fsdecode(b"Jos\xe9"), "Jos\ufffd"),  # undecodable file-name byte
        ("\ud800lone", "\ufffd\ufffd\ufffdlone"),  # a lone surrogate of no byte: as people.json shows it
        ("emoji \U0001f600", "emoji \U0001f600"),
    ],
)
def test_names_round_trip_as_valid_xml(name: str, expected: str) -> None:
    info = Photo(Path("/p/a.jpg"), "a.jpg", None, None, 100, 100)
    data = sidecar_xml(info, [(face(info, (10, 10, 50, 50)), name)])
    data.decode("utf-8")  # strict: no lone surrogates
    assert regions(data)[1][0]["Name"] == expected


def test_unnamed_faces_have_no_name() -> None:
    info = Photo(Path("/p/a.jpg"), "a.jpg", None, None, 100, 100)
    data = sidecar_xml(info, [(face(info, (10, 10, 50, 50), 1), None), (face(info, (60, 10, 90, 50), 2), "\x01")])
    assert [region.get("Name") for region in regions(data)[1]] == [None, None]
    assert b"Name" not in data


def test_output_is_deterministic(library: ScanOutcome, tmp_path: Path) -> None:
    info = library.people[0].faces[0].photo
    pairs = [(face(info, (100, 50, 200, 150)), TRICKY)]
    assert sidecar_xml(info, pairs) == sidecar_xml(info, list(pairs))
    write_sidecars(library, tmp_path / "one")
    write_sidecars(library, tmp_path / "two")
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")


def test_sidecars_mirror_the_photo_folders(library: ScanOutcome, tmp_path: Path) -> None:
    before = snapshot(library.root)
    report = write_sidecars(library, tmp_path / "out")
    assert snapshot(library.root) == before  # nothing written beside the photos
    folder = tmp_path / "out" / "xmp"
    files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    assert files == sorted(
        ["2019/beach.jpg.xmp", "2020/summer/party.jpg.xmp", "backup/party.jpg.xmp", NON_UTF8 + ".xmp"]
    )  # no sidecar for lonely.jpg, which holds an unsorted face only
    assert os.fsencode(NON_UTF8 + ".xmp") in os.listdir(os.fsencode(folder))
    assert report.written == 4 and report.skipped == []
    assert [entry.name for entry in (tmp_path / "out").iterdir()] == ["xmp"]  # no temporary folder left

    _, beach = regions((folder / "2019/beach.jpg.xmp").read_bytes())
    assert [(r["Name"], r["x"], r["y"], r["w"], r["h"]) for r in beach] == [
        ("Alice", "0.375000", "0.500000", "0.250000", "0.500000")  # the unsorted face is left out
    ]
    party = (folder / "2020/summer/party.jpg.xmp").read_bytes()
    assert (folder / "backup/party.jpg.xmp").read_bytes() == party
    dimensions, found = regions(party)
    assert dimensions == {"w": "1000", "h": "500", "unit": "pixel"}
    assert [(r.get("Name"), r["x"], r["y"], r["w"], r["h"]) for r in found] == [
        ("Alice", "0.050000", "0.100000", "0.100000", "0.200000"),
        (None, "0.600000", "0.500000", "0.200000", "0.600000"),  # unnamed person: a region without a name
    ]


def test_re_export_removes_stale_sidecars(library: ScanOutcome, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_sidecars(library, out)
    assert (out / "xmp" / "2019/beach.jpg.xmp").is_file()
    library.people[0].faces = [f for f in library.people[0].faces if f.photo.relative != "2019/beach.jpg"]
    (out / ".xmp-tmp-deadbeef").mkdir()  # left by a killed export
    report = write_sidecars(library, out)
    assert not (out / "xmp" / "2019/beach.jpg.xmp").exists()
    assert not (out / "xmp" / "2019").exists()
    assert (out / "xmp" / "2020/summer/party.jpg.xmp").is_file()
    assert report.written == 3
    assert [entry.name for entry in out.iterdir()] == ["xmp"]


def test_paths_that_leave_the_folder_are_refused(library: ScanOutcome, tmp_path: Path) -> None:
    for bad in ("../escape.jpg", "/etc/passwd", "a/../../b.jpg", ""):
        info = Photo(library.root / "x.jpg", "x.jpg", None, None, 100, 100, copies=(bad,))
        library.people[0].faces.append(face(info, (1, 1, 50, 50), 9))
        for beside in (False, True):
            with pytest.raises(ValueError, match="not a plain relative path"):
                write_sidecars(library, tmp_path / "out", beside_originals=beside)
        library.people[0].faces.pop()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not list(library.root.rglob("*.xmp"))


def test_photos_without_a_usable_size_or_box_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    unknown = photo(root, "unknown.jpg", 0, 0)
    outside = photo(root, "outside.jpg", 100, 100)
    people = [Person("a", [face(unknown, (1, 1, 9, 9), 1), face(outside, (200, 200, 300, 300), 2)], 1, "A")]
    report = write_sidecars(ScanOutcome(root, people, [], [], [], STATS), tmp_path / "out")
    assert report.written == 0
    assert report.skipped == [
        ("outside.jpg", "no face box lies inside the photo"),
        ("unknown.jpg", "the photo's size is unknown"),
    ]
    with pytest.raises(ValueError, match="unknown"):
        sidecar_xml(unknown, [])


def test_beside_originals_never_replaces_an_existing_file(library: ScanOutcome, tmp_path: Path) -> None:
    root = library.root
    theirs = b"<x:xmpmeta>another tool's sidecar</x:xmpmeta>"
    (root / "2019/beach.jpg.xmp").write_bytes(theirs)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "linked.jpg").write_bytes(b"jpeg")
    (root / "link").symlink_to(outside)
    linked = Photo(root / "link/linked.jpg", "link/linked.jpg", None, None, 100, 100)
    gone = Photo(root / "gone.jpg", "gone.jpg", None, None, 100, 100)
    library.people[0].faces += [face(linked, (1, 1, 50, 50), 7), face(gone, (1, 1, 50, 50), 8)]

    report = write_sidecars(library, tmp_path / "unused", beside_originals=True)
    assert (root / "2019/beach.jpg.xmp").read_bytes() == theirs
    assert report.skipped == [
        ("2019/beach.jpg", "beach.jpg.xmp already exists there; not replacing it"),
        ("gone.jpg", "the photo no longer exists"),
        ("link/linked.jpg", "its folder lies outside the scanned folder (symbolic link)"),
    ]
    assert report.written == 3
    assert list(outside.iterdir()) == [outside / "linked.jpg"]
    assert not (tmp_path / "unused").exists()
    party = (root / "2020/summer/party.jpg.xmp").read_bytes()
    assert (root / "backup/party.jpg.xmp").read_bytes() == party
    assert [r.get("Name") for r in regions(party)[1]] == ["Alice", None]
    assert (root / (NON_UTF8 + ".xmp")).is_file()
    assert not list(root.rglob(".*.tmp"))

    again = write_sidecars(library, tmp_path / "unused", beside_originals=True)
    assert again.written == 0 and len(again.skipped) == 6  # our own sidecars are not replaced either
    assert (root / "2020/summer/party.jpg.xmp").read_bytes() == party


def test_beside_originals_without_hard_links(
    library: ScanOutcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(xmp.os, "link", no_link)
    (library.root / "2019/beach.jpg.xmp").write_bytes(b"theirs")
    report = write_sidecars(library, tmp_path / "unused", beside_originals=True)
    assert report.written == 3 and [item[0] for item in report.skipped] == ["2019/beach.jpg"]
    assert (library.root / "2019/beach.jpg.xmp").read_bytes() == b"theirs"
    assert regions((library.root / "backup/party.jpg.xmp").read_bytes())[1][0]["Name"] == "Alice"
    assert not list(library.root.rglob(".*.tmp"))


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")
def test_exiftool_reads_the_regions(tmp_path: Path) -> None:
    info = Photo(Path("/p/a.jpg"), "a.jpg", None, None, 400, 200)
    names = [TRICKY, None, "Zoë"]
    pairs = [(face(info, (40 * i + 10, 50, 40 * i + 40, 150), i), name) for i, name in enumerate(names)]
    path = tmp_path / "a.jpg.xmp"
    path.write_bytes(sidecar_xml(info, pairs))
    result = subprocess.run(
        ["exiftool", "-json", "-struct", "-charset", "utf8", "-XMP-mwg-rs:RegionInfo", str(path)],
        capture_output=True,
        check=True,
    )
    info_read = json.loads(result.stdout)[0]["RegionInfo"]
    assert info_read["AppliedToDimensions"] == {"W": 400, "H": 200, "Unit": "pixel"}
    assert [region.get("Name") for region in info_read["RegionList"]] == names
    assert [region["Type"] for region in info_read["RegionList"]] == ["Face"] * 3
    assert info_read["RegionList"][0]["Area"] == {"X": 0.0625, "Y": 0.5, "W": 0.075, "H": 0.5, "Unit": "normalized"}


def test_clashing_sidecar_names_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    info = photo(root, "a.jpg", 100, 100, copies=("a.jpg.xmp/b.jpg",))
    outcome = ScanOutcome(root, [Person("a", [face(info, (1, 1, 50, 50))], 1, "A")], [], [], [], STATS)
    report = write_sidecars(outcome, tmp_path / "out")
    assert report.written == 1
    assert report.skipped == [("a.jpg.xmp/b.jpg", "its sidecar's name clashes with another sidecar's folder")]
    assert (tmp_path / "out/xmp/a.jpg.xmp").is_file()


def test_unwritable_folders_are_reported(library: ScanOutcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(target: Path, data: bytes) -> bool:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(xmp, "_create", refuse)
    report = write_sidecars(library, tmp_path / "unused", beside_originals=True)
    assert report.written == 0
    assert report.skipped[0] == ("2019/beach.jpg", "cannot write beach.jpg.xmp: Permission denied")
