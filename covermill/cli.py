"""Command line: parse arguments, call the library, show progress. Nothing else lives here.

Every :class:`~covermill.errors.CovermillError` becomes one line on stderr and exit code 1;
anything else is a bug and raises with its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from . import __version__
from .errors import CovermillError


class _Group(click.Group):
    """Turn library errors into one clean line and exit 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CovermillError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="covermill")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Turn any song into a cover in another genre, from YAML recipes, with QA."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _progress_bar(quiet: bool):
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


def _parse_excerpt(text: str) -> tuple[float, float]:
    try:
        start, seconds = (float(part) for part in text.split(":"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not START:SECONDS (e.g. 30:20)", param_hint="--excerpt") from None
    if start < 0 or seconds <= 0:
        raise click.BadParameter(f"{text!r}: START must be >= 0 and SECONDS > 0", param_hint="--excerpt")
    return start, seconds


def _separator_options(f):
    """--separator, --model, --model-dir, --device (shared by `render` and `stems`)."""
    f = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                     help="Where Demucs runs (auto: CUDA when present).")(f)
    f = click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Folder with Demucs checkpoints (<sig>-<sha>.th, <name>.yaml); also $COVERMILL_MODEL_DIR.")(f)
    f = click.option("--model", default="htdemucs", show_default=True,
                     help="Demucs model: htdemucs, htdemucs_ft, htdemucs_6s, mdx_extra, or a bag in --model-dir.")(f)
    f = click.option("--separator", type=click.Choice(["auto", "dsp", "demucs"]), default="auto", show_default=True,
                     help="auto: Demucs when its weights are found, else the built-in DSP separator.")(f)
    return f


def _separator_params(separator: str, model: str, model_dir: Path | None, device: str) -> dict:
    return {} if separator == "dsp" else {"model": model, "model_dir": model_dir, "device": device}


@main.command()
@click.argument("song", type=click.Path(path_type=Path))
@click.option("-r", "--recipe", "recipe_name", default="pop_to_jazz", show_default=True,
              help="Built-in recipe name or a recipe .yaml file.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created; files in it are replaced atomically).")
@_separator_options
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Stem cache folder (default $COVERMILL_CACHE_DIR or the user cache folder).")
@click.option("--no-cache", is_flag=True, help="Always separate; neither read nor write the stem cache.")
@click.option("--excerpt", metavar="START:SECONDS", help="Render only SECONDS of the song from START (s), e.g. 30:20.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print only the output paths.")
def render(song: Path, recipe_name: str, out_dir: Path, separator: str, model: str, model_dir: Path | None,
           device: str, cache_dir: Path | None, no_cache: bool, excerpt: str | None, quiet: bool) -> None:
    """Render SONG as a cover following a recipe."""
    from .automation.pipeline import check_out_dir
    from .automation.pipeline import render as run
    from .recipes import load_recipe
    from .stems.cache import default_cache_dir

    check_out_dir(out_dir)
    span = _parse_excerpt(excerpt) if excerpt else None
    recipe = load_recipe(recipe_name)
    root = Path(recipe_name).parent if Path(recipe_name).suffix in (".yaml", ".yml") else None
    kw = dict(separator=separator, separator_params=_separator_params(separator, model, model_dir, device),
              cache_dir=None if no_cache else (cache_dir or default_cache_dir()), recipe_root=root, excerpt=span)
    bar, callback = _progress_bar(quiet)
    if bar is not None:
        with bar:
            result = run(song, recipe, out_dir, progress=callback, **kw)
    else:
        result = run(song, recipe, out_dir, **kw)
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    qa = result.qa
    if not quiet:
        t = qa["tempo"]
        click.echo(f"separator {qa['separator']} (stem cache: {qa['stem_cache']})")
        click.echo(f"tempo   {t['source_bpm']} -> {t['cover_bpm']} BPM (target {t['target_bpm']})")
        click.echo(f"loudness {qa['loudness_lufs']} LUFS, true peak {qa['true_peak_db']} dBTP")
        click.echo(f"cover similarity {qa['cover_similarity']} (unrelated song: {qa['cover_similarity_floor']})")
    click.echo(f"cover:  {result.cover}")
    click.echo(f"stems:  {result.out_dir / 'stems'}")
    click.echo(f"report: {result.qa_path}")


@main.command("stems")
@click.argument("song", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for <stem>.wav/.flac (created; files replaced atomically).")
@_separator_options
@click.option("--format", "fmt", type=click.Choice(["wav", "flac"]), default="wav", show_default=True,
              help="wav: 32-bit float (stems sum exactly to the mix); flac: 24-bit.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Stem cache folder.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the stem cache.")
def stems_command(song: Path, out_dir: Path, separator: str, model: str, model_dir: Path | None, device: str,
                  fmt: str, cache_dir: Path | None, no_cache: bool) -> None:
    """Separate SONG into stem files (vocals, drums, bass, other, ...) in the folder -o DIR."""
    from .stems.export import separate_file

    result = separate_file(song, out_dir, separator=separator, fmt=fmt,
                           separator_params=_separator_params(separator, model, model_dir, device),
                           cache_dir=None if no_cache else cache_dir, use_cache=not no_cache)
    click.echo(f"separator: {result['separator']}" + (" (from cache)" if result["cache_hit"] else ""))
    for name, path in result["stems"].items():
        click.echo(f"{name:<8} {path}")


@main.group()
def recipes() -> None:
    """List, show and validate recipes."""


@recipes.command("list")
def recipes_list() -> None:
    """Built-in recipes with their descriptions."""
    from .recipes import builtin_names, describe

    for name in builtin_names():
        click.echo(f"{name:<20} {describe(name)}")


@recipes.command("show")
@click.argument("name")
def recipes_show(name: str) -> None:
    """Print a recipe, fully resolved (extends merged, defaults filled)."""
    from .recipes import load_recipe, recipe_to_yaml

    click.echo(recipe_to_yaml(load_recipe(name)), nl=False)


@recipes.command("validate")
@click.argument("files", nargs=-1, required=True)
def recipes_validate(files: tuple[str, ...]) -> None:
    """Validate recipe files; exit 1 if any is invalid."""
    from .recipes import load_recipe

    bad = 0
    for f in files:
        try:
            recipe = load_recipe(f)
            click.echo(f"ok: {f} ({recipe.name})")
        except CovermillError as exc:
            click.echo(f"error: {exc}", err=True)
            bad += 1
    if bad:
        sys.exit(1)


@recipes.command("new")
@click.argument("name")
@click.option("--from", "base", default="pop_to_jazz", show_default=True, help="Recipe to start from.")
@click.option("-o", "--out", "out_file", type=click.Path(path_type=Path), help="File to write (default NAME.yaml).")
def recipes_new(name: str, base: str, out_file: Path | None) -> None:
    """Write a commented starting recipe NAME.yaml based on another recipe."""
    from .fsutil import write_text_atomic
    from .recipes import new_recipe_text

    target = out_file or Path(f"{name}.yaml")
    if target.exists():
        raise click.ClickException(f"{target}: already exists; choose another name or -o FILE")
    write_text_atomic(target, new_recipe_text(name, base=base))
    click.echo(f"wrote {target}; check it with: covermill recipes validate {target}")


@recipes.command("schema")
def recipes_schema() -> None:
    """Print the JSON Schema of the recipe format (for editors)."""
    from .recipes import Recipe

    click.echo(json.dumps(Recipe.model_json_schema(), indent=2))


@main.group("instruments")
def instruments_group() -> None:
    """Instruments that stems can be re-voiced as."""


@instruments_group.command("list")
def instruments_list() -> None:
    """Available instruments."""
    from . import instruments

    for name, desc in instruments.available().items():
        click.echo(f"{name:<16} built-in  {desc}")


if __name__ == "__main__":  # pragma: no cover
    main()
