"""`covermill stems`."""

from __future__ import annotations

from pathlib import Path

import click

from . import main
from .common import PathOrURL, cache_dir_option, quiet_option, separator_options, separator_params


@main.command("stems")
@click.argument("song", type=PathOrURL())
@click.option("-o", "--out", "out_dir", required=True, type=PathOrURL(),
              help="Folder or URL for <stem>.wav/.flac (created; files replaced atomically).")
@separator_options
@click.option("--format", "fmt", type=click.Choice(["wav", "flac"]), default="wav", show_default=True,
              help="wav: 32-bit float (stems sum exactly to the mix); flac: 24-bit.")
@cache_dir_option
@click.option("--no-cache", is_flag=True, help="Neither read nor write the stem cache.")
@quiet_option
def stems_command(song: Path | str, out_dir: Path | str, separator: str, model: str, model_dir: Path | None, device: str,
                  fmt: str, cache_dir: Path | None, no_cache: bool, quiet: bool) -> None:
    """Separate SONG into stem files (vocals, drums, bass, other, ...) in the folder -o DIR."""
    from ..stems.export import separate_file

    result = separate_file(song, out_dir, separator=separator, fmt=fmt,
                           separator_params=separator_params(separator, model, model_dir, device),
                           cache_dir=None if no_cache else cache_dir, use_cache=not no_cache)
    if not quiet:
        click.echo(f"separator: {result['separator']}" + (" (from cache)" if result["cache_hit"] else ""))
    for name, path in result["stems"].items():
        click.echo(f"{name:<8} {path}")
