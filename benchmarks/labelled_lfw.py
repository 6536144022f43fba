"""LFW's faces with identities, from a `facecluster scan` of ../shared/data/lfw/images (shared by benchmarks).

The scan is incremental: the first call analyses every photo (about 5 minutes on 2 cores) and
later calls only regroup. Identity = the photo's folder name; each photo's scored face is chosen
by facecluster.evaluation.labels.labelled_faces; bystanders keep an empty label.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecluster import Library
from facecluster.evaluation.clustering import ClusteringScores, score_clustering
from facecluster.evaluation.labels import folder_labels, labelled_faces
from facecluster.grouping import GroupingOptions, group_embeddings
from facecluster.pipeline.people import usable
from facecluster.storage.index import FaceIndex

DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@dataclass(frozen=True)
class LabelledSet:
    """The faces a scan groups (usable ones) and the faces it is scored on (labelled ones)."""

    embeddings: np.ndarray
    photos: list[str]
    labels: np.ndarray
    """Identity of each photo's scored face; '' for bystanders."""
    usable: np.ndarray
    """Whether the scan groups the face; labelled faces that are not usable stay alone."""

    def part(self, name: str) -> LabelledSet:
        """Faces of photos whose identity falls in half 'A' or 'B' (or 'all')."""
        if name == "all":
            return self
        identity_of = {p: lb for p, lb in zip(self.photos, self.labels, strict=True) if lb}
        keep = np.array([half(identity_of.get(p, "")) == name for p in self.photos])
        photos = [p for p, k in zip(self.photos, keep, strict=True) if k]
        return LabelledSet(self.embeddings[keep], photos, self.labels[keep], self.usable[keep])

    def group(self, options: GroupingOptions) -> tuple[ClusteringScores, float]:
        """Group the usable faces as a scan would; score the labelled ones; and the seconds it took."""
        rows = np.flatnonzero(self.usable)
        started = time.perf_counter()
        grouped = group_embeddings(self.embeddings[rows], options, [self.photos[r] for r in rows])
        seconds = time.perf_counter() - started
        assigned = np.full(len(self.labels), -1)
        assigned[rows] = grouped
        scored = np.flatnonzero(self.labels != "")
        return score_clustering(list(self.labels[scored]), list(assigned[scored])), seconds


def half(identity: str) -> str:
    """Identities split into halves A and B by a hash of the name ('' for none)."""
    if not identity:
        return ""
    return "A" if hashlib.sha256(identity.encode()).digest()[0] % 2 == 0 else "B"


def lfw_images(shared: Path) -> Path:
    images = shared / "data" / "lfw" / "images"
    if not images.is_dir():
        raise SystemExit(f"{images} not found: this benchmark needs the shared LFW data")
    return images


def labelled_set(images: Path, output: Path) -> LabelledSet:
    """Scan ``images`` into ``output`` (incrementally) and return its usable faces with identities."""
    outcome = Library.create(images, output).scan()
    index = FaceIndex(output)
    try:
        faces, photos = index.faces(), index.photos()
    finally:
        index.close()
    identity = labelled_faces(outcome, folder_labels(photos)).identity
    kept = [f for f in faces if usable(f) or f.face_id in identity]
    return LabelledSet(
        embeddings=np.stack([f.embedding for f in kept]).astype(np.float32),
        photos=[f.sha256 for f in kept],
        labels=np.array([identity.get(f.face_id, "") for f in kept]),
        usable=np.array([usable(f) for f in kept]),
    )
