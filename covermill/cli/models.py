"""`covermill models list|fetch|verify`: Demucs weights (:mod:`covermill.stems.models`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import main

_FROM_HELP = ("Mirror to fetch from: an http(s):// URL or a bucket URL (fsspec) laid out as demucs publishes "
              "(files.txt, <name>.yaml, <root>/<sig>-<sha>.th); default $COVERMILL_MODELS_URL, else demucs's own.")


def _model_dir_option(f):
    return click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Model folder (default $COVERMILL_MODEL_DIR, else torch hub's checkpoints folder).")(f)


@main.group("models")
def models() -> None:
    """Demucs weights: list the models, fetch them, verify their checksums."""


@models.command("list")
@_model_dir_option
def list_models(model_dir: Path | None) -> None:
    """Known Demucs models and where their weights are (or 'missing')."""
    from ..stems.demucs import KNOWN_MODELS, search_dirs
    from ..stems.models import Catalogue, model_status

    try:
        names = Catalogue().names()
    except Exception:  # demucs not installed: the models covermill knows
        names = sorted(KNOWN_MODELS)
    local = {p.stem for d in search_dirs(model_dir) if d.is_dir() for p in d.glob("*.yaml")}
    for name in sorted(set(names) | local):
        st = model_status(name, model_dir)
        where = f"{st['found']} ({len(st['files'])} file(s))" if st["found"] else "missing"
        click.echo(f"{name:<28} {where}")


@models.command("fetch")
@click.argument("names", nargs=-1, required=True)
@_model_dir_option
@click.option("--from", "base_url", default=None, metavar="URL", help=_FROM_HELP)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def fetch_models(names: tuple[str, ...], model_dir: Path | None, base_url: str | None, quiet: bool) -> None:
    """Download the weights of Demucs model NAMES, checksummed, into the model folder."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from ..stems.models import default_dest, fetch

    dest = default_dest(model_dir)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   disable=quiet, transient=True)
    tasks: dict[str, int] = {}

    def progress(ev: dict) -> None:
        if ev["stage"] not in tasks:
            tasks[ev["stage"]] = bar.add_task(ev["stage"], total=ev["total"])
        bar.update(tasks[ev["stage"]], completed=ev["done"], total=ev["total"])

    with bar:
        for name in names:
            paths = fetch(name, dest=dest, base_url=base_url, progress=progress)
            click.echo(f"{name}: {len(paths)} checkpoint(s) in {dest}")


@models.command("verify")
@click.argument("names", nargs=-1, required=True)
@_model_dir_option
def verify_models(names: tuple[str, ...], model_dir: Path | None) -> None:
    """Check the SHA-256 of each checkpoint of NAMES against the prefix its file name carries."""
    from ..stems.models import verify

    bad = 0
    for name in names:
        for path, ok, message in verify(name, model_dir):
            click.echo(f"{'ok' if ok else 'BAD'}: {path}: {message}", err=not ok)
            bad += not ok
    if bad:
        sys.exit(1)
