"""A reproducible corpus of broken and awkward image files built from real photos (tests and benchmarks).

Bit flips, truncations, header swaps and inserted noise of each source photo, plus hand-made
cases: empty, text and HTML named as images, random bytes, a decompression bomb (a tiny PNG
declaring 100,000 x 100,000 pixels), animated GIF and WebP, a 1x1 PNG, a CMYK JPEG, a 16-bit
PNG, a palette PNG with transparency and a JPEG whose EXIF IFD claims 65,535 entries. Every
file has distinct content.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from pathlib import Path

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _mutations(data: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    flipped = bytearray(data)
    for _ in range(rng.randint(1, 40)):
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
    middle = len(data) // 2
    return [
        ("jpg", bytes(flipped)),
        ("jpg", data[: rng.randrange(1, len(data))]),
        ("png", data),  # a JPEG named .png
        ("jpg", PNG_SIGNATURE + data[8:]),  # a PNG signature on JPEG bytes
        ("jpg", data[:middle] + bytes(rng.randrange(256) for _ in range(64)) + data[middle:]),
    ]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _awkward(source: Path, rng: random.Random) -> list[tuple[str, str, bytes]]:
    photo = Image.open(source).convert("RGB")
    bomb = PNG_SIGNATURE + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    bomb += _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _png_chunk(b"IEND", b"")
    frames = [photo.rotate(angle) for angle in (0, 10, 20)]
    palette = photo.convert("P", palette=Image.Palette.ADAPTIVE)
    return [
        ("empty", "jpg", b""),
        ("text", "jpg", b"just some text, not a photo\n"),
        ("page", "png", b"<html><body><img src=x onerror=alert(1)></body></html>"),
        ("noise", "jpeg", bytes(rng.randrange(256) for _ in range(5000))),
        ("one-byte", "png", b"\x89"),
        ("bomb", "png", bomb),
        ("animated", "gif", _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)),
        ("one-pixel", "png", _encoded(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG")),
        ("cmyk", "jpg", _encoded(photo.convert("CMYK"), "JPEG")),
        ("sixteen-bit", "png", _encoded(photo.convert("I;16"), "PNG")),
        ("palette-alpha", "png", _encoded(palette, "PNG", transparency=0)),
        ("animated", "webp", _encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)),
        ("huge-ifd", "jpg", _with_exif(source.read_bytes(), _huge_ifd())),
    ]


def _huge_ifd() -> bytes:
    """An EXIF block whose first IFD claims 65,535 entries (and an absurd offset) in 64 bytes."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0xFFFF) + struct.pack("<HHII", 0x0112, 3, 1, 9)
    return b"Exif\x00\x00" + tiff + struct.pack("<I", 0x7FFFFFFF) + bytes(32)


def _with_exif(jpeg: bytes, exif: bytes) -> bytes:
    """``jpeg`` with an APP1 segment holding ``exif`` right after its start marker."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]


def build_corpus(sources: list[Path], folder: Path, rounds: int = 8, seed: int = 0) -> int:
    """Write the corpus into ``folder``; return the number of files (all distinct contents)."""
    rng = random.Random(seed)
    contents: dict[str, tuple[str, str, bytes]] = {}
    for round_number in range(rounds):
        for source in sources:
            for kind, data in _mutations(source.read_bytes(), rng):
                key = hashlib.sha256(data).hexdigest()
                contents.setdefault(key, (f"r{round_number}-{source.stem}", kind, data))
    for stem, kind, data in _awkward(sources[0], rng):
        contents.setdefault(hashlib.sha256(data).hexdigest(), (stem, kind, data))
    folder.mkdir(parents=True, exist_ok=True)
    for number, (stem, kind, data) in enumerate(contents.values()):
        (folder / f"{number:03d}-{stem}.{kind}").write_bytes(data)
    return len(contents)
