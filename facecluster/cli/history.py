"""The history commands: history, undo and prune. Each is a few lines over ``Library``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from facecluster.cli.common import COUNT, changing, note, output_option, reported
from facecluster.library import Library
from facecluster.outputs.files import display_text


@click.command("history")
@output_option
@click.option("--limit", type=COUNT, default=None, help="Show only the newest N changes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def history_command(output: Path, limit: int | None, as_json: bool) -> None:
    """List every change made to people (newest first): when, the command, and what it did."""
    with reported():
        changes = Library.open(output).history(limit)
    if as_json:
        click.echo(json.dumps([asdict(change) for change in changes], ensure_ascii=True))
        return
    for change in changes:
        state = f" (undone by #{change.undone_by})" if change.undone_by else ""
        click.echo(_shown(f"#{change.id}  {change.time}  {change.command}{state}"))
        for line in change.effects:
            click.echo(_shown(f"    {line}"))
    if not changes:
        note("no changes yet")


@click.command("undo")
@output_option
def undo_command(output: Path) -> None:
    """Take back the newest change that is not undone yet (repeat to go further back).

    Names, merges, splits, moves, forgets and prunes are all undone exactly; the grouping and
    the outputs return to what they were before.
    """
    with changing(output) as library:
        change = library.undo()
    note(display_text(f"undid #{change.id} ({change.command}):"))
    for line in change.effects:
        note(display_text(f"    {line}"))
    note("albums, people.json and report rewritten")


@click.command("prune")
@output_option
@click.option("--dry-run", is_flag=True, help="Only list what would be forgotten.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def prune_command(output: Path, dry_run: bool, as_json: bool) -> None:
    """Forget missing photos (no scan found them any more) with their faces and corrections.

    Scans never do this on their own: a missing photo keeps its faces and names until pruned.
    Named people stay. 'facecluster undo' brings everything back.
    """
    with changing(output) as library:
        report = library.prune(dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **asdict(report)}, ensure_ascii=True))
        return
    for photo in report.photos:
        click.echo(display_text(photo))
    if dry_run:
        note(display_text(f"{report.summary('would forget')}; nothing changed (run without --dry-run to prune)"))
    elif report.photos:
        note(display_text(f"{report.summary()}; to take this back: facecluster undo -o {output}"))
    else:
        note("no missing photos; nothing changed")


def _shown(text: str) -> str:
    """A history line as the terminal shows it: invisible and direction-changing characters escaped."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in display_text(text))


COMMANDS = (history_command, undo_command, prune_command)
