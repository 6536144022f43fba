"""Analysis in several threads: the same faces, in the same order, as one thread."""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from click.testing import CliRunner

from facecluster.cli import main
from facecluster.inference.analyzer import FaceAnalyzer, in_order
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def photos() -> list[bytes | str]:
    files = sorted(EXAMPLES.glob("*.jpg"))
    inputs: list[bytes | str] = [path.read_bytes() for path in files]
    inputs.insert(3, b"not a photo")  # a bad photo in the middle keeps its place
    return inputs


def test_workers_give_the_same_faces_in_input_order(photos):
    one = list(FaceAnalyzer(device="cpu", thumbnails=True, workers=1).analyze_many(photos, batch_size=4))
    three = list(FaceAnalyzer(device="cpu", thumbnails=True, workers=3).analyze_many(photos, batch_size=4))
    assert [r.source for r in one] == [r.source for r in three] == photos
    assert one[3].error is not None and three[3].error is not None
    assert sum(len(r.faces) for r in one) >= len(photos)
    for a, b in zip(one, three, strict=True):
        assert [f.box for f in a.faces] == [f.box for f in b.faces]
        assert [f.thumbnail for f in a.faces] == [f.thumbnail for f in b.faces]
        for face_a, face_b in zip(a.faces, b.faces, strict=True):
            np.testing.assert_allclose(face_a.embedding, face_b.embedding, atol=1e-5)


def test_a_consumer_that_stops_early_stops_the_threads(photos):
    analyzer = FaceAnalyzer(device="cpu", workers=2)
    results = analyzer.analyze_many(photos * 5)
    assert next(results).faces
    results.close()  # the pool shuts down; the photos not started are dropped
    assert not [t for t in threading.enumerate() if t.name.startswith("facecluster-analysis")]


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_workers_must_be_a_positive_whole_number(tmp_path, value):
    result = CliRunner().invoke(main, ["scan", str(EXAMPLES), "-o", str(tmp_path / "out"), "--workers", value])
    assert result.exit_code == 2 and "--workers" in result.output


def test_photos_in_flight_are_bounded_by_their_bytes():
    drawn: list[int] = []

    def items():
        for number in range(10):
            drawn.append(number)
            yield bytes(600)

    with ThreadPoolExecutor(4) as pool:
        flow = in_order(pool, len, items(), ahead=8, weigh=len, most=1000)
        assert next(flow) == 600 and len(drawn) == 2  # a second 600 bytes passed the bound: the first waits
        assert list(flow) == [600] * 9


def test_threads_leave_the_warning_filters_as_they_were(photos):
    before = list(warnings.filters)
    try:
        list(FaceAnalyzer(device="cpu", workers=4).analyze_many(photos * 3))
        assert warnings.filters == before
    finally:
        warnings.filters[:] = before


def test_facecluster_threads_caps_the_workers(monkeypatch):
    monkeypatch.setenv("FACECLUSTER_THREADS", "1")
    assert FaceAnalyzer(device="cpu").workers == 1
