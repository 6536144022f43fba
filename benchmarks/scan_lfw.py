"""Scan all of LFW with `facecluster scan` and measure speed, memory and grouping quality.

    python benchmarks/scan_lfw.py [--shared ../shared] [--output /tmp/facecluster-bench-lfw]

Identity = the photo's folder name; each photo's scored face is chosen by
facecluster.evaluation.labels.labelled_faces, bystanders are grouped but not scored, unsorted
faces count as groups of one. A second scan of the unchanged folder measures the incremental
path. Threshold sweeps and held-out halves: benchmarks/grouping_lfw.py.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from facecluster import Library
from facecluster.evaluation.clustering import as_row, score_clustering
from facecluster.evaluation.labels import folder_labels, labelled_faces
from facecluster.storage.index import FaceIndex

HEADER = "pair P | pair R | pair F1 | B3 P  | B3 R  | B3 F1 | groups/people"


def render_screenshot(output: Path) -> Path | None:
    """Render report.html with headless Chromium into output/report.png, when Chromium exists."""
    if shutil.which("chromium") is None:
        return None
    script = Path(__file__).with_name("report_screenshot.py")
    subprocess.run([sys.executable, str(script), str(output)], check=True, capture_output=True)
    return output / "report.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--output", type=Path, default=Path("/tmp/facecluster-bench-lfw"))
    args = parser.parse_args()
    images = args.shared / "data" / "lfw" / "images"
    if not images.is_dir():
        raise SystemExit(f"{images} not found: this benchmark needs the shared LFW data")
    started = time.perf_counter()
    outcome = Library.create(images, args.output).scan()
    first = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    Library.create(images, args.output).scan()
    second = time.perf_counter() - started
    screenshot = render_screenshot(args.output)
    stats = outcome.stats
    print(
        f"scan of {images}: {stats.files} files, {stats.analysed} analysed, {stats.faces} faces, "
        f"{stats.people} people, {stats.unsorted} unsorted, {stats.skipped} skipped; "
        f"ran on {stats.device}"
    )
    print(
        f"first scan {first:.0f} s ({stats.analysed / first:.1f} photos/s); "
        f"unchanged re-scan {second:.1f} s; peak memory {peak_mb:.0f} MB"
    )
    print(f"report screenshot: {screenshot or 'skipped (no chromium)'}")
    index = FaceIndex(args.output)
    photos = index.photos()
    index.close()
    identity = labelled_faces(outcome, folder_labels(photos)).identity
    key_of = {face.face_id: n for n, person in enumerate(outcome.people) for face in person.faces}
    scores = score_clustering(list(identity.values()), [key_of.get(i, -1) for i in identity])
    print(f"\n{len(identity)} labelled faces of {len(set(identity.values()))} people")
    print(f"{'grouping':<24} | {HEADER}")
    print(f"{stats.method + ' ' + str(stats.threshold):<24} | " + " | ".join(as_row(scores)))
    print("threshold sweeps, held-out halves and perturbed copies: python -m benchmarks.grouping_lfw")


if __name__ == "__main__":
    main()
