"""Options and helpers shared by several commands: defined once, the same everywhere."""

from __future__ import annotations

import math
from pathlib import Path

import click


def progress_bar(quiet: bool):
    """A rich progress bar over the pipeline stages, or nothing with ``--quiet``."""
    if quiet:
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description:<10}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), transient=False, console=None)
    task = bar.add_task("render", total=1)

    def callback(event: dict) -> None:
        bar.update(task, description=event["stage"], completed=event["done"], total=event["total"])

    return bar, callback


def parse_excerpt(text: str) -> tuple[float, float]:
    try:
        start, seconds = (float(part) for part in text.split(":"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not START:SECONDS (e.g. 30:20)", param_hint="--excerpt") from None
    if not (math.isfinite(start) and math.isfinite(seconds)) or start < 0 or seconds <= 0:
        raise click.BadParameter(f"{text!r}: START must be >= 0 and SECONDS > 0, both finite numbers",
                                 param_hint="--excerpt")
    return start, seconds


def _allow_fetch(_ctx, _param, value: bool) -> None:
    if value:  # the environment, so that the batch's worker processes see it too
        import os

        from ..stems.models import FETCH_ENV

        os.environ[FETCH_ENV] = "1"


def fetch_models_option(f):
    """--fetch-models: a missing Demucs model is fetched on first use (sets $COVERMILL_FETCH_MODELS)."""
    return click.option("--fetch-models", is_flag=True, expose_value=False, callback=_allow_fetch,
                        help="Fetch missing Demucs weights on first use, checksummed (also $COVERMILL_FETCH_MODELS=1; "
                             "mirror: $COVERMILL_MODELS_URL). See `covermill models`.")(f)


def separator_options(f):
    """--separator (choices from the separator registry), --model, --model-dir, --device, --fetch-models:
    the same on every command that separates (`render`, `stems`, `batch`)."""
    f = fetch_models_option(f)
    f = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                     help="Where Demucs runs (auto: CUDA when present).")(f)
    f = click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Folder with Demucs checkpoints (<sig>-<sha>.th, <name>.yaml); also $COVERMILL_MODEL_DIR.")(f)
    f = click.option("--model", default="htdemucs", show_default=True,
                     help="Demucs model: htdemucs, htdemucs_ft, htdemucs_6s, mdx_extra, or a bag in --model-dir.")(f)
    f = click.option("--separator", type=RegistryChoice(_separators), default="auto", show_default=True,
                     help="auto: Demucs when its weights are found, else the built-in DSP separator.")(f)
    return f


def separator_params(separator: str, model: str, model_dir: Path | None, device: str) -> dict:
    return {} if separator == "dsp" else {"model": model, "model_dir": model_dir, "device": device}




class RegistryChoice(click.Choice):
    """A ``click.Choice`` whose choices come from a registry, looked up when first needed (so
    ``covermill --help`` imports no backend)."""

    def __init__(self, names, *, extra: tuple[str, ...] = ()) -> None:
        self._names = names
        self._extra = extra
        self.case_sensitive = True

    @property
    def choices(self):  # type: ignore[override]
        return (*self._names(), *self._extra)


def _separators() -> list[str]:
    from ..stems import available

    return available()


def quiet_option(f):
    """-q/--quiet, the same on every command that shows progress."""
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar; print only the results.")(f)


def cache_dir_option(f):
    """--cache-dir: the stem cache (every command that separates)."""
    return click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Stem cache folder (default $COVERMILL_CACHE_DIR or the user cache folder).")(f)


def instruments_dir_option(f):
    """--instruments-dir: user and trained instruments (every command that looks instruments up)."""
    return click.option("--instruments-dir", type=click.Path(path_type=Path), default=None,
                        help="Instruments folder: YAML copies of parametric instruments (they win over built-ins) "
                             "and trained DDSP instruments (default $COVERMILL_INSTRUMENTS_DIR or the user data "
                             "dir).")(f)


def validate_files(files, load, describe) -> None:
    """``ok: FILE (what)`` or ``error: FILE:LINE: ...`` for each file; exit 1 if any is invalid."""
    import sys

    from ..errors import CovermillError

    bad = 0
    for f in files:
        try:
            click.echo(f"ok: {f} ({describe(load(f))})")
        except CovermillError as exc:
            click.echo(f"error: {exc}", err=True)
            bad += 1
    if bad:
        sys.exit(1)
