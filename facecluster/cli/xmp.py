"""`facecluster xmp`: XMP sidecars with face regions and person names, on demand."""

from __future__ import annotations

from pathlib import Path

import click

from facecluster.cli.common import note, output_option, reported
from facecluster.library import Library


@click.command("xmp")
@output_option
@click.option(
    "--beside-originals",
    is_flag=True,
    help="Write PHOTO.xmp next to each photo in the scanned folder instead of into OUT/xmp/; an existing "
    "file there is never replaced (it is skipped and listed).",
)
def xmp_command(output: Path, beside_originals: bool) -> None:
    """Write XMP sidecars (MWG face regions with person names) for the current people now.

    By default into OUT/xmp/ (what 'scan --xmp' keeps up to date); the photo folder is written to
    only with --beside-originals.
    """
    with reported():
        report = Library.open(output).write_xmp(beside_originals=beside_originals)
    for relative, reason in report.skipped:
        note(f"skipped {relative}: {reason}")
    where = "beside the originals" if beside_originals else f"in {output / 'xmp'}"
    note(f"{report.written} sidecar(s) written {where}, {len(report.skipped)} skipped")
