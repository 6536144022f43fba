"""Album, people.json and report.html writers, on a synthetic scan outcome."""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import shutil
import subprocess
from functools import partial
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecluster.outputs import write_outputs
from facecluster.outputs.albums import write_albums
from facecluster.outputs.people_json import write_people_json
from facecluster.outputs.report import HEADLESS_CHROMIUM_FLAGS, write_report
from facecluster.types import FaceRecord, Person, Photo, ScanOutcome, ScanStats, SkippedFile

HOSTILE = "<img src=x onerror=alert(1)>.jpg"
QUOTED = 'it\'s a "quoted" name.jpg'
NON_UTF8 = os.fsdecode(b"caf\xe9.jpg")
# Solid thumbnail colours, one per person, unlike anything in the page's own styling.
COLOURS = {"alice": (230, 20, 20), "bob": (20, 200, 40), "carol": (150, 20, 220)}
UNSORTED_COLOUR = (240, 200, 0)
CHROMIUM = Path("/usr/bin/chromium")


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (48, 36)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


STATS = ScanStats(
    method="adaptive",
    threshold=0.374,
    photos=9,
    faces=10,
    people=3,
    unsorted=2,
    no_faces=1,
    skipped=1,
    device="cpu",
    seconds=3.25,
)


def make_outcome(tmp_path: Path) -> ScanOutcome:
    """A photo folder with three people, an unsorted face, a photo with no face and a skipped file."""
    root = tmp_path / "photos"
    face_id = iter(range(1, 100))

    def photo(relative: str, colour: tuple[int, int, int], taken: str | None) -> Photo:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(colour, (64, 48)))
        return Photo(path=path, relative=relative, taken=taken, camera="Cam <b>", width=64, height=48)

    def face(info: Photo, colour: tuple[int, int, int], usable: bool = True) -> FaceRecord:
        return FaceRecord(
            face_id=next(face_id),
            photo=info,
            box=(1.234, 2.345, 30.456, 40.567),
            score=0.98765,
            size=39.3,
            sharpness=123.456,
            usable=usable,
            load_thumbnail=partial(bytes, jpeg(colour)),
        )

    group = photo("2021/group.jpg", (90, 90, 90), "2021-06-01 12:00:00")
    alice = [photo("2020/alice1.jpg", (100, 0, 0), "2020-01-02 10:00:00"), photo("2020/alice2.jpg", (0, 0, 0), None)]
    # Two photos with the same file name in bob's album.
    bob = [
        photo("2019/IMG_0001.jpg", (0, 100, 0), "2019-05-05 08:00:00"),
        photo("2020/IMG_0001.jpg", (255, 255, 255), None),
    ]
    carol = [photo(f"misc/{HOSTILE}", (0, 0, 100), "2022-02-02 02:02:02"), photo(f"misc/{QUOTED}", (0, 90, 90), None)]
    lonely = photo(f"misc/{NON_UTF8}", (50, 50, 0), None)
    empty = photo("landscape.jpg", (0, 50, 50), "2018-01-01 00:00:00")
    (root / "broken.jpg").write_bytes(b"not a jpeg")

    people = [
        Person("alice", [face(p, COLOURS["alice"]) for p in alice] + [face(group, COLOURS["alice"])]),
        Person("bob", [face(p, COLOURS["bob"]) for p in bob] + [face(group, COLOURS["bob"])]),
        Person("carol", [face(p, COLOURS["carol"]) for p in carol]),
    ]
    return ScanOutcome(
        root=root,
        people=people,
        unsorted=[face(lonely, UNSORTED_COLOUR), face(group, UNSORTED_COLOUR, usable=False)],
        no_faces=[empty],
        skipped=[SkippedFile("broken.jpg", "cannot identify image file <broken.jpg>")],
        stats=STATS,
    )


def snapshot(folder: Path) -> dict[str, tuple[bool, bytes]]:
    """Every entry under ``folder``: whether it is a link, and its bytes (or link target)."""
    state = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            state[str(path)] = (True, os.fsencode(os.readlink(path)))
        elif path.is_file():
            state[str(path)] = (False, path.read_bytes())
        else:
            state[str(path)] = (False, b"<dir>")
    return state


@pytest.fixture()
def outcome(tmp_path: Path) -> ScanOutcome:
    return make_outcome(tmp_path)


def album_names(output: Path) -> dict[str, set[str]]:
    people = output / "people"
    return {child.name: {entry.name for entry in child.iterdir()} for child in people.iterdir() if child.is_dir()}


@pytest.mark.parametrize("mode", ["symlink", "copy", "hardlink"])
def test_albums_hold_each_persons_photos(outcome: ScanOutcome, tmp_path: Path, mode: str) -> None:
    output = tmp_path / "out"
    before = snapshot(outcome.root)
    write_albums(outcome, output, mode)

    names = album_names(output)
    assert set(names) == {"alice", "bob", "carol", "unsorted"}
    assert names["alice"] == {"alice1.jpg", "alice2.jpg", "group.jpg"}
    assert names["carol"] == {HOSTILE, QUOTED}
    assert names["unsorted"] == {NON_UTF8, "group.jpg"}
    # The two IMG_0001.jpg of bob's album both got a hash of their relative path.
    bob = sorted(names["bob"] - {"group.jpg"})
    assert len(bob) == 2 and all(name.startswith("IMG_0001-") and name.endswith(".jpg") for name in bob)
    assert (output / "people" / "no-faces.txt").read_text() == "landscape.jpg\n"
    assert sorted(os.listdir(output)) == ["people"]

    originals = {p.relative: p.path for person in outcome.people for p in person.photos}
    for person in outcome.people:
        for entry in (output / "people" / person.album).iterdir():
            if entry.name.startswith("IMG_0001-"):
                candidates = [path for rel, path in originals.items() if rel.endswith("IMG_0001.jpg")]
            else:
                candidates = [path for path in originals.values() if path.name == entry.name]
            assert len(candidates) >= 1
            if mode == "symlink":
                assert entry.is_symlink()
                target = Path(os.readlink(entry))
                assert target.is_absolute() and target in {path.resolve() for path in candidates}
                assert entry.read_bytes() == target.read_bytes()
            else:
                assert not entry.is_symlink()
                matches = [path for path in candidates if path.read_bytes() == entry.read_bytes()]
                assert len(matches) == 1, entry
                same_inode = entry.stat().st_ino == matches[0].stat().st_ino
                assert same_inode == (mode == "hardlink")
    assert snapshot(outcome.root) == before


def test_albums_rerun_replaces_previous(outcome: ScanOutcome, tmp_path: Path) -> None:
    output = tmp_path / "out"
    write_albums(outcome, output)
    (output / "keep.txt").write_text("mine")
    outcome.people = [person for person in outcome.people if person.album != "bob"]
    outcome.no_faces = []
    write_albums(outcome, output, "copy")
    assert set(album_names(output)) == {"alice", "carol", "unsorted"}
    assert not any(entry.is_symlink() for entry in (output / "people").rglob("*"))
    assert (output / "people" / "no-faces.txt").read_text() == ""
    assert sorted(os.listdir(output)) == ["keep.txt", "people"]


def test_albums_clean_up_after_a_killed_run(outcome: ScanOutcome, tmp_path: Path) -> None:
    output = tmp_path / "out"
    (output / ".people-tmp-dead").mkdir(parents=True)
    (output / ".people-tmp-dead" / "half").write_text("x")
    write_albums(outcome, output)
    assert sorted(os.listdir(output)) == ["people"]


def test_temporary_files_of_a_killed_run_are_removed_and_nothing_else(outcome: ScanOutcome, tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    for name in (".people.json-k2x9a0qz.tmp", ".report.html-0f3jd8sl.tmp", ".mine.tmp", "notes.tmp"):
        (output / name).write_text("x")
    write_outputs(outcome, output)
    assert sorted(p.name for p in output.iterdir() if p.name.endswith(".tmp")) == [".mine.tmp", "notes.tmp"]


def test_albums_refuse_targets_outside_root(outcome: ScanOutcome, tmp_path: Path) -> None:
    output = tmp_path / "out"
    write_albums(outcome, output)
    before = snapshot(output)
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(jpeg((1, 2, 3)))
    stray = Photo(path=outside, relative="elsewhere.jpg", taken=None, camera=None, width=1, height=1)
    outcome.people[0].faces.append(
        FaceRecord(99, stray, (0, 0, 1, 1), 0.9, 1.0, 1.0, True, jpeg((1, 2, 3)))  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError, match="outside"):
        write_albums(outcome, output)
    assert snapshot(output) == before


@pytest.mark.parametrize("mode", ["symlink", "copy", "hardlink"])
def test_albums_lead_to_the_real_file_behind_a_link(outcome: ScanOutcome, tmp_path: Path, mode: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    real = elsewhere / "real.jpg"
    real.write_bytes(b"outside the photo folder")
    (elsewhere / "up").symlink_to(elsewhere, target_is_directory=True)
    linked = outcome.root / "linked.jpg"
    linked.symlink_to(elsewhere / "up" / "real.jpg")  # a chain of links
    info = Photo(path=linked, relative="linked.jpg", taken=None, camera=None, width=1, height=1)
    outcome.unsorted.append(FaceRecord(98, info, (0, 0, 1, 1), 0.9, 1.0, 1.0, True, b""))
    write_albums(outcome, tmp_path / "out", mode)
    entry = tmp_path / "out" / "people" / "unsorted" / "linked.jpg"
    assert entry.read_bytes() == b"outside the photo folder"
    if mode == "symlink":
        assert os.readlink(entry) == os.path.realpath(real)
    else:
        assert not entry.is_symlink()
        assert (entry.stat().st_ino == real.stat().st_ino) == (mode == "hardlink")


def test_hard_links_fall_back_to_copies_photo_by_photo(
    outcome: ScanOutcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = os.link

    def other_device(source: str | os.PathLike[str], entry: str | os.PathLike[str]) -> None:
        if "2020" in os.fspath(source):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        link(source, entry)

    monkeypatch.setattr(os, "link", other_device)
    write_albums(outcome, tmp_path / "out", "hardlink")
    album = tmp_path / "out" / "people" / "alice"
    for name, original in [
        ("alice1.jpg", "2020/alice1.jpg"),
        ("alice2.jpg", "2020/alice2.jpg"),
        ("group.jpg", "2021/group.jpg"),
    ]:
        source = outcome.root / original
        assert (album / name).read_bytes() == source.read_bytes()
        assert ((album / name).stat().st_ino == source.stat().st_ino) == name.startswith("group")


@pytest.mark.parametrize("key", ["", "..", "a/b", "unsorted", ".hidden"])
def test_albums_refuse_unsafe_keys(outcome: ScanOutcome, tmp_path: Path, key: str) -> None:
    outcome.people[0].album = key
    with pytest.raises(ValueError):
        write_albums(outcome, tmp_path / "out")


def test_albums_reject_unknown_mode(outcome: ScanOutcome, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        write_albums(outcome, tmp_path / "out", "move")


def test_people_json(outcome: ScanOutcome, tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    path = write_people_json(outcome, output)
    assert path == output / "people.json"
    raw = path.read_bytes()
    raw.decode("ascii")
    assert b"\\udc" not in raw  # no lone surrogates, which strict parsers reject
    document = json.loads(raw)
    assert document["version"] == 2
    assert document["root"] == str(outcome.root)
    assert document["summary"] == STATS.as_dict()
    assert document["summary"]["people"] == 3 and document["summary"]["seconds"] == 3.25
    assert [p["key"] for p in document["people"]] == [f"p{p['id']}" for p in document["people"]]
    counts = {p["album"]: (p["photo_count"], p["face_count"], len(p["faces"])) for p in document["people"]}
    assert counts == {"alice": (3, 3, 3), "bob": (3, 3, 3), "carol": (2, 2, 2)}
    alice = document["people"][0]["faces"]
    assert [face["photo"] for face in alice] == ["2020/alice1.jpg", "2021/group.jpg", "2020/alice2.jpg"]
    first = alice[0]
    assert set(first) >= {"face_id", "photo", "path", "box", "score", "size", "sharpness", "taken"}
    assert first["box"] == [1.23, 2.35, 30.46, 40.57]
    assert first["path"] == str(outcome.root / "2020/alice1.jpg")
    assert first["taken"] == "2020-01-02 10:00:00"
    assert {face["photo"] for face in document["unsorted"]} == {"misc/caf\ufffd.jpg", "2021/group.jpg"}
    assert document["no_faces"] == ["landscape.jpg"]
    assert document["skipped"] == [{"path": "broken.jpg", "reason": "cannot identify image file <broken.jpg>"}]
    assert {p["photo"] for p in document["people"][2]["faces"]} == {f"misc/{HOSTILE}", f"misc/{QUOTED}"}
    assert sorted(os.listdir(output)) == ["people.json"]


def test_report(outcome: ScanOutcome, tmp_path: Path) -> None:
    output = tmp_path / "out"
    before = snapshot(outcome.root)
    path = write_report(outcome, output)
    assert path == output / "report.html"
    page = path.read_text(encoding="utf-8")
    for person in outcome.people:
        assert f">{person.album}</h2>" in page
    assert "<img src=x onerror" not in page
    assert "onerror=alert(1)&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in page
    assert "it&#x27;s a &quot;quoted&quot; name.jpg" in page
    assert "cannot identify image file &lt;broken.jpg&gt;" in page
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    assert "misc/caf\ufffd.jpg" in page
    assert "2019-05-05 \u2013 2021-06-01 (+1 undated)" in page
    faces = [face for person in outcome.people for face in person.faces] + outcome.unsorted
    for face in faces:
        assert f'src="thumbs/{face.face_id}.jpg"' in page
        assert (output / "thumbs" / f"{face.face_id}.jpg").read_bytes() == face.thumbnail
    assert (outcome.root / "2020/alice1.jpg").as_uri() in page
    assert sorted(os.listdir(output)) == ["report.html", "thumbs"]
    assert snapshot(outcome.root) == before


def test_report_rerun_updates_thumbs(outcome: ScanOutcome, tmp_path: Path) -> None:
    output = tmp_path / "out"
    outcome = dataclasses.replace(outcome, library_id="0123456789abcdef")  # thumbnails are kept per index
    write_report(outcome, output)
    removed = outcome.people.pop(1)
    kept = outcome.people[0].faces[0]
    marker = output / "thumbs" / f"{kept.face_id}.jpg"
    mtime = marker.stat().st_mtime_ns
    os.utime(marker, ns=(mtime - 10**9, mtime - 10**9))
    write_report(outcome, output)
    assert marker.stat().st_mtime_ns == mtime - 10**9  # present and unchanged: not rewritten
    for face in removed.faces:
        assert not (output / "thumbs" / f"{face.face_id}.jpg").exists()
    assert ">bob</h2>" not in (output / "report.html").read_text(encoding="utf-8")


def test_all_writers_together_write_only_inside_output(outcome: ScanOutcome, tmp_path: Path) -> None:
    output = tmp_path / "out"
    outside_before = {p.name for p in tmp_path.iterdir()}
    root_before = snapshot(outcome.root)
    write_albums(outcome, output, "hardlink")
    write_people_json(outcome, output)
    write_report(outcome, output)
    assert {p.name for p in tmp_path.iterdir()} == outside_before | {"out"}
    assert snapshot(outcome.root) == root_before
    assert sorted(os.listdir(output)) == ["people", "people.json", "report.html", "thumbs"]


# --- headless Chromium: the page renders from disk, thumbnails show, and nothing runs ---


def chromium_render(page: Path, profile: Path, screenshot: Path | None = None, timeout: float = 20) -> str:
    """Render ``page`` with headless Chromium; return the DOM, or write a 1200x1600 PNG screenshot."""
    command = [str(CHROMIUM), *HEADLESS_CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    if screenshot is None:
        command.append("--dump-dom")
    else:
        command += [f"--screenshot={screenshot}", "--window-size=1200,1600"]
    command.append(page.resolve().as_uri())
    result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0 or (screenshot is not None and not screenshot.is_file()):
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr.decode(errors='replace')[-2000:]}")
    return result.stdout.decode("utf-8", "replace")


def has_colour(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 16, minimum: int = 200) -> bool:
    """Whether at least ``minimum`` pixels are within ``tolerance`` of ``colour`` on every channel."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    close = np.all(np.abs(pixels - np.array(colour, dtype=np.int16)) <= tolerance, axis=-1)
    return int(close.sum()) >= minimum


class TagCollector(HTMLParser):
    """Every element of a document, with its attribute names."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, [name for name, _ in attrs]))


@pytest.fixture()
def chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip("/usr/bin/chromium is not installed")
    return CHROMIUM


def test_report_in_chromium(outcome: ScanOutcome, tmp_path: Path, chromium: Path) -> None:
    output = tmp_path / "out"
    page = write_report(outcome, output)
    profile = tmp_path / "profile"
    try:
        shot = tmp_path / "shot.png"
        chromium_render(page, profile, screenshot=shot)
        with Image.open(shot) as image:
            image.load()
            for key, colour in COLOURS.items():
                assert has_colour(image, colour), f"{key}'s thumbnails did not render"
            assert has_colour(image, UNSORTED_COLOUR), "unsorted thumbnails did not render"

        dom = chromium_render(page, profile)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert ">carol</h2>" in dom
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in dom
    tags = TagCollector()
    tags.feed(dom)
    assert "script" not in {tag for tag, _ in tags.seen}
    assert not [(tag, name) for tag, names in tags.seen for name in names if name.startswith("on")]
    assert [tag for tag, _ in tags.seen].count("img") == len(outcome.unsorted) + sum(
        len(p.faces) for p in outcome.people
    )
