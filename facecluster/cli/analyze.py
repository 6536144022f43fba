"""`facecluster verify` and `facecluster faces`: faces of single photos.

File names are printed as text: bytes that are not UTF-8 show as U+FFFD (``display_text``), so the
JSON stays valid Unicode.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from facecluster.api import SAME_PERSON_THRESHOLD, main_face, verify
from facecluster.cli.common import DISTANCE, EXIT_BAD_INPUT, device_option, fail, load_analyzer, note
from facecluster.errors import ImageLoadError
from facecluster.outputs.files import display_text


@click.command("verify")
@click.argument("first", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--threshold",
    type=DISTANCE,
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
    analyzer = load_analyzer(device)
    faces = []
    for path in (first, second):
        try:
            found = analyzer.analyze(path)
        except ImageLoadError as error:
            fail(f"{display_text(str(path))}: {error}", as_json)
        if not found:
            fail(f"{display_text(str(path))}: no face found", as_json)
        faces.append(found)
    result = verify(main_face(faces[0]), main_face(faces[1]), threshold)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "first": display_text(str(first)),
                    "second": display_text(str(second)),
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
        note(f"ran on {analyzer.runtime.label}")
    sys.exit(0 if result.same else 1)


@click.command("faces")
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
    analyzer = load_analyzer(device)
    note(f"running on {analyzer.runtime.label}")
    failed = False
    for result in analyzer.analyze_many(photos):
        if result.error is not None:
            failed = True
            note(f"error: {display_text(str(result.source))}: {result.error}")
            continue
        for index, face in enumerate(result.faces):
            record = {"file": display_text(str(result.source)), "face": index, **face.to_dict(with_embedding=embedding)}
            click.echo(json.dumps(record))
    sys.exit(EXIT_BAD_INPUT if failed else 0)
