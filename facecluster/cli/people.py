"""The people commands: people, name, merge, split, move, forget. Each is a few lines over ``Library``."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facecluster.cli.common import note, output_option, reported
from facecluster.library import Library, PeopleEditor
from facecluster.outputs.people_json import person_document


@click.command("people")
@click.argument("person", required=False)
@output_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def people_command(person: str | None, output: Path, as_json: bool) -> None:
    """List people (id, album, name, faces, photos, a representative photo), or one PERSON's faces.

    PERSON is an id, a person_NNNN album key or a name. Face ids shown here are what split,
    move and forget take.
    """
    with reported():
        library = Library.open(output)
        if person is not None:
            chosen = person_document(library.person(person))
        else:
            documents = [person_document(p) for p in library.people()]
    if person is not None:
        if as_json:
            click.echo(json.dumps(chosen))
            return
        for face in chosen["faces"]:
            click.echo(f"{face['face_id']}\t{face['photo']}\t{[round(v) for v in face['box']]}")
        return
    rows = []
    for entry in documents:
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


def _edit(output: Path) -> AbstractContextManager[PeopleEditor]:
    """Open the library and start its corrections; the caller's ``with`` applies them."""
    return Library.open(output).corrections()


@click.command("name")
@click.argument("person")
@click.argument("name")
@output_option
def name_command(person: str, name: str, output: Path) -> None:
    """Name PERSON (an id, person_NNNN or a current name). Their album folder follows the name,
    their faces are confirmed, and re-scans keep them."""
    with reported(), _edit(output) as edit:
        edit.name(person, name)
    note(f"named {person} {name!r}; albums and report rewritten")


@click.command("merge")
@click.argument("person")
@click.argument("other")
@output_option
def merge_command(person: str, other: str, output: Path) -> None:
    """Make OTHER part of PERSON: one person from now on (PERSON keeps its id and name)."""
    with reported(), _edit(output) as edit:
        edit.merge(person, other)
    note(f"merged {other} into {person}; albums and report rewritten")


@click.command("split")
@click.argument("person")
@click.argument("faces", nargs=-1, required=True)
@output_option
def split_command(person: str, faces: tuple[str, ...], output: Path) -> None:
    """Take FACES (face ids) out of PERSON into a new person; they never go back."""
    with reported(), _edit(output) as edit:
        new = edit.split(person, list(faces))
    note(f"{len(faces)} face(s) of {person} are now person_{new:04d}; albums and report rewritten")


@click.command("move")
@click.argument("face")
@click.argument("person")
@output_option
def move_command(face: str, person: str, output: Path) -> None:
    """FACE (a face id) is PERSON, and not whoever had it before (it never goes back there).

    A PERSON that is not an id, a person_NNNN key or a current name is a new person of that name.
    """
    with reported(), _edit(output) as edit:
        edit.move(face, person, create=True)
    note(f"face {face} moved to {person}; albums and report rewritten")


@click.command("forget")
@click.argument("faces", nargs=-1, required=True)
@output_option
def forget_command(faces: tuple[str, ...], output: Path) -> None:
    """FACES (face ids) are nobody to group: not a face, or a stranger. They stay unsorted."""
    with reported(), _edit(output) as edit:
        edit.forget(list(faces))
    note(f"{len(faces)} face(s) forgotten; albums and report rewritten")


COMMANDS = (people_command, name_command, merge_command, split_command, move_command, forget_command)
