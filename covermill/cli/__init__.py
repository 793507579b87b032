"""Command line: parse arguments, call the library, show progress. Nothing else lives here.

One module per command group (``render``: render, batch; ``stems``; ``recipes``;
``instruments``: instruments, styles; ``analysis``: profile, analysis, qa, audacity); options
shared by several commands are defined once in :mod:`.common`. Every
:class:`~covermill.errors.CovermillError` becomes one line on stderr and exit code 1; anything
else is a bug and raises with its traceback.
"""

from __future__ import annotations

import logging

import click

from ..errors import CovermillError


class _Group(click.Group):
    """Turn library errors into one clean line and exit 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CovermillError as exc:
            raise click.ClickException(str(exc)) from None


def _show_version(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from ..buildinfo import version  # git is asked only here, not on every start

        click.echo(f"covermill, version {version()}")
        ctx.exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version (with the git commit of the build) and exit.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Turn any song into a cover in another genre, from YAML recipes, with QA."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


from . import analysis, instruments, models, recipes, render, stems  # noqa: E402,F401  (register the commands)

__all__ = ["main"]


if __name__ == "__main__":  # pragma: no cover
    main()
