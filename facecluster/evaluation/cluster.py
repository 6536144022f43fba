"""Grouping quality of the real scan on a labelled photo folder (``facecluster eval cluster``)."""

from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from facecluster.errors import InvalidInput
from facecluster.evaluation.clustering import ClusteringScores, score_clustering
from facecluster.evaluation.labels import folder_labels, labelled_faces, read_label_csv
from facecluster.library import Library
from facecluster.pipeline.ingest import Progress
from facecluster.pipeline.plan import ScanOptions
from facecluster.types import ScanStats


@dataclass(frozen=True)
class ClusterEvaluation:
    """How the scan's groups compare with the true identities."""

    scores: ClusteringScores
    labelled: int
    """Labelled photos."""
    scored_faces: int
    without_face: list[str]
    """Labelled photos in which no face was found."""
    not_analysed: list[str]
    """Labelled paths the scan has no result for (no such photo, hidden or unreadable)."""
    stats: ScanStats
    """The scan's own summary."""
    seconds: float
    """The whole evaluation, scan included."""


def evaluate_folder(
    photos: Path,
    labels_file: Path | None = None,
    output: Path | None = None,
    options: ScanOptions | None = None,
    progress: Progress | None = None,
) -> ClusterEvaluation:
    """Scan ``photos`` (into ``output``, or a temporary folder) and score its groups against the labels.

    Identity is the folder holding each photo, or the ``path,label`` rows of ``labels_file``. Each
    labelled photo is scored on one face, its confident detection nearest the centre (see
    ``labelled_faces``); unsorted faces count as groups of one. Raises InvalidInput when there is
    nothing to score.
    """
    started = time.perf_counter()
    options = options or ScanOptions()
    with nullcontext(output) if output else tempfile.TemporaryDirectory(prefix="facecluster-eval-") as folder:
        library = Library.create(photos, folder)
        found = [f.relative for f in library.plan(options).found]
        if not found:
            raise InvalidInput(f"{photos}: no photos found")
        labels = read_label_csv(labels_file) if labels_file else folder_labels(found)
        if not labels.keys() & set(found):
            if labels_file:
                raise InvalidInput(f"{labels_file}: names no photo in {photos} (paths must be relative to it)")
            raise InvalidInput(
                f"{photos}: every photo lies directly in it; put them in one folder per person or use --labels"
            )
        outcome = library.scan(options, progress)
    scored = labelled_faces(outcome, labels)
    if not scored.identity:
        raise InvalidInput(f"{photos}: no labelled photo has a face, nothing to score")
    group_of = {face.face_id: n for n, person in enumerate(outcome.people) for face in person.faces}
    ids = sorted(scored.identity)
    return ClusterEvaluation(
        scores=score_clustering([scored.identity[i] for i in ids], [group_of.get(i, -1) for i in ids]),
        labelled=len(labels),
        scored_faces=len(ids),
        without_face=scored.without_face,
        not_analysed=scored.not_analysed,
        stats=outcome.stats,
        seconds=time.perf_counter() - started,
    )
