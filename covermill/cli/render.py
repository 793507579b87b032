"""`covermill render` and `covermill batch`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from . import main
from .common import (
    PathOrURL,
    RegistryChoice,
    cache_dir_option,
    fetch_models_option,
    instruments_dir_option,
    parse_excerpt,
    progress_bar,
    quiet_option,
    separator_options,
    separator_params,
)


def _stretchers() -> list[str]:
    from ..automation.tempo import STRETCHERS

    return STRETCHERS.available()


def _mixers() -> list[str]:
    from ..automation.mixers import MIXERS

    return MIXERS.available()

@main.command()
@click.argument("song", type=PathOrURL())
@click.option("-r", "--recipe", "recipe_name", default="pop_to_jazz", show_default=True,
              help="Built-in recipe name or a recipe .yaml file.")
@click.option("-o", "--out", "out_dir", required=True, type=PathOrURL(),
              help="Output folder or URL (s3://, sftp://: docs/remote.md; files replaced atomically, qa.json last).")
@separator_options
@cache_dir_option
@click.option("--no-cache", is_flag=True, help="Always separate; neither read nor write the stem cache.")
@click.option("--stretcher", type=RegistryChoice(_stretchers), default="pedalboard", show_default=True,
              help="Rubber Band binding for tempo/key changes.")
@click.option("--excerpt", metavar="START:SECONDS", help="Render only SECONDS of the song from START (s), e.g. 30:20.")
@click.option("--draft", is_flag=True,
              help="Quick listening: Rubber Band's faster R2 engine for the tempo/key change (recipe tempo.quality).")
@click.option("--soundfont", type=click.Path(path_type=Path), default=None,
              help="A .sf2 soundfont for MIDI re-voiced stems (replaces the recipe's and the default FluidR3 GM).")
@instruments_dir_option
@click.option("--mixer", type=RegistryChoice(_mixers), default="pedalboard", show_default=True,
              help="Mix the stems (gain, pan, tempo, key) with pedalboard + Rubber Band, or inside Audacity.")
@click.option("--session", is_flag=True,
              help="Also save OUT/session.aup3, an Audacity project for review (needs Audacity; Xvfb if no display).")
@quiet_option
def render(song: Path | str, recipe_name: str, out_dir: Path | str, separator: str, model: str, model_dir: Path | None,
           device: str, cache_dir: Path | None, no_cache: bool, stretcher: str, excerpt: str | None, draft: bool,
           soundfont: Path | None, instruments_dir: Path | None, mixer: str, session: bool, quiet: bool) -> None:
    """Render SONG as a cover following a recipe."""
    from ..automation.remote import check_locations
    from ..automation.remote import render_at as run
    from ..locations import Location
    from ..recipes import load_recipe, recipe_root
    from ..stems.cache import default_cache_dir

    check_locations(song, out_dir)
    span = parse_excerpt(excerpt) if excerpt else None
    recipe = load_recipe(recipe_name)
    if draft:
        recipe = recipe.model_copy(update={"tempo": recipe.tempo.model_copy(update={"quality": "draft"})})
    root = recipe_root(recipe_name)
    kw = dict(separator=separator, separator_params=separator_params(separator, model, model_dir, device),
              cache_dir=None if no_cache else (cache_dir or default_cache_dir()), recipe_root=root, excerpt=span,
              stretcher=stretcher, soundfont=soundfont, instruments_dir=instruments_dir, session=session, mixer=mixer)
    bar, callback = progress_bar(quiet)
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
        click.echo(f"tempo    {t['source_bpm']} -> {t['cover_bpm']} BPM (target {t['target_bpm']})")
        click.echo(f"loudness {qa['loudness_lufs']} LUFS, true peak {qa['true_peak_db']} dBTP")
        check = qa.get("cover")
        if check:
            verdict = {True: "recognisably a cover", False: "NOT recognisably a cover"}.get(
                check["is_cover"], check.get("verdict", "too short to judge"))
            click.echo(f"cover    Qmax {check['qmax']} (unrelated song: {check['reference']['qmax']}, "
                       f"threshold {check['threshold']}): {verdict}")
        genre = qa.get("genre") or {}
        if genre.get("model_class"):
            click.echo(f"genre    {genre['original_top']} -> {genre['cover_top']} "
                       f"(P({genre['model_class']}) {genre['target_prob_original']} -> {genre['target_prob_cover']})")
    click.echo(f"cover:   {result.file('cover.wav')}")
    click.echo(f"stems:   {result.file('stems')}")
    click.echo(f"report:  {result.file('report.html')}")
    click.echo(f"qa:      {result.file('qa.json')}")
    if session:
        target = result.file('session.aup3')
        click.echo(f"session: {target}" + ("" if Location.parse(target).is_remote
                                           else f"  (covermill audacity open {target})"))


@main.command()
@click.argument("folder", type=PathOrURL())
@click.option("-r", "--recipe", "recipe_names", multiple=True, required=True,
              help="Recipe name or file; repeat for several (each song is rendered with each).")
@click.option("-o", "--out", "out_dir", required=True, type=PathOrURL(),
              help="Output folder or URL (s3://bucket/covers, sftp://host/path: docs/remote.md).")
@click.option("-j", "--workers", default=2, show_default=True, type=click.IntRange(1, 256),
              help="Worker processes of the local Dask cluster.")
@click.option("--memory-limit", default=None, help="Memory limit per worker, e.g. 4GB (default: share of RAM).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Use an existing Dask cluster; its workers run code as you: use only one you trust "
                   "(docs/security.md).")
@click.option("--cluster", "cluster_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Start or join the cluster a YAML file describes (kind: scheduler | slurm | kubernetes; "
                   "docs/cluster.md).")
@click.option("--retry-failed", is_flag=True, help="Render again the songs that failed last time.")
@click.option("--separator", default="auto", show_default=True, help="Stem separator backend (auto|dsp|demucs).")
@fetch_models_option
@cache_dir_option
@click.option("--session", is_flag=True, help="Also save an Audacity review session per render (one at a time).")
@click.option("--separate-first/--no-separate-first", default=None,
              help="Demucs: separate all songs first, their segments pooled into shared model calls, into the "
                   "stem cache (default: only when Demucs runs on CUDA).")
@quiet_option
def batch(folder: Path | str, recipe_names: tuple[str, ...], out_dir: Path | str, workers: int,
          memory_limit: str | None, scheduler: str | None, cluster_file: Path | None, retry_failed: bool,
          separator: str, cache_dir: Path | None, session: bool,
          separate_first: bool | None, quiet: bool) -> None:
    """Render every song in FOLDER with every recipe; resumable (OUT/manifest.jsonl)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from ..automation.batch import run_batch

    console = Console(stderr=True, quiet=quiet)
    bar = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=quiet)
    task = bar.add_task("batch", total=1, status="")

    def callback(ev: dict) -> None:
        status = f"ok {ev['done'] - ev['failed']}  failed {ev['failed']}  remaining {ev['total'] - ev['done']}"
        bar.update(task, total=ev["total"], completed=ev["done"], status=status)
        if ev.get("event") == "done" and ev["record"]["status"] == "failed":
            bar.console.print(f"[red]failed[/red] {escape(str(ev['record']['error']))}", markup=True,
                              highlight=False)

    cluster = contextlib.nullcontext(scheduler)
    if cluster_file is not None:
        from ..automation.cluster_config import load_cluster_config, start_cluster

        if scheduler:
            raise click.UsageError("give --cluster or --scheduler, not both")
        cluster = start_cluster(load_cluster_config(cluster_file))
    with bar, cluster as scheduler:
        summary = run_batch(folder, list(recipe_names), out_dir, workers=workers, memory_limit=memory_limit,
                            scheduler=scheduler, retry_failed=retry_failed, separator=separator,
                            cache_dir=cache_dir, session=session, progress=callback,
                            separate_first_pass=separate_first)
    table = Table(title=escape(summary.manifest))
    for col in ("song", "recipe", "status", "seconds"):
        table.add_column(col)
    for rec in summary.records:
        style = "green" if rec["status"] == "ok" else "red"
        table.add_row(escape(Path(rec["song"]).name), escape(Path(rec["recipe"]).stem),
                      f"[{style}]{rec['status']}[/{style}]",
                      f"{rec.get('seconds', 0):.1f}")
    Console(quiet=quiet).print(table)
    click.echo(f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} already done or skipped "
               f"of {summary.total} in {summary.seconds:.1f} s; manifest: {summary.manifest}")
    click.echo(f"index: {Path(summary.manifest).with_name('index.html')}")
    if summary.failed:
        sys.exit(1)


@main.command()
@click.argument("song", type=click.Path(path_type=Path))
@click.option("-r", "--recipe", "recipe_file", required=True, type=click.Path(path_type=Path),
              help="The recipe .yaml file you are editing: every save re-renders.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: preview/ beside the recipe).")
@click.option("--excerpt", metavar="START:SECONDS", default="0:20", show_default=True,
              help="The part of the song to render.")
@click.option("--quality", type=click.Choice(["draft", "high"]), default="draft", show_default=True,
              help="Rubber Band engine for the kept stems: draft (R2, fast) or high (R3, as `render`).")
@click.option("--play", is_flag=True, help="Play each new render (pedalboard AudioStream; off without an audio device).")
@click.option("--once", is_flag=True, help="Render once and exit (no watching).")
@separator_options
@cache_dir_option
@instruments_dir_option
def preview(song: Path, recipe_file: Path, out_dir: Path | None, excerpt: str, quality: str, play: bool, once: bool,
            separator: str, model: str, model_dir: Path | None, device: str, cache_dir: Path | None,
            instruments_dir: Path | None) -> None:
    """Re-render an excerpt of SONG each time the recipe file is saved (Ctrl-C to stop)."""
    from ..automation.options import RenderOptions
    from ..automation.preview import preview as run
    from ..stems.cache import default_cache_dir

    out = out_dir or recipe_file.parent / "preview"
    opts = RenderOptions(separator=separator, separator_params=separator_params(separator, model, model_dir, device),
                         cache_dir=cache_dir or default_cache_dir(), instruments_dir=instruments_dir)

    def show(ev) -> None:
        if ev.kind == "render":
            s = ev.summary
            line = (f"{ev.seconds:5.1f} s  {ev.cover}  {s['lufs']} LUFS, Qmax {s['qmax']}, "
                    f"{s['genre']} (P target {s['p_target']})")
            click.echo(line + (f"  changed: {'; '.join(ev.changes)}" if ev.changes else ""))
        else:
            click.echo(f"{ev.kind}: {ev.message}", err=True)

    if not once:
        click.echo(f"watching {recipe_file}: save it to re-render {excerpt} s of {song} into {out} (Ctrl-C stops)")
    try:
        run(song, recipe_file, out, options=opts, excerpt=parse_excerpt(excerpt), quality=quality, play=play,
            once=once, on_event=show)
    except KeyboardInterrupt:
        click.echo("preview stopped")
