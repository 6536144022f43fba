"""The shipped ONNX embedder reproduces dlib's own descriptors on committed chips."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecluster.inference.embedder import FaceEmbedder, l2_normalise

CHIPS = Path(__file__).parent / "data" / "chips"
REFERENCE = json.loads((CHIPS / "reference_embeddings.json").read_text())
NAMES = sorted(name for name in REFERENCE if name.endswith(".png"))


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder(device="cpu", flip=False)


def _chips(names: list[str]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(CHIPS / name).convert("RGB")) for name in names])


def test_reference_chips_are_committed():
    assert len(NAMES) >= 6


def test_onnx_embedder_matches_dlib_reference(embedder):
    produced = embedder.raw(_chips(NAMES))
    expected = np.array([REFERENCE[name] for name in NAMES])
    assert np.abs(produced - expected).max() < 1e-5


def test_same_person_is_closer_than_different_people(embedder):
    vectors = dict(zip(NAMES, embedder.embed(_chips(NAMES)), strict=True))
    people = sorted({name.rsplit("_", 1)[0] for name in NAMES})
    same = [
        np.linalg.norm(vectors[a] - vectors[b])
        for a in NAMES
        for b in NAMES
        if a < b and a.rsplit("_", 1)[0] == b.rsplit("_", 1)[0]
    ]
    different = [
        np.linalg.norm(vectors[a] - vectors[b])
        for a in NAMES
        for b in NAMES
        if a < b and a.rsplit("_", 1)[0] != b.rsplit("_", 1)[0]
    ]
    assert len(people) >= 3
    assert max(same) < min(different)


def test_flip_averaged_embeddings_are_unit_length():
    flipped = FaceEmbedder(device="cpu", flip=True).embed(_chips(NAMES[:2]))
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(l2_normalise(np.array([[3.0, 4.0]])), [[0.6, 0.8]])
