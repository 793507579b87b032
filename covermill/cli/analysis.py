"""`covermill profile`, `covermill analysis ...`, `covermill qa ...`, `covermill audacity ...`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from . import main
from .common import quiet_option


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Where per-song results are cached.")
@quiet_option
def profile(folder: Path, out_dir: Path, cache_dir: Path | None, quiet: bool) -> None:
    """Build a taste profile of FOLDER: genre distribution, chart, suggested recipes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..automation.profile import profile_folder

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
    from ..analysis.cnn import train_genre_cnn

    result = train_genre_cnn(folder, out_dir, arch=arch, epochs=epochs, weights=weights, clip_s=clip_seconds)
    click.echo(f"{arch}: macro-F1 {result.macro_f1:.3f}, accuracy {result.accuracy:.3f} on held-out songs")
    click.echo(f"model:     {result.model_path}")
    click.echo(f"confusion: {result.confusion_png}")


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
    from ..analysis import cover

    cache = False if no_cache else None
    a = cover.features_from_file(original, cache_dir=cache)
    b = cover.features_from_file(candidate, cache_dir=cache)
    result = cover.compare_features(a, b, threshold=cover.QMAX_THRESHOLD if threshold is None else threshold)
    if as_json:
        click.echo(json.dumps({"original": str(original), "candidate": str(candidate), **result}))
        return
    verdict = {True: "a cover", False: "NOT a cover"}.get(result["is_cover"], result.get("verdict"))
    click.echo(f"qmax             {result['qmax']:.4f} (cover when >= {result['threshold']})")
    click.echo(f"2DFTM distance   {result['twodftm_distance']:.4f} (cover when <= {result['twodftm_threshold']})")
    if result["is_cover"] is None:
        click.echo(f"verdict          {verdict}")
    else:
        click.echo(f"verdict          {candidate} is {verdict} of {original}")


@qa_group.command("cliques")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("-k", "--neighbors", type=click.IntRange(min=1), default=25, show_default=True,
              help="Neighbours of the kNN vote (capped at the number of other tracks).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def qa_cliques(folder: Path, neighbors: int, as_json: bool) -> None:
    """kNN clique accuracy and MAP (2DFTM) over FOLDER/<clique>/<audio files>."""
    import numpy as np

    from ..analysis import cover
    from ..analysis.cliques import clique_folders, evaluate_knn

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
    from ..automation.audacity.session import open_session

    app, tracks = open_session(project)
    who = f"pid {app.proc.pid}" if app.proc is not None else "the running Audacity"
    click.echo(f"opened {project} in Audacity ({who}); tracks: {', '.join(tracks)}")
    app.client.close()
