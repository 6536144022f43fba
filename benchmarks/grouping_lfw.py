"""Grouping quality of every method on LFW, on held-out identity halves, and on perturbed LFW copies.

    python -m benchmarks.grouping_lfw [--shared ../shared] [--output /tmp/facecluster-bench-lfw]
                                      [--perturbed /tmp/lfw-mixed ...]

LFW's identities are split into halves by a hash of the name; each half's photos are grouped on
their own. Settings are chosen on half A and checked on half B and on all of LFW together (a
harder, twice as crowded set). --perturbed names folders written by benchmarks/perturb_lfw.py;
each is scanned (into /tmp/facecluster-bench-<name>) and grouped with the same settings, to see
which defaults survive downscaled, recompressed and blurred photos. Metrics: pairwise and BCubed
precision, recall and F1 on each photo's scored face; unsorted faces count as groups of one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.labelled_lfw import DEFAULT_SHARED, LabelledSet, labelled_set, lfw_images
from facecluster.evaluation.clustering import as_row
from facecluster.grouping import DEFAULT_METHOD, DEFAULT_THRESHOLDS, GroupingOptions

SETTINGS = {
    "adaptive": (0.366, 0.37, 0.374, 0.378, 0.382, 0.39),
    "agglomerative": (0.33, 0.34, 0.35, 0.36, 0.37),
    "hdbscan": (0.25, 0.28),
}
HEADER = "pair P | pair R | pair F1 | B3 P  | B3 R  | B3 F1 | groups/people | seconds"


def print_rows(name: str, faces: LabelledSet, parts: tuple[str, ...]) -> None:
    print(f"\n{name}\n{'method':<14} {'threshold':>9} {'set':>3} | {HEADER}")
    for method, thresholds in SETTINGS.items():
        for threshold in thresholds:
            for part in parts:
                scores, seconds = faces.part(part).group(GroupingOptions(method, threshold))
                default = " *" if threshold == DEFAULT_THRESHOLDS[method] else ""
                cells = " | ".join(as_row(scores))
                print(f"{method:<14} {threshold:>7}{default:2} {part:>3} | {cells} | {seconds:7.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--output", type=Path, default=Path("/tmp/facecluster-bench-lfw"))
    parser.add_argument("--perturbed", type=Path, action="append", default=[])
    args = parser.parse_args()
    lfw = labelled_set(lfw_images(args.shared), args.output)
    print(f"LFW: {int((lfw.labels != '').sum())} scored faces, {int(lfw.usable.sum())} grouped faces")
    print(f"scan default: {DEFAULT_METHOD} {DEFAULT_THRESHOLDS[DEFAULT_METHOD]}; * marks each method's default")
    print_rows("LFW (A tunes, B checks, all = both halves grouped together)", lfw, ("A", "B", "all"))
    for folder in args.perturbed:
        copy = labelled_set(folder, Path("/tmp") / f"facecluster-bench-{folder.name}")
        print_rows(f"{folder} (perturbed copy of LFW)", copy, ("all",))


if __name__ == "__main__":
    main()
