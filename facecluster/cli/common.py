"""What every command shares: options, plain messages, the progress bar, and the one table of exit codes."""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from facecluster.errors import ClusterLost, FaceclusterError, InvalidInput, OutputBusy, StorageError
from facecluster.grouping import DEFAULT_METHOD, DEFAULT_THRESHOLDS, MAX_DISTANCE, METHODS
from facecluster.inference.runtime import DEVICES
from facecluster.library import Library
from facecluster.pipeline.ingest import Progress as ScanProgress

if TYPE_CHECKING:
    from facecluster.inference.analyzer import FaceAnalyzer

EXIT_BAD_INPUT = 2
EXIT_BUSY = 3
EXIT_STORAGE = 4
EXIT_INTERRUPTED = 130
EXIT_CODES: tuple[tuple[type[FaceclusterError], int], ...] = (
    (InvalidInput, EXIT_BAD_INPUT),
    (OutputBusy, EXIT_BUSY),
    (StorageError, EXIT_STORAGE),
    (ClusterLost, EXIT_STORAGE),
    (FaceclusterError, EXIT_BAD_INPUT),
)
"""Library error -> exit status, first match wins: 2 bad arguments or input (a Dask scheduler that
cannot be reached or runs another facecluster too), 3 output folder in use, 4 output folder or index
unusable, or the Dask scheduler lost during a scan. Interrupted commands exit 130 (EXIT_INTERRUPTED)."""

stderr = Console(stderr=True)


class FiniteRange(click.FloatRange):
    """``click.FloatRange`` that also refuses NaN (which passes every comparison); --help shows the range."""

    name = "number"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number from {self.min:g} to {self.max:g}.", param, ctx)
        return number


DISTANCE = FiniteRange(0.0, MAX_DISTANCE)
"""Every distance threshold option (grouping, verify): a number from 0 to 2, the largest distance
between two unit embeddings; NaN, infinities and anything outside are a usage error (exit 2)."""
COUNT = click.IntRange(1, 2**31 - 1)
"""Every count option (history --limit): a whole number from 1 to 2**31 - 1 (SQLite takes no
integer beyond 2**63 - 1, and no list is that long)."""

device_option = click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="Where the models run. 'auto' uses a CUDA GPU when onnxruntime-gpu finds one, "
    "else the CPU, and says which; 'cuda' fails instead of falling back to the CPU.",
)
method_option = click.option(
    "--method",
    type=click.Choice(METHODS),
    default=DEFAULT_METHOD,
    show_default=True,
    help="Grouping method: 'adaptive' (average linkage that asks more of small groups and keeps look-alike "
    "groups apart), 'agglomerative' (plain average linkage) or 'hdbscan'.",
)
threshold_option = click.option(
    "--threshold",
    type=DISTANCE,
    default=None,
    help="Grouping distance between unit embeddings (linkage methods: root-mean-square distance between two "
    "groups' faces; hdbscan: selection epsilon). Larger joins more [default: "
    + ", ".join(f"{m} {t}" for m, t in DEFAULT_THRESHOLDS.items())
    + "].",
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("facecluster-output"),
    show_default=True,
    help="The output folder of an earlier 'facecluster scan'.",
)


def exit_code(error: FaceclusterError) -> int:
    """The exit status of a library error (EXIT_CODES)."""
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


def note(message: str) -> None:
    """One plain line on stderr (never wrapped, never read as markup)."""
    click.echo(message, err=True)


def fail(message: str, as_json: bool = False, status: int = EXIT_BAD_INPUT) -> NoReturn:
    """Report a user-facing error (also as JSON on stdout with ``as_json``) and exit with ``status``."""
    if as_json:
        click.echo(json.dumps({"error": message}))
    note(f"error: {message}")
    sys.exit(status)


INTERRUPTED_LATER = "facecluster.interrupted_later"
"""Key in click's context meta: what to say when Ctrl-C lands after a change was completed, while
the command prints what it did (``interrupted_outside``)."""


@contextmanager
def reported(
    as_json: bool = False,
    interrupted: str | Callable[[], str] | None = None,
    completed: str | Callable[[], str] | None = None,
) -> Iterator[None]:
    """Turn library errors into a message and their exit status; with ``interrupted`` (a message, or a
    function that tells what was done), Ctrl-C and SIGTERM into that message and exit 130.
    ``completed`` (the same kinds) is what an interruption after the block ends says
    (see ``interrupted_outside``)."""
    try:
        yield
    except FaceclusterError as error:
        fail(str(error), as_json, exit_code(error))
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        note(interrupted() if callable(interrupted) else interrupted)
        sys.exit(EXIT_INTERRUPTED)
    if completed is not None:
        click.get_current_context().meta[INTERRUPTED_LATER] = completed


def interrupted_outside(context: click.Context) -> NoReturn:
    """Ctrl-C or SIGTERM outside a command's own handling (while it started, or while it printed what
    it had done): exit 130 and what ``reported`` recorded as done, not click's "Aborted!" and 1."""
    said = context.meta.get(INTERRUPTED_LATER, "interrupted")
    note(said() if callable(said) else said)
    sys.exit(EXIT_INTERRUPTED)


@contextmanager
def changing(output: Path) -> Iterator[Library]:
    """The library of ``output`` for a command that changes it: errors reported, and an interruption
    reported as what it is, by the history: nothing changed, or the change completed (and how to undo it)."""
    with reported():
        library = Library.open(output)
        last = library.history(1)

    def stopped() -> str:
        now = library.history(1)
        if now == last:
            return "interrupted: nothing was changed"
        return (
            f"interrupted after the change was completed (#{now[0].id}); to take it back: facecluster undo -o {output}"
        )

    with reported(interrupted=stopped, completed=stopped):
        yield library


def stop_on_sigterm() -> None:
    """SIGTERM stops a command as Ctrl-C does: what it was doing is rolled back or completed, exit 130."""

    def interrupt(number: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def load_analyzer(device: str) -> FaceAnalyzer:
    """The bundled models on ``device``, or exit 2 with the reason."""
    from facecluster.inference.analyzer import FaceAnalyzer

    with reported():
        return FaceAnalyzer(device=device)


@contextmanager
def scan_progress(show: bool) -> Iterator[ScanProgress]:
    """Callbacks for a scan that drive a progress bar on stderr (hidden unless ``show``)."""
    with Progress(
        TextColumn("[bold]analysing"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} photos"),
        TextColumn("{task.fields[faces]} faces"),
        TimeRemainingColumn(),
        console=stderr,
        disable=not show,
    ) as bar:
        tasks: list = []
        faces = [0]

        def start(total: int) -> None:
            tasks.append(bar.add_task("photos", total=total, faces=0))

        def advance(found: int) -> None:
            faces[0] += found
            bar.update(tasks[0], advance=1, faces=faces[0])

        yield ScanProgress(start, advance)
