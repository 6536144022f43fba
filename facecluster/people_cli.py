"""The people commands: people, name, merge, split, move, forget, find, xmp."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facecluster.cli import EXIT_ERROR, _analyzer, _note, device_option
from facecluster.export import FILE_NAME
from facecluster.images import ImageLoadError
from facecluster.index import FaceIndex, IndexUnavailable
from facecluster.outcome import ScanOutcome
from facecluster.people import People, PeopleError
from facecluster.recognition import Gallery
from facecluster.scan import ScanError

output_option = click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("facecluster-output"),
    show_default=True,
    help="The output folder of an earlier 'facecluster scan'.",
)


def _correct(output: Path, action: Callable[[People], object]) -> object:
    """Apply a correction and rewrite the outputs, or exit with the reason."""
    return _correct_outcome(output, action)[0]


def _correct_outcome(output: Path, action: Callable[[People], object] = lambda _: None) -> tuple[object, ScanOutcome]:
    """``corrections.correct``: the action's result and the regrouped outcome, or exit with the reason."""
    from facecluster.corrections import correct

    try:
        return correct(output, action)
    except (PeopleError, ScanError) as error:
        _note(f"error: {error}")
        sys.exit(getattr(error, "exit_code", EXIT_ERROR))


def _listing(output: Path) -> dict:
    """people.json of the output folder, or exit 2."""
    path = output / FILE_NAME
    try:
        return json.loads(path.read_text(encoding="ascii"))
    except (OSError, ValueError) as error:
        _note(f"error: {path}: cannot read the people list ({error}); run 'facecluster scan' first")
        sys.exit(EXIT_ERROR)


@click.command("people")
@click.argument("person", required=False)
@output_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def people_command(person: str | None, output: Path, as_json: bool) -> None:
    """List people (id, album, name, faces, photos, a representative photo), or one PERSON's faces.

    PERSON is an id, a person_NNNN album key or a name. Face ids shown here are what split,
    move and forget take.
    """
    listing = _listing(output)
    people = listing["people"]
    if person is not None:
        chosen = [p for p in people if person in (str(p["id"]), p["key"], p["name"])]
        if not chosen:
            _note(f"error: no person {person!r} in {output / FILE_NAME}")
            sys.exit(EXIT_ERROR)
        faces = chosen[0]["faces"]
        if as_json:
            click.echo(json.dumps(chosen[0]))
            return
        for face in faces:
            click.echo(f"{face['face_id']}\t{face['photo']}\t{[round(v) for v in face['box']]}")
        return
    rows = []
    for entry in people:
        best = max(entry["faces"], key=lambda f: f["size"] * f["score"], default=None)
        rows.append(
            {
                **{k: entry[k] for k in ("id", "key", "name", "face_count", "photo_count")},
                "photo": best and best["photo"],
            }
        )
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table(title=f"{len(rows)} people in {output}")
    for column in ("id", "album", "name", "faces", "photos", "representative photo"):
        table.add_column(column)
    for row in rows:
        cells = (row["id"], row["key"], row["name"] or "", row["face_count"], row["photo_count"], row["photo"] or "")
        table.add_row(*(escape(str(c)) for c in cells))
    Console().print(table)


@click.command("name")
@click.argument("person")
@click.argument("name")
@output_option
def name_command(person: str, name: str, output: Path) -> None:
    """Name PERSON (an id, person_NNNN or a current name). Their album folder follows the name,
    their faces are confirmed, and re-scans keep them."""
    _correct(output, lambda people: people.name(people.resolve(person), name))
    _note(f"named {person} {name!r}; albums and report rewritten")


@click.command("merge")
@click.argument("person")
@click.argument("other")
@output_option
def merge_command(person: str, other: str, output: Path) -> None:
    """Make OTHER part of PERSON: one person from now on (PERSON keeps its id and name)."""
    _correct(output, lambda people: people.merge(people.resolve(person), people.resolve(other)))
    _note(f"merged {other} into {person}; albums and report rewritten")


@click.command("split")
@click.argument("person")
@click.argument("faces", nargs=-1, required=True)
@output_option
def split_command(person: str, faces: tuple[str, ...], output: Path) -> None:
    """Take FACES (face ids) out of PERSON into a new person; they never go back."""
    new = _correct(output, lambda people: people.split(people.resolve(person), [people.face(f) for f in faces]))
    _note(f"{len(faces)} face(s) of {person} are now person_{new:04d}; albums and report rewritten")


@click.command("move")
@click.argument("face")
@click.argument("person")
@output_option
def move_command(face: str, person: str, output: Path) -> None:
    """FACE (a face id) is PERSON, and not whoever had it before (it never goes back there).

    A PERSON that is not an id, a person_NNNN key or a current name is a new person of that name.
    """

    def move(people: People) -> None:
        face_id = people.face(face)
        try:
            target = people.resolve(person)
        except PeopleError:
            if re.fullmatch(r"(?:person_)?\d+", person.strip()):
                raise
            target = people.create(person)
        people.move(face_id, target)

    _correct(output, move)
    _note(f"face {face} moved to {person}; albums and report rewritten")


@click.command("forget")
@click.argument("faces", nargs=-1, required=True)
@output_option
def forget_command(faces: tuple[str, ...], output: Path) -> None:
    """FACES (face ids) are nobody to group: not a face, or a stranger. They stay unsorted."""

    def forget(people: People) -> None:
        for face in faces:
            people.forget(people.face(face))

    _correct(output, forget)
    _note(f"{len(faces)} face(s) forgotten; albums and report rewritten")


@click.command("find")
@click.argument("query")
@output_option
@click.option("--json", "as_json", is_flag=True, help="Print the matches as JSON on stdout.")
@device_option
def find_command(query: str, output: Path, as_json: bool, device: str) -> None:
    """Who is this? QUERY is a photo (each face in it is looked up) or a face id from the index.

    Prints the nearest people with their root-mean-square distance and the limit at which a
    re-scan would put the face with them, and every photo of an accepted match.

    \b
    Exit status: 0 someone recognised, 1 no one close enough, 2 error.
    """
    from facecluster.corrections import open_output

    try:
        index = FaceIndex(open_output(output), readonly=True)
    except ScanError as error:
        _note(f"error: {error}")
        sys.exit(EXIT_ERROR)
    except IndexUnavailable as error:
        _note(f"error: {error}; move it aside to start a new index")
        sys.exit(4)
    try:
        gallery = Gallery.load(index)
    except sqlite3.DatabaseError as error:
        _note(f"error: {index.path}: cannot read people ({error}); run 'facecluster scan' to update the index")
        sys.exit(4)
    finally:
        index.close()
    listing = {entry["id"]: entry for entry in _listing(output)["people"]}
    queries = _queries(query, gallery.embeddings, device)
    results = []
    for label, embedding, own_face in queries:
        matches = [m for m in gallery.rank(embedding, own_face) if m.person_id in listing][:3]
        results.append(
            {
                "query": label,
                "matches": [
                    {
                        "id": m.person_id,
                        "key": listing[m.person_id]["key"],
                        "name": listing[m.person_id]["name"],
                        "distance": round(m.distance, 4),
                        "limit": round(m.limit, 4),
                        "accepted": m.accepted,
                        "photos": sorted({f["photo"] for f in listing[m.person_id]["faces"]}) if m.accepted else [],
                    }
                    for m in matches
                ],
            }
        )
    found = any(match["accepted"] for result in results for match in result["matches"])
    if as_json:
        click.echo(json.dumps(results))
    else:
        for result in results:
            click.echo(result["query"])
            for match in result["matches"]:
                verdict = "match" if match["accepted"] else "too far"
                who = match["name"] or match["key"]
                click.echo(f"  {who}\tdistance {match['distance']:.3f} (limit {match['limit']:.3f})\t{verdict}")
                for photo in match["photos"]:
                    click.echo(f"    {photo}")
    sys.exit(0 if found else 1)


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
    from facecluster.xmp import write_sidecars

    _, outcome = _correct_outcome(output)
    report = write_sidecars(outcome, output, beside_originals=beside_originals)
    for relative, reason in report.skipped:
        _note(f"skipped {relative}: {reason}")
    where = "beside the originals" if beside_originals else f"in {output / 'xmp'}"
    _note(f"{report.written} sidecar(s) written {where}, {len(report.skipped)} skipped")


def _queries(query: str, embedding_of: dict[int, np.ndarray], device: str) -> list[tuple[str, np.ndarray, int | None]]:
    """(label, embedding, face id in the index or None) for each face to look up, or exit 2."""
    if query.isdigit() and int(query) in embedding_of:
        return [(f"face {query}", embedding_of[int(query)], int(query))]
    path = Path(query)
    if not path.is_file():
        _note(f"error: {query}: neither a photo nor a face id of this index")
        sys.exit(EXIT_ERROR)
    try:
        faces = _analyzer(device).analyze(path)
    except ImageLoadError as error:
        _note(f"error: {error}")
        sys.exit(EXIT_ERROR)
    if not faces:
        _note(f"error: no face found in {query}")
        sys.exit(EXIT_ERROR)
    return [
        (f"{query} face {n + 1} {[round(v) for v in face.box]}", face.embedding, None) for n, face in enumerate(faces)
    ]


COMMANDS = (
    people_command,
    name_command,
    merge_command,
    split_command,
    move_command,
    forget_command,
    find_command,
    xmp_command,
)
