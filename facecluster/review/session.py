"""The review app's hold on a library: one change at a time, and albums brought up to date in batches.

A change made in the app is committed at once (with its history entry), but regrouping and
rewriting albums, people.json and the report wait until no change has come for ``SETTLE_DELAY``
seconds, so that naming twenty people costs one rewrite. Any facecluster command run meanwhile,
and the app when it stops, does the pending work first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from facecluster.errors import FaceclusterError, OutputBusy, PeopleError
from facecluster.library import Library, PeopleEditor

SETTLE_DELAY = 3.0
"""Seconds without a change before the app regroups and rewrites the outputs."""


@dataclass(frozen=True)
class Status:
    """What the banner says."""

    busy: bool
    """Another command (a scan) holds the output folder: the app is read-only."""
    pending: bool
    """Changes wait for the albums to be rewritten."""
    settling: bool
    """The app is rewriting them now."""
    error: str | None
    """Why the last rewrite failed (it is retried)."""


class ReviewSession:
    """A library under review: serialised changes, deferred settling, and the status banner."""

    def __init__(self, library: Library, settle_delay: float = SETTLE_DELAY) -> None:
        self.library = library
        self.settle_delay = settle_delay
        self._write = threading.Lock()
        self._wake = threading.Condition()
        self._due: float | None = None
        self._settling = False
        self._error: str | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._settle_loop, name="facecluster-settle", daemon=True)
        self._thread.start()

    def status(self) -> Status:
        held = self.library.busy()  # the file lock first: our own settling takes it after _write
        settling = self._settling
        busy = held and not settling and not self._write.locked()
        return Status(busy, self._due is not None or settling, settling, self._error)

    @contextmanager
    def change(self, command: str) -> Iterator[PeopleEditor]:
        """A block of corrections recorded as one change (``command`` in the history); settled later."""
        with self._write, self.library.corrections(command, defer=True) as edit:
            yield edit
        self._schedule()

    def undo(self, until: int | None = None) -> list[str]:
        """Undo the newest change, or every change down to and including #``until``; what was undone."""
        undone: list[str] = []
        with self._write:
            if until is not None and not any(c.id == until for c in self.library.history(undoable=True)):
                raise PeopleError(f"change #{until} is already undone, or cannot be undone")
            while True:
                change = self.library.undo(defer=True)
                undone.append(f"#{change.id} {change.command}")
                if until is None or change.id <= until:
                    break
        self._schedule()
        return undone

    def settle_now(self) -> None:
        """Bring grouping and outputs up to date now (before quitting, or when the user asks)."""
        with self._wake:
            self._due = None
        self._settle()

    def stop(self) -> None:
        """Stop the background thread after settling what is pending."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)
        self.settle_now()

    def _schedule(self) -> None:
        with self._wake:
            self._due = time.monotonic() + self.settle_delay
            self._wake.notify()

    def _settle_loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (self._due is None or time.monotonic() < self._due):
                    self._wake.wait(None if self._due is None else max(0.01, self._due - time.monotonic()))
                if self._stopped:
                    return
                self._due = None
            self._settle()

    def _settle(self) -> None:
        with self._write:
            self._settling = True
            try:
                self.library.settle()
                self._error = None
            except OutputBusy as error:
                self._error = f"{error}; the albums will be updated when it is done"
                self._retry_later()
            except (FaceclusterError, OSError) as error:
                self._error = str(error)
                self._retry_later()
            finally:
                self._settling = False

    def _retry_later(self) -> None:
        with self._wake:
            if self._due is None:
                self._due = time.monotonic() + max(self.settle_delay, 5.0)
                self._wake.notify()
