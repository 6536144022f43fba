"""A stand-in analyzer without models, and photos it understands, for testing the library on its own.

A "photo" is a PNG of 64 x 65 pixel tiles side by side: each tile filled with a person's colour is
one face of that person, a white tile is no face. The last pixel row holds a variant number, so
two photos of the same people differ in bytes and in their faces' embeddings (slightly).
"""

from __future__ import annotations

import hashlib
import io
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from facecluster.errors import ImageLoadError
from facecluster.library import Library
from facecluster.types import AnalysisResult, Face, FaceQuality, Person

TILE = 64
WHITE = (255, 255, 255)


def colour(person: int) -> tuple[int, int, int]:
    """A distinct, non-white colour per person number."""
    return (40 + 47 * person % 200, 30 + 89 * person % 200, 20 + 23 * person % 200)


def photo_bytes(people: list[int | None], variant: int = 0) -> bytes:
    """A PNG with one tile per entry: a person's face, or no face (None)."""
    image = Image.new("RGB", (TILE * max(1, len(people)), TILE + 1), WHITE)
    for position, person in enumerate(people):
        if person is not None:
            image.paste(colour(person), (position * TILE, 0, (position + 1) * TILE, TILE))
    image.paste((variant % 256, variant // 256 % 256, 0), (0, TILE, image.width, TILE + 1))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_photo(path: Path, people: list[int | None], variant: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo_bytes(people, variant))
    return path


def _unit(seed: bytes) -> np.ndarray:
    vector = np.random.default_rng(int.from_bytes(hashlib.sha256(seed).digest()[:8], "little")).normal(size=128)
    return vector / np.linalg.norm(vector)


def embedding(rgb: tuple[int, int, int], variant: int) -> np.ndarray:
    """The person's direction, nudged by the variant (same person: distance about 0.05)."""
    vector = _unit(bytes(rgb)) + 0.05 * _unit(bytes(rgb) + variant.to_bytes(4, "little"))
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _thumbnail(rgb: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), rgb).save(buffer, format="JPEG")
    return buffer.getvalue()


@dataclass
class FakeAnalyzer:
    """Finds the tiles of ``photo_bytes`` photos; records every input it was given."""

    seen: list[object] = field(default_factory=list)
    runtime: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(label="fake analyzer"))

    ahead: int = 0
    """Inputs drawn before the first result is given, as FaceAnalyzer's worker threads do."""

    def analyze_many(self, images: Iterable[object]) -> Iterator[AnalysisResult]:
        drawn: deque[object] = deque()
        for source in images:
            self.seen.append(source)
            drawn.append(source)
            if len(drawn) > self.ahead:
                yield self._analyze(drawn.popleft())
        while drawn:
            yield self._analyze(drawn.popleft())

    def _analyze(self, source: object) -> AnalysisResult:
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
                rgb = np.asarray(image.convert("RGB"))
        except Exception as error:
            return AnalysisResult(source, [], ImageLoadError(f"cannot decode image: {error}"))
        variant = int(rgb[-1, 0, 0]) + 256 * int(rgb[-1, 0, 1])
        faces = []
        for position in range(rgb.shape[1] // TILE):
            tile = tuple(int(v) for v in rgb[TILE // 2, position * TILE + TILE // 2])
            if tile == WHITE:
                continue
            x = float(position * TILE)
            faces.append(
                Face(
                    box=(x, 0.0, x + TILE, float(TILE)),
                    landmarks=[(x + 20, 20.0), (x + 44, 20.0), (x + 32, 32.0), (x + 24, 46.0), (x + 40, 46.0)],
                    score=0.99,
                    quality=FaceQuality(size=float(TILE), score=0.99, sharpness=10.0),
                    embedding=embedding(tile, variant),
                    thumbnail=_thumbnail(tile),
                )
            )
        return AnalysisResult(source, faces, size=(rgb.shape[1], rgb.shape[0]))


ALICE, BOB, CAROL = 1, 2, 3


def write_library(root: Path) -> Path:
    """Alice in 4 photos, Bob in 3, Carol in 2, a stranger once, a photo with no face, a broken file."""
    for n in range(4):
        write_photo(root / "2020" / f"alice{n}.png", [ALICE], variant=n)
    for n in range(3):
        write_photo(root / "2021" / f"bob{n}.png", [BOB], variant=n)
    write_photo(root / "2021" / "party.png", [ALICE, BOB, CAROL], variant=7)
    write_photo(root / "carol.png", [CAROL], variant=1)
    write_photo(root / "stranger.png", [99], variant=0)
    write_photo(root / "landscape.png", [None])
    (root / "broken.jpg").write_bytes(b"not a picture")
    return root


def by_size(library: Library) -> dict[int, Person]:
    """A library's people by their number of faces (Alice 5, Bob 4, Carol 2 in ``write_library``)."""
    return {len(person.faces): person for person in library.people()}
