"""Shared fixtures: committed example photos, the optional ../shared data, one analyzer."""

from __future__ import annotations

from pathlib import Path

import pytest

from facecluster.inference.analyzer import FaceAnalyzer

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
