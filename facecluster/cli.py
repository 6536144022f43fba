"""The ``facecluster`` command line."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from facecluster import __version__
from facecluster.analysis import FaceAnalyzer
from facecluster.grouping import DEFAULT_METHOD, DEFAULT_THRESHOLDS, METHODS, GroupingOptions
from facecluster.images import ImageLoadError
from facecluster.runtime import DEVICES, DeviceError
from facecluster.verify import SAME_PERSON_THRESHOLD, main_face, verify

if TYPE_CHECKING:
    from facecluster.scan import Progress as ScanProgress

EXIT_ERROR = 2
stderr = Console(stderr=True)

device_option = click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="Where the models run. 'auto' uses a CUDA GPU when onnxruntime-gpu finds one, "
    "else the CPU, and says which; 'cuda' fails instead of falling back to the CPU.",
)
method_option = click.option(
    "--method",
    type=click.Choice(METHODS),
    default=DEFAULT_METHOD,
    show_default=True,
    help="Grouping method: 'adaptive' (average linkage that asks more of small groups and keeps look-alike "
    "groups apart), 'agglomerative' (plain average linkage) or 'hdbscan'.",
)
threshold_option = click.option(
    "--threshold",
    type=float,
    default=None,
    help="Grouping distance between unit embeddings (linkage methods: root-mean-square distance between two "
    "groups' faces; hdbscan: selection epsilon). Larger joins more [default: "
    + ", ".join(f"{m} {t}" for m, t in DEFAULT_THRESHOLDS.items())
    + "].",
)


def _analyzer(device: str) -> FaceAnalyzer:
    """Load the models or exit with the reason."""
    try:
        return FaceAnalyzer(device=device)
    except DeviceError as error:
        _note(f"error: {error}")
        sys.exit(EXIT_ERROR)


def _fail(message: str, as_json: bool, status: int = EXIT_ERROR) -> NoReturn:
    """Report a user-facing error and exit with ``status``."""
    if as_json:
        click.echo(json.dumps({"error": message}))
    _note(f"error: {message}")
    sys.exit(status)


def _note(message: str) -> None:
    """One plain line on stderr (never wrapped, never read as markup)."""
    click.echo(message, err=True)


@contextmanager
def _scan_progress(show: bool) -> Iterator[ScanProgress]:
    """Callbacks for ``run_scan`` that drive a progress bar on stderr (hidden unless ``show``)."""
    from facecluster.scan import Progress as ScanProgress

    with Progress(
        TextColumn("[bold]analysing"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} photos"),
        TextColumn("{task.fields[faces]} faces"),
        TimeRemainingColumn(),
        console=stderr,
        disable=not show,
    ) as bar:
        tasks: list = []
        faces = [0]

        def start(total: int) -> None:
            tasks.append(bar.add_task("photos", total=total, faces=0))

        def advance(found: int) -> None:
            faces[0] += found
            bar.update(tasks[0], advance=1, faces=faces[0])

        yield ScanProgress(start, advance)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facecluster")
def main() -> None:
    """Find, recognise and group the faces in your photos, offline."""


@main.command("verify")
@click.argument("first", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--threshold",
    type=float,
    default=SAME_PERSON_THRESHOLD,
    show_default=True,
    help="Distance below which the faces count as the same person (chosen on LFW).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@device_option
def verify_command(first: Path, second: Path, threshold: float, as_json: bool, device: str) -> None:
    """Say whether the main faces of two photos are the same person.

    The main face is the largest one in each photo.

    \b
    Exit status: 0 same person, 1 different people,
                 2 error (unreadable file, not an image, no face found, bad option).
    """
    analyzer = _analyzer(device)
    faces = []
    for path in (first, second):
        try:
            found = analyzer.analyze(path)
        except ImageLoadError as error:
            _fail(f"{path}: {error}", as_json)
        if not found:
            _fail(f"{path}: no face found", as_json)
        faces.append(found)
    result = verify(main_face(faces[0]), main_face(faces[1]), threshold)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "first": str(first),
                    "second": str(second),
                    "distance": round(result.distance, 6),
                    "threshold": threshold,
                    "same": result.same,
                    "faces": [len(faces[0]), len(faces[1])],
                    "device": analyzer.runtime.label,
                }
            )
        )
    else:
        verdict = "same person" if result.same else "different people"
        click.echo(f"{verdict} (distance {result.distance:.4f}, threshold {threshold:.2f})")
        _note(f"ran on {analyzer.runtime.label}")
    sys.exit(0 if result.same else 1)


@main.command("faces")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--embedding", is_flag=True, help="Include the 128-D embedding of each face.")
@device_option
def faces_command(photos: tuple[Path, ...], embedding: bool, device: str) -> None:
    """Print the faces found in PHOTOS as JSON lines.

    One line per face: file, index, box [x1, y1, x2, y2], five landmarks (left eye,
    right eye, nose, left and right mouth corner), detection score and quality, in the
    photo's upright full-resolution pixels. Unreadable files are reported on stderr.

    \b
    Exit status: 0 every file was read, 2 some file could not be read.
    """
    analyzer = _analyzer(device)
    _note(f"running on {analyzer.runtime.label}")
    failed = False
    for result in analyzer.analyze_many(photos):
        if result.error is not None:
            failed = True
            _note(f"error: {result.source}: {result.error}")
            continue
        for index, face in enumerate(result.faces):
            record = {"file": str(result.source), "face": index, **face.to_dict(with_embedding=embedding)}
            click.echo(json.dumps(record))
    sys.exit(EXIT_ERROR if failed else 0)


@main.command("scan")
@click.argument("photos", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("facecluster-output"),
    show_default=True,
    help="Output folder (albums, report, index); never inside PHOTOS.",
)
@click.option("--copy", "album_mode", flag_value="copy", help="Albums hold copies of the photos.")
@click.option("--hardlink", "album_mode", flag_value="hardlink", help="Albums hold hard links.")
@click.option(
    "--symlink", "album_mode", flag_value="symlink", default=True, help="Albums hold symbolic links (default)."
)
@click.option(
    "--xmp",
    is_flag=True,
    help="Also write each photo's face regions and person names as XMP sidecars (MWG regions, read by digiKam, "
    "Lightroom, PhotoPrism, exiftool) into OUT/xmp/, never beside the originals.",
)
@click.option("--include-hidden", is_flag=True, help="Also scan hidden files and folders.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths or names matching GLOB (repeatable).")
@click.option("--follow-symlinks", is_flag=True, help="Follow symbolic links (loops are detected).")
@method_option
@threshold_option
@click.option("--dry-run", is_flag=True, help="List what would be analysed and removed; write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no summary table.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout (logs go to stderr).")
@device_option
def scan_command(
    photos: Path,
    output: Path,
    album_mode: str,
    xmp: bool,
    include_hidden: bool,
    exclude: tuple[str, ...],
    follow_symlinks: bool,
    method: str,
    threshold: float | None,
    dry_run: bool,
    quiet: bool,
    as_json: bool,
    device: str,
) -> None:
    """Find every face under PHOTOS, group them by person and write albums and a report.

    Writes into the output folder: people/<person>/ (links to the photos),
    people/unsorted/, people/no-faces.txt, report.html, people.json and the face index
    (index.sqlite). Runs again analyse only new or changed photos; deleted photos leave
    the index. The photo folder is only read, never written.

    \b
    Exit status: 0 done (unreadable photos are skipped and listed, not errors),
                 2 bad arguments (missing folder, output inside PHOTOS),
                 3 another scan is using the output folder,
                 4 the output folder cannot be written (read-only, disk full),
                 130 interrupted (Ctrl-C); the next run resumes where it stopped.
    """
    from facecluster.scan import ScanError, ScanOptions, plan_only, run_scan

    options = ScanOptions(
        include_hidden=include_hidden,
        exclude=exclude,
        follow_symlinks=follow_symlinks,
        grouping=GroupingOptions(method=method, threshold=threshold),
        device=device,
        xmp=xmp,
    )
    try:
        if dry_run:
            plan = plan_only(photos, output, options)
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "analyse": [f.relative for f in plan.to_read],
                            "remove": plan.removed,
                            "unreadable_folders": [p.relative for p in plan.problems],
                        }
                    )
                )
            else:
                for found in plan.to_read:
                    click.echo(f"analyse\t{found.relative}")
                for relative in plan.removed:
                    click.echo(f"remove\t{relative}")
                _note(f"{len(plan.found)} photos found: {len(plan.to_read)} to analyse, {len(plan.removed)} to remove")
            return
        with _scan_progress(not (quiet or as_json)) as progress:
            outcome = run_scan(photos, output, options, progress, album_mode)
    except ScanError as error:
        _note(f"error: {error}")
        sys.exit(error.exit_code)
    except DeviceError as error:
        _note(f"error: {error}")
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _note("interrupted: every photo analysed so far is saved; run the same command to resume")
        sys.exit(130)
    summary = outcome.summary
    if as_json:
        click.echo(json.dumps({**summary, "output": str(output.resolve())}))
    elif not quiet:
        table = Table(title=f"facecluster scan of {photos}", show_header=False)
        table.add_column("")
        table.add_column("", justify="right")
        rows = [
            ("photos with faces or none", summary["photos"]),
            ("new or changed files", summary["new_or_changed"]),
            ("removed from index", summary["removed"]),
            ("faces", summary["faces"]),
            ("people", summary["people"]),
            ("unsorted faces", summary["unsorted"]),
            ("photos without faces", summary["no_faces"]),
            ("skipped files", summary["skipped"]),
            ("grouping", f"{summary['method']} {summary['threshold']}"),
            ("time", f"{summary['seconds']:.1f} s"),
            ("ran on", summary["device"]),
        ]
        for name, value in rows:
            table.add_row(name, escape(str(value)))
        Console(stderr=True).print(table)
        _note(f"report: {output.resolve() / 'report.html'}")


@main.group("eval")
def eval_group() -> None:
    """Measure the models on labelled data."""


@eval_group.command("lfw")
@click.argument("lfw_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--pairs", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Default: DIR/pairs.txt.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@device_option
def eval_lfw_command(lfw_dir: Path, pairs: Path | None, as_json: bool, device: str) -> None:
    """Run the standard LFW 10-fold verification protocol on LFW_DIR.

    LFW_DIR holds pairs.txt and the images (NAME/NAME_NNNN.jpg, directly or under
    images/). Each fold's threshold is chosen on the other nine; prints mean accuracy,
    its standard deviation and TAR at FAR=1e-3 over all pairs.
    """
    from facecluster.evaluation.lfw import VARIANTS, evaluate_lfw

    pairs_file = pairs or lfw_dir / "pairs.txt"
    if not pairs_file.is_file():
        _fail(f"{pairs_file}: no such file (the LFW protocol file)", as_json)
    analyzer = _analyzer(device)
    started = time.perf_counter()
    with Progress(
        TextColumn("embedding LFW"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=stderr,
        disable=as_json,
    ) as progress:
        task = progress.add_task("lfw", total=None)
        reports = evaluate_lfw(
            lfw_dir, analyzer, lambda done, total: progress.update(task, completed=done, total=total), pairs_file
        )
    elapsed = time.perf_counter() - started
    if as_json:
        click.echo(
            json.dumps(
                {
                    name: {
                        "mean_accuracy": report.mean_accuracy,
                        "std_accuracy": report.std_accuracy,
                        "fold_accuracies": report.fold_accuracies,
                        "threshold": report.threshold,
                        "tar_at_far_1e-3": report.tar_at_far,
                        "pairs": report.pairs,
                        "images": report.images,
                        "undetected_fallbacks": report.fallbacks,
                    }
                    for name, report in reports.items()
                }
                | {"device": analyzer.runtime.label, "seconds": round(elapsed, 1)}
            )
        )
        return
    table = Table(title=f"LFW 10-fold verification ({reports['flip'].pairs} pairs, {reports['flip'].images} images)")
    for column in ("embedding", "accuracy", "std", "threshold", "TAR@FAR=1e-3"):
        table.add_column(column, justify="left" if column == "embedding" else "right")
    for name, report in reports.items():
        table.add_row(
            VARIANTS[name],
            f"{report.mean_accuracy:.2%}",
            f"{report.std_accuracy:.2%}",
            f"{report.threshold:.4f}",
            f"{report.tar_at_far:.2%}",
        )
    Console().print(table)
    click.echo(
        f"faces not detected (central crop used): {reports['flip'].fallbacks}; "
        f"{elapsed:.0f} s on {analyzer.runtime.label}"
    )


@eval_group.command("cluster")
@click.argument("photos", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--labels",
    "labels_file",
    metavar="CSV",
    type=click.Path(path_type=Path),
    help="Identities from a CSV with the header path,label (paths relative to DIR) instead of folder names.",
)
@click.option(
    "-o",
    "--output",
    metavar="OUT",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the scan's output folder (index, albums, report) in OUT; a second run with the same OUT "
    "analyses only new or changed photos and just regroups. Default: a temporary folder, deleted afterwards.",
)
@method_option
@threshold_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@device_option
def eval_cluster_command(
    photos: Path,
    labels_file: Path | None,
    output: Path | None,
    method: str,
    threshold: float | None,
    as_json: bool,
    device: str,
) -> None:
    """Measure how well `scan` groups the labelled photos under DIR.

    Runs the real scan of DIR with its default settings (or --method and --threshold) and
    compares its groups with the true identities: the name of the folder holding each photo
    (e.g. LFW's NAME/NAME_0001.jpg; photos directly in DIR have none), or the labels of --labels.
    Each labelled photo is scored on one face, its confident detection nearest the centre;
    other faces and unlabelled photos are grouped but not scored, and unsorted faces count as
    groups of one. Prints pairwise and BCubed precision, recall and F1. DIR is only read.

    \b
    Exit status: 0 done, 2 bad arguments (missing or empty DIR, unusable CSV),
                 3 another scan is using OUT, 4 OUT cannot be written, 130 interrupted.
    """
    from facecluster.evaluation.clustering import score_clustering
    from facecluster.evaluation.labels import LabelError, folder_labels, labelled_faces, read_label_csv
    from facecluster.scan import ScanError, ScanOptions, plan_only, run_scan

    started = time.perf_counter()
    options = ScanOptions(grouping=GroupingOptions(method=method, threshold=threshold), device=device)
    with nullcontext(output) if output else tempfile.TemporaryDirectory(prefix="facecluster-eval-") as folder:
        try:
            found = [f.relative for f in plan_only(photos, Path(folder), options).found]
        except ScanError as error:
            _fail(str(error), as_json)
        if not found:
            _fail(f"{photos}: no photos found", as_json)
        try:
            labels = read_label_csv(labels_file) if labels_file else folder_labels(found)
        except LabelError as error:
            _fail(str(error), as_json)
        if not labels.keys() & set(found):
            if labels_file:
                _fail(f"{labels_file}: names no photo in {photos} (paths must be relative to it)", as_json)
            _fail(
                f"{photos}: every photo lies directly in it; put them in one folder per person or use --labels", as_json
            )
        try:
            with _scan_progress(not as_json) as progress:
                outcome = run_scan(photos, Path(folder), options, progress)
        except ScanError as error:
            _fail(str(error), as_json, error.exit_code)
        except DeviceError as error:
            _fail(str(error), as_json)
        except KeyboardInterrupt:
            _note("interrupted: with -o, every photo analysed so far is kept and the next run resumes")
            sys.exit(130)
    scored = labelled_faces(outcome, labels)
    if not scored.identity:
        _fail(f"{photos}: no labelled photo has a face, nothing to score", as_json)
    group_of = {face.face_id: n for n, person in enumerate(outcome.people) for face in person.faces}
    ids = sorted(scored.identity)
    scores = score_clustering([scored.identity[i] for i in ids], [group_of.get(i, -1) for i in ids])
    summary = outcome.summary
    result = {
        "photos": str(photos),
        "labels": str(labels_file) if labels_file else "folder names",
        "pairwise_precision": round(scores.pairwise_precision, 6),
        "pairwise_recall": round(scores.pairwise_recall, 6),
        "pairwise_f1": round(scores.pairwise_f1, 6),
        "bcubed_precision": round(scores.bcubed_precision, 6),
        "bcubed_recall": round(scores.bcubed_recall, 6),
        "bcubed_f1": round(scores.bcubed_f1, 6),
        "groups": scores.groups,
        "people": scores.people,
        "labelled": len(labels),
        "scored_faces": len(ids),
        "without_face": len(scored.without_face),
        "not_analysed": len(scored.not_analysed),
        "faces": summary["faces"],
        "analysed": summary["analysed"],
        "method": summary["method"],
        "threshold": summary["threshold"],
        "device": summary["device"],
        "seconds": round(time.perf_counter() - started, 2),
        "scan_seconds": summary["seconds"],
        "output": str(output.resolve()) if output else None,
    }
    if scored.not_analysed:
        listed = ", ".join(scored.not_analysed[:5]) + (", ..." if len(scored.not_analysed) > 5 else "")
        _note(f"{len(scored.not_analysed)} labelled paths not analysed (no such photo, hidden or unreadable): {listed}")
    if as_json:
        click.echo(json.dumps(result))
        return
    table = Table(title=f"grouping quality on {escape(str(photos))}", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        (
            "pairwise precision / recall / F1",
            f"{scores.pairwise_precision:.3f} / {scores.pairwise_recall:.3f} / {scores.pairwise_f1:.3f}",
        ),
        (
            "BCubed precision / recall / F1",
            f"{scores.bcubed_precision:.3f} / {scores.bcubed_recall:.3f} / {scores.bcubed_f1:.3f}",
        ),
        ("groups / true people", f"{scores.groups} / {scores.people}"),
        ("labelled photos", len(labels)),
        ("scored faces", len(ids)),
        ("labelled photos without a face", len(scored.without_face)),
        ("labelled photos not analysed", len(scored.not_analysed)),
        ("faces found", summary["faces"]),
        ("grouping", f"{summary['method']} {summary['threshold']}"),
        ("ran on", summary["device"]),
        ("time", f"{result['seconds']:.1f} s (scan {summary['seconds']:.1f} s)"),
    ]
    for name, value in rows:
        table.add_row(name, escape(str(value)))
    Console().print(table)
    if output:
        _note(f"scan output kept in {output.resolve()}")


def _register_people_commands() -> None:
    from facecluster.people_cli import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_people_commands()
