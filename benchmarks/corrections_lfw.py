"""What a user's corrections cost and survive, on LFW photos: renames, an unmounted drive, undo, prune.

    python benchmarks/corrections_lfw.py [--shared ../shared] [--people 400] [--work /tmp/facecluster-bench-corr]

Copies the photos of the first PEOPLE LFW identities with 2+ images into a work folder (grouped in
folders by person), scans it, then names every person by their folder (the simulated user's
corrections: one name per group holding that person's faces, merges for fragments) and measures,
against a rescan of the unchanged folder in the same run (the baseline):
- reorganising the library (every folder renamed and moved one level down) and rescanning;
- a drive not mounted (the photo folder empty: refused; then --allow-empty), and the rescan after
  it comes back;
- one name, one merge and their undo, each a full regroup and rewrite of the outputs;
- deleting 5 % of the photos, rescanning, prune, and undo of the prune.
Prints, for each step, photos analysed, names kept (of those given), and seconds and the ratio to
the baseline rescan.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from facecluster import InvalidInput, Library, ScanOptions
from facecluster.library import PeopleEditor


def names_kept(library: Library, expected: dict[str, str]) -> int:
    """How many of the given names still label the photos they were given for."""
    kept = 0
    for person in library.people():
        if person.name and person.name in expected.values():
            folders = Counter(photo.relative.rsplit("/", 2)[-2] for photo in person.photos)
            kept += expected.get(folders.most_common(1)[0][0]) == person.name
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--work", type=Path, default=Path("/tmp/facecluster-bench-corr"))
    args = parser.parse_args()
    images = args.shared / "data" / "lfw" / "images"
    if not images.is_dir():
        raise SystemExit(f"{images} not found: this benchmark needs the shared LFW data")
    shutil.rmtree(args.work, ignore_errors=True)
    photos, output = args.work / "photos", args.work / "out"
    chosen = [d for d in sorted(images.iterdir()) if len(list(d.iterdir())) >= 2][: args.people]
    for folder in chosen:
        shutil.copytree(folder, photos / folder.name)
    library = Library.create(photos, output)
    rows: list[tuple[str, int | str, str, float]] = []

    def timed(step: str, action: Callable[[], object], count_names: bool = False) -> object:
        """Run ``action``, note its time and photos analysed, and (when asked) the names kept after it."""
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
        kept = f"{names_kept(library, given)}/{len(given)}" if count_names else ""
        stats = getattr(result, "stats", None)
        analysed = stats.analysed if stats is not None and stats.analysed is not None else "-"
        rows.append((step, analysed, kept, seconds))
        return result

    timed("first scan", library.scan)
    baseline = timed("rescan, nothing changed (baseline)", library.scan)
    given: dict[str, str] = {}
    with library.corrections() as edit:
        for person in library.people():
            folders = Counter(photo.relative.split("/")[0] for photo in person.photos)
            folder, count = folders.most_common(1)[0]
            if count == len(person.photos) and folder not in given:
                given[folder] = folder.replace("_", " ")
                edit.name(person.id, given[folder])
    total = f"{names_kept(library, given)}/{len(given)}"
    rows.append(("names given (one per pure group)", "-", total, 0.0))

    (photos / "archive").mkdir()
    for folder in chosen:
        (photos / folder.name).rename(photos / "archive" / f"{folder.name} (renamed)")
    given = {f"{k} (renamed)": v for k, v in given.items()}
    timed("every folder renamed and moved", library.scan, count_names=True)

    drive = args.work / "drive"
    photos.rename(drive)
    photos.mkdir()
    try:
        library.scan()
        refused = "NOT REFUSED"
    except InvalidInput:
        refused = "refused"
    rows.append((f"drive not mounted: scan {refused}", 0, f"{names_kept(library, given)}/{len(given)}", 0.0))
    timed("drive not mounted, --allow-empty", lambda: library.scan(ScanOptions(allow_empty=True)))
    photos.rmdir()
    drive.rename(photos)
    timed("drive back", library.scan, count_names=True)

    people = sorted(library.people(), key=lambda p: -len(p.faces))

    def correct(action: Callable[[PeopleEditor], object]) -> object:
        with library.corrections() as edit:
            action(edit)
        return edit.outcome

    timed("name one person", lambda: correct(lambda edit: edit.name(people[-1].id, "Someone New")))
    timed("merge two people", lambda: correct(lambda edit: edit.merge(people[0].id, people[1].id)))
    timed("undo the merge", library.undo)
    timed("undo the name", library.undo, count_names=True)

    doomed = sorted(photos.rglob("*.jpg"))[::20]
    for photo in doomed:
        photo.unlink()
    outcome = timed(f"{len(doomed)} photos deleted, rescan", library.scan)
    rows.append((f"  missing photos kept: {outcome.stats.missing}", "-", "", 0.0))
    timed("prune", lambda: library.prune())
    timed("undo the prune", library.undo, count_names=True)

    base = rows[1][3]
    print(f"{len(list(photos.rglob('*.jpg')))} photos of {len(chosen)} LFW people; baseline rescan {base:.2f} s")
    print(f"{'step':<40} | analysed | names kept | seconds | x baseline")
    for step, analysed, kept, seconds in rows:
        ratio = f"{seconds / base:.2f}" if seconds else ""
        print(f"{step:<40} | {analysed!s:>8} | {kept:>10} | {seconds:7.2f} | {ratio:>10}")
    assert baseline is not None


if __name__ == "__main__":
    main()
