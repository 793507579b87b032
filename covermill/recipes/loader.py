"""Find, parse, merge (``extends``) and validate recipes; errors name file, line and fix.

YAML is read with ``yaml.SafeLoader`` only (:mod:`covermill.yamlsafe`): tags such as
``!!python/object`` are refused, never executed, and the file's size, alias expansion,
nesting and integer length are bounded (``docs/security.md``). Line numbers come from
the composed node tree, so a validation error points at the offending line:
``my.yaml:12: unknown key 'gian_db' in stems.drums (did you mean 'gain_db'?)``.
"""

from __future__ import annotations

import difflib
import os
import types
from importlib import resources
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import CovermillError, ParameterError, RecipeError
from ..fsutil import recipe_path
from ..yamlsafe import line_map, load_yaml_file
from .schema import Recipe

MAX_EXTENDS_DEPTH = 8
_SCHEMA_COMMENT = "# yaml-language-server: $schema="


def builtin_dir() -> Path:
    return Path(str(resources.files("covermill.recipes") / "builtin"))


def builtin_names() -> list[str]:
    """Names of the recipes that ship with covermill."""
    return sorted(p.stem for p in builtin_dir().glob("*.yaml"))


def _locate(name_or_path: str | os.PathLike) -> Path:
    text = str(name_or_path)
    if text in builtin_names():
        return builtin_dir() / f"{text}.yaml"
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or os.sep in text or path.exists():
        if not path.exists():
            raise RecipeError(f"{path}: no such recipe file; check the path or use a built-in: {', '.join(builtin_names())}")
        if path.is_dir():
            raise RecipeError(f"{path}: is a folder; pass a recipe .yaml file")
        return path
    close = difflib.get_close_matches(text, builtin_names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise RecipeError(f"unknown recipe {text!r}{hint}; built-ins: {', '.join(builtin_names())}, or pass a .yaml file")


def recipe_root(name_or_path: str | os.PathLike) -> Path:
    """The folder a recipe's relative paths (impulse responses, soundfonts, ``extends``)
    resolve in: the folder of the file :func:`load_recipe` reads, whatever its suffix
    (``My.YAML`` too), never the current folder."""
    return _locate(name_or_path).parent.resolve()


def _parse(path: Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    data, node = load_yaml_file(path, RecipeError, "recipe")
    if data is None:
        raise RecipeError(f"{path}: is empty; a recipe needs at least `name:`")
    if not isinstance(data, dict):
        raise RecipeError(f"{path}:1: a recipe must be a mapping of keys (name, stems, tempo, ...), not {type(data).__name__}")
    return data, (line_map(node) if node is not None else {})


_VOICE_KEYS = ("instrument", "midi_program", "drum_kit")
_MIDI_ONLY = ("soundfont", "quantize", "swing", "velocity_scale", "octave_shift")


def _merge(base: Any, child: Any, key: str | None = None) -> Any:
    """Deep-merge mappings (child wins); anything else is replaced by the child.

    A ``revoice`` that names another kind of voice (``midi_program`` over a parent's
    ``instrument``, ...) replaces the parent's voice: the parent's other voice keys (and its
    MIDI-only settings, when the child switches to an ``instrument``) are dropped."""
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        if key == "revoice" and any(k in child for k in _VOICE_KEYS):
            for k in _VOICE_KEYS:
                if k not in child:
                    out.pop(k, None)
            if "instrument" in child:
                for k in _MIDI_ONLY:
                    if k not in child:
                        out.pop(k, None)
        for k, value in child.items():
            out[k] = _merge(out[k], value, k) if k in out else value
        return out
    return child


def _resolve_extends(data: dict, path: Path, depth: int, seen: tuple[Path, ...]) -> dict:
    parent = data.get("extends")
    if parent is None:
        return data
    if depth >= MAX_EXTENDS_DEPTH:
        raise RecipeError(f"{path}: `extends` nests deeper than {MAX_EXTENDS_DEPTH} recipes; flatten it")
    if not isinstance(parent, str) or not parent.strip() or "\x00" in parent:
        raise RecipeError(f"{path}: extends: {parent!r} is not a recipe name or a file name beside the recipe")
    if parent in builtin_names() and not parent.endswith((".yaml", ".yml")):
        parent_path = builtin_dir() / f"{parent}.yaml"
    else:
        try:
            parent_path = recipe_path(path.parent, parent, what="extends")
        except ParameterError as exc:
            raise RecipeError(f"{path}: {exc}") from None
        try:
            found = parent_path.is_file()
        except OSError as exc:
            raise RecipeError(f"{path}: extends {parent!r}: {exc.strerror}; name a recipe file beside it") from None
        if not found:
            raise RecipeError(f"{path}: extends {parent!r}, which is neither a built-in recipe nor a file beside it")
    if parent_path.resolve() in seen:
        raise RecipeError(f"{path}: `extends` loops back to {parent_path}; remove the cycle")
    parent_data, _ = _parse(parent_path)
    parent_data = _resolve_extends(parent_data, parent_path, depth + 1, seen + (parent_path.resolve(),))
    merged = _merge(parent_data, {k: v for k, v in data.items() if k != "extends"})
    if "tempo" in data:  # one tempo rule: the child's replaces the parent's, never merges with it
        merged["tempo"] = data["tempo"]
    merged["extends"] = parent
    return merged


def _unwrap(tp: Any) -> Any:
    """The type inside ``X | None``."""
    if get_origin(tp) in (Union, types.UnionType):
        inner = [arg for arg in get_args(tp) if arg is not type(None)]
        return _unwrap(inner[0]) if len(inner) == 1 else tp
    return tp


def _fields_for(loc: tuple) -> list[str]:
    """Valid keys of the model at ``loc`` (for "did you mean"), found by walking the schema's
    annotations from :class:`Recipe` (a new model or field needs nothing here)."""
    tp: Any = Recipe
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if part not in tp.model_fields:
                return []
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) in (list, tuple):
            tp = get_args(tp)[0]
        else:
            return []
    tp = _unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _format_error(path: Path, lines: dict[tuple, int], err: dict) -> str:
    loc = tuple(err["loc"])
    # pydantic puts union/model tags in loc; keep only real keys
    loc = tuple(p for p in loc if not (isinstance(p, str) and (p.startswith("function-") or p[:1].isupper())))
    line = None
    for i in range(len(loc), -1, -1):
        if loc[:i] in lines:
            line = lines[loc[:i]]
            break
    where = ".".join(str(p) for p in loc[:-1]) or "the recipe's top level"
    prefix = f"{path}:{line}" if line else f"{path}"
    if err["type"] == "extra_forbidden":
        key = loc[-1]
        valid = _fields_for(loc[:-1])
        close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        return f"{prefix}: unknown key {key!r} in {where} ({hint})"
    field = ".".join(str(p) for p in loc) or "recipe"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    value = err.get("input")
    shown = f" (got {value!r})" if value is not None and not isinstance(value, (dict, list)) else ""
    return f"{prefix}: {field}: {msg}{shown}"


def load_recipe(name_or_path: str | os.PathLike) -> Recipe:
    """Load, merge and validate a recipe given by built-in name or file path.

    Raises :class:`RecipeError` with ``file:line: problem (fix)`` for anything wrong.
    """
    path = _locate(name_or_path)
    data, lines = _parse(path)
    data = _resolve_extends(data, path, 0, (path.resolve(),))
    try:
        recipe = Recipe.model_validate(data, context={"root": path.parent})
        recipe._root = path.parent.resolve()
        return recipe
    except ValidationError as exc:
        errors = exc.errors()
        first = _format_error(path, lines, errors[0])
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RecipeError(first + more) from None
    except CovermillError as exc:  # e.g. an effect that pedalboard refuses
        raise RecipeError(f"{path}: {exc}") from None


def recipe_to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (what was actually rendered, for reproducibility)."""
    return yaml.safe_dump(recipe.to_dict(), sort_keys=False, allow_unicode=True)


def describe(name: str) -> str:
    """One-line description of a built-in recipe."""
    try:
        return load_recipe(name).description
    except CovermillError as exc:  # a broken built-in must not hide the others
        return f"(invalid: {exc})"


def new_recipe_text(name: str, *, base: str = "pop_to_jazz") -> str:
    """A commented starting recipe that ``extends`` ``base``: every setting of the base is
    listed, commented out, for the producer to uncomment and change."""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise RecipeError(f"recipe name {name!r} must be letters, digits, _ or -")
    resolved = load_recipe(base)
    body = resolved.to_dict()
    for key in ("name", "extends", "description"):
        body.pop(key, None)
    commented = "\n".join(f"# {line}" if line.strip() else "#" for line in
                          yaml.safe_dump(body, sort_keys=False).splitlines())
    return (
        f"{_SCHEMA_COMMENT}{builtin_dir().parent / 'recipe.schema.json'}\n"
        f"# {name}: a covermill recipe. It starts as {base!r}: only what you set here changes.\n"
        "# Validate with `covermill recipes validate FILE`; print the format with `covermill recipes schema`.\n"
        "# Per stem: action keep | mute | revoice (revoice: {instrument: NAME}, see `covermill instruments list`),\n"
        "# gain_db (-60..24), pan (-1..1), effects (pedalboard plugins). tempo: ONE of target_bpm, bpm_delta,\n"
        "# ratio. key: semitones. master: effects, lufs, true_peak_db.\n"
        f"name: {name}\n"
        f"description: \"{name} (from {base})\"\n"
        f"extends: {base}\n"
        f"#\n# The settings inherited from {base}, to uncomment and edit:\n"
        f"{commented}\n"
    )
