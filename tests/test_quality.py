import numpy as np
from PIL import Image, ImageFilter

from facecluster.inference.quality import assess, sharpness
from tests.conftest import ROOT

CHIP = ROOT / "tests" / "data" / "chips" / "George_W_Bush_0001.png"


def test_blur_lowers_sharpness():
    chip = Image.open(CHIP).convert("RGB")
    blurred = chip.filter(ImageFilter.GaussianBlur(2))
    assert sharpness(np.asarray(blurred)) < 0.5 * sharpness(np.asarray(chip))


def test_quality_reports_box_size_and_score():
    quality = assess(np.array([10.0, 20.0, 70.0, 100.0]), 0.97, np.asarray(Image.open(CHIP).convert("RGB")))
    assert quality.size == 60.0 and quality.score == 0.97
    assert set(quality.to_dict()) == {"size", "score", "sharpness"}
