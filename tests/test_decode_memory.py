"""Decoding is bounded by memory as well as by pixels; 16-bit images that fit still decode correctly."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecluster import Library
from facecluster.errors import ImageLoadError
from facecluster.inference import images
from facecluster.inference.images import MAX_DECODE_BYTES, decode_bytes, load_image
from tests.conftest import EXAMPLES, ROOT


def blank_png(width: int, height: int, depth: int = 16, colour: int = 0) -> bytes:
    """A black PNG of any size in about a thousandth of its decoded size, written in a fraction of a second.

    Each row is compressed once with a full flush, which makes every later row's compressed bytes the
    same, so the stream is built by repetition instead of by compressing gigabytes of zeros.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = bytes(1 + width * channels * depth // 8)  # filter byte 0, then black pixels
    packer = zlib.compressobj(9)
    first = packer.compress(row) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(row) + packer.flush(zlib.Z_FULL_FLUSH)
    check = 1
    for _ in range(height):
        check = zlib.adler32(row, check)
    stream = first + again * (height - 1) + b"\x03\x00" + check.to_bytes(4, "big")  # empty final block, Adler-32
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def huge_16_bit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16-bit grey PNG of 20000 x 20000 pixels (800 MB decoded, under Pillow's pixel limit) in about 1 MB."""
    path = tmp_path_factory.mktemp("huge") / "huge16.png"
    path.write_bytes(blank_png(20_000, 20_000))
    return path


def peak_growth(code: str) -> dict:
    """Run ``code`` (which sets ``result``) in a fresh interpreter; its result and how far its peak RSS grew."""
    script = f"""
import json, resource
from facecluster.inference.images import load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{code}
result["growth"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(json.dumps(result))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_estimate_of_a_huge_16_bit_png_is_over_the_bound_and_a_large_rgb_png_fits():
    assert decode_bytes("PNG", "I;16", (20_000, 20_000)) > MAX_DECODE_BYTES
    assert decode_bytes("PNG", "RGB", (10_000, 10_000)) <= MAX_DECODE_BYTES
    assert decode_bytes("PNG", "RGB", (4000, 3000)) < decode_bytes("PNG", "I;16", (4000, 3000)) * 2


def test_a_huge_16_bit_png_is_refused_before_decoding(huge_16_bit: Path):
    assert huge_16_bit.stat().st_size < 2_000_000
    with pytest.raises(ImageLoadError, match=r"20000x20000 pixels in mode I;16 would need about 1\.\d GiB"):
        load_image(huge_16_bit)
    with pytest.raises(ImageLoadError, match="more than the 1 GiB limit"):
        load_image(huge_16_bit.read_bytes())
    measured = peak_growth(f"""
result = {{}}
try:
    load_image({str(huge_16_bit)!r})
except Exception as error:
    result["error"] = str(error)
""")
    assert "1 GiB limit" in measured["error"]
    assert measured["growth"] < 64 << 20  # decoding it took 10 GB before


def test_a_16_bit_png_that_fits_stays_within_the_estimate(tmp_path: Path):
    path = tmp_path / "fits16.png"
    path.write_bytes(blank_png(8000, 8000))
    measured = peak_growth(f"""
rgb = load_image({str(path)!r}).rgb
result = {{"shape": list(rgb.shape), "peak": int(rgb.max())}}
""")
    assert measured["shape"] == [2667, 2667, 3] and measured["peak"] == 0
    assert measured["growth"] <= decode_bytes("PNG", "I;16", (8000, 8000))  # 1.3 GB before, 0.2 GB now


def test_a_scan_skips_the_huge_png_with_its_reason_and_goes_on(tmp_path: Path, huge_16_bit: Path, analyzer):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "huge16.png").symlink_to(huge_16_bit)
    (photos / "bush.jpg").write_bytes((EXAMPLES / "George_W_Bush_0001.jpg").read_bytes())
    library = Library.create(photos, tmp_path / "out", load_analyzer=lambda device, workers: analyzer)
    outcome = library.scan()
    assert outcome.stats.faces == 1
    [skipped] = outcome.skipped
    assert skipped.relative == "huge16.png" and "more than the 1 GiB limit" in skipped.reason


def grey_16_bit(width: int, height: int) -> np.ndarray:
    return (
        (np.arange(width * height, dtype=np.uint64) * 65535 // (width * height - 1))
        .astype(np.uint16)
        .reshape(height, width)
    )


def test_a_16_bit_grey_png_decodes_to_properly_scaled_8_bit_rgb(tmp_path: Path):
    values = grey_16_bit(300, 200)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    rgb = load_image(path).rgb
    expected = np.rint(values / 257.0).astype(np.uint8)
    assert rgb.dtype == np.uint8 and rgb.shape == (200, 300, 3)
    assert (rgb == expected[:, :, None]).all()
    assert rgb.min() == 0 and rgb.max() == 255


def test_a_large_16_bit_image_is_reduced_with_its_levels_and_orientation(tmp_path: Path):
    values = grey_16_bit(6000, 3000)
    path = tmp_path / "deep.tif"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    Image.fromarray(values).save(path, exif=exif)
    loaded = load_image(path)
    assert loaded.rgb.shape == (3000, 1500, 3)  # reduced by 2 from 6000 x 3000, then turned upright
    assert loaded.full_size == (3000, 6000)
    reduced = values.reshape(1500, 2, 3000, 2).mean(axis=(1, 3)) / 257.0
    expected = np.rot90(reduced, k=-1)  # orientation 6 turns the stored image a quarter clockwise
    assert np.abs(loaded.rgb.astype(float) - expected[:, :, None]).max() <= 1


def test_a_large_palette_image_keeps_its_colours_when_reduced(tmp_path: Path):
    image = Image.new("P", (6000, 40), 0)
    image.putpalette([200, 10, 10, 10, 200, 10] + [0, 0, 0] * 254)
    image.paste(1, (3000, 0, 6000, 40))
    path = tmp_path / "palette.png"
    image.save(path)
    rgb = load_image(path).rgb
    assert rgb.shape == (20, 3000, 3)
    assert {tuple(p) for p in rgb.reshape(-1, 3)} == {(200, 10, 10), (10, 200, 10)}


def test_jpeg_draft_brings_a_photo_under_the_bound_that_a_png_of_the_same_size_exceeds(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(images, "MAX_DECODE_BYTES", 64 << 20)
    photo = Image.open(EXAMPLES / "George_W_Bush_0001.jpg").convert("RGB").resize((4000, 4000))
    as_jpeg, as_png = io.BytesIO(), io.BytesIO()
    photo.save(as_jpeg, format="JPEG", quality=80)
    photo.save(as_png, format="PNG", compress_level=1)
    loaded = load_image(as_jpeg.getvalue(), decode_side=500)
    assert loaded.rgb.shape == (500, 500, 3) and loaded.full_size == (4000, 4000)
    with pytest.raises(ImageLoadError, match=r"more than the 0\.0625 GiB limit"):
        load_image(as_png.getvalue(), decode_side=500)
