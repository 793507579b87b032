"""`covermill recipes ...`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from . import main


@main.group()
def recipes() -> None:
    """List, show and validate recipes."""


@recipes.command("list")
def recipes_list() -> None:
    """Built-in recipes with their descriptions."""
    from ..recipes import builtin_names, describe

    for name in builtin_names():
        click.echo(f"{name:<20} {describe(name)}")


@recipes.command("effects")
def recipes_effects() -> None:
    """The effects a recipe may name (`effects: [{plugin: NAME, ...}]`), with their parameters and ranges."""
    from ..effects import EFFECTS

    for name in EFFECTS.available():
        effect = EFFECTS.factory(name)
        params = [f"{p} [{effect.ranges[p][0]:g}, {effect.ranges[p][1]:g}]" if p in effect.ranges else p
                  for p in effect.parameters()]
        click.echo(f"{name:<22} {', '.join(params) or '(no parameters)'}")


@recipes.command("show")
@click.argument("name")
def recipes_show(name: str) -> None:
    """Print a recipe, fully resolved (extends merged, defaults filled)."""
    from ..recipes import load_recipe, recipe_to_yaml

    click.echo(recipe_to_yaml(load_recipe(name)), nl=False)


@recipes.command("validate")
@click.argument("files", nargs=-1, required=True)
def recipes_validate(files: tuple[str, ...]) -> None:
    """Validate recipe files; exit 1 if any is invalid."""
    from ..recipes import load_recipe
    from .common import validate_files

    validate_files(files, load_recipe, lambda recipe: recipe.name)


@recipes.command("new")
@click.argument("name")
@click.option("--from", "base", default="pop_to_jazz", show_default=True, help="Recipe to start from.")
@click.option("-o", "--out", "out_file", type=click.Path(path_type=Path), help="File to write (default NAME.yaml).")
def recipes_new(name: str, base: str, out_file: Path | None) -> None:
    """Write a commented starting recipe NAME.yaml based on another recipe."""
    from ..fsutil import write_text_atomic
    from ..recipes import new_recipe_text

    target = out_file or Path(f"{name}.yaml")
    if target.exists():
        raise click.ClickException(f"{target}: already exists; choose another name or -o FILE")
    write_text_atomic(target, new_recipe_text(name, base=base))
    click.echo(f"wrote {target}; check it with: covermill recipes validate {target}")


@recipes.command("schema")
def recipes_schema() -> None:
    """Print the JSON Schema of the recipe format (for editors)."""
    from ..recipes import Recipe

    click.echo(json.dumps(Recipe.model_json_schema(), indent=2))
