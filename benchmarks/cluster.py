"""Scans on a Dask cluster against local scans, the distributed path's overhead, and the driver's limit.

    python -m benchmarks.cluster [--shared ../shared] [--phone 24] [--web 150]

On this machine: a `dask scheduler` and 1 or 2 `dask worker` processes (one thread each, no
nanny, loopback) started fresh for each run, against local scans with --workers 1 and 2, on
phone-size photos (benchmarks.throughput's 12-MP JPEGs) and WebFaces photos; each a full
`facecluster scan` into a fresh output folder (photos/s, medians of --rounds).

Then the distributed path's own cost: bytes shipped per photo (its file, driver -> scheduler ->
worker, and its faces back) and the time the scheduler takes per task (a task that does nothing
with the payload of a scan's task: one 12-MP photo, or 8 small ones), with as many in flight as a
scan keeps with 2 workers, and with 64.

Last, what one driver can take: a scan whose analyzer replays real results at once (as if
infinitely many workers answered), so the rate is the driver's own work per photo (read, hash,
EXIF, one SQLite transaction with the faces and thumbnails). Divided by one worker's photos/s it
says how many workers one driver can feed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace

from benchmarks.throughput import phone_photos, photo_sources
from facecluster.inference.analyzer import FaceAnalyzer
from facecluster.inference.cluster import BYTES_PER_TASK, PHOTOS_PER_TASK
from facecluster.library import Library
from facecluster.pipeline.ingest import Progress
from facecluster.types import AnalysisResult

TASKS = 400
"""Do-nothing tasks timed for the scheduler's own cost per task."""


def start_cluster(folder: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    """A scheduler and ``workers`` one-thread worker processes on loopback; returns its address."""
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "scheduler.json"
    env = {**os.environ, "FACECLUSTER_THREADS": "1"}
    log = (folder / "cluster.log").open("ab")

    def dask(*arguments: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "dask", *arguments], env=env, stdout=log, stderr=log)

    loopback = ["--host", "127.0.0.1", "--no-dashboard"]
    processes = [dask("scheduler", *loopback, "--port", "0", "--scheduler-file", str(file))]
    while not file.is_file():
        time.sleep(0.1)
    for number in range(workers):
        one = ["--nthreads", "1", "--no-nanny", "--name", f"w{number}"]
        processes.append(dask("worker", *loopback, "--scheduler-file", str(file), *one))
    from distributed import Client

    address = json.loads(file.read_text())["address"]
    with Client(address, set_as_default=False) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, processes


def stop(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def scan_seconds(photos: Path, output: Path, *options: str) -> float:
    """Wall seconds of a full `facecluster scan` into a fresh ``output``."""
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    command = [sys.executable, "-m", "facecluster", "scan", str(photos), "-o", str(output), "--quiet", *options]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def compare(name: str, photos: Path, work: Path, rounds: int) -> list[dict]:
    """photos/s of local scans (1 and 2 threads) and cluster scans (1 and 2 workers) of one set."""
    count = sum(1 for _ in photos.iterdir())
    rows = []
    for workers in (1, 2):
        local = [scan_seconds(photos, work / "out", "--workers", str(workers)) for _ in range(rounds)]
        seconds = []
        for _ in range(rounds):
            address, processes = start_cluster(work / "cluster", workers)
            try:
                seconds.append(scan_seconds(photos, work / "out", "--scheduler", address))
            finally:
                stop(processes)
        rows.append(
            {
                "set": name,
                "workers": workers,
                "local photos/s": round(count / statistics.median(local), 2),
                "cluster photos/s": round(count / statistics.median(seconds), 2),
            }
        )
    return rows


def _nothing(data: bytes) -> int:
    return len(data)


def scheduler_cost(address: str, payload: int, in_flight: int) -> float:
    """Milliseconds per do-nothing task with a ``payload``-byte argument, ``in_flight`` at a time."""
    from collections import deque

    from distributed import Client

    with Client(address, set_as_default=False) as client:
        flight: deque = deque()
        started = time.perf_counter()
        for number in range(TASKS):
            data = number.to_bytes(8, "little") * (payload // 8)
            flight.append(client.submit(_nothing, data, pure=False))
            if len(flight) >= in_flight:
                flight.popleft().result()
        for future in flight:
            future.result()
        return 1000 * (time.perf_counter() - started) / TASKS


class Replay:
    """An analyzer that answers at once with the results of real photos, in turn (the driver's ceiling)."""

    runtime = SimpleNamespace(label="replayed results")

    def __init__(self, results: list[AnalysisResult]) -> None:
        self.results = results

    def analyze_many(self, images: Iterable[bytes]) -> Iterator[AnalysisResult]:
        for number, data in enumerate(images):
            result = self.results[number % len(self.results)]
            yield AnalysisResult(data, result.faces, size=result.size)


def driver_rate(sources: list[Path], copies: int, work: Path) -> tuple[float, float]:
    """Photos/s and faces per photo of a driver whose analyzer answers at once, over ``copies`` distinct files."""
    analyzer = FaceAnalyzer(thumbnails=True)
    results = list(analyzer.analyze_many(path.read_bytes() for path in sources))
    folder = work / "driver"
    folder.mkdir(parents=True)
    for number in range(copies):
        source = sources[number % len(sources)]
        (folder / f"{number:06d}.jpg").write_bytes(source.read_bytes() + number.to_bytes(8, "little"))
    times: list[float] = []
    library = Library.create(folder, work / "driver-out", load_analyzer=lambda device, workers: Replay(results))
    stamp = lambda _: times.append(time.perf_counter())  # noqa: E731
    library.scan(progress=Progress(start=stamp, advance=stamp))
    faces = sum(len(r.faces) for r in results) / len(results)
    return copies / (times[-1] - times[0]), faces


def shipped_bytes(sources: list[Path]) -> tuple[float, float]:
    """Mean KB per photo sent to a worker (its file) and sent back (its pickled faces, thumbnails included)."""
    analyzer = FaceAnalyzer(thumbnails=True)
    back = []
    for result in analyzer.analyze_many(path.read_bytes() for path in sources):
        result.source = None
        back.append(len(pickle.dumps(result)))
    return statistics.mean(p.stat().st_size for p in sources) / 1e3, statistics.mean(back) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--phone", type=int, default=24, help="phone-size photos to build")
    parser.add_argument("--web", type=int, default=150, help="WebFaces photos")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--driver-photos", type=int, default=3000, help="distinct files for the driver's ceiling")
    args = parser.parse_args()
    data = args.shared / "data"
    if not data.is_dir():
        raise SystemExit(f"{data} not found: this benchmark needs the shared face data")
    webfaces, mixed = photo_sources(data)
    with tempfile.TemporaryDirectory(prefix="facecluster-cluster-") as temporary:
        work = Path(temporary)
        phone = phone_photos(mixed, args.phone, work / "phone")
        (work / "web").mkdir()
        for source in webfaces[: args.web]:
            shutil.copy(source, work / "web" / source.name)
        print(f"{os.cpu_count()} cores; workers have one thread each; local scans use --workers N")
        print("| set | workers | local photos/s | cluster photos/s | cluster / local |")
        print("|---|---|---|---|---|")
        for name, folder in (("phone-size", work / "phone"), ("web-size", work / "web")):
            for row in compare(name, folder, work, args.rounds):
                local, cluster = row["local photos/s"], row["cluster photos/s"]
                print(f"| {name} | {row['workers']} | {local} | {cluster} | {cluster / local:.2f} |")
        print()
        for name, sources in (("phone-size", phone), ("web-size", sorted((work / "web").iterdir())[:40])):
            sent, back = shipped_bytes(sources[:20])
            per_task = min(PHOTOS_PER_TASK, math.ceil(BYTES_PER_TASK / (sent * 1e3)))
            address, processes = start_cluster(work / "overhead", 2)
            try:
                latency, capacity = (scheduler_cost(address, int(per_task * sent * 1e3), n) for n in (4, 64))
            finally:
                stop(processes)
            print(
                f"{name}: {sent:.0f} KB to a worker per photo (twice on the wire: driver -> scheduler -> worker), "
                f"{back:.1f} KB back; {per_task} photos per task; a do-nothing task with that payload takes "
                f"{latency:.1f} ms with 4 in flight (as a scan on 2 workers: {latency / per_task:.1f} ms per photo), "
                f"{capacity:.1f} ms with 64 in flight ({capacity / per_task:.1f} ms per photo)"
            )
        for name, sources, copies in (
            ("web-size", sorted((work / "web").iterdir()), args.driver_photos),
            ("phone-size", phone, args.driver_photos // 10),
        ):
            rate, faces = driver_rate(sources, copies, work / name)
            print(
                f"driver ceiling, {name} ({copies} photos, {faces:.1f} faces each, results replayed): "
                f"{rate:.0f} photos/s indexed (read, hash, EXIF, one transaction each)"
            )


if __name__ == "__main__":
    main()
