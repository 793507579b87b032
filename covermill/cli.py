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
@click.option("--stretcher", type=click.Choice(["pedalboard", "pyrubberband"]), default="pedalboard", show_default=True,
              help="Rubber Band binding for tempo/key changes.")
@click.option("--excerpt", metavar="START:SECONDS", help="Render only SECONDS of the song from START (s), e.g. 30:20.")
@click.option("--draft", is_flag=True,
              help="Quick listening: Rubber Band's faster R2 engine for the tempo/key change (recipe tempo.quality).")
@click.option("--soundfont", type=click.Path(path_type=Path), default=None,
              help="A .sf2 soundfont for MIDI re-voiced stems (replaces the recipe's and the default FluidR3 GM).")
@click.option("--instruments-dir", type=click.Path(path_type=Path), default=None,
              help="Instruments folder: YAML copies of parametric instruments (they win over built-ins) and "
                   "trained DDSP instruments (default $COVERMILL_INSTRUMENTS_DIR or the user data dir).")
@click.option("--mixer", type=click.Choice(["pedalboard", "audacity"]), default="pedalboard", show_default=True,
              help="Mix the stems (gain, pan, tempo, key) with pedalboard + Rubber Band, or inside Audacity.")
@click.option("--session", is_flag=True,
              help="Also save OUT/session.aup3, an Audacity project for review (needs Audacity; Xvfb if no display).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print only the output paths.")
def render(song: Path, recipe_name: str, out_dir: Path, separator: str, model: str, model_dir: Path | None,
           device: str, cache_dir: Path | None, no_cache: bool, stretcher: str, excerpt: str | None, draft: bool,
           soundfont: Path | None, instruments_dir: Path | None, mixer: str, session: bool, quiet: bool) -> None:
    """Render SONG as a cover following a recipe."""
    from .automation.pipeline import check_out_dir
    from .automation.pipeline import render as run
    from .recipes import load_recipe, recipe_root
    from .stems.cache import default_cache_dir

    check_out_dir(out_dir)
    span = _parse_excerpt(excerpt) if excerpt else None
    recipe = load_recipe(recipe_name)
    if draft:
        recipe = recipe.model_copy(update={"tempo": recipe.tempo.model_copy(update={"quality": "draft"})})
    root = recipe_root(recipe_name)
    kw = dict(separator=separator, separator_params=_separator_params(separator, model, model_dir, device),
              cache_dir=None if no_cache else (cache_dir or default_cache_dir()), recipe_root=root, excerpt=span,
              stretcher=stretcher, soundfont=soundfont, instruments_dir=instruments_dir, session=session, mixer=mixer)
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
        click.echo(f"tempo    {t['source_bpm']} -> {t['cover_bpm']} BPM (target {t['target_bpm']})")
        click.echo(f"loudness {qa['loudness_lufs']} LUFS, true peak {qa['true_peak_db']} dBTP")
        check = qa.get("cover")
        if check:
            verdict = "recognisably a cover" if check["is_cover"] else "NOT recognisably a cover"
            click.echo(f"cover    Qmax {check['qmax']} (unrelated song: {check['reference']['qmax']}, "
                       f"threshold {check['threshold']}): {verdict}")
        genre = qa.get("genre") or {}
        if genre.get("model_class"):
            click.echo(f"genre    {genre['original_top']} -> {genre['cover_top']} "
                       f"(P({genre['model_class']}) {genre['target_prob_original']} -> {genre['target_prob_cover']})")
    click.echo(f"cover:   {result.cover}")
    click.echo(f"stems:   {result.out_dir / 'stems'}")
    click.echo(f"report:  {result.out_dir / 'report.html'}")
    click.echo(f"qa:      {result.qa_path}")
    if session:
        click.echo(f"session: {result.out_dir / 'session.aup3'}  (covermill audacity open {result.out_dir / 'session.aup3'})")


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("-r", "--recipe", "recipe_names", multiple=True, required=True,
              help="Recipe name or file; repeat for several (each song is rendered with each).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("-j", "--workers", default=2, show_default=True, type=click.IntRange(1, 256),
              help="Worker processes of the local Dask cluster.")
@click.option("--memory-limit", default=None, help="Memory limit per worker, e.g. 4GB (default: share of RAM).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="Use an existing Dask cluster; its workers run code as you: use only one you trust (docs/security.md).")
@click.option("--retry-failed", is_flag=True, help="Render again the songs that failed last time.")
@click.option("--separator", default="auto", show_default=True, help="Stem separator backend (auto|dsp|demucs).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Stem cache folder shared by all renders (default $COVERMILL_CACHE_DIR/stems or the user cache).")
@click.option("--session", is_flag=True, help="Also save an Audacity review session per render (one at a time).")
@click.option("--separate-first/--no-separate-first", default=None,
              help="Demucs: separate all songs first, their segments pooled into shared model calls, into the "
                   "stem cache (default: only when Demucs runs on CUDA).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def batch(folder: Path, recipe_names: tuple[str, ...], out_dir: Path, workers: int, memory_limit: str | None,
          scheduler: str | None, retry_failed: bool, separator: str, cache_dir: Path | None, session: bool,
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

    from .automation.batch import run_batch

    console = Console(stderr=True, quiet=quiet)
    bar = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=quiet)
    task = bar.add_task("batch", total=1, status="")

    def callback(ev: dict) -> None:
        status = f"ok {ev['done'] - ev['failed']}  failed {ev['failed']}  remaining {ev['total'] - ev['done']}"
        bar.update(task, total=ev["total"], completed=ev["done"], status=status)
        if ev.get("event") == "done" and ev["record"]["status"] == "failed":
            bar.console.print(f"[red]failed[/red] {escape(str(ev['record']['error']))}", markup=True, highlight=False)

    with bar:
        summary = run_batch(folder, list(recipe_names), out_dir, workers=workers, memory_limit=memory_limit,
                            scheduler=scheduler, retry_failed=retry_failed, separator=separator,
                            cache_dir=cache_dir, session=session, progress=callback,
                            separate_first_pass=separate_first)
    table = Table(title=escape(f"{out_dir / 'manifest.jsonl'}"))
    for col in ("song", "recipe", "status", "seconds"):
        table.add_column(col)
    for rec in summary.records:
        style = "green" if rec["status"] == "ok" else "red"
        table.add_row(escape(Path(rec["song"]).name), escape(Path(rec["recipe"]).stem), f"[{style}]{rec['status']}[/{style}]",
                      f"{rec.get('seconds', 0):.1f}")
    Console(quiet=quiet).print(table)
    click.echo(f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} already done or skipped "
               f"of {summary.total} in {summary.seconds:.1f} s; manifest: {out_dir / 'manifest.jsonl'}")
    click.echo(f"index: {out_dir / 'index.html'}")
    if summary.failed:
        sys.exit(1)


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Where per-song results are cached.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def profile(folder: Path, out_dir: Path, cache_dir: Path | None, quiet: bool) -> None:
    """Build a taste profile of FOLDER: genre distribution, chart, suggested recipes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .automation.profile import profile_folder

    bar = Progress(TextColumn("[bold]profile"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=quiet)
    task = bar.add_task("profile", total=None)
    with bar:
        result = profile_folder(folder, out_dir, cache_dir=cache_dir,
                                progress=lambda ev: bar.update(task, total=ev["total"], completed=ev["done"]))
    for err in result.skipped.values():
        click.echo(f"skipped: {err}", err=True)
    click.echo(f"{len(result.songs)} songs classified, {len(result.skipped)} skipped")
    for genre, p in list(result.distribution.items())[:5]:
        click.echo(f"  {genre:<10} {p:6.1%}")
    for s in result.suggestions:
        click.echo(f"suggested recipe: {s['recipe']:<14} {s['description']}")
    click.echo(f"profile: {out_dir / 'profile.json'}")
    if result.songs:
        click.echo(f"chart:   {out_dir / 'genres.png'}")


@main.group("analysis")
def analysis_group() -> None:
    """Analysis models: genre CNNs."""


@analysis_group.command("train-genre")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--arch", type=click.Choice(["resnet34", "resnet50", "squeezenet1_1", "resnet18"]), default="resnet34",
              show_default=True)
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(1, 1000))
@click.option("--weights", type=click.Path(path_type=Path), help="Local pretrained torchvision weights (.pth/.safetensors).")
@click.option("--clip-seconds", default=10.0, show_default=True, type=click.FloatRange(1.0, 60.0))
def train_genre(folder: Path, out_dir: Path, arch: str, epochs: int, weights: Path | None, clip_seconds: float) -> None:
    """Train a spectrogram CNN on FOLDER/<genre>/<songs> (fastai), held-out songs for validation."""
    from .analysis.cnn import train_genre_cnn

    result = train_genre_cnn(folder, out_dir, arch=arch, epochs=epochs, weights=weights, clip_s=clip_seconds)
    click.echo(f"{arch}: macro-F1 {result.macro_f1:.3f}, accuracy {result.accuracy:.3f} on held-out songs")
    click.echo(f"model:     {result.model_path}")
    click.echo(f"confusion: {result.confusion_png}")


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
@click.option("--instruments-dir", type=click.Path(path_type=Path), default=None,
              help="Instruments folder (default $COVERMILL_INSTRUMENTS_DIR or the user data dir).")
@click.option("--midi", is_flag=True, help="List the General MIDI programs for `revoice: {midi_program: ...}` instead.")
def instruments_list(instruments_dir: Path | None, midi: bool) -> None:
    """Available instruments."""
    from . import instruments

    if midi:
        from .instruments.midi import gm_program_names

        for number, name in enumerate(gm_program_names()):
            click.echo(f"{number:>3}  {name}")
        return

    kinds = instruments.kinds(instruments_dir)
    for name, desc in instruments.available(instruments_dir).items():
        click.echo(f"{name:<16} {kinds[name]:<9} {desc}")


@instruments_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def instruments_validate(files: tuple[Path, ...]) -> None:
    """Check instrument YAML files; the first problem is reported as FILE:LINE."""
    from .instruments import load_timbre

    for path in files:
        timbre = load_timbre(path)
        click.echo(f"{path}: ok ({timbre.name}, {timbre.range_hz[0]:g}-{timbre.range_hz[1]:g} Hz)")


@main.group("qa")
def qa_group() -> None:
    """Quality checks: is a cover still recognisably a cover?"""


@qa_group.command("cover")
@click.argument("original", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--threshold", type=float, default=None, help="Qmax threshold (default: the calibrated one).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the feature cache.")
def qa_cover(original: Path, candidate: Path, as_json: bool, threshold: float | None, no_cache: bool) -> None:
    """Is CANDIDATE a cover of ORIGINAL? Qmax (verdict) and 2DFTM distance."""
    from .analysis import cover

    cache = False if no_cache else None
    a = cover.features_from_file(original, cache_dir=cache)
    b = cover.features_from_file(candidate, cache_dir=cache)
    result = cover.compare_features(a, b, threshold=cover.QMAX_THRESHOLD if threshold is None else threshold)
    if as_json:
        click.echo(json.dumps({"original": str(original), "candidate": str(candidate), **result}))
        return
    verdict = "a cover" if result["is_cover"] else "NOT a cover"
    click.echo(f"qmax             {result['qmax']:.4f} (cover when >= {result['threshold']})")
    click.echo(f"2DFTM distance   {result['twodftm_distance']:.4f} (cover when <= {result['twodftm_threshold']})")
    click.echo(f"verdict          {candidate} is {verdict} of {original}")


@qa_group.command("cliques")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("-k", "--neighbors", type=click.IntRange(min=1), default=25, show_default=True,
              help="Neighbours of the kNN vote (capped at the number of other tracks).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def qa_cliques(folder: Path, neighbors: int, as_json: bool) -> None:
    """kNN clique accuracy and MAP (2DFTM) over FOLDER/<clique>/<audio files>."""
    import numpy as np

    from .analysis import cover
    from .analysis.cliques import clique_folders, evaluate_knn

    groups = clique_folders(folder)
    X, y = [], []
    for name, files in groups.items():
        for f in files:
            X.append(cover.features_from_file(f).twodftm)
            y.append(name)
    k = min(neighbors, len(X) - 1)
    result = evaluate_knn(np.stack(X), np.array(y), n_neighbors=k)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{result['n_tracks']} tracks in {result['n_cliques']} cliques, k={result['n_neighbors']}")
    click.echo(f"clique accuracy  {result['accuracy']:.3f} (leave one out)")
    click.echo(f"MAP              {result['map']:.3f}")


@main.group("audacity")
def audacity_group() -> None:
    """Review sessions in a real Audacity."""


@audacity_group.command("open")
@click.argument("project", type=click.Path(path_type=Path))
def audacity_open(project: Path) -> None:
    """Open PROJECT (a session.aup3) in Audacity for a person, and leave it running."""
    from .automation.audacity.session import open_session

    app, tracks = open_session(project)
    who = f"pid {app.proc.pid}" if app.proc is not None else "the running Audacity"
    click.echo(f"opened {project} in Audacity ({who}); tracks: {', '.join(tracks)}")
    app.client.close()


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
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .instruments.ddsp.train import train_instrument

    bar = Progress(TextColumn(f"[bold]{escape(name)}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), disable=quiet)
    task = bar.add_task("train", total=steps, loss="-")

    def callback(ev: dict) -> None:
        bar.update(task, completed=ev["done"], total=ev["total"], loss=f"{ev['loss']:.3f}")

    with bar:
        result = train_instrument(folder, name=name, instruments_dir=instruments_dir, steps=steps, config=config_name,
                                  device=device, checkpoint_every=checkpoint_every, progress=callback)
    click.echo(f"{name}: {result.steps} steps, loss {result.loss:.3f}, {result.steps_per_s:.2f} steps/s; "
               f"saved in {result.path}")


@instruments_group.command("import-ddsp")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Name of the new instrument (letters, digits, _ - .).")
@click.option("--instruments-dir", type=click.Path(path_type=Path), default=None,
              help="Where to save (default $COVERMILL_INSTRUMENTS_DIR or the user data dir).")
@click.option("--db-range", type=click.FloatRange(min=1.0), default=80.0, show_default=True,
              help="Loudness scaling the model was trained with: 80 for ddsp >= 3.0, 120 before (January 2022; "
                   "Magenta's 2021-07-08 pretrained solo_* checkpoints predate it).")
@click.option("--force", is_flag=True, help="Replace an existing instrument of that name.")
def instruments_import_ddsp(folder: Path, name: str, instruments_dir: Path | None, db_range: float, force: bool) -> None:
    """Import a Magenta DDSP checkpoint FOLDER (ckpt-N.*, operative_config-N.gin, dataset_statistics.pkl)."""
    from .instruments.ddsp.magenta import import_ddsp

    result = import_ddsp(folder, name=name, instruments_dir=instruments_dir, db_range=db_range, overwrite=force)
    c = result.config
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{name}: imported {result.checkpoint} ({c.n_harmonics} harmonics, {c.n_noise_bands} noise bands, "
               f"GRU {c.gru_units}, {c.frame_rate} frames/s at {c.sample_rate} Hz); saved in {result.path}")


if __name__ == "__main__":  # pragma: no cover
    main()
