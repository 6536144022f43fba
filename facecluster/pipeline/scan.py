"""One scan, stage by stage: plan, ingest new photos, keep vanished ones as missing, regroup, read the people back.

A scan never forgets what the user said: a photo that vanished keeps its faces and corrections
(as *missing*, out of the albums) until the user prunes it, and comes back, at any path, without
re-analysis. An index belongs to one photo folder; a scan of another, or of a folder holding no
photo at all (a drive not mounted), is refused unless the options say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from facecluster.errors import InvalidInput
from facecluster.pipeline.ingest import Analyzer, Progress, ingest
from facecluster.pipeline.people import read_outcome, regroup
from facecluster.pipeline.plan import ScanOptions, ScanPlan, plan_scan
from facecluster.storage.index import FaceIndex
from facecluster.types import ScanOutcome

NOTHING_NEW = "not needed (nothing new)"
"""The device shown when no photo had to be analysed (the models are not even loaded)."""


def check_scan(index: FaceIndex, root: Path, plan: ScanPlan, options: ScanOptions) -> None:
    """InvalidInput when the scan would take this index from its own photo folder, or find none of its photos."""
    previous = index.root()
    if previous is not None and previous != root and not options.new_folder:
        raise InvalidInput(
            f"this output folder belongs to the photo folder {previous}, not {root}; nothing changed. "
            "To scan another folder, give another -o; if your photos moved to it, add --new-folder "
            "(photos found there keep their names; the others are kept as missing)"
        )
    present = index.present()
    if not plan.found and present and not options.allow_empty:
        raise InvalidInput(
            f"no photos in {root}, but the index holds {present}; nothing changed. If the folder is on a drive, "
            "is it mounted? To keep going anyway (the photos are kept as missing, names and corrections too), "
            "add --allow-empty"
        )


def scan_into(
    index: FaceIndex,
    root: Path,
    output: Path,
    options: ScanOptions,
    load_analyzer: Callable[[str, int | None], Analyzer],
    progress: Progress | None = None,
) -> ScanOutcome:
    """Bring ``index`` up to date with the photos under ``root`` and regroup; the outcome's stats say what ran.

    ``load_analyzer(device, workers)`` is called only when there is something to read.
    """
    started = time.perf_counter()
    plan = plan_scan(root, output, index, options)
    check_scan(index, root, plan, options)
    missing_before = set(index.missing_contents())
    index.mark_present(plan.returned)
    device, analysed = NOTHING_NEW, 0
    if plan.to_read:
        analyzer = load_analyzer(options.device, options.workers)
        device = analyzer.runtime.label
        analysed = ingest(index, plan.to_read, analyzer, progress)
    index.mark_missing(plan.vanished, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    moved = index.settle_moves()
    regroup(index, options.grouping)
    outcome = read_outcome(index, root, options.grouping, plan.problems)
    stats = outcome.stats
    stats.files = len(plan.found)
    stats.new_or_changed = len(plan.to_read)
    stats.analysed = analysed
    stats.vanished = len(plan.vanished)
    stats.moved = moved
    stats.returned = len(missing_before - set(index.missing_contents()))
    stats.device = device
    stats.seconds = round(time.perf_counter() - started, 2)
    return outcome
