"""One scan, stage by stage: plan, forget removed paths, ingest new photos, regroup, read the people back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from facecluster.pipeline.ingest import Analyzer, Progress, ingest
from facecluster.pipeline.people import read_outcome, regroup
from facecluster.pipeline.plan import ScanOptions, plan_scan
from facecluster.storage.index import FaceIndex
from facecluster.types import ScanOutcome

NOTHING_NEW = "not needed (nothing new)"
"""The device shown when no photo had to be analysed (the models are not even loaded)."""


def scan_into(
    index: FaceIndex,
    root: Path,
    output: Path,
    options: ScanOptions,
    load_analyzer: Callable[[str], Analyzer],
    progress: Progress | None = None,
) -> ScanOutcome:
    """Bring ``index`` up to date with the photos under ``root`` and regroup; the outcome's stats say what ran.

    ``load_analyzer(device)`` is called only when there is something to read.
    """
    started = time.perf_counter()
    plan = plan_scan(root, output, index, options)
    index.remove_paths(plan.removed)
    device, analysed = NOTHING_NEW, 0
    if plan.to_read:
        analyzer = load_analyzer(options.device)
        device = analyzer.runtime.label
        analysed = ingest(index, plan.to_read, analyzer, progress)
    regroup(index, options.grouping)
    outcome = read_outcome(index, root, options.grouping, plan.problems)
    stats = outcome.stats
    stats.files = len(plan.found)
    stats.new_or_changed = len(plan.to_read)
    stats.analysed = analysed
    stats.removed = len(plan.removed)
    stats.device = device
    stats.seconds = round(time.perf_counter() - started, 2)
    return outcome
