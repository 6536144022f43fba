import numpy as np

from facecluster.inference.detector import FaceDetector
from facecluster.inference.images import load_image
from tests.conftest import EXAMPLES


def test_single_portrait_has_one_face_with_ordered_landmarks():
    detections = FaceDetector(device="cpu").detect(load_image(EXAMPLES / "George_W_Bush_0001.jpg").rgb)
    assert len(detections) == 1
    face = detections[0]
    x1, y1, x2, y2 = face.box
    assert 60 < x1 < x2 < 200 and 40 < y1 < y2 < 210
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert face.score > 0.99


def test_group_photo_finds_every_annotated_face():
    # group_2007_007763.jpg is annotated with 7 faces in ../shared/data/group-photos/training.xml
    detections = FaceDetector(device="cpu").detect(load_image(EXAMPLES / "group_2007_007763.jpg").rgb)
    assert len(detections) == 7


def test_blank_and_noise_images_have_no_face():
    detector = FaceDetector(device="cpu")
    assert detector.detect(np.full((300, 400, 3), 128, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_downscaled_detection_reports_full_resolution_coordinates():
    rgb = load_image(EXAMPLES / "George_W_Bush_0001.jpg").rgb
    big = np.repeat(np.repeat(rgb, 4, axis=0), 4, axis=1)
    small_face = FaceDetector(device="cpu", min_side=1).detect(rgb)[0]  # both seen at 250 px
    big_face = FaceDetector(device="cpu", max_side=250).detect(big)[0]
    np.testing.assert_allclose(big_face.landmarks / 4, small_face.landmarks, atol=1.5)


def test_small_photos_are_enlarged_and_report_their_own_coordinates():
    """A group photo shrunk to 200 px: enlarged before detection, it keeps faces a plain pass misses."""
    from PIL import Image

    photo = Image.open(EXAMPLES / "group_2007_007763.jpg").convert("RGB")
    small = np.asarray(photo.resize((200, 150), Image.Resampling.LANCZOS))
    plain = FaceDetector(device="cpu", min_side=1).detect(small)
    enlarged = FaceDetector(device="cpu").detect(small)
    assert len(enlarged) > len(plain)
    full = FaceDetector(device="cpu").detect(np.asarray(photo))
    for face in enlarged:  # each lies where a face of the full-size photo lies, in the small photo's pixels
        nearest = min(np.abs(f.landmarks * 200 / photo.width - face.landmarks).max() for f in full)
        assert nearest < 3


def test_a_face_found_in_both_views_keeps_the_landmarks_of_the_photo_as_it_is():
    """The alignment template was fitted to landmarks found at a face's own size (LFW: 0.46 points)."""
    rgb = load_image(EXAMPLES / "George_W_Bush_0001.jpg").rgb  # 250 px: also searched at 480
    native = FaceDetector(device="cpu", min_side=1).detect(rgb)
    both = FaceDetector(device="cpu").detect(rgb)
    assert len(both) >= len(native) == 1
    np.testing.assert_array_equal(both[0].landmarks, native[0].landmarks)
