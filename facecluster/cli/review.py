"""``facecluster review``: the people of a library in the browser, to name and fix them in place."""

from __future__ import annotations

import threading
import webbrowser
from contextlib import suppress
from pathlib import Path

import click

from facecluster.cli.common import EXIT_STORAGE, fail, note, output_option, reported
from facecluster.errors import FaceclusterError
from facecluster.library import Library
from facecluster.review.security import DEFAULT_HOST, is_loopback


@click.command("review")
@output_option
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: any free one).")
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address to listen on: localhost, or one IP address of this machine. Anything but a loopback address"
    " lets other machines reach the app (with the token).",
)
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open a browser.")
def review_command(output: Path, port: int, host: str, no_browser: bool) -> None:
    """Review and fix people in the browser: name, merge, move, split, forget, undo.

    Changes are saved at once, into the same history as the people commands ('facecluster undo'
    takes them back); albums, people.json and the report follow a few seconds after the last
    change, and when the app stops (Ctrl-C). While a scan runs, the app is read-only.
    """
    from facecluster.review.server import ReviewServer  # Flask and waitress load only for this command

    with reported():
        library = Library.open(output)
        server = ReviewServer(library, host, port)
    note(f"facecluster review of {library.output}: open {server.url}")
    note("Ctrl-C stops it (pending changes are written to the albums first).")
    if not is_loopback(host):
        note(f"listening on {host}: other machines can reach it; the token in the address is what keeps them out")
    if not no_browser:  # a browser command may run until the browser closes: not in the way of serving
        page = server.launcher().as_uri()
        threading.Thread(target=webbrowser.open, args=(page,), daemon=True).start()
    try:
        server.serve()
    except KeyboardInterrupt:
        with suppress(KeyboardInterrupt):  # a second Ctrl-C during the last update: said below
            server.close()
    problem = server.session.status().error
    try:
        pending = library.pending()
    except FaceclusterError as error:
        pending, problem = True, str(error)
    if pending:
        fail(
            "stopped; every change is saved, but the albums, people.json and the report are not up to date"
            + (f" ({problem})" if problem else "")
            + "; any facecluster command brings them up to date",
            status=EXIT_STORAGE,
        )
    note("stopped; albums, people.json and the report are up to date")
