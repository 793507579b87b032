"""`covermill instruments ...` and `covermill styles ...`."""

from __future__ import annotations

from pathlib import Path

import click

from . import main
from .common import RegistryChoice, instruments_dir_option, quiet_option


def _kinds() -> list[str]:
    from ..instruments import KINDS

    return KINDS.available()


@main.group("instruments")
def instruments_group() -> None:
    """Instruments that stems can be re-voiced as."""


@instruments_group.command("list")
@instruments_dir_option
@click.option("--midi", is_flag=True, help="List the General MIDI programs for `revoice: {midi_program: ...}` instead.")
@click.option("--kind", type=RegistryChoice(_kinds), default=None,
              help="Only instruments of this kind (kinds with a recipe field of their own name that field).")
def instruments_list(instruments_dir: Path | None, midi: bool, kind: str | None) -> None:
    """Available instruments."""
    from .. import instruments

    if kind is not None:
        k = instruments.KINDS.get(kind)
        if k.field != "instrument":
            click.echo(f"{kind}: played by `revoice: {{{k.field}: ...}}` in a recipe")
            return
        for name, desc in k.names(instruments_dir).items():
            click.echo(f"{name:<16} {k.label(name, instruments_dir):<9} {desc}")
        return

    if midi:
        from ..instruments.midi import gm_program_names

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
    from ..instruments import load_timbre

    for path in files:
        timbre = load_timbre(path)
        click.echo(f"{path}: ok ({timbre.name}, {timbre.range_hz[0]:g}-{timbre.range_hz[1]:g} Hz)")


@instruments_group.command("train")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Name of the new instrument (letters, digits, _ - .).")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1), help="Total training steps.")
@click.option("--device", default="cpu", show_default=True, help="torch device: cpu, cuda, cuda:1, ...")
@click.option("--config", "config_name", type=click.Choice(["cpu", "full", "tiny"]), default="cpu", show_default=True,
              help="cpu: small decoder, 1-s excerpts (minutes on a CPU); full: DDSP's size (GPU work).")
@click.option("--checkpoint-every", default=100, show_default=True, type=click.IntRange(1), help="Steps between checkpoints.")
@instruments_dir_option
@quiet_option
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

    from ..instruments.ddsp.train import train_instrument

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
@instruments_dir_option
@click.option("--db-range", type=click.FloatRange(min=1.0), default=80.0, show_default=True,
              help="Loudness scaling the model was trained with: 80 for ddsp >= 3.0, 120 before (January 2022; "
                   "Magenta's 2021-07-08 pretrained solo_* checkpoints predate it).")
@click.option("--force", is_flag=True, help="Replace an existing instrument of that name.")
def instruments_import_ddsp(folder: Path, name: str, instruments_dir: Path | None, db_range: float, force: bool) -> None:
    """Import a Magenta DDSP checkpoint FOLDER (ckpt-N.*, operative_config-N.gin, dataset_statistics.pkl)."""
    from ..instruments.ddsp.magenta import import_ddsp

    result = import_ddsp(folder, name=name, instruments_dir=instruments_dir, db_range=db_range, overwrite=force)
    c = result.config
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{name}: imported {result.checkpoint} ({c.n_harmonics} harmonics, {c.n_noise_bands} noise bands, "
               f"GRU {c.gru_units}, {c.frame_rate} frames/s at {c.sample_rate} Hz); saved in {result.path}")


def _styles_dir_option(f):
    return click.option("--styles-dir", type=click.Path(path_type=Path), default=None,
                        help="Your styles folder: YAML files there win over built-ins of the same kind and name "
                             "(default $COVERMILL_STYLES_DIR or the user data dir's covermill/styles).")(f)


@main.group("styles")
def styles_group() -> None:
    """Genre part styles: drum grooves, bass lines, comping and melody doublings that recipes' `parts:` play."""


@styles_group.command("list")
@click.option("--kind", type=click.Choice(["drums", "bass", "comping", "melody"]), default=None, help="Only this kind.")
@_styles_dir_option
def styles_list(kind: str | None, styles_dir: Path | None) -> None:
    """Available styles: kind, name, meters, genre, where it comes from, description."""
    from ..instruments.styles import list_styles

    for s in list_styles(kind, user_dir=styles_dir):
        meters = "/".join(f"{m}/4" for m in sorted(s.meters)) or "any"  # a melody follows the sheet's meter
        click.echo(f"{s.kind:<8} {s.name:<20} {meters:<8} {s.genre:<10} {s.source:<9} {s.description}")


@styles_group.command("show")
@click.argument("name")
@click.option("--kind", type=click.Choice(["drums", "bass", "comping", "melody"]), default=None,
              help="The kind, where two kinds share a name (or write KIND/NAME).")
@_styles_dir_option
def styles_show(name: str, kind: str | None, styles_dir: Path | None) -> None:
    """Print a style, as validated (defaults filled)."""
    import yaml

    from ..instruments.styles import get_style

    style = get_style(name, kind=kind, user_dir=styles_dir)
    click.echo(yaml.safe_dump(style.model_dump(mode="json", exclude_defaults=False), sort_keys=False), nl=False)


@styles_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def styles_validate(files: tuple[Path, ...]) -> None:
    """Check style YAML files; the first problem of each is reported as FILE:LINE; exit 1 if any is bad."""
    from ..instruments.styles import validate_style_file
    from .common import validate_files

    validate_files(files, validate_style_file, lambda style: f"{style.kind} {style.name}")
