"""Apply a people correction to a scan's output folder and rewrite its albums, JSON and report."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from facecluster.grouping import GroupingOptions
from facecluster.index import INDEX_FILE, FaceIndex, IndexUnavailable
from facecluster.outcome import ScanOutcome
from facecluster.people import People
from facecluster.scan import OutputLock, ScanError, ScanPlan, build_outcome, write_outputs

Result = TypeVar("Result")


def open_output(output: Path) -> Path:
    """The resolved output folder of an earlier scan, or ScanError (exit 2)."""
    out = output.expanduser().resolve()
    if not (out / INDEX_FILE).is_file():
        raise ScanError(f"{out}: no face index here; run 'facecluster scan PHOTOS -o {output}' first")
    return out


def correct(output: Path, action: Callable[[People], Result]) -> tuple[Result, ScanOutcome]:
    """Run ``action`` on the people of ``output`` (one transaction), then regroup and rewrite the outputs.

    The regrouping uses the folder and grouping options of the last scan, under the scan lock.
    """
    out = open_output(output)
    lock = OutputLock(out)
    index = None
    try:
        index = FaceIndex(out)
        root_hex = index.meta("root")
        if root_hex is None:
            raise ScanError(f"{out}: the index predates people support; run 'facecluster scan' once more")
        result = action(People(index))
        grouping = GroupingOptions.from_meta(index.meta("method"), index.meta("threshold"))
        root = Path(os.fsdecode(bytes.fromhex(root_hex)))
        outcome = build_outcome(root, index, ScanPlan([], [], [], []), grouping)
        outcome.summary = {**outcome.summary, "people": len(outcome.people), "unsorted": len(outcome.unsorted)}
        write_outputs(outcome, out, index.meta("album_mode") or "symlink", bool(index.meta("xmp")))
        return result, outcome
    except sqlite3.OperationalError as error:
        raise ScanError(f"cannot write the face index in {out}: {error}", exit_code=4) from error
    except IndexUnavailable as error:
        raise ScanError(f"{error}; move it aside to start a new index", exit_code=4) from error
    finally:
        if index is not None:
            index.close()
        lock.release()
