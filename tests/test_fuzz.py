"""A generated corpus of broken and awkward files: the scan never crashes and accounts for every file."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

from click.testing import CliRunner

from benchmarks.fuzz_corpus import build_corpus
from facecluster.cli import main
from tests.conftest import EXAMPLES

SOURCES = sorted(EXAMPLES.glob("*.jpg"))


def test_fuzz_corpus_never_crashes_and_every_file_is_accounted_for(tmp_path, capsys):
    photos, out = tmp_path / "corpus", tmp_path / "out"
    photos.mkdir()
    count = build_corpus(SOURCES, photos)
    assert count > 250
    result = CliRunner().invoke(main, ["scan", str(photos), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    document = json.loads((out / "people.json").read_text())
    assert summary["files"] == count
    assert summary["photos"] + summary["skipped"] == count
    assert all(item["reason"] for item in document["skipped"])
    by_name = {item["path"].split("-", 1)[1]: item["reason"] for item in document["skipped"]}
    skipped = {name: reason for name, reason in by_name.items() if not name.startswith("r")}
    assert "decompression bomb" in skipped["bomb.png"]
    decodable = ("animated.gif", "animated.webp", "one-pixel.png", "cmyk.jpg", "sixteen-bit.png", "palette-alpha.png")
    assert not {"huge-ifd.jpg"} & set(skipped)  # the photo is read; its broken EXIF is ignored
    assert not set(decodable) & set(skipped)
    with sqlite3.connect(out / "index.sqlite") as db:
        indexed = db.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
    assert indexed == count
    reasons = Counter(item["reason"].split(":")[0] for item in document["skipped"])
    with capsys.disabled():
        print(f"\nfuzz corpus: {count} files, {summary['photos']} decoded, {summary['skipped']} skipped, 0 crashes")
        for reason, number in reasons.most_common():
            print(f"  {number:4d}  {reason}")
