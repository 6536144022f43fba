"""Analysis on a Dask cluster: the scan's driver ships photo bytes to ``dask worker`` processes and
gets their faces back, in input order; the index and the outputs stay with the driver.

Workers need no shared file system, only facecluster (the same version, with the same models)
and ``distributed``: ``pip install 'facecluster[dask]'``. Each worker process loads the models
once. A worker that dies has its photos retried on the others by the scheduler (a photo that
was under way on ``distributed.scheduler.allowed-failures`` + 1 workers that died is skipped for
this scan, with that reason). Workers of another facecluster version or with other models are
refused: the driver checks every worker before the first photo and the facts that come back with
every result, so results of different models never mix.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from facecluster.errors import ClusterError, ClusterLost, FaceclusterError, ImageLoadError
from facecluster.inference.analyzer import MAX_HELD_BYTES, FaceAnalyzer
from facecluster.inference.detector import MODEL_FILE as DETECTOR_FILE
from facecluster.inference.embedder import MODEL_FILE as EMBEDDER_FILE
from facecluster.inference.runtime import model_path
from facecluster.types import AnalysisResult
from facecluster.version import __version__

if TYPE_CHECKING:
    from distributed import Client, Future

TASKS_PER_THREAD = 2
"""Tasks in flight per worker thread of the cluster (at least MIN_IN_FLIGHT in all)."""
MIN_IN_FLIGHT = 4
PHOTOS_PER_TASK, BYTES_PER_TASK = 8, 1 << 20
"""A task carries photos until it holds 8 of them or 1 MiB: the scheduler's own cost per task (~10 ms
measured here) is spread over several small photos, while a 12-MP photo travels alone."""
RESIZE_SECONDS = 5.0
"""How often the photos in flight are sized again to the workers there are (workers come and go)."""
POLL_SECONDS = 1.0
"""A result is waited for in steps this long, checking that the cluster still has workers."""
MAX_TASK_BYTES = 4 << 30
"""Photos travel inside their tasks (the scan reads files of up to 2 GiB): dask warns above 10 MB."""
INSTALL_HINT = "pip install 'facecluster[dask]'"


@dataclass(frozen=True)
class WorkerFacts:
    """What a worker process runs: facecluster's version, a digest of its models, where they run."""

    version: str
    models: str
    """SHA-256 of the bundled detector and embedder files (first 16 hex digits)."""
    device: str = ""
    """The runtime label of its loaded models ('' until they are loaded)."""

    def matches(self, other: WorkerFacts) -> bool:
        """Whether results made under ``other`` may mix with results made under these facts."""
        return (self.version, self.models) == (other.version, other.models)

    def describe(self) -> str:
        return f"facecluster {self.version}, models {self.models}"


@cache
def _models_digest() -> str:
    digest = hashlib.sha256()
    for name in (DETECTOR_FILE, EMBEDDER_FILE):
        digest.update(model_path(name).read_bytes())
    return digest.hexdigest()[:16]


def local_facts() -> WorkerFacts:
    """This process's facecluster version and models."""
    return WorkerFacts(__version__, _models_digest())


_loading = threading.Lock()
_analyzers: dict[str, FaceAnalyzer] = {}
"""The models a worker process has loaded, by device: loaded once, shared by its threads."""
_loads = 0


def _worker_analyzer(device: str) -> FaceAnalyzer:
    global _loads
    with _loading:
        if device not in _analyzers:
            _analyzers[device] = FaceAnalyzer(device=device, thumbnails=True, workers=1)
            _loads += 1
        return _analyzers[device]


def prepare_worker(device: str) -> WorkerFacts:
    """Run on each worker at connection: load the models on ``device`` and say what runs there."""
    return WorkerFacts(__version__, _models_digest(), _worker_analyzer(device).runtime.label)


def models_loaded() -> int:
    """How many times this process has loaded the models."""
    return _loads


def analyse_on_worker(photos: list[bytes], device: str) -> tuple[WorkerFacts, list[AnalysisResult]]:
    """The faces of some photos, run by a worker, with the worker's facts for the driver to check. The
    results carry no copy of the photos (their ``source`` is None)."""
    results = list(_worker_analyzer(device).analyze_many(photos))
    for result in results:
        result.source = None
    return local_facts(), results


def _refusal(address: str, expected: WorkerFacts, foreign: dict[str, WorkerFacts]) -> ClusterError:
    listed = "; ".join(f"{worker} runs {facts.describe()}" for worker, facts in sorted(foreign.items()))
    return ClusterError(
        f"refusing the cluster at {address}: this scan runs {expected.describe()}, but {listed}. Results of "
        "different models must not mix: install the same facecluster on every worker"
    )


@dataclass(frozen=True)
class ClusterRuntime:
    """Where a cluster scan runs: the scheduler, its workers, and their models' runtime."""

    address: str
    workers: int
    devices: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"Dask cluster {self.address} ({self.workers} workers, {' / '.join(self.devices)})"


def _connect_timeout() -> float:
    """Seconds to wait for the scheduler and its first worker: dask's own connect timeout
    (``distributed.comm.timeouts.connect``, e.g. DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=10s)."""
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect")))


def _connect(address: str) -> Client:
    try:
        from distributed import Client
        from distributed.comm.addressing import get_address_host_port, parse_address
        from distributed.comm.registry import get_backend
    except ImportError:
        raise ClusterError(f"--scheduler needs dask's distributed package: {INSTALL_HINT}") from None
    try:  # checked first: a client made from a bad address lingers and complains at exit
        get_backend(parse_address(address, strict=False)[0])
        get_address_host_port(address)
    except (ValueError, ImportError) as error:
        raise ClusterError(f"{address!r} is not a Dask scheduler address such as tcp://host:8786 ({error})") from None
    try:
        return Client(address, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {error}") from None


class ClusterAnalyzer:
    """The scan's analyzer on a Dask cluster (``scan --scheduler``): the ``Analyzer`` protocol of
    ``pipeline.ingest``. It connects, checks and prepares the workers when made; ``analyze_many`` runs
    once, and the connection closes when its results end."""

    def __init__(self, address: str, device: str = "auto") -> None:
        self.address = address
        self.device = device
        self.expected = local_facts()
        self._client = _connect(address)
        try:
            self._runtime = self._check_workers()
        except BaseException:
            self._client.close()
            raise

    @property
    def runtime(self) -> ClusterRuntime:
        return self._runtime

    def _check_workers(self) -> ClusterRuntime:
        """Wait for a worker, then refuse workers of another version and load the models on each (in a
        task on each worker, so the load does not hold up the worker's own communication)."""
        try:
            self._client.wait_for_workers(1, timeout=_connect_timeout())
        except TimeoutError:
            raise ClusterError(f"the Dask scheduler at {self.address} has no workers") from None
        try:
            workers = list(self._client.nthreads())
            loads = {
                worker: self._client.submit(
                    prepare_worker, self.device, workers=[worker], allow_other_workers=False, pure=False
                )
                for worker in workers
            }
            facts: dict[str, WorkerFacts] = {worker: future.result() for worker, future in loads.items()}
        except FaceclusterError:
            raise
        except Exception as error:  # a worker's import or load error arrives as any kind
            raise ClusterError(
                f"a worker of {self.address} cannot run facecluster ({type(error).__name__}: {error}); install the "
                "same facecluster on every worker"
            ) from None
        foreign = {worker: f for worker, f in facts.items() if not f.matches(self.expected)}
        if foreign:
            raise _refusal(self.address, self.expected, foreign)
        devices = tuple(sorted({f.device for f in facts.values()}))
        return ClusterRuntime(self.address, len(facts), devices)

    def _threads(self) -> int:
        """Worker threads the cluster has now; ClusterLost when the scheduler cannot say."""
        try:
            return sum(self._client.nthreads().values())
        except Exception as error:  # the client's own errors when the scheduler is gone
            raise self._lost(error) from None

    def analyze_many(self, images: Iterable[bytes]) -> Iterator[AnalysisResult]:
        """One result per photo's bytes, in input order. Photos travel in tasks of up to PHOTOS_PER_TASK
        or BYTES_PER_TASK, two tasks per worker thread there is (and at most MAX_HELD_BYTES of photos)
        in flight. ClusterLost when the scheduler, or every worker, goes away."""
        flight: deque[tuple[list[bytes], Future]] = deque()
        batch: list[bytes] = []
        held = 0
        try:
            most, sized = self._most(), time.monotonic()
            for data in images:
                batch.append(data)
                held += len(data)
                if len(batch) < PHOTOS_PER_TASK and sum(map(len, batch)) < BYTES_PER_TASK:
                    continue
                flight.append((batch, self._submit(batch)))
                batch = []
                while flight and (len(flight) >= most or held > MAX_HELD_BYTES):
                    photos, future = flight.popleft()
                    held -= sum(map(len, photos))
                    yield from self._results(photos, future)
                    if time.monotonic() - sized > RESIZE_SECONDS:
                        most, sized = self._most(), time.monotonic()
            if batch:
                flight.append((batch, self._submit(batch)))
            while flight:
                yield from self._results(*flight.popleft())
        finally:
            with suppress(Exception):  # the scheduler may be gone: nothing is left to cancel there
                self._client.cancel([future for _, future in flight])
            with suppress(Exception):
                self._client.close()

    def _most(self) -> int:
        """Tasks to keep in flight for the worker threads there are now."""
        return max(MIN_IN_FLIGHT, TASKS_PER_THREAD * self._threads())

    def _submit(self, photos: list[bytes]) -> Future:
        import dask

        try:  # photos are meant to travel in their task: no "large graph" warning for them
            with dask.config.set({"distributed.admin.large-graph-warning-threshold": MAX_TASK_BYTES}):
                return self._client.submit(analyse_on_worker, photos, self.device, pure=False)
        except Exception as error:  # the client's own errors (closed, lost connection)
            raise self._lost(error) from None

    def _wait(self, future: Future) -> tuple[WorkerFacts, list[AnalysisResult]]:
        """The future's result, waited for in steps; ClusterLost once the cluster has had no worker for the
        connect timeout (the scheduler keeps tasks without workers waiting forever)."""
        alone_since = None
        while True:
            try:
                return future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                if self._threads():
                    alone_since = None
                    continue
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since > _connect_timeout():
                    raise ClusterLost(
                        f"the Dask cluster at {self.address} has no workers left; every photo analysed so far is "
                        "saved: run the same command to resume"
                    ) from None

    def _results(self, photos: list[bytes], future: Future) -> Iterator[AnalysisResult]:
        """The results of one task's photos, in order, each with its photo as ``source``."""
        from distributed import KilledWorker

        try:
            facts, results = self._wait(future)
        except KilledWorker:
            error = ImageLoadError(
                "Dask workers died while analysing it, or a photo sent with it (one may crash them: too large, "
                "or a broken file); the next scan tries it again"
            )
            results = [AnalysisResult(source=None, faces=[], error=error) for _ in photos]
        except FaceclusterError:
            raise
        except CancelledError as error:
            raise self._lost(error) from None
        except Exception as error:  # the client's own errors, or whatever a worker raised
            if self._client.status != "running":
                raise self._lost(error) from None
            raise ClusterError(
                f"the Dask cluster at {self.address} could not analyse a photo: {type(error).__name__}: {error}"
            ) from None
        else:
            if not facts.matches(self.expected):
                raise _refusal(self.address, self.expected, {"a worker": facts})
        for data, result in zip(photos, results, strict=True):
            result.source = data
            yield result

    def _lost(self, error: Any) -> ClusterLost:
        return ClusterLost(
            f"lost the Dask scheduler at {self.address} during the scan ({type(error).__name__}); every photo "
            "analysed so far is saved: run the same command to resume"
        )
