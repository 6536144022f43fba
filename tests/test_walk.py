"""Libraries made of symbolic links: followed wherever they lead, loops and dead ends reported, albums at real files."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from facecluster import Library, ScanOptions
from facecluster.cli import main
from facecluster.pipeline import walk
from facecluster.pipeline.walk import walk_photos
from facecluster.types import ScanOutcome
from tests.fakes import FakeAnalyzer, write_photo

ALICE, BOB = 1, 2

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


def walked(root: Path, **options: object) -> tuple[list[str], dict[str, str]]:
    """Relative paths found, and the problems reported (relative -> reason)."""
    problems: dict[str, str] = {}
    found = [f.relative for f in walk_photos(root, on_problem=problems.__setitem__, **options)]  # type: ignore[arg-type]
    return found, problems


def scanned(photos: Path, output: Path, **options: object) -> ScanOutcome:
    fake = FakeAnalyzer()
    return Library.create(photos, output, load_analyzer=lambda device, workers: fake).scan(ScanOptions(**options))  # type: ignore[arg-type]


def skipped(outcome: ScanOutcome) -> dict[str, str]:
    return {item.relative: item.reason for item in outcome.skipped}


@pytest.fixture()
def elsewhere(tmp_path: Path) -> Path:
    """Photos outside the scanned folder: Alice twice, Bob once, in a folder 'trip'."""
    folder = tmp_path / "elsewhere"
    write_photo(folder / "alice0.png", [ALICE], variant=0)
    write_photo(folder / "alice1.png", [ALICE], variant=1)
    write_photo(folder / "trip" / "bob.png", [BOB], variant=2)
    return folder


def album_targets(output: Path) -> dict[str, str]:
    """Album entry (person folder/name) -> where its symbolic link points."""
    people = output / "people"
    return {
        entry.relative_to(people).as_posix(): os.readlink(entry) for entry in people.rglob("*") if entry.is_symlink()
    }


def test_a_folder_of_links_to_photos_elsewhere_is_scanned(tmp_path: Path, elsewhere: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("alice0.png", "alice1.png"):
        (photos / name).symlink_to(elsewhere / name)
    (photos / "trip").symlink_to(elsewhere / "trip", target_is_directory=True)
    outcome = scanned(photos, tmp_path / "out")
    assert outcome.stats.files == 3 and outcome.stats.photos == 3 and outcome.stats.faces == 3
    assert outcome.stats.skipped == 0 and outcome.stats.people == 1  # Alice; Bob's single face stays unsorted
    targets = album_targets(tmp_path / "out")
    real = {name: os.path.realpath(elsewhere / name) for name in ("alice0.png", "alice1.png", "trip/bob.png")}
    assert sorted(targets.values()) == sorted(real.values())
    assert targets["unsorted/bob.png"] == real["trip/bob.png"]
    assert all(Path(target).read_bytes() for target in targets.values())


def test_albums_of_a_linked_library_still_work_when_the_links_are_gone(tmp_path: Path, elsewhere: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "2020").mkdir(parents=True)
    (photos / "2020" / "alice0.png").symlink_to(elsewhere / "alice0.png")
    (photos / "2020" / "alice1.png").symlink_to(elsewhere / "alice1.png")
    for mode in ("symlink", "copy", "hardlink"):
        output = tmp_path / mode
        fake = FakeAnalyzer()
        Library.create(photos, output, load_analyzer=lambda device, workers, fake=fake: fake).scan(album_mode=mode)
        entries = [p for p in (output / "people").glob("person_*/*") if p.is_file()]
        assert len(entries) == 2
        for entry in entries:
            original = elsewhere / entry.name
            assert entry.read_bytes() == original.read_bytes()
            assert entry.is_symlink() == (mode == "symlink")
            assert (entry.stat().st_ino == original.stat().st_ino) == (mode != "copy")
    for link in (photos / "2020").iterdir():
        link.unlink()
    assert all(entry.read_bytes() for entry in (tmp_path / "symlink" / "people").glob("person_*/*"))


def test_a_linked_folder_outside_is_scanned_under_the_links_name(tmp_path: Path, elsewhere: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "home.png", [BOB], variant=9)
    (photos / "away").symlink_to(elsewhere, target_is_directory=True)
    found, problems = walked(photos)
    assert found == ["home.png", "away/alice0.png", "away/alice1.png", "away/trip/bob.png"]
    assert problems == {}


def test_a_link_to_a_parent_folder_is_a_loop_reported_once(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "a" / "b" / "alice.png", [ALICE])
    (photos / "a" / "b" / "up").symlink_to(photos / "a", target_is_directory=True)
    (photos / "a" / "top").symlink_to(photos, target_is_directory=True)
    (photos / "a" / "self").symlink_to("self")  # a link to itself
    found, problems = walked(photos)
    assert found == ["a/b/alice.png"]
    assert set(problems) == {"a/b/up", "a/top", "a/self"}
    assert "loop" in problems["a/b/up"] and "'a'" in problems["a/b/up"]
    assert "loop" in problems["a/top"] and "the scanned folder" in problems["a/top"]
    assert "leads back to itself" in problems["a/self"]


def test_a_loop_leaving_the_folder_and_coming_back_terminates(tmp_path: Path, elsewhere: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "mine.png", [ALICE])
    (photos / "away").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "trip" / "back").symlink_to(photos, target_is_directory=True)
    found, problems = walked(photos)
    assert found == ["mine.png", "away/alice0.png", "away/alice1.png", "away/trip/bob.png"]
    assert list(problems) == ["away/trip/back"] and "loop" in problems["away/trip/back"]


def test_a_folder_inside_and_linked_is_scanned_once_under_its_own_path(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "zoo" / "alice.png", [ALICE])
    (photos / "best").symlink_to(photos / "zoo", target_is_directory=True)  # sorted before the real folder
    (photos / "also").symlink_to(photos / "zoo", target_is_directory=True)
    found, problems = walked(photos)
    assert found == ["zoo/alice.png"]
    assert set(problems) == {"also", "best"} and all("same folder as 'zoo'" in r for r in problems.values())


def test_two_links_to_one_folder_outside_scan_it_once(tmp_path: Path, elsewhere: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "one").symlink_to(elsewhere / "trip", target_is_directory=True)
    (photos / "two").symlink_to(elsewhere / "trip", target_is_directory=True)
    found, problems = walked(photos)
    assert found == ["one/bob.png"]
    assert list(problems) == ["two"] and "same folder as 'one'" in problems["two"]


def test_broken_links_are_reported_and_keep_their_photos_in_the_index(tmp_path: Path, elsewhere: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "here.png", [BOB])
    (photos / "drive").symlink_to(elsewhere, target_is_directory=True)
    (photos / "gone.png").symlink_to(tmp_path / "nowhere.png")
    first = scanned(photos, tmp_path / "out")
    assert first.stats.photos == 4 and skipped(first) == {
        "gone.png": "broken symbolic link (its target does not exist); not followed"
    }
    elsewhere.rename(tmp_path / "unmounted")  # the drive the link leads to is not there
    second = scanned(photos, tmp_path / "out")
    assert set(skipped(second)) == {"gone.png", "drive"} and "broken" in skipped(second)["drive"]
    assert second.stats.photos == 4  # the photos behind the link are kept until it leads somewhere again


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_link_to_a_fifo_is_never_opened(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "alice.png", [ALICE])
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    (photos / "pipe.jpg").symlink_to(fifo)
    os.mkfifo(photos / "direct.jpg")
    (photos / "null.jpg").symlink_to(os.devnull)
    result: list[ScanOutcome] = []
    scan = threading.Thread(target=lambda: result.append(scanned(photos, tmp_path / "out")), daemon=True)
    scan.start()
    scan.join(timeout=60)
    if scan.is_alive():  # it blocked on a pipe: give it an end so the thread can finish
        for pipe in (fifo, photos / "direct.jpg"):
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the scan opened a FIFO")
    assert result[0].stats.photos == 1
    assert skipped(result[0]) == {
        "direct.jpg": "a FIFO (named pipe); not read",
        "null.jpg": "symbolic link to a device; not followed",
        "pipe.jpg": "symbolic link to a FIFO (named pipe); not followed",
    }


def test_links_into_the_output_folder_are_not_followed(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "alice.png", [ALICE])
    output = tmp_path / "out"
    scanned(photos, output)
    (photos / "albums").symlink_to(output / "people", target_is_directory=True)
    entry = next((output / "people").glob("*/alice.png"))
    (photos / "favourite.png").symlink_to(entry)  # leads on to the original, but through the output folder
    outcome = scanned(photos, output)
    assert outcome.stats.files == 1
    assert skipped(outcome) == {
        "albums": "symbolic link into the output folder; not followed",
        "favourite.png": "symbolic link into the output folder; not followed",
    }


def test_following_links_can_be_turned_off(tmp_path: Path, elsewhere: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "here.png", [BOB])
    (photos / "alice.png").symlink_to(elsewhere / "alice0.png")
    (photos / "trip").symlink_to(elsewhere / "trip", target_is_directory=True)
    (photos / "notes.txt").symlink_to(elsewhere / "alice0.png")  # not a photo by name: not worth a word
    outcome = scanned(photos, tmp_path / "out", follow_symlinks=False)
    assert outcome.stats.files == 1
    reason = "symbolic link; not followed (following links is turned off)"
    assert skipped(outcome) == {"alice.png": reason, "trip": reason}


def test_the_cli_follows_links_unless_told_not_to(tmp_path: Path, elsewhere: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "here.png", [BOB])
    (photos / "trip").symlink_to(elsewhere / "trip", target_is_directory=True)

    def dry_run(*args: str) -> dict:
        result = CliRunner().invoke(
            main, ["scan", str(photos), "-o", str(tmp_path / "out"), "--dry-run", "--json", *args]
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert dry_run()["analyse"] == ["here.png", "trip/bob.png"]
    assert dry_run("--follow-symlinks")["analyse"] == ["here.png", "trip/bob.png"]
    refused = dry_run("--no-follow-symlinks")
    assert refused["analyse"] == ["here.png"] and [p["path"] for p in refused["not_scanned"]] == ["trip"]
    assert "link" in refused["not_scanned"][0]["reason"]


def test_a_photo_and_a_link_to_it_are_one_photo_with_two_paths(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "2020" / "alice.png", [ALICE, BOB])
    write_photo(photos / "2020" / "alice-again.png", [ALICE], variant=3)
    (photos / "favourites").mkdir()
    (photos / "favourites" / "best.png").symlink_to(photos / "2020" / "alice.png")
    fake = FakeAnalyzer()
    outcome = Library.create(photos, tmp_path / "out", load_analyzer=lambda device, workers: fake).scan()
    assert outcome.stats.files == 3 and outcome.stats.photos == 2 and outcome.stats.faces == 3
    assert len(fake.seen) == 2  # the linked content was analysed once
    (alice,) = outcome.people
    assert len(alice.faces) == 2
    (photo,) = [p for p in alice.photos if p.copies]
    assert {photo.relative, *photo.copies} == {"2020/alice.png", "favourites/best.png"}
    real = os.path.realpath(photos / "2020" / "alice.png")
    assert album_targets(tmp_path / "out") == {
        f"{alice.album}/alice.png": real,
        f"{alice.album}/alice-again.png": os.path.realpath(photos / "2020" / "alice-again.png"),
        "unsorted/alice.png": real,  # Bob's face
    }


def test_loops_are_found_where_the_file_system_has_no_inode_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "a" / "alice.png", [ALICE])
    (photos / "a" / "up").symlink_to(photos, target_is_directory=True)
    (photos / "b").symlink_to(photos / "a", target_is_directory=True)
    scandir, stat = os.scandir, os.stat

    def no_inode(info: os.stat_result) -> SimpleNamespace:
        return SimpleNamespace(st_mode=info.st_mode, st_ino=0, st_dev=0, st_size=info.st_size, st_mtime_ns=0)

    class Entry:
        def __init__(self, entry: os.DirEntry[str]) -> None:
            self.name, self.path, self._entry = entry.name, entry.path, entry

        def is_symlink(self) -> bool:
            return self._entry.is_symlink()

        def is_dir(self) -> bool:
            return self._entry.is_dir()

        def stat(self) -> SimpleNamespace:
            return no_inode(self._entry.stat())

    @contextmanager
    def entries(path: str) -> Iterator[list[Entry]]:
        with scandir(path) as listing:
            yield [Entry(entry) for entry in listing]

    monkeypatch.setattr(walk.os, "scandir", entries)
    monkeypatch.setattr(walk.os, "stat", lambda path: no_inode(stat(path)))
    found, problems = walked(photos)
    assert found == ["a/alice.png"]
    assert set(problems) == {"a/up", "b"} and "loop" in problems["a/up"] and "same folder as 'a'" in problems["b"]
