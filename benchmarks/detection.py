"""Detection recall, false positives and per-stage time on ../shared face data.

    python benchmarks/detection.py [--shared ../shared] [--limit N] [--min-side PX] [--max-side PX]

Group photos (PASCAL VOC, dlib imglab boxes): a detection matches an annotated box
when their IoU >= 0.3 (the annotations are tight square boxes, RetinaFace's are
taller). WebFaces (eye/nose/mouth points): a detection matches a face when its two
eye landmarks lie within 0.3 inter-ocular distances of the annotated eyes on average;
the matched faces also give the mean eye-landmark error. Unmatched detections are
false positives (WebFaces annotates most but not all faces, so its count is an upper
bound). Matching is greedy, one-to-one, strongest detection first.
"""

from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import numpy as np

from facecluster.inference.analyzer import FaceAnalyzer
from facecluster.inference.detector import (
    DEFAULT_DETECT_SIDE,
    DEFAULT_MIN_DETECT_SIDE,
    DEFAULT_SCORE_THRESHOLD,
    Detection,
    FaceDetector,
    iou,
)
from facecluster.inference.images import load_image

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)
IOU_MATCH = 0.3
EYE_MATCH = 0.3


def group_photo_truth(folder: Path) -> dict[Path, list[np.ndarray]]:
    """Annotated face boxes per photo from training.xml and testing.xml."""
    truth: dict[Path, list[np.ndarray]] = {}
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / name).getroot().iter("image"):
            boxes = []
            for box in image.iter("box"):
                if box.get("ignore") == "1":
                    continue
                top, left = float(box.get("top")), float(box.get("left"))
                boxes.append(np.array([left, top, left + float(box.get("width")), top + float(box.get("height"))]))
            truth[folder / image.get("file")] = boxes
    return truth


def webfaces_truth(folder: Path) -> dict[Path, list[np.ndarray]]:
    """Annotated (left eye, right eye) points per photo from ground_truth.txt."""
    truth: dict[Path, list[np.ndarray]] = defaultdict(list)
    for line in (folder / "ground_truth.txt").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5:
            truth[folder / "images" / fields[0]].append(np.array(fields[1:5], dtype=float).reshape(2, 2))
    return truth


def match_boxes(detections: list[Detection], boxes: list[np.ndarray]) -> tuple[int, int, list[float]]:
    """(matched, false positives, no errors) for box annotations."""
    free = list(range(len(boxes)))
    matched = 0
    for detection in detections:
        scores = [(iou(detection.box, boxes[i]), i) for i in free]
        best = max(scores, default=(0.0, -1))
        if best[0] >= IOU_MATCH:
            free.remove(best[1])
            matched += 1
    return matched, len(detections) - matched, []


def match_eyes(detections: list[Detection], eyes: list[np.ndarray]) -> tuple[int, int, list[float]]:
    """(matched, false positives, normalised eye errors) for eye-point annotations."""
    free = list(range(len(eyes)))
    matched, errors = 0, []
    for detection in detections:
        best, best_error = -1, np.inf
        for i in free:
            interocular = np.linalg.norm(eyes[i][0] - eyes[i][1])
            error = np.linalg.norm(detection.landmarks[:2] - eyes[i], axis=1).mean() / max(interocular, 1e-6)
            if error < best_error:
                best, best_error = i, error
        if best >= 0 and best_error <= EYE_MATCH:
            free.remove(best)
            matched += 1
            errors.append(float(best_error))
    return matched, len(detections) - matched, errors


def detection_table(name: str, truth: dict[Path, list[np.ndarray]], matcher, detector: FaceDetector) -> None:
    """Print recall / false positives per photo at several score thresholds, each a run of its own (a
    small photo's two views are merged after the threshold, so filtering one run would differ)."""
    images = {path: load_image(path).rgb for path in truth}
    total = sum(len(v) for v in truth.values())
    print(f"\n{name}: {len(truth)} photos, {total} annotated faces")
    print(f"{'threshold':>9} | {'recall':>7} | {'FP/photo':>8} | {'eye error (IOD)':>15}")
    for threshold in THRESHOLDS:
        matched = false_pos = 0
        errors: list[float] = []
        for path, expected in truth.items():
            m, f, e = matcher(detector.detect(images[path], score_threshold=threshold), expected)
            matched, false_pos, errors = matched + m, false_pos + f, errors + e
        marker = " (default)" if threshold == DEFAULT_SCORE_THRESHOLD else ""
        eye = f"{np.mean(errors):.3f}" if errors else "-"
        print(f"{threshold:>9} | {matched / total:>7.1%} | {false_pos / len(truth):>8.2f} | {eye:>15}{marker}")


def stage_table(paths: list[Path]) -> None:
    """Print mean per-stage time per photo of the full pipeline."""
    analyzer = FaceAnalyzer()
    started = time.perf_counter()
    faces = sum(len(result.faces) for result in analyzer.analyze_many(paths))
    elapsed = time.perf_counter() - started
    print(f"\nper-stage time, {len(paths)} photos, {faces} faces, on {analyzer.runtime.label}")
    print(f"{'stage':>8} | {'ms/photo':>8} | share")
    for stage, seconds in analyzer.timer.seconds.items():
        print(f"{stage:>8} | {1000 * seconds / len(paths):>8.1f} | {seconds / elapsed:.0%}")
    print(f"{'total':>8} | {1000 * elapsed / len(paths):>8.1f} | {len(paths) / elapsed:.1f} photos/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N WebFaces photos")
    parser.add_argument("--min-side", type=int, default=DEFAULT_MIN_DETECT_SIDE, help="enlarge smaller photos to this")
    parser.add_argument("--max-side", type=int, default=DEFAULT_DETECT_SIDE, help="shrink larger photos to this")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage timing")
    args = parser.parse_args()
    data = args.shared / "data"
    if not data.is_dir():
        raise SystemExit(f"{data} not found: this benchmark needs the shared face data")
    detector = FaceDetector(min_side=args.min_side, max_side=args.max_side)
    print(f"detector on {detector.runtime.label}; photos enlarged to {args.min_side} px, shrunk to {args.max_side} px")
    groups = group_photo_truth(data / "group-photos")
    detection_table("group photos", groups, match_boxes, detector)
    web = dict(webfaces_truth(data / "webfaces"))
    if args.limit:
        web = dict(list(web.items())[: args.limit])
    detection_table("WebFaces", web, match_eyes, detector)
    if not args.no_stages:
        stage_table(list(groups) + list(web))


if __name__ == "__main__":
    main()
