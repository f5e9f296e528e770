"""The click group class every ``srbench`` command group uses: a UserError is one line, never a traceback
(``srbench --debug ...`` prints the traceback too, with the exception it was raised from, e.g. a plugin's)."""

from __future__ import annotations

import traceback

import click

from sr_bench.errors import UserError


class UserErrorGroup(click.Group):
    """``error: <message>`` on stderr and exit code 2 (bad input, like click's usage errors); exit 1 stays free
    for "ran, and found a problem" (e.g. ``datasets verify``)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            if ctx.find_root().params.get("debug"):
                click.echo("".join(traceback.format_exception(e)).rstrip(), err=True)
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)
