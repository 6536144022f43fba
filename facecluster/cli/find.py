"""`facecluster find`: who is this face?"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from facecluster.cli.common import device_option, output_option, reported
from facecluster.library import Library
from facecluster.outputs.files import display_text


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
    with reported():
        found = Library.open(output).find(query, device=device)
    results: list[dict[str, Any]] = [
        {
            "query": result.query,
            "matches": [
                {
                    "id": m.person_id,
                    "key": display_text(m.person.album),
                    "name": None if m.person.name is None else display_text(m.person.name),
                    "distance": round(m.distance, 4),
                    "limit": round(m.limit, 4),
                    "accepted": m.accepted,
                    "photos": sorted({display_text(f.photo.relative) for f in m.person.faces}) if m.accepted else [],
                }
                for m in result.matches
                if m.person is not None
            ],
        }
        for result in found
    ]
    if as_json:
        click.echo(json.dumps([{**result, "query": display_text(result["query"])} for result in results]))
    else:
        for result in results:
            click.echo(result["query"])
            for match in result["matches"]:
                verdict = "match" if match["accepted"] else "too far"
                who = match["name"] or match["key"]
                click.echo(f"  {who}\tdistance {match['distance']:.3f} (limit {match['limit']:.3f})\t{verdict}")
                for photo in match["photos"]:
                    click.echo(f"    {photo}")
    sys.exit(0 if any(m["accepted"] for result in results for m in result["matches"]) else 1)
