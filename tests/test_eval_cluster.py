"""`facecluster eval cluster` on labelled copies of the committed example photos."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from facecluster.cli import main
from facecluster.evaluation.labels import labelled_faces
from facecluster.grouping import DEFAULT_METHOD, DEFAULT_THRESHOLDS, METHODS
from facecluster.types import FaceRecord, Person, Photo, ScanOutcome, ScanStats
from tests.conftest import EXAMPLES

PEOPLE = ("Colin_Powell", "George_W_Bush", "Serena_Williams")

STATS = ScanStats(method="adaptive", threshold=0.374)


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every entry below folder."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "",
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """Three people in NAME/ folders, a faceless photo in Wall/ and the group photo at the top."""
    root = tmp_path / "photos"
    for person in PEOPLE:
        (root / person).mkdir(parents=True)
        for number in (1, 2, 3):
            shutil.copy2(EXAMPLES / f"{person}_000{number}.jpg", root / person)
    (root / "Wall").mkdir()
    Image.fromarray(np.full((200, 300, 3), 200, np.uint8)).save(root / "Wall" / "wall.png")
    shutil.copy2(EXAMPLES / "group_2007_007763.jpg", root / "group.jpg")
    return root


def evaluate(*args: object, as_json: bool = True) -> tuple[Result, dict | None]:
    """Run the command; the JSON result when it succeeded."""
    result = CliRunner().invoke(main, ["eval", "cluster", *map(str, args), *(["--json"] if as_json else [])])
    return result, json.loads(result.stdout) if as_json and result.exit_code == 0 else None


def test_folder_names_as_identities(photos, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    before = _snapshot(photos)
    result, data = evaluate(photos)
    assert result.exit_code == 0, result.output
    scores = [data[f"{kind}_{m}"] for kind in ("pairwise", "bcubed") for m in ("precision", "recall", "f1")]
    assert scores == [1.0] * 6
    assert (data["groups"], data["people"]) == (3, 3)
    # 11 photos: 9 of three people, the faceless wall, the group photo (7 faces, not labelled)
    assert (data["labelled"], data["scored_faces"], data["without_face"], data["not_analysed"]) == (10, 9, 1, 0)
    assert (data["faces"], data["analysed"]) == (16, 11)
    assert data["method"] == DEFAULT_METHOD and data["threshold"] == DEFAULT_THRESHOLDS[DEFAULT_METHOD]
    assert data["device"] in ("CPU", "GPU (CUDA)") and data["output"] is None
    assert 0 < data["scan_seconds"] <= data["seconds"]
    assert _snapshot(photos) == before  # nothing written into DIR
    assert not any((tmp_path / "tmp").iterdir())  # the temporary output folder is gone


def test_labels_from_csv_with_a_wrong_label(photos, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,label\n"
        "Colin_Powell/Colin_Powell_0001.jpg,Colin_Powell\n"
        "Colin_Powell/Colin_Powell_0002.jpg,Colin_Powell\n"
        "Colin_Powell/Colin_Powell_0003.jpg,Colin_Powell\n"
        "George_W_Bush/George_W_Bush_0001.jpg,George_W_Bush\n"
        "./George_W_Bush/George_W_Bush_0002.jpg, George_W_Bush\n"
        "George_W_Bush/George_W_Bush_0003.jpg,Colin_Powell\n"  # wrong on purpose
        "Serena_Williams/Serena_Williams_0001.jpg,Serena_Williams\n"
        "Serena_Williams/Serena_Williams_0002.jpg,Serena_Williams\n"  # Serena_Williams_0003 is not labelled
        "group.jpg,Stranger\n"  # its central face is scored, the six others are bystanders
        "Wall/wall.png,Wall\n"
        "missing.jpg,Nobody\n"
    )
    before = _snapshot(photos)
    result, data = evaluate(photos, "--labels", labels)
    assert result.exit_code == 0, result.output
    # groups found: Powell x3 | Bush x2 + Bush labelled Powell | Serena x2 | the stranger alone.
    # Pairs in one group: 3 + 3 + 1 = 7, of which 3 + 1 + 1 = 5 share a label; pairs sharing a
    # label: Powell 4 -> 6, Bush 1, Serena 1 -> 8. BCubed precision (3 + 1/3 + 4/3 + 2 + 1) / 9,
    # recall (9/4 + 1/4 + 2 + 2 + 1) / 9.
    assert data["pairwise_precision"] == pytest.approx(5 / 7, abs=1e-6)
    assert data["pairwise_recall"] == pytest.approx(5 / 8, abs=1e-6)
    assert data["pairwise_f1"] == pytest.approx(2 / 3, abs=1e-6)
    assert data["bcubed_precision"] == pytest.approx(23 / 27, abs=1e-6)
    assert data["bcubed_recall"] == pytest.approx(5 / 6, abs=1e-6)
    assert data["bcubed_f1"] == pytest.approx(230 / 273, abs=1e-6)
    assert (data["groups"], data["people"]) == (4, 4)
    assert (data["labelled"], data["scored_faces"], data["without_face"], data["not_analysed"]) == (11, 9, 1, 1)
    assert data["faces"] == 16 and data["labels"] == str(labels)
    assert "missing.jpg" in result.stderr
    assert _snapshot(photos) == before


def test_kept_output_folder_is_reused(photos, tmp_path):
    output = tmp_path / "out"
    result, first = evaluate(photos, "-o", output)
    assert result.exit_code == 0, result.output
    assert first["analysed"] == 11 and first["output"] == str(output.resolve())
    assert (output / "index.sqlite").is_file()
    other = next(m for m in METHODS if m != DEFAULT_METHOD)
    result, again = evaluate(photos, "-o", output, "--method", other, "--threshold", "0.3")
    assert result.exit_code == 0, result.output
    assert again["analysed"] == 0 and again["scored_faces"] == 9  # nothing re-analysed, only regrouped
    assert again["method"] == other and again["threshold"] == 0.3
    result, _ = evaluate(photos, "-o", output, as_json=False)
    assert result.exit_code == 0, result.output
    assert re.search(r"pairwise precision / recall / F1 +│ +1\.000 / 1\.000 / 1\.000 │", result.stdout)
    assert re.search(r"groups / true people +│ +3 / 3 │", result.stdout)
    assert f"{DEFAULT_METHOD} {DEFAULT_THRESHOLDS[DEFAULT_METHOD]}" in result.stdout


BAD_FOLDERS = {
    "missing": (lambda root, tmp: [tmp / "absent"], "no such folder"),
    "a file": (lambda root, tmp: [root / "group.jpg"], "not a folder"),
    "empty": (lambda root, tmp: [tmp / "empty"], "no photos found"),
    "no person folders": (lambda root, tmp: [root / "Colin_Powell"], "use --labels"),
    "output inside": (lambda root, tmp: [root, "-o", root / "out"], "inside the photo folder"),
    "missing CSV": (lambda root, tmp: [root, "--labels", tmp / "absent.csv"], "cannot read the label file"),
}
BAD_CSVS = {
    "no header": (b"Colin_Powell/Colin_Powell_0001.jpg,Colin_Powell\n", "header 'path,label'"),
    "no label": (b"path,label\nColin_Powell/Colin_Powell_0001.jpg\n", "row 2: expected a path and a label"),
    "two labels": (b"path,label\ngroup.jpg,a\ngroup.jpg,b\n", "labelled both a and b"),
    "absolute path": (b"path,label\n/etc/hosts,a\n", "not relative to the photo folder"),
    "no photo named": (b"path,label\nColin_Powell_0001.jpg,Colin_Powell\n", "names no photo in"),
    "not UTF-8": (b"path,label\ngroup.jpg,\xff\n", "not a UTF-8 CSV"),
}


def assert_fails(photos: Path, args: list, message: str) -> None:
    """Exit status 2, the message on stderr and as JSON on stdout, DIR untouched."""
    before = _snapshot(photos)
    result, _ = evaluate(*args)
    assert result.exit_code == 2, result.output
    assert message in json.loads(result.stdout)["error"] and message in result.stderr
    assert _snapshot(photos) == before


@pytest.mark.parametrize(("make_args", "message"), BAD_FOLDERS.values(), ids=BAD_FOLDERS.keys())
def test_bad_folder_or_label_file_exits_two(photos, tmp_path, make_args, message):
    (tmp_path / "empty").mkdir()
    assert_fails(photos, make_args(photos, tmp_path), message)


@pytest.mark.parametrize(("content", "message"), BAD_CSVS.values(), ids=BAD_CSVS.keys())
def test_bad_csv_exits_two(photos, tmp_path, content, message):
    labels = tmp_path / "labels.csv"
    labels.write_bytes(content)
    assert_fails(photos, [photos, "--labels", labels], message)


def _face(face_id: int, photo: Photo, centre: tuple[float, float], score: float) -> FaceRecord:
    x, y = centre
    return FaceRecord(face_id, photo, (x - 10, y - 10, x + 10, y + 10), score, 20.0, 10.0, usable=True)


def test_scored_face_is_the_confident_one_nearest_the_centre():
    crowd = Photo(Path("/p/a/crowd.jpg"), "a/crowd.jpg", None, None, 200, 100, copies=("b/crowd.jpg",))
    faint = Photo(Path("/p/a/faint.jpg"), "a/faint.jpg", None, None, 200, 100)
    faces = [
        _face(1, crowd, (100, 50), 0.4),  # central but not confident
        _face(2, crowd, (30, 20), 0.99),
        _face(3, crowd, (140, 60), 0.9),  # the confident face nearest the centre
        _face(4, faint, (20, 20), 0.3),
        _face(5, faint, (110, 40), 0.2),  # none is confident: the nearest face
    ]
    blank = Photo(Path("/p/a/blank.jpg"), "a/blank.jpg", None, None, 200, 100)
    outcome = ScanOutcome(Path("/p"), [Person("person_0001", faces[:2])], faces[2:], [blank], [], STATS)
    labels = {"b/crowd.jpg": "B", "a/crowd.jpg": "A", "a/faint.jpg": "A", "a/blank.jpg": "A", "a/gone.jpg": "A"}
    scored = labelled_faces(outcome, labels)
    assert scored.identity == {3: "A", 5: "A"}  # a content under two labelled paths: its first path's label
    assert scored.without_face == ["a/blank.jpg"] and scored.not_analysed == ["a/gone.jpg"]


def test_default_grouping_on_an_lfw_subset(lfw_dir, tmp_path):
    """Real faces: 12 people with 6 photos each and 60 people with one photo, copied into a tree."""
    images = lfw_dir / "images"
    folders = sorted(p for p in images.iterdir() if p.is_dir())
    counts = {folder: len(list(folder.glob("*.jpg"))) for folder in folders}
    many = [f for f in folders if counts[f] >= 6][::25][:12]
    single = [f for f in folders if counts[f] == 1][::60][:60]
    root = tmp_path / "lfw"
    for folder in many + single:
        (root / folder.name).mkdir(parents=True)
        for photo in sorted(folder.glob("*.jpg"))[:6]:
            shutil.copy2(photo, root / folder.name / photo.name)
    result, data = evaluate(root, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (data["scored_faces"], data["people"]) == (132, 72)
    # Measured: no stranger merged (precision 1.0), 77 groups for 72 people, pairwise F1 0.929,
    # BCubed F1 0.969. A grouping that merges strangers or splits people more fails here.
    assert data["pairwise_precision"] >= 0.98 and data["bcubed_precision"] >= 0.98
    assert data["pairwise_f1"] >= 0.9 and data["bcubed_f1"] >= 0.95
