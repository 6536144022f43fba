"""Ingest with the real models: each photo file is opened once, and results never wait on faceless photos."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

from PIL import Image

from facecluster import Library
from facecluster.evaluation.lfw import EVAL_SCORE_THRESHOLD, _LfwEmbedder
from facecluster.inference.analyzer import FaceAnalyzer
from tests.conftest import EXAMPLES

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
