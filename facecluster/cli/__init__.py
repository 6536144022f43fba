"""The ``facecluster`` command line: a thin layer over the library, one module per command group.

Each command parses its options, calls ``facecluster.library`` or ``facecluster.api``, and renders
the result; ``common.EXIT_CODES`` is the one table from library errors to exit statuses.
"""

from __future__ import annotations

import logging

import click

from facecluster import __version__
from facecluster.cli.analyze import faces_command, verify_command
from facecluster.cli.common import interrupted_outside, stop_on_sigterm
from facecluster.cli.evaluate import eval_group
from facecluster.cli.find import find_command
from facecluster.cli.history import COMMANDS as HISTORY_COMMANDS
from facecluster.cli.people import COMMANDS as PEOPLE_COMMANDS
from facecluster.cli.review import review_command
from facecluster.cli.scan import scan_command
from facecluster.cli.suggest import suggest_command
from facecluster.cli.xmp import xmp_command


class _Commands(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            interrupted_outside(ctx)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facecluster")
def main() -> None:
    """Find, recognise and group the faces in your photos, offline."""
    stop_on_sigterm()
    logging.getLogger("exifread").setLevel(logging.CRITICAL)  # damaged EXIF is normal in photo libraries


for command in (
    verify_command,
    faces_command,
    scan_command,
    eval_group,
    *PEOPLE_COMMANDS,
    *HISTORY_COMMANDS,
    suggest_command,
    find_command,
    xmp_command,
    review_command,
):
    main.add_command(command)
