"""``facecluster suggest``: "same person?" questions that finish the grouping, with the commands that answer them.

Each question pairs a person with another person (a "yes" merges them, a "no" keeps them apart for
good) or with an unsorted face (a "yes" moves it to them, a "no" rejects it from them). ``--ask``
asks them one by one in the terminal.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import sys
from pathlib import Path

import click

from facecluster import Question, QuestionSide
from facecluster.cli.common import COUNT, EXIT_STORAGE, changing, fail, note, output_option, reported
from facecluster.errors import FaceclusterError
from facecluster.library import Library
from facecluster.outputs.files import display_text

INLINE_IMAGE_TERMINALS = frozenset({"iTerm.app", "WezTerm"})
"""TERM_PROGRAM values of terminals that show images inline (the iTerm2 image escape)."""


def answer_commands(question: Question, output: Path) -> dict[str, list[str]]:
    """The command lines (argument lists) that answer ``question`` yes and no."""
    first = f"p{question.first.person}"
    if question.second.person is None:
        face = f"f{question.second.faces[0]}"
        yes, no = ["move", face, first], ["reject", face, first]
    else:
        second = f"p{question.second.person}"
        yes, no = ["merge", first, second], ["apart", first, second]
    tail = ["-o", str(output)]
    return {"yes": ["facecluster", *yes, *tail], "no": ["facecluster", *no, *tail]}


def _side_document(side: QuestionSide) -> dict[str, object]:
    return {
        "person": None if side.person is None else f"p{side.person}",
        "name": side.name,
        "faces": [f"f{face}" for face in side.faces],
        "face_count": side.face_count,
        "photo": display_text(str(side.photo)),
    }


def question_document(question: Question, output: Path) -> dict[str, object]:
    """A question as ``suggest --json`` prints it."""
    return {
        "id": question.id,
        "kind": question.kind,
        "probability": round(question.probability, 4),
        "gain": question.gain,
        "first": _side_document(question.first),
        "second": _side_document(question.second),
        **answer_commands(question, output),
    }


def _side_text(side: QuestionSide) -> str:
    count = "" if side.person is None else f" ({side.face_count} faces)"
    faces = " ".join(f"f{face}" for face in side.faces)
    return display_text(f"  {side.label}{count}: {side.photo}\n      faces {faces}")


def _show(question: Question, output: Path, library: Library | None = None) -> None:
    """A question in words (and, in a terminal that shows images, the sides' first faces)."""
    asked = "is this face" if question.kind == "face" else "same person as"
    click.echo(
        f"{question.id}  {question.first.label} — {asked} {question.second.label}?  ({question.probability:.0%} likely)"
    )
    for side in (question.first, question.second):
        click.echo(_side_text(side))
        if library is not None:
            _inline_image(library.thumbnail(side.faces[0]))
    commands = answer_commands(question, output)
    click.echo(f"  yes: {shlex.join(commands['yes'])}\n  no:  {shlex.join(commands['no'])}")


def _inline_image(jpeg: bytes) -> None:
    """Show a thumbnail inline where the terminal can (iTerm2's image escape); elsewhere nothing."""
    if jpeg and sys.stdout.isatty() and os.environ.get("TERM_PROGRAM") in INLINE_IMAGE_TERMINALS:
        data = base64.b64encode(jpeg).decode("ascii")
        click.echo(f"      \033]1337;File=inline=1;height=6;preserveAspectRatio=1:{data}\a")


@click.command("suggest")
@output_option
@click.option("--limit", type=COUNT, default=10, show_default=True, help="Show at most N questions.")
@click.option("--person", default=None, help="Only questions about PERSON (p7, person_0007 or a name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout, with the answers as argument lists.")
@click.option("--ask", is_flag=True, help="Ask the questions one by one: y(es), n(o), s(kip), u(ndo), q(uit).")
def suggest_command(output: Path, limit: int, person: str | None, as_json: bool, ask: bool) -> None:
    """Same person? The questions whose "yes" would bring most faces together, best first.

    Each question is about two people (yes: merge, no: apart) or a person and an unsorted face
    (yes: move, no: reject), and shows the command lines that answer it. No person or face is in
    two questions of a list, so all of them can be answered in turn. Answers are corrections:
    'facecluster undo' takes them back, and answered questions never come back.
    """
    if ask:
        _ask(output, person)
        return
    with reported(as_json):
        library = Library.open(output)
        questions = library.suggestions(limit, person)
    if as_json:
        click.echo(json.dumps([question_document(q, library.output) for q in questions], ensure_ascii=True))
        return
    for question in questions:
        _show(question, library.output)
        click.echo()
    if not questions:
        note("no questions: every person looks complete")


def _ask(output: Path, person: str | None) -> None:
    """The interactive loop: each answer is committed at once; regrouping and the outputs follow on quitting."""
    skipped: set[str] = set()
    answered = 0
    with changing(output) as library:
        try:
            while True:
                asked = library.suggestions(len(skipped) + 1, person, disjoint=False)
                question = next((q for q in asked if q.id not in skipped), None)
                if question is None:
                    note("no more questions")
                    break
                _show(question, library.output, library)
                reply = click.prompt("Same person? y/n/s/u/q", default="s", show_default=False).strip().lower()[:1]
                if reply == "q":
                    break
                if reply == "s":
                    skipped.add(question.id)
                elif reply == "u":
                    change = library.undo(defer=True)
                    note(display_text(f"undid #{change.id} ({change.command})"))
                elif reply in ("y", "n"):
                    with library.corrections(f"suggest --ask: {question.id} {reply}", defer=True) as edit:
                        edit.answer(question.id, reply == "y")
                    answered += 1
                    for line in edit.effects:
                        note(display_text(line))
        finally:
            _settle(library, answered)


def _settle(library: Library, answered: int) -> None:
    """Regroup and rewrite the outputs after the answers (also after Ctrl-C)."""
    try:
        library.settle()
    except FaceclusterError as error:
        fail(
            f"{error}; every answer is saved, and any facecluster command brings the albums up to date",
            False,
            EXIT_STORAGE,
        )
    if answered:
        note(
            f"{answered} answers saved; albums, people.json and report rewritten; "
            f"to take the last back: facecluster undo -o {library.output}"
        )
