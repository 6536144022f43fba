"""``facecluster review``: the people of a library in the browser, to name and fix them in place."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from facecluster.cli.common import note, output_option, reported
from facecluster.library import Library
from facecluster.review.server import DEFAULT_HOST, ReviewServer


@click.command("review")
@output_option
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: any free one).")
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address to listen on. Anything but 127.0.0.1 lets other machines reach the app (with the token).",
)
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open a browser.")
def review_command(output: Path, port: int, host: str, no_browser: bool) -> None:
    """Review and fix people in the browser: name, merge, move, split, forget, undo.

    Changes are saved at once, into the same history as the people commands ('facecluster undo'
    takes them back); albums, people.json and the report follow a few seconds after the last
    change, and when the app stops (Ctrl-C). While a scan runs, the app is read-only.
    """
    with reported():
        library = Library.open(output)
        server = ReviewServer(library, host, port)
    note(f"facecluster review of {library.output}: open {server.url}")
    note("Ctrl-C stops it (pending changes are written to the albums first).")
    if host != DEFAULT_HOST:
        note(f"listening on {host}: other machines can reach it; the token in the address is what keeps them out")
    if not no_browser:
        webbrowser.open(server.url)
    try:
        server.serve()
    except KeyboardInterrupt:
        note("stopped; albums, people.json and the report are up to date")
