"""What a scan shows the user: per-person albums, people.json, report.html and XMP sidecars.

Each writer takes a ``ScanOutcome`` and replaces its files atomically inside the output folder,
rewriting only what differs from what is on disk (an unchanged album, thumbnail or file is left
alone), so rewriting after a small correction, or after nothing changed, is cheap.
"""

from __future__ import annotations

from pathlib import Path

from facecluster.outputs import people_json, report
from facecluster.outputs.albums import write_albums
from facecluster.outputs.files import temporary_prefix
from facecluster.outputs.people_json import write_people_json
from facecluster.outputs.report import write_report
from facecluster.outputs.xmp import write_sidecars
from facecluster.types import ScanOutcome


def write_outputs(outcome: ScanOutcome, output: Path, album_mode: str = "symlink", xmp: bool = False) -> None:
    """Albums, people.json, report.html and (when asked) XMP sidecars, each replaced atomically.

    With the outcome's index closed, wrap the call in ``ThumbnailReader.reading()`` so that the face
    thumbnails read meanwhile share one connection.
    """
    _remove_temporary_files(output)
    write_albums(outcome, output, album_mode)
    write_people_json(outcome, output)
    write_report(outcome, output)
    if xmp:
        write_sidecars(outcome, output)


def _remove_temporary_files(output: Path) -> None:
    """Delete the temporary files of people.json and report.html that a killed run left behind."""
    prefixes = tuple(temporary_prefix(name) for name in (people_json.FILE_NAME, report.FILE_NAME))
    for child in output.iterdir():
        if (
            child.name.startswith(prefixes)
            and child.name.endswith(".tmp")
            and child.is_file()
            and not child.is_symlink()
        ):
            child.unlink(missing_ok=True)
