import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facecluster.errors import ImageLoadError
from facecluster.inference.images import load_image
from tests.conftest import EXAMPLES

PORTRAIT = EXAMPLES / "George_W_Bush_0001.jpg"


@pytest.fixture(scope="module")
def upright() -> Image.Image:
    return Image.open(PORTRAIT).convert("RGB")


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "orientation, stored_as",
    [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270), (3, Image.Transpose.ROTATE_180)],
)
def test_exif_orientation_is_applied(tmp_path, upright, orientation, stored_as):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "sideways.jpg"
    upright.transpose(stored_as).save(path, exif=exif, quality=95)
    loaded = load_image(path).rgb
    assert loaded.shape == np.asarray(upright).shape
    assert np.abs(loaded.astype(int) - np.asarray(upright, dtype=int)).mean() < 4


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_absurd_orientation_is_ignored(tmp_path, upright, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "odd.jpg"
    upright.save(path, exif=exif)
    assert load_image(path).rgb.shape == (250, 250, 3)


@pytest.mark.parametrize(
    "name, make",
    [
        ("grey.png", lambda im: im.convert("L")),
        ("cmyk.jpg", lambda im: im.convert("CMYK")),
        ("palette.gif", lambda im: im.convert("P")),
        ("alpha.png", lambda im: im.convert("RGBA")),
        ("photo.webp", lambda im: im),
        ("photo.tiff", lambda im: im),
        ("photo.bmp", lambda im: im),
        ("deep.png", lambda im: Image.fromarray(np.asarray(im.convert("L"), dtype=np.uint16) * 257)),
    ],
)
def test_every_mode_and_format_becomes_rgb(tmp_path, upright, name, make):
    path = tmp_path / name
    make(upright).save(path)
    loaded = load_image(path).rgb
    assert loaded.dtype == np.uint8 and loaded.shape == (250, 250, 3)
    assert 40 < loaded.mean() < 200


def test_palette_transparency_is_flattened_on_white(tmp_path):
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0] * 256)
    image.info["transparency"] = 0
    path = tmp_path / "clear.png"
    image.save(path, transparency=0)
    assert load_image(path).rgb.min() == 255


def test_large_jpeg_is_decoded_at_reduced_size(tmp_path, upright):
    path = tmp_path / "big.jpg"
    upright.resize((3000, 3000)).save(path)
    loaded = load_image(path, decode_side=1000)
    assert loaded.rgb.shape[0] < 3000 and loaded.rgb.shape[0] >= 1000
    assert loaded.full_size == (3000, 3000)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.jpg", b"", "not an image"),
        ("text.jpg", b"hello, I am not a photo\n" * 10, "not an image"),
        ("page.png", b"<!doctype html><html><body>hi</body></html>", "not an image"),
        ("truncated.jpg", PORTRAIT.read_bytes()[:2000], "cannot decode"),
        ("bomb.png", _png_declaring(100_000, 100_000), "decompression bomb"),
    ],
)
def test_bad_files_raise_a_clear_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=reason):
        load_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)
