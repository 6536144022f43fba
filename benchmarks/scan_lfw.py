"""Scan all of LFW with `facecluster scan` and measure speed, memory and grouping quality.

    python benchmarks/scan_lfw.py [--shared ../shared] [--output /tmp/facecluster-bench-lfw]

Identity = the photo's folder name. Each photo's labelled face is its confident detection
(score >= 0.5) nearest the centre; other faces in a photo (bystanders) are grouped but not
scored. Unsorted labelled faces count as groups of one. Besides the scan's own grouping, the
threshold of each method is swept on the same embeddings. Identities are split into two
halves by a hash of the name and each half's photos are grouped on their own (A tunes, B
checks), so a setting is never judged on one number; "all" groups every face together.
A second scan of the unchanged folder measures the incremental path.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from facecluster.evaluation.clustering import as_row, score_clustering
from facecluster.grouping import DEFAULT_METHOD, DEFAULT_THRESHOLDS, GroupingOptions, group_embeddings
from facecluster.index import FaceIndex
from facecluster.scan import ScanOptions, run_scan, usable

SWEEP = {"agglomerative": (0.33, 0.34, 0.35, 0.36, 0.375), "hdbscan": (0.25, 0.28, 0.30)}
HEADER = "pair P | pair R | pair F1 | B3 P  | B3 R  | B3 F1 | groups/people"


def render_screenshot(output: Path) -> Path | None:
    """Render report.html with headless Chromium into output/report.png, when Chromium exists."""
    if shutil.which("chromium") is None:
        return None
    script = Path(__file__).with_name("report_screenshot.py")
    subprocess.run([sys.executable, str(script), str(output)], check=True, capture_output=True)
    return output / "report.png"


def half(name: str) -> str:
    return "A" if hashlib.sha256(name.encode()).digest()[0] % 2 == 0 else "B"


def labelled_faces(index: FaceIndex) -> tuple[list, dict[int, str], dict[str, str]]:
    """All faces, face id -> identity for each photo's labelled face, content -> identity."""
    faces = index.faces()
    by_content: dict[str, list] = {}
    for face in faces:
        by_content.setdefault(face.sha256, []).append(face)
    contents = index.contents()
    identity, content_identity = {}, {}
    for relative, stored in index.photos().items():
        content_identity[stored.sha256] = relative.split("/")[0]
        candidates = by_content.get(stored.sha256 or "", [])
        if not candidates:
            continue
        width, height = contents[stored.sha256][2:4]
        centre = np.array([width, height]) / 2
        confident = [f for f in candidates if f.score >= 0.5] or candidates
        chosen = min(confident, key=lambda f: np.linalg.norm((np.array(f.box[:2]) + f.box[2:]) / 2 - centre))
        identity[chosen.face_id] = relative.split("/")[0]
    return faces, identity, content_identity


def print_scores(label: str, part: str, identity: dict[int, str], assigned: dict[int, int]) -> None:
    ids = [i for i in identity if part == "all" or half(identity[i]) == part]
    scores = score_clustering([identity[i] for i in ids], [assigned.get(i, -1) for i in ids])
    print(f"{label:<34} {part:>3} | " + " | ".join(as_row(scores)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--output", type=Path, default=Path("/tmp/facecluster-bench-lfw"))
    args = parser.parse_args()
    images = args.shared / "data" / "lfw" / "images"
    if not images.is_dir():
        raise SystemExit(f"{images} not found: this benchmark needs the shared LFW data")
    started = time.perf_counter()
    outcome = run_scan(images, args.output, ScanOptions())
    first = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    run_scan(images, args.output, ScanOptions())
    second = time.perf_counter() - started
    screenshot = render_screenshot(args.output)
    summary = outcome.summary
    print(
        f"scan of {images}: {summary['files']} files, {summary['analysed']} analysed, {summary['faces']} faces, "
        f"{summary['people']} people, {summary['unsorted']} unsorted, {summary['skipped']} skipped; "
        f"ran on {summary['device']}"
    )
    print(
        f"first scan {first:.0f} s ({summary['analysed'] / first:.1f} photos/s); "
        f"unchanged re-scan {second:.1f} s; peak memory {peak_mb:.0f} MB"
    )
    print(f"report screenshot: {screenshot or 'skipped (no chromium)'}")
    index = FaceIndex(args.output)
    faces, identity, content_identity = labelled_faces(index)
    index.close()
    print(f"\n{len(identity)} labelled faces of {len(set(identity.values()))} people\n")
    print(f"{'grouping':<34} {'set':>3} | {HEADER}")
    key_of = {face.face_id: n for n, person in enumerate(outcome.people) for face in person.faces}
    print_scores(f"scan default ({DEFAULT_METHOD} {DEFAULT_THRESHOLDS[DEFAULT_METHOD]})", "all", identity, key_of)
    good = [f for f in faces if usable(f)]
    for method, thresholds in SWEEP.items():
        for threshold in thresholds:
            for part in ("A", "B", "all"):
                chosen = [f for f in good if part == "all" or half(content_identity[f.sha256]) == part]
                started = time.perf_counter()
                labels = group_embeddings(np.stack([f.embedding for f in chosen]), GroupingOptions(method, threshold))
                seconds = time.perf_counter() - started
                assigned = {f.face_id: int(label) for f, label in zip(chosen, labels, strict=True)}
                print_scores(f"{method} {threshold} ({seconds:.0f} s)", part, identity, assigned)


if __name__ == "__main__":
    main()
