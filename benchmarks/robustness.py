"""Scan a fuzz corpus and kill scans at random moments: print the counts (crashes and index diffs must be 0).

    python -m benchmarks.robustness [--shared ../shared] [--work /tmp/facecluster-bench-robustness]
                                    [--sources 60] [--kills 6]

The corpus (benchmarks/fuzz_corpus.py) mutates LFW photos from ../shared (or the committed
examples when it is absent). It is scanned once in this process: files tried, decoded, skipped
by reason, crashes. Then `facecluster scan` runs as a subprocess on the same corpus plus the
untouched sources and is SIGKILLed at random moments, each run resuming the last; a final run
completes it, and its index (paths, contents, faces) is compared with an uninterrupted scan.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks.fuzz_corpus import build_corpus
from benchmarks.labelled_lfw import DEFAULT_SHARED
from facecluster import Library

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "photos"


def index_state(output: Path) -> set[tuple]:
    """Paths with their content, and faces by content, index and rounded box."""
    with sqlite3.connect(output / "index.sqlite") as db:
        photos = {("photo", *row) for row in db.execute("SELECT path, sha256, error FROM photos")}
        faces = {("face", *row) for row in db.execute("SELECT sha256, idx, round(x1), round(y1) FROM faces")}
        duplicates = db.execute("SELECT COUNT(*) - COUNT(DISTINCT sha256 || '/' || idx) FROM faces").fetchone()[0]
    return photos | faces | ({("duplicate faces", duplicates)} if duplicates else set())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--work", type=Path, default=Path("/tmp/facecluster-bench-robustness"))
    parser.add_argument("--sources", type=int, default=60)
    parser.add_argument("--kills", type=int, default=6)
    args = parser.parse_args()
    lfw = args.shared / "data" / "lfw" / "images"
    sources = sorted(lfw.glob("*/*.jpg"))[::97][: args.sources] if lfw.is_dir() else sorted(EXAMPLES.glob("*.jpg"))
    shutil.rmtree(args.work, ignore_errors=True)
    photos = args.work / "photos"
    count = build_corpus(sources, photos / "corpus", rounds=3)
    (photos / "originals").mkdir(parents=True)
    for source in sources:
        shutil.copy2(source, photos / "originals" / source.name)
    crashes = 0
    try:
        outcome = Library.create(photos / "corpus", args.work / "corpus-out").scan()
    except Exception as error:
        crashes, outcome = 1, None
        print(f"CRASH: {error!r}")
    print(f"fuzz corpus from {len(sources)} photos: {count} files tried, crashes {crashes}")
    if outcome is not None:
        stats = outcome.stats
        print(f"  decoded {stats.photos}, skipped {stats.skipped}, faces {stats.faces}")
        for reason, number in Counter(s.reason.split(":")[0] for s in outcome.skipped).most_common():
            print(f"  {number:5d}  skipped: {reason}")

    reference = args.work / "reference"
    Library.create(photos, reference).scan()
    output = args.work / "killed"
    command = [sys.executable, "-m", "facecluster", "scan", str(photos), "-o", str(output), "--quiet"]
    rng = random.Random(0)
    print(f"\nkilled and resumed scans of {count + len(sources)} files:")
    for number in range(1, args.kills + 1):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 3.0))
        finished = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        with sqlite3.connect(output / "index.sqlite") as db:
            indexed = db.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
        print(f"  kill {number}: {'after it finished' if finished else 'mid-scan'}, {indexed} paths indexed")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    diff = index_state(output) ^ index_state(reference)
    print(f"  final run exit {done.returncode}; index differences from an uninterrupted scan: {len(diff)}")
    for item in sorted(diff, key=str)[:10]:
        print(f"    {item}")


if __name__ == "__main__":
    main()
