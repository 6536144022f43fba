"""An exclusive lock on an output folder, so two scans or corrections never write one index at once.

The lock is an OS file lock on ``OUT/.lock`` (``flock`` on Unix, ``msvcrt.locking`` on Windows): the
operating system releases it when the process ends, however it ends, so a killed scan never
leaves the folder locked.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facecluster.errors import OutputBusy, StorageError

LOCK_FILE = ".lock"
LOCK_WAIT = 1.0
"""Seconds a command waits for the lock before saying the folder is busy (so a brief holder, such as
the review app checking whether a scan runs, never makes a command fail)."""

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle) -> bool:
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle) -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(handle) -> None:
        fcntl.flock(handle, fcntl.LOCK_UN)


class OutputLock:
    """Hold the output folder's lock from construction until ``release`` (or the end of a ``with``)."""

    def __init__(self, output: Path, wait: float = LOCK_WAIT) -> None:
        try:
            output.mkdir(parents=True, exist_ok=True)
            self.handle = open(output / LOCK_FILE, "a+")  # noqa: SIM115 - held for the lock's lifetime
        except OSError as error:
            raise StorageError(f"cannot write to the output folder {output}: {error.strerror}") from error
        deadline = time.monotonic() + wait
        while not _try_lock(self.handle):
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            self.handle.close()
            raise OutputBusy(
                f"another facecluster command (a scan or a correction) is using {output}; wait for it to finish"
            )

    @staticmethod
    def busy(output: Path) -> bool:
        """Whether another command holds the folder's lock now (taken and released at once when free)."""
        try:
            OutputLock(output, wait=0).release()
        except OutputBusy:
            return True
        return False

    def release(self) -> None:
        _unlock(self.handle)
        self.handle.close()

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


@contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM until the block ends, then raise KeyboardInterrupt if one came.

    For the short step between committing a change and rewriting its outputs, so an interrupted
    command leaves either nothing changed or everything done. The list names the signals held.
    Outside the main thread (where Python cannot catch signals) the block simply runs.
    """
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    kinds = [signal.SIGINT, signal.SIGTERM]
    previous = {kind: signal.getsignal(kind) for kind in kinds}
    for kind in kinds:
        signal.signal(kind, lambda number, frame: held.append(number))
    try:
        yield held
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)
    if held:
        raise KeyboardInterrupt
