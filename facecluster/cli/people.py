"""The people commands: people, name, merge, split, move, reject, apart, forget. Each is a few lines over ``Library``.

People are written p7 (or person_0007, or a name, in any case), faces f12: the two never mix. Every
change says what it did, whose faces, and how to take it back ('facecluster undo').
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facecluster.cli.common import changing, note, output_option, reported
from facecluster.library import Library, PeopleEditor
from facecluster.outputs.files import display_text
from facecluster.outputs.people_json import person_document


@click.command("people")
@click.argument("person", required=False)
@output_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout: each person with faces and photos.")
def people_command(person: str | None, output: Path, as_json: bool) -> None:
    """List people (p7, album, name, faces, photos, a representative photo), or one PERSON's faces.

    PERSON is p7, person_0007 or a name (any case). Face ids (f12) shown here are what split,
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
            click.echo(f"f{face['face_id']}\t{face['photo']}\t{[round(v) for v in face['box']]}")
        return
    if as_json:
        click.echo(json.dumps(documents))
        return
    table = Table(title=f"{len(documents)} people in {output}")
    for column in ("person", "album", "name", "faces", "photos", "representative photo"):
        table.add_column(column)
    for entry in documents:
        best = max(entry["faces"], key=lambda f: f["size"] * f["score"], default=None)
        cells = (
            entry["key"],
            entry["album"],
            entry["name"] or "",
            entry["face_count"],
            entry["photo_count"],
            best["photo"] if best else "",
        )
        table.add_row(*(escape(str(c)) for c in cells))
    Console().print(table)


@contextmanager
def _change(output: Path, command: str) -> Iterator[PeopleEditor]:
    """Apply the block's corrections as one change, then say what changed and how to undo it."""
    with changing(output) as library:
        with library.corrections(command) as edit:
            yield edit
        for line in edit.effects:
            note(display_text(line))
        note(f"albums, people.json and report rewritten; to take this back: facecluster undo -o {output}")


@click.command("name")
@click.argument("person")
@click.argument("name")
@output_option
def name_command(person: str, name: str, output: Path) -> None:
    """Name PERSON (p7, person_0007 or a current name). Their album folder follows the name,
    their faces are confirmed, and re-scans keep them. Names are unique in any case."""
    with _change(output, f"name {person} {name}") as edit:
        edit.name(person, name)


@click.command("merge")
@click.argument("person")
@click.argument("others", nargs=-1, required=True)
@output_option
def merge_command(person: str, others: tuple[str, ...], output: Path) -> None:
    """Make OTHERS part of PERSON: one person from now on (PERSON keeps its id and name)."""
    with _change(output, f"merge {person} {' '.join(others)}") as edit:
        for other in others:
            edit.merge(person, other)


@click.command("split")
@click.argument("person")
@click.argument("faces", nargs=-1, required=True)
@output_option
def split_command(person: str, faces: tuple[str, ...], output: Path) -> None:
    """Take FACES (f12 ...) out of PERSON into a new person; they never go back."""
    with _change(output, f"split {person} {' '.join(faces)}") as edit:
        edit.split(person, list(faces))


@click.command("move")
@click.argument("faces", nargs=-1, required=True)
@click.argument("person")
@click.option("--new", "create", is_flag=True, help="PERSON is a new person of that name (refused otherwise).")
@output_option
def move_command(faces: tuple[str, ...], person: str, create: bool, output: Path) -> None:
    """FACES (f12 ...) are PERSON, and not whoever had them before (they never go back there).

    PERSON is p7, person_0007 or a current name; with --new, the name of a new person.
    """
    with _change(output, f"move {' '.join(faces)} {person}" + (" --new" if create else "")) as edit:
        target = edit.move(faces[0], person, create=create)
        for face in faces[1:]:
            edit.move(face, target)


@click.command("forget")
@click.argument("references", nargs=-1, required=True)
@output_option
def forget_command(references: tuple[str, ...], output: Path) -> None:
    """REFERENCES (faces f12, or people p7 / a name: all their faces) are nobody to group:
    not a face, or a stranger. They stay unsorted."""
    with _change(output, f"forget {' '.join(references)}") as edit:
        edit.forget(list(references))


@click.command("reject")
@click.argument("faces", nargs=-1, required=True)
@click.argument("person")
@output_option
def reject_command(faces: tuple[str, ...], person: str, output: Path) -> None:
    """FACES (f12 ...) are not PERSON: they leave PERSON (if theirs) and are never grouped with them again."""
    with _change(output, f"reject {' '.join(faces)} {person}") as edit:
        for face in faces:
            edit.reject(face, person)


@click.command("apart")
@click.argument("person")
@click.argument("other")
@output_option
def apart_command(person: str, other: str, output: Path) -> None:
    """PERSON and OTHER are two people: no grouping joins them, and 'suggest' never asks about them again.

    Both are confirmed as they are now.
    """
    with _change(output, f"apart {person} {other}") as edit:
        edit.apart(person, other)


COMMANDS = (
    people_command,
    name_command,
    merge_command,
    split_command,
    move_command,
    reject_command,
    apart_command,
    forget_command,
)
