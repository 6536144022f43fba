import numpy as np
import pytest

from facecluster.inference.aligner import CHIP_SIZE, TEMPLATE, align_face, similarity_transform


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = np.random.default_rng(0).uniform(0, 100, size=(5, 2))
    target = source @ (scale * rotation).T + shift
    matrix = similarity_transform(source, target)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_similarity_transform_never_reflects():
    source = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mirrored = source * np.array([-1.0, 1.0])
    matrix = similarity_transform(source, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_face_at_template_position_is_cropped_unchanged():
    image = np.random.default_rng(1).integers(0, 256, size=(CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    chip = align_face(image, TEMPLATE.copy())
    assert chip.shape == (CHIP_SIZE, CHIP_SIZE, 3)
    np.testing.assert_allclose(chip, image, atol=1)  # Pillow rounds its bilinear weights


@pytest.mark.parametrize("factor", [2.0, 6.0])
def test_large_faces_are_reduced_before_warping(factor):
    """A face several times larger than the chip gives the same chip as a small copy."""
    rng = np.random.default_rng(2)
    small = np.kron(rng.integers(0, 256, size=(15, 15, 3)), np.ones((10, 10, 1))).astype(np.uint8)
    large = np.repeat(np.repeat(small, int(factor), axis=0), int(factor), axis=1)
    chip_small = align_face(small, TEMPLATE.copy()).astype(float)
    chip_large = align_face(large, TEMPLATE * factor).astype(float)
    assert np.abs(chip_small - chip_large).mean() < 4.0


def test_a_face_in_a_large_photo_reads_only_its_region():
    """The chip of a small face in a 12-MP photo equals the chip from a crop around it, border faces too."""
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, size=(3024, 4032, 3), dtype=np.uint8)
    for left, top in ((1800, 1400), (0, 0), (3990, 2990)):
        landmarks = TEMPLATE * 0.4 + np.array([left, top])
        crop = photo[max(0, top - 40) : top + 120, max(0, left - 40) : left + 120]
        offset = np.array([max(0, left - 40), max(0, top - 40)])
        chip, expected = align_face(photo, landmarks), align_face(crop, landmarks - offset)
        np.testing.assert_allclose(chip, expected, atol=1)  # the shift changes rounding, by one level at most


def test_a_face_outside_the_photo_gives_a_black_chip():
    photo = np.full((100, 100, 3), 200, dtype=np.uint8)
    assert not align_face(photo, TEMPLATE * 0.2 + 500).any()
