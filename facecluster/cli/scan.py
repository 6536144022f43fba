"""`facecluster scan`: index new and changed photos, group the faces, write albums and a report."""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facecluster.cli.common import device_option, method_option, note, reported, scan_progress, threshold_option
from facecluster.grouping import GroupingOptions
from facecluster.library import Library
from facecluster.outputs.files import display_text
from facecluster.pipeline.plan import ScanOptions

SKIPPED_SHOWN = 10
"""Skipped files (and links not followed) listed after the summary, with their reasons."""


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
@click.option(
    "--new-folder",
    is_flag=True,
    help="Scan PHOTOS into an output made from another photo folder (your photos moved): photos found here keep "
    "their names and corrections; the others are kept as missing.",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Go on when PHOTOS holds no photo at all although the index has some (they are kept as missing). "
    "Without it such a scan is refused: the drive may not be mounted.",
)
@method_option
@threshold_option
@click.option("--dry-run", is_flag=True, help="List what would be analysed and what went missing; write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no summary table.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout (logs go to stderr).")
@device_option
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Photos analysed at once, each in its own thread.  [default: one per core]",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Analyse the photos on the workers of this Dask scheduler (tcp://HOST:8786); this machine keeps the "
    "index and the outputs and ships each photo's bytes. Needs pip install 'facecluster[dask]' here and on the "
    "workers, with the same facecluster.",
)
def scan_command(
    photos: Path,
    output: Path,
    album_mode: str,
    xmp: bool,
    include_hidden: bool,
    exclude: tuple[str, ...],
    follow_symlinks: bool,
    new_folder: bool,
    allow_empty: bool,
    method: str,
    threshold: float | None,
    dry_run: bool,
    quiet: bool,
    as_json: bool,
    device: str,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Find every face under PHOTOS, group them by person and write albums and a report.

    Writes into the output folder: people/<person>/ (links to the photos),
    people/unsorted/, people/no-faces.txt, report.html, people.json and the face index
    (index.sqlite). Runs again analyse only new or changed photos. Photos that vanished
    are kept as missing, with their faces, names and corrections, out of the albums, until
    'facecluster prune'; found again at any path, they come back without re-analysis. The
    photo folder is only read, never written.

    \b
    Exit status: 0 done (unreadable photos are skipped and listed, not errors),
                 2 bad arguments (missing folder, output inside PHOTOS, an output of
                   another photo folder without --new-folder, no photo found without
                   --allow-empty, a Dask scheduler that cannot be reached or has
                   workers of another facecluster),
                 3 another scan is using the output folder,
                 4 the output folder cannot be written (read-only, disk full), or the
                   Dask scheduler was lost during the scan (run it again to resume),
                 130 interrupted (Ctrl-C); the next run resumes where it stopped.
    """
    interrupted = "interrupted: every photo analysed so far is saved; run the same command to resume"
    if scheduler is not None:
        _quiet_dask()
    completed = None if dry_run else "interrupted after the scan was completed: its index and outputs are saved"
    with reported(interrupted=interrupted, completed=completed):
        options = ScanOptions(
            include_hidden=include_hidden,
            exclude=exclude,
            follow_symlinks=follow_symlinks,
            grouping=GroupingOptions(method=method, threshold=threshold),
            device=device,
            workers=workers,
            scheduler=scheduler,
            xmp=xmp,
            new_folder=new_folder,
            allow_empty=allow_empty,
        )
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
            ("faces", summary["faces"]),
            ("people", summary["people"]),
            ("unsorted faces", summary["unsorted"]),
            ("photos without faces", summary["no_faces"]),
            ("skipped files", summary["skipped"]),
            ("grouping", f"{summary['method']} {summary['threshold']}"),
            ("time", f"{summary['seconds']:.1f} s"),
            ("ran on", summary["device"]),
        ]
        changes = [
            ("moved, renamed or copies gone", summary["moved"]),
            ("missing photos (kept)", summary["missing"]),
            ("missing photos found again", summary["returned"]),
        ]
        rows[2:2] = [(name, value) for name, value in changes if value]
        for name, value in rows:
            table.add_row(name, escape(str(value)))
        Console(stderr=True).print(table)
        for item in outcome.skipped[:SKIPPED_SHOWN]:
            note(display_text(f"skipped {item.relative}: {item.reason}"))
        if len(outcome.skipped) > SKIPPED_SHOWN:
            note(f"... and {len(outcome.skipped) - SKIPPED_SHOWN} more skipped (all in report.html and people.json)")
        if outcome.missing:
            more = len(outcome.missing) - 5
            shown = ", ".join(display_text(m) for m in outcome.missing[:5]) + (f" and {more} more" if more > 0 else "")
            note(
                f"{len(outcome.missing)} photos are missing ({shown}): kept with their names and corrections, out of "
                f"the albums; they come back when found. 'facecluster prune -o {output}' forgets them."
            )
        note(f"report: {output.resolve() / 'report.html'}")


def _quiet_dask() -> None:
    """Silence dask's own log on stderr: the scan's message says what went wrong with the cluster, once.
    (Importing ``distributed`` sets its loggers' levels, so they are set after it.)"""
    with suppress(ImportError):
        import distributed  # noqa: F401
    for name in ("distributed", "distributed.client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _print_plan(library: Library, options: ScanOptions, as_json: bool) -> None:
    """``--dry-run``: what would be analysed and removed."""
    plan = library.plan(options)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "analyse": [display_text(f.relative) for f in plan.to_read],
                    "missing": [display_text(r) for r in plan.vanished],
                    "returned": [display_text(r) for r in plan.returned],
                    "not_scanned": [{"path": display_text(p.relative), "reason": p.reason} for p in plan.problems],
                }
            )
        )
        return
    for found in plan.to_read:
        click.echo(f"analyse\t{display_text(found.relative)}")
    for relative in plan.vanished:
        click.echo(f"missing\t{display_text(relative)}")
    for relative in plan.returned:
        click.echo(f"back\t{display_text(relative)}")
    for problem in plan.problems:
        click.echo(display_text(f"not scanned\t{problem.relative}\t{problem.reason}"))
    note(
        f"{len(plan.found)} photos found: {len(plan.to_read)} to analyse, {len(plan.vanished)} gone from their path"
        f" (kept as missing unless found elsewhere), {len(plan.returned)} missing ones back"
    )
