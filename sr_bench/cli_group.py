"""What every ``srbench`` command group shares: the group class that turns a UserError into one line, and the
options several commands declare alike."""

from __future__ import annotations

import traceback

import click

from sr_bench.data.roots import OPTION_HELP
from sr_bench.errors import UserError

DATA_ROOT = click.option("--data-root", type=click.Path(file_okay=False), default=None, help=OPTION_HELP)
RESULTS_DIR = click.option("--results-dir", type=click.Path(file_okay=False), default="results", show_default=True)
PLUGINS = click.option("--plugin", "plugins", multiple=True, type=click.Path(dir_okay=False),
                       help="Python file that registers models with @register_model (repeatable).")


class UserErrorGroup(click.Group):
    """``error: <message>`` on stderr and exit code 2 (bad input, like click's usage errors); exit 1 stays free
    for "ran, and found a problem" (e.g. ``datasets verify``). ``srbench --debug ...`` prints the traceback too,
    with the exception it was raised from (e.g. a plugin's)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            if ctx.find_root().params.get("debug"):
                click.echo("".join(traceback.format_exception(e)).rstrip(), err=True)
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)
