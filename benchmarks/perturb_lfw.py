"""Write perturbed copies of LFW (downscaled, JPEG-recompressed, blurred) for robustness checks.

    python benchmarks/perturb_lfw.py KIND DEST [--shared ../shared] [--seed 0]

KIND is one of: downscale (each photo shrunk to 35-60 % of its side), jpeg (re-encoded at
quality 10-30), blur (Gaussian, radius 1.0-2.0 px), mixed (one or two of those at random).
DEST keeps LFW's folder layout, so identity is still the parent folder name; the copies go
outside the repository and are read by benchmarks/grouping_lfw.py.
"""

from __future__ import annotations

import argparse
import io
import random
from pathlib import Path

from PIL import Image, ImageFilter

KINDS = ("downscale", "jpeg", "blur", "mixed")


def downscale(image: Image.Image, rng: random.Random) -> Image.Image:
    factor = rng.uniform(0.35, 0.6)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BILINEAR)


def recompress(image: Image.Image, rng: random.Random) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(10, 30))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def blur(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.0)))


PERTURBATIONS = {"downscale": downscale, "jpeg": recompress, "blur": blur}


def perturb(image: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    """Apply the perturbation ``kind`` (mixed: one or two random ones, in a fixed order)."""
    if kind != "mixed":
        return PERTURBATIONS[kind](image, rng)
    chosen = rng.sample(sorted(PERTURBATIONS), rng.choice((1, 2)))
    for name in ("blur", "downscale", "jpeg"):
        if name in chosen:
            image = PERTURBATIONS[name](image, rng)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    images = args.shared / "data" / "lfw" / "images"
    if not images.is_dir():
        raise SystemExit(f"{images} not found: this benchmark needs the shared LFW data")
    written = 0
    for source in sorted(images.glob("*/*.jpg")):
        rng = random.Random(f"{args.seed}/{args.kind}/{source.name}")
        target = args.dest / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(source) as image:
            perturb(image.convert("RGB"), args.kind, rng).save(target, quality=95)
        written += 1
    print(f"{written} {args.kind} copies in {args.dest}")


if __name__ == "__main__":
    main()
