"""Any valid file name works in every output: long (255 bytes, multi-byte), hostile and non-UTF-8 names."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from facecluster import Library
from facecluster.cli import main
from facecluster.outputs.files import MAX_NAME_BYTES, fit_name, fs_bytes, write_atomic
from facecluster.pipeline.plan import ScanOptions
from tests.conftest import EXAMPLES
from tests.fakes import FakeAnalyzer, photo_bytes

LONG_NAMES = [
    "a" * 251 + ".png",  # 255 bytes: the longest name Linux allows
    "é" * 125 + ".png",  # 254 bytes in 129 characters
    "😀" * 62 + ".png",  # 252 bytes, four to a character
]
HOSTILE_NAMES = [
    "new\nline.png",
    "cr\rreturn.png",
    "quotes ' \" and <b>&amp;</b>.png".replace("/", "_"),
    "control\x01\x1b[31m\x7f.png",
    "tab\there.png",
    "\u202eevil.png",
    "nonchar\ufffe\uffff.png",
]
RAW_NAMES = [b"latin1-\xe9t\xe9.png", b"\xff" * 251 + b".png"]  # not UTF-8; the second is 255 bytes
NOT_IN_HTML = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(f"{chr(plane | 0xFFFE)}{chr(plane | 0xFFFF)}" for plane in range(0, 0x110000, 0x10000))
    + "\ud800-\udfff]"
)


def make_photos(root: Path) -> dict[str, bytes]:
    """Photos of one person under awkward names (two of them twice, in two folders); relative path -> bytes."""
    root.mkdir(parents=True)
    written = {}
    names = [*LONG_NAMES, *HOSTILE_NAMES, *(os.fsdecode(raw) for raw in RAW_NAMES)]
    names += [f"{folder}/{'b' * 251}.png" for folder in ("x", "y")]  # same 255-byte name in two albums' entries
    for variant, relative in enumerate(names):
        path = root / relative
        path.parent.mkdir(exist_ok=True)
        written[relative] = photo_bytes([1], variant)
        path.write_bytes(written[relative])
    for variant, relative in enumerate(["no face\nhere.png", "c" * 251 + ".png", os.fsdecode(b"no face \xff.png")]):
        (root / relative).write_bytes(photo_bytes([None], 100 + variant))
    (root / os.fsdecode(b"broken \xff\n.jpg")).write_bytes(b"not a photo")
    return written


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in strings(key) + strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def names_under(folder: Path) -> list[bytes]:
    return [name for _, folders, files in os.walk(os.fsencode(folder)) for name in folders + files]


@pytest.mark.parametrize("mode", ["symlink", "copy"])
def test_every_output_takes_long_hostile_and_non_utf8_names(tmp_path: Path, mode: str) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    written = make_photos(photos)
    library = Library.create(photos, out, load_analyzer=lambda device, workers: FakeAnalyzer())
    outcome = library.scan(ScanOptions(xmp=True), album_mode=mode)
    assert outcome.stats.faces == len(written) and outcome.stats.no_faces == 3 and outcome.stats.skipped == 1
    assert all(len(name) <= MAX_NAME_BYTES for name in names_under(out))

    # albums: one entry per photo, holding that photo
    [album] = [p for p in (out / "people").iterdir() if p.is_dir() and p.name != "unsorted"]
    entries = sorted(album.iterdir())
    assert sorted(entry.read_bytes() for entry in entries) == sorted(written.values())
    assert all(entry.suffix == ".png" for entry in entries)

    # no-faces.txt: one line per photo, backslash-escaped
    lines = (out / "people" / "no-faces.txt").read_bytes().splitlines()
    assert sorted(lines) == sorted([b"c" * 251 + b".png", b"no face \xff.png", b"no face\\nhere.png"])

    # people.json: valid JSON of valid Unicode, every photo listed
    document = json.loads((out / "people.json").read_text(encoding="utf-8"))
    for text in strings(document):
        text.encode("utf-8")  # no lone surrogates
    listed = {face["photo"] for person in document["people"] for face in person["faces"]}
    assert len(listed) == len(written) and "latin1-\ufffdt\ufffd.png" in listed and "new\nline.png" in listed
    assert document["skipped"][0]["path"] == "broken \ufffd\n.jpg"

    # report.html: only characters HTML allows, markup escaped, every photo linked
    page = (out / "report.html").read_text(encoding="utf-8")
    assert not NOT_IN_HTML.findall(page)
    assert "&lt;b&gt;&amp;amp;&lt;" in page and "<b>&amp;" not in page
    links = HrefCollector.of(page)
    assert len({href for href in links if href.startswith("file:")}) == len(written) + 3

    # XMP: a well-formed sidecar for every photo, long names shortened with a hash
    sidecars = list((out / "xmp").rglob("*.xmp"))
    assert len(sidecars) == len(written)
    for sidecar in sidecars:
        ET.fromstring(sidecar.read_bytes())
    assert not os.path.exists(out / "xmp" / (LONG_NAMES[1] + ".xmp"))
    assert (out / "xmp" / fit_name(LONG_NAMES[1], ".xmp")).is_file()
    assert (out / "xmp" / ("new\nline.png.xmp")).is_file()


class HrefCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value or "" for name, value in attrs if name == "href"]

    @classmethod
    def of(cls, page: str) -> list[str]:
        parser = cls()
        parser.feed(page)
        parser.close()
        return parser.hrefs


def test_sidecars_beside_the_originals_skip_names_that_would_be_too_long(tmp_path: Path) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    written = make_photos(photos)
    library = Library.create(photos, out, load_analyzer=lambda device, workers: FakeAnalyzer())
    library.scan()
    report = library.write_xmp(beside_originals=True)
    too_long = {relative for relative in written if len(fs_bytes(relative.split("/")[-1])) + 4 > MAX_NAME_BYTES}
    assert len(too_long) == 6
    assert {relative: reason for relative, reason in report.skipped} == dict.fromkeys(
        too_long, "its sidecar's name would be longer than 255 bytes"
    )
    assert report.written == len(written) - len(too_long)
    assert (photos / "new\nline.png.xmp").is_file() and not os.path.exists(photos / ("é" * 125 + ".png.xmp"))
    assert not [name for name in names_under(photos) if name.endswith(b".tmp")]


def test_a_sidecar_path_too_long_for_the_system_is_skipped_and_the_others_written(tmp_path: Path) -> None:
    photos = tmp_path / "p"
    folders, room = [], 4080 - len(fs_bytes(str(photos / "deep.png")))  # within PATH_MAX (4,096) under photos/ ...
    while room > 1:
        folders.append("d" * min(250, room - 1))
        room -= len(folders[-1]) + 1
    deep = photos.joinpath(*folders)
    deep.mkdir(parents=True)
    (deep / "deep.png").write_bytes(photo_bytes([1], 1))
    (photos / "top.png").write_bytes(photo_bytes([1], 2))
    out = tmp_path / ("o" * 250)  # ... but not under out/xmp/
    library = Library.create(photos, out, load_analyzer=lambda device, workers: FakeAnalyzer())
    library.scan()
    report = library.write_xmp()
    assert report.skipped == [("/".join([*folders, "deep.png"]), "its sidecar's path would be too long")]
    assert report.written == 1 and (out / "xmp" / "top.png.xmp").is_file()


def test_fit_name_is_stable_distinct_and_cut_between_characters() -> None:
    assert fit_name("photo.jpg") == "photo.jpg" and fit_name("photo", ".jpg.xmp") == "photo.jpg.xmp"
    for name in ["a" * 300, "é" * 200, "😀" * 80, os.fsdecode(b"\xff" * 300), "a" * 250 + "é"]:
        fitted = fit_name(name, ".xmp")
        assert len(fs_bytes(fitted)) <= MAX_NAME_BYTES and fitted.endswith(".xmp")
        assert fitted == fit_name(name, ".xmp") and fitted != fit_name(name + "x", ".xmp")
        assert fitted.startswith(name[:40])
        if "\udcff" not in name:
            fs_bytes(fitted).decode("utf-8")  # no character cut in half
    assert len(fs_bytes(fit_name("n", "." + "x" * 300))) <= MAX_NAME_BYTES


def test_a_file_named_with_all_255_bytes_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / ("é" * 127 + "x")
    write_atomic(path, b"data")
    assert path.read_bytes() == b"data" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_faces_and_verify_print_non_utf8_names_as_valid_unicode(tmp_path: Path) -> None:
    photo = Path(os.fsdecode(os.fsencode(tmp_path) + b"/\xe9t\xe9.jpg"))
    broken = Path(os.fsdecode(os.fsencode(tmp_path) + b"/bad\xff.jpg"))
    photo.write_bytes((EXAMPLES / "George_W_Bush_0001.jpg").read_bytes())
    broken.write_bytes(b"not a photo")
    runner = CliRunner()
    faces = runner.invoke(main, ["faces", str(photo), str(broken), "--device", "cpu"])
    verify = runner.invoke(main, ["verify", str(photo), str(photo), "--json", "--device", "cpu"])
    failed = runner.invoke(main, ["verify", str(broken), str(photo), "--json", "--device", "cpu"])
    assert (faces.exit_code, verify.exit_code, failed.exit_code) == (2, 0, 2)
    for result in (faces, verify, failed):
        assert "\\udc" not in result.output and "\udce9" not in result.output
    assert json.loads(faces.stdout.splitlines()[0])["file"].endswith("/\ufffdt\ufffd.jpg")
    assert json.loads(verify.stdout)["first"].endswith("/\ufffdt\ufffd.jpg")
    assert json.loads(failed.stdout.splitlines()[0])["error"].endswith(
        "/bad\ufffd.jpg: not an image file (unrecognised format)"
    )
