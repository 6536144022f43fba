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
    library = Library.create(photos, tmp_path / "out", load_analyzer=lambda device: fake)
    library.scan()
    return library
