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


@main.command()
@click.argument("song", type=click.Path(path_type=Path))
@click.option("-r", "--recipe", "recipe_name", default="pop_to_jazz", show_default=True,
              help="Built-in recipe name or a recipe .yaml file.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created; files in it are replaced atomically).")
@click.option("--separator", default="dsp", show_default=True, help="Stem separator backend.")
@click.option("--stretcher", type=click.Choice(["pedalboard", "pyrubberband"]), default="pedalboard", show_default=True,
              help="Rubber Band binding for tempo/key changes.")
@click.option("--excerpt", metavar="START:SECONDS", help="Render only SECONDS of the song from START (s), e.g. 30:20.")
@click.option("--instruments-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of trained instruments (default $COVERMILL_INSTRUMENTS_DIR or the user data dir).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print only the output paths.")
def render(song: Path, recipe_name: str, out_dir: Path, separator: str, stretcher: str, excerpt: str | None,
           instruments_dir: Path | None, quiet: bool) -> None:
    """Render SONG as a cover following a recipe."""
    from .automation.pipeline import check_out_dir
    from .automation.pipeline import render as run
    from .recipes import load_recipe

    check_out_dir(out_dir)
    span = _parse_excerpt(excerpt) if excerpt else None
    recipe = load_recipe(recipe_name)
    root = Path(recipe_name).parent if Path(recipe_name).suffix in (".yaml", ".yml") else None
    bar, callback = _progress_bar(quiet)
    if bar is not None:
        with bar:
            result = run(song, recipe, out_dir, separator=separator, recipe_root=root, progress=callback, excerpt=span,
                             stretcher=stretcher, instruments_dir=instruments_dir)
    else:
        result = run(song, recipe, out_dir, separator=separator, recipe_root=root, excerpt=span, stretcher=stretcher,
                     instruments_dir=instruments_dir)
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    qa = result.qa
    if not quiet:
        t = qa["tempo"]
        click.echo(f"tempo   {t['source_bpm']} -> {t['cover_bpm']} BPM (target {t['target_bpm']})")
        click.echo(f"loudness {qa['loudness_lufs']} LUFS, true peak {qa['true_peak_db']} dBTP")
        click.echo(f"cover similarity {qa['cover_similarity']} (unrelated song: {qa['cover_similarity_floor']})")
    click.echo(f"cover:  {result.cover}")
    click.echo(f"stems:  {result.out_dir / 'stems'}")
    click.echo(f"report: {result.qa_path}")


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("-r", "--recipe", "recipe_names", multiple=True, required=True,
              help="Recipe name or file; repeat for several (each song is rendered with each).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("-j", "--workers", default=2, show_default=True, type=click.IntRange(1, 256),
              help="Worker processes of the local Dask cluster.")
@click.option("--memory-limit", default=None, help="Memory limit per worker, e.g. 4GB (default: share of RAM).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="Use an existing Dask cluster.")
@click.option("--retry-failed", is_flag=True, help="Render again the songs that failed last time.")
@click.option("--separator", default="dsp", show_default=True, help="Stem separator backend.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def batch(folder: Path, recipe_names: tuple[str, ...], out_dir: Path, workers: int, memory_limit: str | None,
          scheduler: str | None, retry_failed: bool, separator: str, quiet: bool) -> None:
    """Render every song in FOLDER with every recipe; resumable (OUT/manifest.jsonl)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from .automation.batch import run_batch

    console = Console(stderr=True, quiet=quiet)
    bar = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=quiet)
    task = bar.add_task("batch", total=1, status="")

    def callback(ev: dict) -> None:
        status = f"ok {ev['done'] - ev['failed']}  failed {ev['failed']}  remaining {ev['total'] - ev['done']}"
        bar.update(task, total=ev["total"], completed=ev["done"], status=status)
        if ev.get("event") == "done" and ev["record"]["status"] == "failed":
            bar.console.print(f"[red]failed[/red] {ev['record']['error']}", markup=True, highlight=False)

    with bar:
        summary = run_batch(folder, list(recipe_names), out_dir, workers=workers, memory_limit=memory_limit,
                            scheduler=scheduler, retry_failed=retry_failed, separator=separator, progress=callback)
    table = Table(title=f"{out_dir / 'manifest.jsonl'}")
    for col in ("song", "recipe", "status", "seconds"):
        table.add_column(col)
    for rec in summary.records:
        style = "green" if rec["status"] == "ok" else "red"
        table.add_row(Path(rec["song"]).name, Path(rec["recipe"]).stem, f"[{style}]{rec['status']}[/{style}]",
                      f"{rec.get('seconds', 0):.1f}")
    Console(quiet=quiet).print(table)
    click.echo(f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} already done or skipped "
               f"of {summary.total} in {summary.seconds:.1f} s; manifest: {out_dir / 'manifest.jsonl'}")
    if summary.failed:
        sys.exit(1)


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
@click.option("--instruments-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of trained instruments (default $COVERMILL_INSTRUMENTS_DIR or the user data dir).")
def instruments_list(instruments_dir: Path | None) -> None:
    """Available instruments: built-in ones and trained ones."""
    from . import instruments

    kinds = instruments.kinds(instruments_dir)
    for name, desc in instruments.available(instruments_dir).items():
        click.echo(f"{name:<16} {kinds[name]:<9} {desc}")


@instruments_group.command("train")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Name of the new instrument (letters, digits, _ - .).")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1), help="Total training steps.")
@click.option("--device", default="cpu", show_default=True, help="torch device: cpu, cuda, cuda:1, ...")
@click.option("--config", "config_name", type=click.Choice(["cpu", "full", "tiny"]), default="cpu", show_default=True,
              help="cpu: small decoder, 1-s excerpts (minutes on a CPU); full: DDSP's size (GPU work).")
@click.option("--checkpoint-every", default=100, show_default=True, type=click.IntRange(1), help="Steps between checkpoints.")
@click.option("--instruments-dir", type=click.Path(path_type=Path), default=None,
              help="Where to save (default $COVERMILL_INSTRUMENTS_DIR or the user data dir).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def instruments_train(folder: Path, name: str, steps: int, device: str, config_name: str, checkpoint_every: int,
                      instruments_dir: Path | None, quiet: bool) -> None:
    """Train a DDSP instrument on FOLDER of solo recordings (or separated stems); resumes if interrupted."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .instruments.ddsp.train import train_instrument

    bar = Progress(TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), disable=quiet)
    task = bar.add_task("train", total=steps, loss="-")

    def callback(ev: dict) -> None:
        bar.update(task, completed=ev["done"], total=ev["total"], loss=f"{ev['loss']:.3f}")

    with bar:
        result = train_instrument(folder, name=name, instruments_dir=instruments_dir, steps=steps, config=config_name,
                                  device=device, checkpoint_every=checkpoint_every, progress=callback)
    click.echo(f"{name}: {result.steps} steps, loss {result.loss:.3f}, {result.steps_per_s:.2f} steps/s; "
               f"saved in {result.path}")


if __name__ == "__main__":  # pragma: no cover
    main()
