"""Where trained instruments live and how they are written and read (safetensors + JSON, never pickle).

An instrument is a folder ``DIR/NAME/`` holding

- ``instrument.json``: ``{"format": "covermill-ddsp", "version": 1, "config": {...}, "stats": {...}, ...}``
  with the instrument's f0 range and loudness statistics (for transfer);
- ``model.safetensors``: the model's tensors;
- ``checkpoint.safetensors`` + ``checkpoint.json`` while training (model and optimizer state,
  step), so an interrupted run resumes.

``DIR`` is ``$COVERMILL_INSTRUMENTS_DIR`` or ``platformdirs.user_data_dir("covermill")/instruments``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ...errors import ModelLoadingError, ParameterError
from ...fsutil import atomic_path, write_text_atomic
from .config import DDSPConfig

FORMAT = "covermill-ddsp"
VERSION = 1
META = "instrument.json"
WEIGHTS = "model.safetensors"
CKPT_WEIGHTS = "checkpoint.safetensors"
CKPT_META = "checkpoint.json"
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def instruments_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder of trained instruments: ``path``, else ``$COVERMILL_INSTRUMENTS_DIR``, else the user data dir."""
    if path is not None:
        return Path(path)
    env = os.environ.get("COVERMILL_INSTRUMENTS_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("covermill")) / "instruments"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or name in (".", ".."):
        raise ParameterError(f"instrument name {name!r} must be 1-64 letters, digits, '_', '-' or '.'")
    return name


def list_trained(path: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: description}`` of the trained instruments in :func:`instruments_dir` (no weights loaded)."""
    root = instruments_dir(path)
    found: dict[str, str] = {}
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        if (folder / META).is_file() and (folder / WEIGHTS).is_file() and NAME_RE.match(folder.name):
            try:
                meta = json.loads((folder / META).read_text())
                found[folder.name] = str(meta.get("description", "trained DDSP instrument"))
            except (OSError, ValueError):
                found[folder.name] = "trained DDSP instrument (unreadable instrument.json)"
    return found


def read_meta(folder: Path, filename: str = META) -> dict:
    """The validated JSON of an instrument folder; :class:`ModelLoadingError` names what is wrong."""
    path = folder / filename
    if not path.is_file():
        raise ModelLoadingError(f"{path}: missing; not a trained covermill instrument (train one with "
                                "`covermill instruments train`)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadingError(f"{path}: corrupt JSON ({exc}); retrain or restore the instrument") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelLoadingError(f"{path}: not a covermill DDSP instrument (format {meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise ModelLoadingError(f"{path}: format version {meta.get('version')!r}, this covermill reads {VERSION}")
    meta["config"] = DDSPConfig.from_dict(meta.get("config") or {})
    return meta


def write_tensors(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_tensors(path: Path) -> dict:
    """Tensors of a safetensors file (no unpickling); :class:`ModelLoadingError` if missing or corrupt."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelLoadingError(f"{path}: missing; the instrument is incomplete, retrain it")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises SafetensorError / OSError / ValueError on bad files
        raise ModelLoadingError(f"{path}: corrupt or not a safetensors file ({type(exc).__name__}: {exc}); "
                                "retrain or restore the instrument") from None


def load_state(model, tensors: dict, path: Path) -> None:
    """Put ``tensors`` into ``model``; a foreign or mismatched checkpoint raises :class:`ModelLoadingError`."""
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])[:300]
        raise ModelLoadingError(f"{path}: weights do not match the instrument's config ({detail})") from None


def write_meta(folder: Path, meta: dict, filename: str = META) -> None:
    meta = {**meta, "format": FORMAT, "version": VERSION}
    if isinstance(meta.get("config"), DDSPConfig):
        meta["config"] = meta["config"].to_dict()
    write_text_atomic(folder / filename, json.dumps(meta, indent=2) + "\n")
