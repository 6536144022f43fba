"""Scans on a real Dask cluster: a `dask scheduler` and `dask worker` processes on 127.0.0.1.

The cluster's results must equal a local scan's (photos, faces, people), also when a worker is
killed mid-scan; a scheduler that cannot be reached or goes away, and workers of another
facecluster, end the scan with a clear message and an index the next scan resumes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import IO

import dask
import numpy as np
import pytest
from click.testing import CliRunner
from distributed import Client
from PIL import Image, ImageOps

from facecluster.cli import main
from facecluster.errors import ClusterError, ClusterLost
from facecluster.inference.cluster import local_facts, models_loaded
from facecluster.library import Library
from facecluster.pipeline.ingest import Progress
from facecluster.pipeline.plan import ScanOptions
from facecluster.storage.index import FaceIndex
from tests.conftest import EXAMPLES, ROOT

START_TIMEOUT = 60.0


class Cluster:
    """A scheduler and its workers, each its own process, listening on loopback only."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = folder / "scheduler.json"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "FACECLUSTER_THREADS": "1"}
        self.logs: list[IO[bytes]] = []
        self.workers: dict[str, subprocess.Popen] = {}
        arguments = ["--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(self.file)]
        self.scheduler = self._start("scheduler", arguments, "scheduler")
        deadline = time.monotonic() + START_TIMEOUT
        while (address := self._written_address()) is None:
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("the scheduler did not start")
            time.sleep(0.1)
        self.address = address

    def _written_address(self) -> str | None:
        """The scheduler's address once its file is there and complete (it may be read half-written)."""
        try:
            return json.loads(self.file.read_text())["address"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None

    def _start(self, kind: str, arguments: list[str], name: str) -> subprocess.Popen:
        self.logs.append((self.folder / f"{name}.log").open("wb"))
        command = [sys.executable, "-m", "dask", kind, *arguments]
        return subprocess.Popen(command, env=self.env, stdout=self.logs[-1], stderr=subprocess.STDOUT, cwd=self.folder)

    def add_worker(self, name: str, *extra: str, threads: int = 1) -> None:
        """Start a worker process (no nanny to restart it) and wait until the scheduler has it."""
        arguments = ["--scheduler-file", str(self.file), "--nthreads", str(threads), "--no-nanny", "--no-dashboard"]
        self.workers[name] = self._start("worker", [*arguments, "--host", "127.0.0.1", "--name", name, *extra], name)
        with self.client() as client:
            client.wait_for_workers(len(self.workers), timeout=START_TIMEOUT)

    def client(self) -> Client:
        return Client(self.address, set_as_default=False)

    def busy(self, name: str) -> bool:
        """Whether the worker called ``name`` is running or holding tasks now."""
        with self.client() as client:
            address = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == name)
            return bool(client.processing(workers=[address])[address])

    def kill(self, name: str) -> None:
        process = self.scheduler if name == "scheduler" else self.workers.pop(name)
        process.kill()
        process.wait()

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            process.kill()
            process.wait()
        for log in self.logs:
            log.close()


@pytest.fixture()
def start_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start a cluster with workers of the given names; all its processes end with the test."""
    clusters: list[Cluster] = []

    def start(*workers: str) -> Cluster:
        folder = tmp_path / f"cluster{len(clusters)}"
        folder.mkdir()
        clusters.append(Cluster(folder))
        for name in workers:
            clusters[-1].add_worker(name)
        return clusters[-1]

    yield start
    for cluster in clusters:
        cluster.stop()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example photos (LFW faces and a group photo), each also mirrored and re-encoded: 30 photos."""
    folder = tmp_path_factory.mktemp("photos")
    for source in sorted(EXAMPLES.glob("*.jpg")):
        (folder / source.name).write_bytes(source.read_bytes())
        with Image.open(source) as image:
            ImageOps.mirror(image).save(folder / f"{source.stem}_mirrored.jpg", quality=90)
            image.save(folder / f"{source.stem}_q80.jpg", quality=80)
    return folder


@pytest.fixture(scope="module")
def local(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What a local scan of ``photos`` finds."""
    library = Library.create(photos, tmp_path_factory.mktemp("local") / "out")
    library.scan(ScanOptions(device="cpu"))
    return snapshot(library)


def snapshot(library: Library) -> dict:
    """A library's contents, faces (box, embedding) per content, and people as sets of (photo, box)."""
    index = FaceIndex(library.output, readonly=True)
    try:
        contents = {sha: content.status for sha, content in index.contents().items()}
        faces: dict[str, list] = {}
        for face in index.faces():
            faces.setdefault(face.sha256, []).append((np.array(face.box), face.embedding))
    finally:
        index.close()
    people = sorted(
        sorted((f.photo.relative, tuple(round(v) for v in f.box)) for f in person.faces) for person in library.people()
    )
    return {"contents": contents, "faces": faces, "people": people}


def assert_same(found: dict, expected: dict) -> None:
    assert found["contents"] == expected["contents"]
    assert found["faces"].keys() == expected["faces"].keys()
    for sha, faces in expected["faces"].items():
        assert len(found["faces"][sha]) == len(faces)
        for (box, vector), (other_box, other_vector) in zip(found["faces"][sha], faces, strict=True):
            np.testing.assert_allclose(box, other_box, atol=1.0)
            np.testing.assert_allclose(vector, other_vector, atol=1e-5)
    assert found["people"] == expected["people"]


def test_a_scan_on_two_workers_finds_what_a_local_scan_finds(photos, local, start_cluster, tmp_path):
    cluster = start_cluster("one")
    cluster.add_worker("two", threads=2)  # two photos at once in one process: the models still load once
    library = Library.create(photos, tmp_path / "out")
    outcome = library.scan(ScanOptions(device="cpu", scheduler=cluster.address))
    assert outcome.stats.analysed == 30
    assert outcome.stats.device == f"Dask cluster {cluster.address} (2 workers, CPU)"
    assert_same(snapshot(library), local)
    with cluster.client() as client:
        assert client.run(models_loaded) == {address: 1 for address in client.nthreads()}
        done = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert all(count > 1 for count in done.values()), f"a worker did nothing: {done}"


def test_a_worker_killed_mid_scan_loses_and_repeats_nothing(photos, local, start_cluster, tmp_path):
    cluster = start_cluster("survivor", "victim")

    def advance(faces: int) -> None:
        if "victim" in cluster.workers and cluster.busy("victim"):
            cluster.kill("victim")

    library = Library.create(photos, tmp_path / "out")
    outcome = library.scan(ScanOptions(device="cpu", scheduler=cluster.address), Progress(advance=advance))
    assert "victim" not in cluster.workers, "the victim was never seen at work"
    assert outcome.stats.analysed == 30
    assert_same(snapshot(library), local)


def after_photos(count: int, action: Callable[[], None]) -> Progress:
    """Scan progress that runs ``action`` once, when ``count`` photos are done."""
    done: list[int] = []

    def advance(faces: int) -> None:
        done.append(faces)
        if len(done) == count:
            action()

    return Progress(advance=advance)


def saved(library: Library) -> int:
    index = FaceIndex(library.output, readonly=True)
    try:
        return len(index.contents())
    finally:
        index.close()


def test_a_lost_scheduler_stops_the_scan_and_the_next_scan_resumes(photos, local, start_cluster, tmp_path):
    cluster = start_cluster("worker")

    library = Library.create(photos, tmp_path / "out")
    with pytest.raises(ClusterLost, match="run the same command to resume"):
        library.scan(
            ScanOptions(device="cpu", scheduler=cluster.address), after_photos(5, partial(cluster.kill, "scheduler"))
        )
    kept = saved(library)
    assert 5 <= kept < 30
    outcome = library.scan(ScanOptions(device="cpu"))
    assert outcome.stats.analysed == 30 - kept
    assert_same(snapshot(library), local)


def test_a_cluster_without_workers_left_stops_the_scan(photos, local, start_cluster, tmp_path):
    cluster = start_cluster("last")

    library = Library.create(photos, tmp_path / "out")
    quick = dask.config.set({"distributed.comm.timeouts.connect": "2s"})
    with quick, pytest.raises(ClusterLost, match="no workers left"):
        library.scan(
            ScanOptions(device="cpu", scheduler=cluster.address), after_photos(5, partial(cluster.kill, "last"))
        )
    assert 5 <= saved(library) < 30
    library.scan(ScanOptions(device="cpu"))
    assert_same(snapshot(library), local)


def other_version(folder: Path) -> str:
    """A worker preload that makes the worker's facecluster say it is version 0.0.1."""
    preload = folder / "other_version.py"
    preload.write_text("import facecluster.version\nfacecluster.version.__version__ = '0.0.1'\n")
    return str(preload)


def test_workers_of_another_facecluster_are_refused(photos, start_cluster, tmp_path):
    cluster = start_cluster()
    cluster.add_worker("old", "--preload", other_version(tmp_path))
    result = CliRunner().invoke(
        main, ["scan", str(photos), "-o", str(tmp_path / "out"), "--scheduler", cluster.address, "--device", "cpu"]
    )
    assert result.exit_code == 2, result.output
    assert "refusing the cluster" in result.output and "facecluster 0.0.1" in result.output
    assert f"facecluster {local_facts().version}" in result.output
    assert Library.create(photos, tmp_path / "out").plan().to_read  # nothing was analysed


def test_a_worker_of_another_facecluster_that_joins_later_is_refused(photos, local, start_cluster, tmp_path):
    cluster = start_cluster("current")

    def stop() -> None:
        cluster.add_worker("old", "--preload", other_version(tmp_path))
        cluster.kill("current")

    library = Library.create(photos, tmp_path / "out")
    with pytest.raises(ClusterError, match=r"refusing the cluster .* facecluster 0\.0\.1"):
        library.scan(ScanOptions(device="cpu", scheduler=cluster.address), after_photos(5, stop))
    found = snapshot(library)
    assert 5 <= len(found["contents"]) < 30
    for sha, faces in found["faces"].items():  # what was kept came from the current version
        for (box, vector), (other_box, other_vector) in zip(faces, local["faces"][sha], strict=True):
            np.testing.assert_allclose(box, other_box, atol=1.0)
            np.testing.assert_allclose(vector, other_vector, atol=1e-5)


def test_an_unreachable_scheduler_is_a_clear_error_and_the_index_stays_usable(photos, tmp_path):
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = CliRunner().invoke(
            main, ["scan", str(photos), "-o", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"]
        )
    assert result.exit_code == 2, result.output
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert len(Library.create(photos, tmp_path / "out").plan().to_read) == 30


@pytest.mark.parametrize("address", ["8786", "tcp://", "http://127.0.0.1:8786"])
def test_a_malformed_scheduler_address_is_refused_at_once(photos, tmp_path, address):
    command = [sys.executable, "-m", "facecluster", "scan", str(photos), "-o", str(tmp_path / "out")]
    done = subprocess.run([*command, "--scheduler", address], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"error: {address!r} is not a Dask scheduler address"), done.stderr
    assert "Traceback" not in done.stderr


def test_workers_and_a_scheduler_do_not_mix(photos, tmp_path):
    result = CliRunner().invoke(
        main, ["scan", str(photos), "-o", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9", "--workers", "2"]
    )
    assert result.exit_code == 2
    assert "dask worker --nthreads" in result.output
    assert not (tmp_path / "out").exists()
