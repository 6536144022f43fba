"""Grouping time and peak memory from 10k to 10M faces, built from real LFW embeddings.

    python -m benchmarks.grouping_scale [--shared ../shared] [--output /tmp/facecluster-bench-lfw]
                                          [--sizes 10000,100000,1000000] [--dtype float16]

Each size runs in a fresh process, so its peak memory (ru_maxrss) is its own. A set holds every
usable face of LFW (or, below LFW's size, the faces of a hash-chosen subset of its people) plus
synthetic people: each copies the faces of a real person (chosen with probability proportional
to their face count, so big albums are common), moves them as a block to a new centre in the
subspace where LFW's people live (0.35-0.6 from a random real person's centre), and adds a
little noise per face. The set is held once, written in place, as float16 (--dtype float32: as
the index stores embeddings). Quality is scored on LFW's real faces (and on the synthetic ones,
whose identities are known too). The baseline is exact average linkage (scipy, all n^2/2
distances) where it fits in memory. At 10,000,000 faces (--sizes 10000000) half of the time goes
to the neighbour search, the rest to refining and walking its graph and to the linkage; peak
memory is the set with a float32 copy while the graph is refined, and otherwise the set and an
index (the inverted file, or the walk's graph), or the linkage's edges and the float32 sums of
its groups of two or more faces.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.labelled_lfw import DEFAULT_SHARED, LabelledSet, half, labelled_set, lfw_images
from facecluster.evaluation.clustering import score_clustering
from facecluster.grouping import DEFAULT_METHOD, GroupingOptions, group_embeddings

BASELINE_MAX_FACES = 20_000
"""Exact average linkage holds n^2/2 float64 distances: 1.6 GB at this size."""


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def real_part(lfw: LabelledSet, size: int) -> LabelledSet:
    """All of LFW's faces, or those of a hash-ordered subset of its people when ``size`` is smaller."""
    if size >= len(lfw.labels):
        return lfw
    identity_of = {p: lb for p, lb in zip(lfw.photos, lfw.labels, strict=True) if lb}
    people = sorted(set(identity_of.values()), key=lambda name: half(name) + name[::-1])
    counts = {name: 0 for name in people}
    for photo in lfw.photos:
        if photo in identity_of:
            counts[identity_of[photo]] += 1
    chosen, total = set(), 0
    for name in people:
        if total >= size:
            break
        chosen.add(name)
        total += counts[name]
    keep = np.array([identity_of.get(p) in chosen for p in lfw.photos])
    photos = [p for p, k in zip(lfw.photos, keep, strict=True) if k]
    return LabelledSet(lfw.embeddings[keep], photos, lfw.labels[keep], lfw.usable[keep])


def synthetic_people(lfw: LabelledSet, out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fill ``out`` (rows of any float dtype) with synthetic faces; their identity numbers.

    The faces are written in place, block by block, so a 10M set is held once in ``out``'s dtype.
    """
    identities = np.zeros(len(out), dtype=np.int64)
    if not len(out):
        return identities
    scored = np.flatnonzero(lfw.labels != "")
    names, inverse = np.unique(lfw.labels[scored], return_inverse=True)
    sizes = np.bincount(inverse)
    centres = _unit(np.stack([lfw.embeddings[scored[inverse == i]].mean(0) for i in range(len(names))]))
    spread = centres - centres.mean(0)
    _, scales, axes = np.linalg.svd(spread, full_matrices=False)
    axes, scales = axes[:32], scales[:32] / np.sqrt(len(names))
    members = [scored[inverse == i] for i in range(len(names))]
    made, person = 0, 0
    while made < len(out):
        template = rng.choice(len(names), p=sizes / sizes.sum())
        anchor = centres[rng.integers(len(names))]
        offset = (rng.normal(size=len(scales)) * scales) @ axes
        offset *= rng.uniform(0.35, 0.6) / np.linalg.norm(offset)
        centre = _unit((anchor + offset)[None])[0]
        own = lfw.embeddings[members[template]] - centres[template]
        block = _unit(centre + own + rng.normal(scale=0.05 / np.sqrt(own.shape[1]), size=own.shape))
        block = block[: len(out) - made]
        out[made : made + len(block)] = block.astype(np.float32)
        identities[made : made + len(block)] = person
        made += len(block)
        person += 1
    return identities


def scipy_average_linkage(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """The old exact grouping: scipy average linkage on all pairwise distances."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    return fcluster(linkage(pdist(embeddings.astype(np.float64)), method="average"), t=threshold, criterion="distance")


def measure(size: int, output: Path, shared: Path, method: str, dtype: str) -> dict:
    """Build one set, group it, and report time, memory and quality (runs in its own process)."""
    lfw = real_part(labelled_set(lfw_images(shared), output), size)
    started = time.perf_counter()
    grouped = np.flatnonzero(lfw.usable)
    extra = max(0, size - len(lfw.labels))
    embeddings = np.empty((len(grouped) + extra, lfw.embeddings.shape[1]), dtype=np.dtype(dtype))
    embeddings[: len(grouped)] = lfw.embeddings[grouped]
    synthetic_ids = synthetic_people(lfw, embeddings[len(grouped) :], np.random.default_rng(size))
    photos = [lfw.photos[r] for r in grouped]
    photos += [f"synthetic/{i}" for i in range(extra)]
    built = time.perf_counter() - started
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    if method == "scipy":
        labels = scipy_average_linkage(embeddings, GroupingOptions("agglomerative").effective_threshold)
    else:
        labels = group_embeddings(embeddings, GroupingOptions(method), photos)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assigned = np.full(len(lfw.labels), -1)
    assigned[grouped] = labels[: len(grouped)]
    scored = np.flatnonzero(lfw.labels != "")
    real = score_clustering(list(lfw.labels[scored]), list(assigned[scored]))
    fake = score_clustering([str(i) for i in synthetic_ids], list(labels[len(grouped) :])) if extra else None
    return {
        "faces": len(embeddings),
        "method": method,
        "build_s": round(built, 1),
        "group_s": round(seconds, 1),
        "rss_before_mb": round(before_mb),
        "peak_mb": round(peak_mb),
        "real": [real.pairwise_f1, real.bcubed_f1, real.groups, real.people, real.bcubed_precision, real.bcubed_recall],
        "synthetic": [fake.pairwise_f1, fake.bcubed_f1, fake.groups, fake.people] if fake else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--output", type=Path, default=Path("/tmp/facecluster-bench-lfw"))
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--dtype",
        choices=("float16", "float32"),
        default="float16",
        help="how the set's embeddings are held (float16: half the memory; the grouping sums in float32)",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--method", default=DEFAULT_METHOD, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.output, args.shared, args.method, args.dtype)))
        return
    lfw_images(args.shared)
    header = f"{'faces':>9} | {'method':<13} | set     | group s | peak MB | before MB | real pair F1 | real B3 F1"
    print(f"{header} | real B3 P / R | synth B3 F1")
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [DEFAULT_METHOD] + (["scipy"] if size <= BASELINE_MAX_FACES else [])
        for method in runs:
            command = [sys.executable, "-m", "benchmarks.grouping_scale", "--one", str(size), "--method", method]
            command += ["--output", str(args.output), "--shared", str(args.shared), "--dtype", args.dtype]
            done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
            if done.returncode:
                print(f"{size:>9} | {method:<13} | failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            synth = f"{row['synthetic'][1]:.3f}" if row["synthetic"] else "-"
            print(
                f"{row['faces']:>9} | {method:<13} | {args.dtype:<7} | {row['group_s']:>7} | {row['peak_mb']:>7} | "
                f"{row['rss_before_mb']:>9} | {row['real'][0]:>12.3f} | {row['real'][1]:>10.3f} | "
                f"{row['real'][4]:.3f} / {row['real'][5]:.3f} | {synth:>11}",
                flush=True,
            )


if __name__ == "__main__":
    main()
