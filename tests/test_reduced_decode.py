"""Large JPEGs are decoded at the detection's size; faces too small for it are aligned from a finer decode."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from facecluster.inference.analyzer import FaceAnalyzer
from facecluster.inference.images import load_image
from tests.conftest import EXAMPLES


def _phone_photo(face_side: int, orientation: int | None = None) -> tuple[bytes, np.ndarray]:
    """A 4033 x 3025 JPEG (odd sides) with one portrait pasted at ``face_side`` px, and its full pixels."""
    canvas = Image.new("RGB", (4033, 3025), (90, 120, 150))
    portrait = Image.open(EXAMPLES / "George_W_Bush_0001.jpg").convert("RGB")
    canvas.paste(portrait.resize((face_side, face_side), Image.Resampling.LANCZOS), (1500, 1000))
    stored, exif = canvas, Image.Exif()
    if orientation is not None:
        stored = canvas.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue(), np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _one_face(analyzer: FaceAnalyzer, image) -> np.ndarray:
    result = next(analyzer.analyze_many([image]))
    assert len(result.faces) == 1
    return result.faces[0].embedding


def test_a_small_face_is_aligned_from_the_full_photo():
    data, full = _phone_photo(220)  # about 45 px between the eyes: 22 at the detection's size
    analyzer = FaceAnalyzer(device="cpu", workers=1)
    reduced = _one_face(analyzer, data)
    assert analyzer.timer.seconds["redecode"] > 0
    assert load_image(data, decode_side=analyzer.detector.max_side).rgb.shape == (1513, 2017, 3)  # DCT-scaled
    from_full = _one_face(FaceAnalyzer(device="cpu", workers=1), full)  # an array: aligned from every pixel
    assert np.linalg.norm(reduced - from_full) < 0.05


def test_a_large_face_needs_one_decode_only():
    data, full = _phone_photo(900)
    analyzer = FaceAnalyzer(device="cpu", workers=1)
    reduced = _one_face(analyzer, data)
    assert "redecode" not in analyzer.timer.seconds
    assert np.linalg.norm(reduced - _one_face(FaceAnalyzer(device="cpu", workers=1), full)) < 0.05


def test_the_size_recorded_is_the_exact_upright_size():
    data, _ = _phone_photo(900, orientation=6)
    result = next(FaceAnalyzer(device="cpu", workers=1).analyze_many([data]))
    assert result.size == (4033, 3025) and len(result.faces) == 1


def test_a_decoded_photo_stays_a_pillow_image_and_is_analysed_as_its_array():
    """Converting a 12-MP photo to an array costs as much as decoding it: only the detector's resized
    view and the regions alignment and thumbnails read are converted, with the same results."""
    from facecluster.inference.aligner import align_face
    from facecluster.inference.analyzer import face_thumbnail
    from facecluster.inference.detector import FaceDetector

    detector = FaceDetector(device="cpu")
    phone, _ = _phone_photo(220, orientation=6)
    for loaded in (
        load_image(phone, decode_side=detector.max_side),
        load_image(phone),
        load_image(EXAMPLES / "George_W_Bush_0001.jpg"),
    ):
        assert isinstance(loaded.pixels, Image.Image) and "rgb" not in vars(loaded)  # not converted yet
        as_image, as_array = detector.detect(loaded.pixels), detector.detect(loaded.rgb)  # shrunk, as is, enlarged
        assert len(as_image) == len(as_array) == 1
        np.testing.assert_array_equal(as_image[0].landmarks, as_array[0].landmarks)
        np.testing.assert_array_equal(as_image[0].box, as_array[0].box)
        landmarks, box = as_array[0].landmarks, as_array[0].box
        np.testing.assert_array_equal(align_face(loaded.pixels, landmarks), align_face(loaded.rgb, landmarks))
        edge = box - [box[0] + 5, 0, box[0] + 5, 0]  # the thumbnail's square leaves the photo
        assert face_thumbnail(loaded.pixels, edge) == face_thumbnail(loaded.rgb, edge)
