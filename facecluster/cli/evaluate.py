"""`facecluster eval lfw` and `facecluster eval cluster`: measure the models and the grouping on labelled data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from facecluster.cli.common import (
    device_option,
    fail,
    load_analyzer,
    method_option,
    note,
    reported,
    scan_progress,
    stderr,
    threshold_option,
)
from facecluster.evaluation.cluster import evaluate_folder
from facecluster.evaluation.lfw import VARIANTS, evaluate_lfw
from facecluster.grouping import GroupingOptions
from facecluster.pipeline.plan import ScanOptions


@click.group("eval")
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
    pairs_file = pairs or lfw_dir / "pairs.txt"
    if not pairs_file.is_file():
        fail(f"{pairs_file}: no such file (the LFW protocol file)", as_json)
    analyzer = load_analyzer(device)
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
    options = ScanOptions(grouping=GroupingOptions(method=method, threshold=threshold), device=device)
    interrupted = "interrupted: with -o, every photo analysed so far is kept and the next run resumes"
    with reported(as_json, interrupted), scan_progress(not as_json) as progress:
        evaluation = evaluate_folder(photos, labels_file, output, options, progress)
    scores, stats = evaluation.scores, evaluation.stats
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
        "labelled": evaluation.labelled,
        "scored_faces": evaluation.scored_faces,
        "without_face": len(evaluation.without_face),
        "not_analysed": len(evaluation.not_analysed),
        "faces": stats.faces,
        "analysed": stats.analysed,
        "method": stats.method,
        "threshold": stats.threshold,
        "device": stats.device,
        "seconds": round(evaluation.seconds, 2),
        "scan_seconds": stats.seconds,
        "output": str(output.resolve()) if output else None,
    }
    if evaluation.not_analysed:
        missing = evaluation.not_analysed
        listed = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        note(f"{len(missing)} labelled paths not analysed (no such photo, hidden or unreadable): {listed}")
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
        ("labelled photos", evaluation.labelled),
        ("scored faces", evaluation.scored_faces),
        ("labelled photos without a face", len(evaluation.without_face)),
        ("labelled photos not analysed", len(evaluation.not_analysed)),
        ("faces found", stats.faces),
        ("grouping", f"{stats.method} {stats.threshold}"),
        ("ran on", stats.device),
        ("time", f"{result['seconds']:.1f} s (scan {stats.seconds:.1f} s)"),
    ]
    for name, value in rows:
        table.add_row(name, escape(str(value)))
    Console().print(table)
    if output:
        note(f"scan output kept in {output.resolve()}")
