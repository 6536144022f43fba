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

PHOTOS_SHOWN = 20
"""Photos listed per accepted match (the count says how many there are)."""


@click.command("find")
@click.argument("query")
@output_option
@click.option("--json", "as_json", is_flag=True, help="Print the matches as JSON on stdout.")
@device_option
def find_command(query: str, output: Path, as_json: bool, device: str) -> None:
    """Who is this? QUERY is a photo (each face in it is looked up) or a face id from the index.

    Prints the nearest people with their root-mean-square distance and the limit at which a
    re-scan would put the face with them, and the first photos of an accepted match.

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
                    "key": f"p{m.person_id}",
                    "album": display_text(m.person.album),
                    "name": None if m.person.name is None else display_text(m.person.name),
                    "distance": round(m.distance, 4),
                    "limit": round(m.limit, 4),
                    "accepted": m.accepted,
                    "photo_count": len(m.person.photos),
                    "photos": [display_text(p.relative) for p in m.person.photos[:PHOTOS_SHOWN]] if m.accepted else [],
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
                who = f"{match['key']} {match['name']}" if match["name"] else match["key"]
                click.echo(f"  {who}\tdistance {match['distance']:.3f} (limit {match['limit']:.3f})\t{verdict}")
                for photo in match["photos"]:
                    click.echo(f"    {photo}")
                more = match["photo_count"] - len(match["photos"])
                if match["photos"] and more > 0:
                    click.echo(f"    ... and {more} more ('facecluster people {match['key']}')")
    sys.exit(0 if any(m["accepted"] for result in results for m in result["matches"]) else 1)
