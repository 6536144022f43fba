"""A run writes nothing outside its output folder: not under $HOME, the cache folder or the temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EXAMPLES, ROOT

STRAY_SETTINGS = ("ORT_DISABLE_TELEMETRY", "JOBLIB_TEMP_FOLDER", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
"""Settings that could hide a stray write: the run must stay inside its output folder without them."""


def contents(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_a_scan_writes_nothing_outside_its_output_folder(tmp_path: Path) -> None:
    home, cache, temporary = tmp_path / "home", tmp_path / "cache", tmp_path / "tmp"
    for folder in (home, cache, temporary):
        folder.mkdir()
    out = temporary / "out"
    env = {key: value for key, value in os.environ.items() if key not in STRAY_SETTINGS}
    env |= {"HOME": str(home), "XDG_CACHE_HOME": str(cache), "TMPDIR": str(temporary), "PYTHONPATH": str(ROOT)}
    commands = [
        ["scan", EXAMPLES, "-o", out, "--xmp", "--json"],
        ["faces", EXAMPLES / "George_W_Bush_0001.jpg"],
        ["find", EXAMPLES / "Colin_Powell_0001.jpg", "-o", out, "--json"],
    ]
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "facecluster", *map(str, command)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    assert (out / "report.html").is_file() and (out / "xmp").is_dir()
    assert contents(home) == [], f"written under HOME: {contents(home)}"
    assert contents(cache) == [], f"written under XDG_CACHE_HOME: {contents(cache)}"
    assert os.listdir(temporary) == ["out"], f"written in TMPDIR outside the output folder: {contents(temporary)}"


def test_hdbscan_runs_its_parallel_part_on_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    hdbscan = pytest.importorskip("hdbscan")
    from joblib.parallel import ThreadingBackend, get_active_backend

    from facecluster.grouping import GroupingOptions, group_embeddings

    seen = []
    fit_predict = hdbscan.HDBSCAN.fit_predict

    def watched(self, data, *args, **kwargs):  # above 16,384 faces hdbscan starts joblib workers here
        seen.append(get_active_backend()[0])
        return fit_predict(self, data, *args, **kwargs)

    monkeypatch.setattr(hdbscan.HDBSCAN, "fit_predict", watched)
    vectors = np.random.default_rng(0).normal(size=(20, 128)).astype(np.float32)
    group_embeddings(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), GroupingOptions("hdbscan"))
    assert len(seen) == 1 and isinstance(seen[0], ThreadingBackend)
