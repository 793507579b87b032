"""The pedalboard plugins a recipe may use, how they are validated and built.

Only built-in pedalboard effects are allowed: nothing that loads third-party binaries
(``VST3Plugin``, ``AudioUnitPlugin``). ``Convolution`` takes an impulse-response file
whose path is resolved inside the recipe's folder and may not leave it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pedalboard

from ..errors import ParameterError
from ..fsutil import resolve_within

ALLOWED_PLUGINS: tuple[str, ...] = (
    "Bitcrush", "Chorus", "Clipping", "Compressor", "Convolution", "Delay", "Distortion", "Gain",
    "GSMFullRateCompressor", "HighShelfFilter", "HighpassFilter", "Invert", "LadderFilter", "Limiter",
    "LowShelfFilter", "LowpassFilter", "MP3Compressor", "NoiseGate", "PeakFilter", "Phaser",
    "PitchShift", "Resample", "Reverb",
)
_PATH_PARAMS = {"Convolution": "impulse_response_filename"}


def plugin_parameters(name: str) -> list[str]:
    """Parameter names of the allowed plugin ``name`` (as pedalboard properties)."""
    cls = getattr(pedalboard, name)
    if name == "Convolution":
        return ["impulse_response_filename", "mix"]
    probe = cls()
    return sorted(
        p for p in dir(probe)
        if not p.startswith("_") and p not in ("is_effect", "is_instrument") and not callable(getattr(probe, p))
    )


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build_plugin(name: str, params: Mapping[str, Any], *, root: str | Path | None = None) -> pedalboard.Plugin:
    """Construct the pedalboard plugin ``name`` with ``params``; raise :class:`ParameterError` with the fix.

    ``root`` is the folder that file parameters (impulse responses) are resolved in.
    """
    if name not in ALLOWED_PLUGINS:
        raise ParameterError(
            f"unknown effect {name!r}{_suggest(name, ALLOWED_PLUGINS)}; allowed: {', '.join(ALLOWED_PLUGINS)}"
        )
    valid = plugin_parameters(name)
    for key in params:
        if key not in valid:
            raise ParameterError(
                f"unknown parameter {key!r} for {name}{_suggest(key, valid)}; valid: {', '.join(valid)}"
            )
    kwargs = dict(params)
    path_key = _PATH_PARAMS.get(name)
    if path_key:
        if path_key not in kwargs:
            raise ParameterError(f"{name} needs {path_key!r} (a file inside the recipe's folder)")
        if root is None:  # never the current folder: a recipe's files live beside the recipe
            raise ParameterError(f"{name}: {path_key} {str(kwargs[path_key])!r} needs the recipe's folder; "
                                 "load the recipe from a file")
        path = resolve_within(root, str(kwargs[path_key]))
        if not path.is_file():
            raise ParameterError(f"{name}: impulse response {str(path)!r} does not exist")
        kwargs[path_key] = str(path)
    try:
        return getattr(pedalboard, name)(**kwargs)
    except (ValueError, TypeError, RuntimeError) as exc:
        detail = str(exc).splitlines()[0]
        raise ParameterError(f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())}): {detail}") from None


def build_chain(effects, *, root: str | Path | None = None) -> pedalboard.Pedalboard:
    """A :class:`pedalboard.Pedalboard` from a list of ``(name, params)`` pairs."""
    return pedalboard.Pedalboard([build_plugin(name, params, root=root) for name, params in effects])
