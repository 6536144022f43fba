"""A generated corpus of broken and hostile files: the scan never crashes and accounts for every file."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from facecluster.cli import main
from tests.conftest import EXAMPLES

SOURCES = sorted(EXAMPLES.glob("*.jpg"))
PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def _mutations(data: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    """Bit flips, truncations and header swaps of one real photo."""
    flipped = bytearray(data)
    for _ in range(rng.randint(1, 40)):
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
    cut = rng.randrange(1, len(data))
    return [
        ("jpg", bytes(flipped)),
        ("jpg", data[:cut]),
        ("png", data),  # a JPEG named .png
        ("jpg", PNG_HEADER + data[8:]),  # a PNG signature on JPEG bytes
        ("jpg", data[: len(data) // 2] + bytes(rng.randrange(256) for _ in range(64)) + data[len(data) // 2 :]),
    ]


def build_corpus(folder: Path, seed: int = 0) -> int:
    """Write the corpus into ``folder``; the number of distinct files."""
    rng = random.Random(seed)
    contents: dict[str, bytes] = {}
    for round_number in range(8):
        for source in SOURCES:
            for kind, data in _mutations(source.read_bytes(), rng):
                contents.setdefault(hashlib.sha256(data).hexdigest(), (f"r{round_number}-{source.stem}", kind, data))
    extras = [
        ("empty", "jpg", b""),
        ("text", "jpg", b"just some text, not a photo\n"),
        ("page", "png", b"<html><body><img src=x onerror=alert(1)></body></html>"),
        ("noise", "jpeg", bytes(rng.randrange(256) for _ in range(5000))),
        ("one-byte", "png", b"\x89"),
    ]
    for name, kind, data in extras:
        contents.setdefault(hashlib.sha256(data).hexdigest(), (name, kind, data))
    for number, (stem, kind, data) in enumerate(contents.values()):
        (folder / f"{number:03d}-{stem}.{kind}").write_bytes(data)
    return len(contents)


def test_fuzz_corpus_never_crashes_and_every_file_is_accounted_for(tmp_path, capsys):
    photos, out = tmp_path / "corpus", tmp_path / "out"
    photos.mkdir()
    count = build_corpus(photos)
    assert count > 250
    result = CliRunner().invoke(main, ["scan", str(photos), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    document = json.loads((out / "people.json").read_text())
    assert summary["files"] == count
    assert summary["photos"] + summary["skipped"] == count
    assert all(item["reason"] for item in document["skipped"])
    with sqlite3.connect(out / "index.sqlite") as db:
        indexed = db.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
    assert indexed == count
    reasons = Counter(item["reason"].split(":")[0] for item in document["skipped"])
    with capsys.disabled():
        print(f"\nfuzz corpus: {count} files, {summary['photos']} decoded, {summary['skipped']} skipped, 0 crashes")
        for reason, number in reasons.most_common():
            print(f"  {number:4d}  {reason}")
