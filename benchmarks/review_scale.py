"""Page loads of `facecluster review` on a large library: 5,000 people and one person of 3,000 faces.

    python -m benchmarks.review_scale [--people 5000] [--per-person 10] [--big 3000] [--unsorted 2000]
                                      [--work /tmp/facecluster-bench-review] [--shared ../shared]
                                      [--lfw /tmp/facecluster-bench-lfw] [--runs 5] [--no-browser]
                                      [--reuse] [--profile 25]

Builds a face index directly (no photos, no models): PEOPLE people of 2 to 2 x PER-PERSON - 2
faces (about PER-PERSON on average), one person of BIG faces, and UNSORTED faces too small to be
grouped, each near some person (so the unsorted page and the "is this them?" suggestions have
work to do); one face per photo, a small JPEG thumbnail per face. The people's centres are real
LFW identities' mean embeddings and each face adds a real within-person deviation, when the
shared LFW data and its scan (benchmarks.labelled_lfw, in --lfw) are there; random otherwise.
The faces are grouped as a scan would, then the big person is made one for sure (their fragments
merged into them and named, as a user would).

Then the real server (ReviewServer, waitress, in a thread) is timed, median of RUNS after one
warm-up, over HTTP with the launch's cookie: the overview and its page 2, the big person's page,
its page 10 and its suggestions, a small person's page, the unsorted faces, the history and one
thumbnail; the first load of the overview, the big person and their suggestions after a change
made through the app's own form (a rename, deferred as the app defers it: RUNS changes, one load
each); and Debian chromium (selenium) loading the overview and the big person's page, navigation
start to the load event (images are lazy; for a person, or to the arrival of their suggestions,
fetched by the page's script, when later), the first load with an empty cache and the median of
RUNS after it.

The baseline, in the same run: showing everyone without paging, i.e. ``Library.outcome()`` (the
full read the static report and `facecluster people` use) and `facecluster people --json` as a
subprocess. Prints a table (page, median ms, x baseline, size of the answer), the settle time
(regroup and rewrite of the outputs after the deferred changes) for information, and with
--profile the top functions of a cProfile of the slowest page. --reuse skips the build (minutes)
when an earlier run left its library in --work.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import http.client
import io
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.labelled_lfw import DEFAULT_SHARED
from facecluster import Library
from facecluster.grouping import GroupingOptions
from facecluster.library import REGROUP_KEY, STALE_KEY
from facecluster.review.server import ReviewServer
from facecluster.storage.index import FaceIndex, StoredContent, StoredPhoto
from facecluster.types import Face, FaceQuality

DIM = 128
THUMB_POOL = 512
"""Distinct thumbnails, reused round-robin (real LFW ones when the LFW scan is there)."""
LOW_SIZE = 24.0
"""Face size of the unsorted faces: below MIN_FACE_SIZE, so they are never grouped."""
BIG_NAME = "Big Person"


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


@dataclass
class Embeddings:
    """Where the synthetic people live: their centres, and per-face deviations to add to them."""

    centres: np.ndarray
    deviations: np.ndarray
    source: str


def lfw_embeddings(shared: Path, lfw_output: Path) -> Embeddings | None:
    """Real LFW identities' centres and within-person deviations (None without the shared data)."""
    if not (shared / "data" / "lfw" / "images").is_dir():
        return None
    from benchmarks.labelled_lfw import labelled_set

    lfw = labelled_set(shared / "data" / "lfw" / "images", lfw_output)
    scored = np.flatnonzero(lfw.labels != "")
    names, inverse = np.unique(lfw.labels[scored], return_inverse=True)
    centres, deviations = [], []
    for i in range(len(names)):
        own = lfw.embeddings[scored[inverse == i]].astype(np.float64)
        mean = own.mean(0)
        centres.append(mean)
        if len(own) >= 3:  # deviations from a mean of n are sqrt((n-1)/n) too small
            deviations.append((own - mean) * np.sqrt(len(own) / (len(own) - 1)))
    return Embeddings(_unit(np.stack(centres)), np.concatenate(deviations), f"{len(names)} LFW identities")


def random_embeddings(count: int, rng: np.random.Generator) -> Embeddings:
    """Random centres, and Gaussian deviations about as large as LFW's (norm about 0.45)."""
    return Embeddings(
        _unit(rng.normal(size=(count, DIM))), rng.normal(scale=0.45 / np.sqrt(DIM), size=(20_000, DIM)), "random"
    )


def thumbnail_pool(lfw_output: Path, rng: np.random.Generator) -> list[bytes]:
    """Real face thumbnails from the LFW scan's index, or small noisy JPEGs."""
    if (lfw_output / "index.sqlite").is_file():
        index = FaceIndex(lfw_output, readonly=True)
        try:
            rows = index.db.execute(
                "SELECT thumbnail FROM faces WHERE thumbnail IS NOT NULL ORDER BY id LIMIT ?", (THUMB_POOL,)
            ).fetchall()
        finally:
            index.close()
        if rows:
            return [bytes(row[0]) for row in rows]
    pool = []
    for _ in range(THUMB_POOL):
        buffer = io.BytesIO()
        pixels = rng.integers(60, 200, size=(112, 112, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=82)
        pool.append(buffer.getvalue())
    return pool


@dataclass
class Built:
    library: Library
    big: int
    """The big person's id."""
    small: int
    """A person of about PER-PERSON faces."""
    faces: int
    build_s: float | None
    settle_s: float | None
    """Seconds to write the index, and to settle the benchmark's own corrections (None: reused)."""


def build(args: argparse.Namespace) -> Built:
    """Write the index, group it (with the outputs, thumbnails included), and make the big person one."""
    rng = np.random.default_rng(0)
    space = lfw_embeddings(args.shared, args.lfw) or random_embeddings(args.people, rng)
    if len(space.centres) < args.people:  # more people than LFW identities: the rest are random
        extra = _unit(rng.normal(size=(args.people - len(space.centres), DIM)))
        space.centres = np.concatenate([space.centres, extra])
    centres = space.centres[rng.permutation(len(space.centres))[: args.people]]
    thumbs = thumbnail_pool(args.lfw, rng)
    sizes = [args.big, *(int(n) for n in rng.integers(2, max(3, 2 * args.per_person - 1), size=args.people - 1))]
    owners = rng.integers(0, args.people, size=args.unsorted)
    owners[: args.unsorted // 20] = 0  # some unsorted faces look like the big person: suggestions
    faces = [(p, k, False) for p, count in enumerate(sizes) for k in range(count)]
    faces += [(int(p), k, True) for k, p in enumerate(owners)]
    deviations = space.deviations[rng.integers(0, len(space.deviations), size=len(faces))]
    noise = rng.normal(scale=0.02 / np.sqrt(DIM), size=(len(faces), DIM))
    vectors = _unit(centres[[p for p, *_ in faces]] + deviations + noise).astype(np.float32)
    print(f"building {len(faces)} faces ({space.source}) in {args.work}", flush=True)

    shutil.rmtree(args.work, ignore_errors=True)
    photos, output = args.work / "photos", args.work / "out"
    photos.mkdir(parents=True)
    output.mkdir()
    started = time.perf_counter()
    big_shas = set()
    index = FaceIndex(output)
    try:
        with index.transaction():
            for n, ((person, k, low), vector) in enumerate(zip(faces, vectors, strict=True)):
                folder = "unsorted" if low else f"p{person:05d}"
                relative = f"{folder}/{k:05d}.jpg"
                sha = hashlib.sha256(relative.encode()).hexdigest()
                if person == 0 and not low:
                    big_shas.add(sha)
                side = LOW_SIZE if low else float(rng.integers(60, 400))
                face = Face(
                    (100.0, 100.0, 100.0 + side, 100.0 + side),
                    [(130.0, 140.0), (170.0, 140.0), (150.0, 160.0), (135.0, 180.0), (165.0, 180.0)],
                    0.99,
                    FaceQuality(side, 0.99, 30.0),
                    vector,
                    thumbs[n % len(thumbs)],
                )
                day = int(rng.integers(0, 20 * 365))
                taken = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(946_684_800 + day * 86_400 + n % 86_400))
                index.record_analysis(
                    StoredContent(sha, "faces", None, 2000, 1500, taken, "Camera"),
                    [face],
                    [StoredPhoto(relative, 1_000_000, 1, sha)],
                )
            index.set_meta(
                {
                    "root": os.fsencode(str(photos.resolve())).hex(),
                    **GroupingOptions().as_meta(),
                    "album_mode": "symlink",
                    "xmp": "",
                    STALE_KEY: "1",
                    REGROUP_KEY: "1",
                }
            )
    finally:
        index.close()
    build_s = time.perf_counter() - started
    print(f"  index written in {build_s:.1f} s", flush=True)

    started = time.perf_counter()
    library = Library.open(output)  # settles: the first regroup and outputs (report thumbnails included)
    print(f"  grouped and outputs written in {time.perf_counter() - started:.1f} s", flush=True)
    index = FaceIndex(output, readonly=True)
    try:
        rows = index.db.execute(
            "SELECT m.person_id, f.sha256 FROM memberships m JOIN faces f ON f.id = m.face_id"
        ).fetchall()
    finally:
        index.close()
    members, bigs = Counter(), Counter()
    for person, sha in rows:
        members[person] += 1
        bigs[person] += sha in big_shas
    fragments = sorted((p for p in bigs if 2 * bigs[p] > members[p]), key=lambda p: -bigs[p])
    started = time.perf_counter()
    with library.corrections("benchmark: make the big person one", defer=True) as edit:
        big = edit.name(fragments[0], BIG_NAME)
        for other in fragments[1:]:
            edit.merge(big, other)
    library.settle()
    settle_s = time.perf_counter() - started
    print(f"  big person p{big}: {len(fragments)} fragments merged, settled in {settle_s:.1f} s", flush=True)
    return found(library, args.per_person, build_s, settle_s)


def found(library: Library, per_person: int, build_s: float | None = None, settle_s: float | None = None) -> Built:
    """The big person (named BIG_NAME) and a small one (closest to PER-PERSON faces) of a built library."""
    people = library.overview().people
    big = next(p.id for p in people if p.name == BIG_NAME)
    small = min((p for p in people if p.id != big), key=lambda p: (abs(p.faces - per_person), p.id)).id
    index = FaceIndex(library.output, readonly=True)
    try:
        faces = index.db.execute("SELECT count(*) FROM faces").fetchone()[0]
    finally:
        index.close()
    return Built(library, big, small, faces, build_s, settle_s)


class Client:
    """An HTTP client of the review app holding its cookie, as a browser would after opening server.url."""

    def __init__(self, server: ReviewServer) -> None:
        self.host, self.port = server.host, server.port
        self.origin = f"http://{self.host}:{self.port}"
        status, headers, _ = self._request("GET", server.url.split(str(self.port), 1)[1])
        cookie = SimpleCookie()
        for name, value in headers:
            if name.lower() == "set-cookie":
                cookie.load(value)
        if status != 303 or not cookie:
            raise SystemExit(f"the token URL answered {status} without a cookie")
        self.cookie = "; ".join(f"{key}={morsel.value}" for key, morsel in cookie.items())
        self.form_token = ""

    def _request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=300)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def get(self, path: str) -> bytes:
        status, _, body = self._request("GET", path, headers={"Cookie": self.cookie})
        if status != 200:
            raise SystemExit(f"GET {path}: {status} {body[:200]!r}")
        found = re.search(rb'name="form_token" value="([0-9a-f]+)"', body)
        if found:
            self.form_token = found.group(1).decode()
        return body

    def post(self, path: str, fields: dict[str, str]) -> None:
        from urllib.parse import urlencode

        body = urlencode({"form_token": self.form_token, **fields})
        headers = {
            "Cookie": self.cookie,
            "Origin": self.origin,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        status, _, answer = self._request("POST", path, body, headers)
        if status != 303:
            raise SystemExit(f"POST {path}: {status} {answer[:200]!r}")


def median_ms(action: Callable[[], object], runs: int, warm_up: bool = True) -> float:
    """Median wall time of ``runs`` calls (after one unmeasured call), in milliseconds."""
    if warm_up:
        action()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def browser_loads(server: ReviewServer, pages: dict[str, str], runs: int) -> list[tuple[str, float, None]]:
    """Debian chromium, headless: navigation start to the load event, the first load and the median after."""
    from tests.chromium import chromium_driver

    profile = Path(tempfile.mkdtemp(prefix="facecluster-bench-chromium-"))
    driver = chromium_driver(profile, "--window-size=1400,1000")
    rows = []
    try:
        driver.get(server.url)  # the token: the cookie is set, then the overview
        origin = f"http://{server.host}:{server.port}"

        def load(path: str) -> float:
            driver.get(origin + path)
            for _ in range(1000):
                timing = driver.execute_script(
                    "const n = performance.getEntriesByType('navigation')[0];"
                    " const s = performance.getEntriesByType('resource').filter(r => r.name.endsWith('/suggestions'));"
                    " return [n.loadEventEnd, n.startTime, s.length ? s[0].responseEnd : 0,"
                    " document.images.length, Array.from(document.images).filter(i => i.complete).length];"
                )
                if timing[0] > 0 and (not path.startswith("/people/") or timing[2] > 0):
                    break
                time.sleep(0.01)
            return max(timing[0], timing[2]) - timing[1]

        for label, path in pages.items():
            first = load(path)
            times = [load(path) for _ in range(runs)]
            rows.append((f"browser {label}, first load (empty cache)", first, None))
            rows.append((f"browser {label}, later loads (thumbnails cached)", statistics.median(times), None))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return rows


def profile_page(server: ReviewServer, path: str, top: int, warm_up: bool = True) -> None:
    """cProfile of one request through the app (Flask's test client, in this thread), after one unmeasured
    request unless ``warm_up`` is False (the first load after a change)."""
    app = server._server.application
    client = app.test_client()
    client.set_cookie(server.guard.cookie, server.guard.token, domain="127.0.0.1")
    base = f"http://{server.host}:{server.port}"
    if warm_up:
        client.get(path, base_url=base)
    profiler = cProfile.Profile()
    profiler.enable()
    response = client.get(path, base_url=base)
    profiler.disable()
    print(f"\ncProfile of GET {path} ({response.status_code}), top {top} by cumulative time:")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--per-person", type=int, default=10)
    parser.add_argument("--big", type=int, default=3000)
    parser.add_argument("--unsorted", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/facecluster-bench-review"))
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--lfw", type=Path, default=Path("/tmp/facecluster-bench-lfw"), help="the LFW scan")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true", help="skip the chromium loads")
    parser.add_argument("--reuse", action="store_true", help="reuse the library an earlier run built in --work")
    parser.add_argument("--profile", type=int, default=0, metavar="TOP", help="profile the slowest page")
    args = parser.parse_args()

    index_file = args.work / "out" / "index.sqlite"
    built = (
        found(Library.open(args.work / "out"), args.per_person) if args.reuse and index_file.is_file() else build(args)
    )
    library, big, runs = built.library, built.big, args.runs
    rows: list[tuple[str, float, int | None]] = []
    """(what, median ms, bytes of the answer when it is one HTTP answer)"""
    baseline = median_ms(library.outcome, runs)
    rows.append(("baseline: Library.outcome(), everyone", baseline, None))
    command = [sys.executable, "-m", "facecluster", "people", "--json", "-o", str(library.output)]
    rows.append(
        (
            "facecluster people --json (subprocess)",
            median_ms(lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL), runs),
            None,
        )
    )

    server = ReviewServer(library, port=0, settle_delay=3600)  # settled only when asked
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        client = Client(server)
        overview = library.overview()
        total, some = library.faces(big, limit=1)
        print(f"{len(overview.people)} people, {overview.unsorted} unsorted; p{big} has {total} faces", flush=True)
        pages = {
            "overview /": "/",
            "overview page 2": "/?page=2",
            "overview search ?q=big": "/?q=big",
            f"big person /people/{big} ({total} faces)": f"/people/{big}",
            "big person page 10": f"/people/{big}?page=10",
            "big person suggestions": f"/people/{big}/suggestions",
            f"small person /people/{built.small}": f"/people/{built.small}",
            "unsorted": "/unsorted",
            "history": "/history",
            "one thumbnail": f"/faces/{some[0].face_id}.jpg",
        }
        timed: dict[str, float] = {}
        for label, path in pages.items():
            timed[path] = median_ms(lambda path=path: client.get(path), runs)
            rows.append((label, timed[path], len(client.get(path))))

        after: dict[str, list[float]] = defaultdict(list)
        after_pages = {
            "overview": "/",
            "big person": f"/people/{big}",
            "big person suggestions": f"/people/{big}/suggestions",
        }
        for n in range(runs):
            client.get(f"/people/{built.small}")  # the form token, from the page
            client.post(f"/people/{built.small}/name", {"name": f"Renamed {n}"})
            for label, path in after_pages.items():
                after[label].append(median_ms(lambda path=path: client.get(path), 1, warm_up=False))
        for label, times in after.items():
            rows.append((f"first load after a change: {label}", statistics.median(times), None))
            timed[f"after a change: {after_pages[label]}"] = statistics.median(times)

        if not args.no_browser:
            rows += browser_loads(server, {"overview": "/", "big person": f"/people/{big}"}, runs)

        if args.profile:
            slowest = max(timed, key=timed.__getitem__)
            path, cold = slowest.split(": ", 1)[-1], slowest.startswith("after a change")
            if cold:  # make the caches stale again
                client.get(f"/people/{built.small}")
                client.post(f"/people/{built.small}/name", {"name": "Profiled"})
            profile_page(server, path, args.profile, warm_up=not cold)
        started = time.perf_counter()
        server.session.settle_now()
        settle_s = time.perf_counter() - started
    finally:
        server.close()
        thread.join(timeout=30)

    print(
        f"\n{built.faces} faces, {len(overview.people)} people, the big one p{big} of {total} faces;"
        f" baseline Library.outcome() {baseline:.0f} ms"
    )
    print(f"{'page':<52} | {'median ms':>9} | {'x baseline':>10} | {'KB':>6}")
    print(f"{'-' * 52} | {'-' * 9} | {'-' * 10} | {'-' * 6}")
    for label, ms, size in rows:
        kb = f"{size / 1024:6.1f}" if size is not None else ""
        print(f"{label:<52} | {ms:9.1f} | {ms / baseline:10.3f} | {kb:>6}")
    if built.build_s is not None:
        print(f"\nindex built in {built.build_s:.1f} s; settle after the benchmark's merges {built.settle_s:.1f} s")
    print(f"for information: settle (regroup + outputs rewrite) after the app's deferred renames {settle_s:.1f} s")


if __name__ == "__main__":
    main()
