"""`facecluster scan`: index new and changed photos, group the faces, write albums and a report."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facecluster.cli.common import device_option, method_option, note, reported, scan_progress, threshold_option
from facecluster.grouping import GroupingOptions
from facecluster.library import Library
from facecluster.pipeline.plan import ScanOptions


@click.command("scan")
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
@click.option(
    "--follow-symlinks/--no-follow-symlinks",
    default=True,
    show_default=True,
    help="Follow symbolic links to photos and folders, also outside PHOTOS (loops are detected; albums point at "
    "the real files). Links not followed are listed as skipped, with the reason.",
)
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
    options = ScanOptions(
        include_hidden=include_hidden,
        exclude=exclude,
        follow_symlinks=follow_symlinks,
        grouping=GroupingOptions(method=method, threshold=threshold),
        device=device,
        xmp=xmp,
    )
    interrupted = "interrupted: every photo analysed so far is saved; run the same command to resume"
    with reported(interrupted=interrupted):
        library = Library.create(photos, output)
        if dry_run:
            _print_plan(library, options, as_json)
            return
        with scan_progress(not (quiet or as_json)) as progress:
            outcome = library.scan(options, progress, album_mode)
    summary = outcome.stats.as_dict()
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
        note(f"report: {output.resolve() / 'report.html'}")


def _print_plan(library: Library, options: ScanOptions, as_json: bool) -> None:
    """``--dry-run``: what would be analysed and removed."""
    plan = library.plan(options)
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
        return
    for found in plan.to_read:
        click.echo(f"analyse\t{found.relative}")
    for relative in plan.removed:
        click.echo(f"remove\t{relative}")
    note(f"{len(plan.found)} photos found: {len(plan.to_read)} to analyse, {len(plan.removed)} to remove")
