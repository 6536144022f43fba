"""Shared fixtures: committed example photos, the optional ../shared data, one analyzer."""

from __future__ import annotations

from pathlib import Path

import pytest

from facecluster.inference.analyzer import FaceAnalyzer
from facecluster.library import Library
from tests.fakes import FakeAnalyzer, write_library

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "photos"
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def analyzer() -> FaceAnalyzer:
    """One CPU analyzer for the whole run (loading the models takes a moment)."""
    return FaceAnalyzer(device="cpu")


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    """../shared/data/lfw, or skip when the shared data is absent."""
    path = SHARED / "lfw"
    if not (path / "pairs.txt").is_file():
        pytest.skip("../shared/data/lfw is not available")
    return path


@pytest.fixture()
def fake() -> FakeAnalyzer:
    """A stand-in analyzer without models (tests.fakes)."""
    return FakeAnalyzer()


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """A small library of stand-in photos (tests.fakes.write_library)."""
    return write_library(tmp_path / "photos")


@pytest.fixture()
def library(photos: Path, tmp_path: Path, fake: FakeAnalyzer) -> Library:
    """``photos`` scanned with the stand-in analyzer into tmp_path/out."""
    library = Library.create(photos, tmp_path / "out", load_analyzer=lambda device, workers: fake)
    library.scan()
    return library


@pytest.fixture()
def fragments(library: Library) -> Library:
    """``library`` with Alice (p1) split in two: p1 (f5, f6, f10) and p4 (f3, f4). The first "same
    person?" question is theirs; then come the stranger's (f2), each far less likely."""
    with library.corrections() as edit:
        assert edit.split(1, [3, 4]) == 4
    questions = library.suggestions(limit=None)
    assert [q.id for q in questions][:2] == ["p1-p4", "p2-f2"]
    assert questions[0].probability > 0.9 > 0.01 > questions[1].probability
    return library
