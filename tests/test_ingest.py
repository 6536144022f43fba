"""Ingest with the real models: each photo file is opened once, and results never wait on faceless photos."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

from PIL import Image

from facecluster import Library
from facecluster.evaluation.lfw import EVAL_SCORE_THRESHOLD, _LfwEmbedder
from facecluster.inference.analyzer import FaceAnalyzer
from tests.conftest import EXAMPLES
from tests.fakes import FakeAnalyzer, write_library

_opened: list[str] = []
_watching: list[Path] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _watching and isinstance(args[0], str | bytes | Path):
        path = str(args[0] if not isinstance(args[0], bytes) else args[0].decode(errors="replace"))
        if path.startswith(str(_watching[0])):
            _opened.append(path)


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one only counts while _watching is set


def test_a_scan_opens_each_photo_file_once(tmp_path, analyzer):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted(EXAMPLES.glob("*.jpg"))[:5]:
        shutil.copy2(path, photos / path.name)
    shutil.copy2(EXAMPLES / "Colin_Powell_0001.jpg", photos / "copy.jpg")
    library = Library.create(photos, tmp_path / "out", load_analyzer=lambda device, workers: analyzer)
    _watching.append(photos)
    try:
        outcome = library.scan()
    finally:
        _watching.clear()
    assert outcome.stats.analysed == 5 and outcome.stats.faces == 5
    assert sorted(Path(p).name for p in _opened) == sorted(p.name for p in photos.iterdir())


def test_faceless_photos_are_reported_without_waiting_for_a_batch(analyzer):
    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 210, 220)).save(blank, format="JPEG")
    given = []

    def photos():
        for n in range(100):
            given.append(n)
            yield blank.getvalue()

    first = next(analyzer.analyze_many(photos(), batch_size=16))
    assert first.faces == [] and first.error is None and len(given) <= 16 + 2 * analyzer.workers


def test_lfw_evaluation_leaves_the_analyzer_as_it_was(analyzer: FaceAnalyzer):
    before = analyzer.detector.score_threshold
    embedder = _LfwEmbedder(analyzer)
    embedder.chip(EXAMPLES / "George_W_Bush_0001.jpg")
    assert analyzer.detector.score_threshold == before != EVAL_SCORE_THRESHOLD


def test_results_read_ahead_land_on_their_own_photos(tmp_path):
    """An analyzer that draws photos before giving results (as the worker threads do) scans the same:
    duplicates, a broken file and every face where they belong."""
    photos = tmp_path / "photos"
    write_library(photos)
    shutil.copy(photos / "2021" / "party.png", photos / "party copy.png")  # one content at two paths

    def scanned(ahead: int) -> dict:
        fake = FakeAnalyzer(ahead=ahead)
        Library.create(photos, tmp_path / f"out{ahead}", load_analyzer=lambda device, workers: fake).scan()
        report = json.loads((tmp_path / f"out{ahead}" / "people.json").read_text())
        return {
            **{key: report[key] for key in ("people", "unsorted", "no_faces")},
            "skipped": report["skipped"][0]["path"],
        }

    one_at_a_time = scanned(0)
    assert scanned(5) == one_at_a_time
    assert len(one_at_a_time["people"]) == 3 and one_at_a_time["skipped"] == "broken.jpg"
