"""The effects a recipe may use (:data:`EFFECTS`), how they are validated and built.

Shared lower layer: the recipe schema validates effects with it at load time, the mixer and
the master chain build them.

Every effect is registered in :data:`EFFECTS` and states its whole contract (:class:`Effect`):
its parameters, their ranges, the one that names a file, and a call that builds a pedalboard
plugin. Only built-in pedalboard effects are registered: nothing that loads third-party binaries
(``VST3Plugin``, ``AudioUnitPlugin``). ``Convolution`` takes an impulse-response file whose path is
resolved inside the recipe's folder and may not leave it. Registering imports nothing: pedalboard
is imported when an effect is first built or asked for its parameters.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import ParameterError
from .fsutil import recipe_path
from .registry import Registry

if TYPE_CHECKING:
    import pedalboard

ALLOWED_PLUGINS: tuple[str, ...] = (
    "Bitcrush", "Chorus", "Clipping", "Compressor", "Convolution", "Delay", "Distortion", "Gain",
    "GSMFullRateCompressor", "HighShelfFilter", "HighpassFilter", "Invert", "LadderFilter", "Limiter",
    "LowShelfFilter", "LowpassFilter", "MP3Compressor", "NoiseGate", "PeakFilter", "Phaser",
    "PitchShift", "Resample", "Reverb",
)
_PATH_PARAMS = {"Convolution": "impulse_response_filename"}

# Sane ranges for every numeric parameter, checked when a recipe loads (docs/security.md):
# a value outside is refused, so a recipe cannot ask for 30 CPU-seconds per audio second
# (``Resample`` at 1e8 Hz) or feed ``inf`` to a filter. Units are those of the names.
_FREQ = (10.0, 24000.0)
_UNIT = (0.0, 1.0)
PARAM_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "Bitcrush": {"bit_depth": (1.0, 32.0)},
    "Chorus": {"centre_delay_ms": (0.0, 100.0), "depth": _UNIT, "feedback": (-1.0, 1.0), "mix": _UNIT,
               "rate_hz": (0.0, 99.0)},
    "Clipping": {"threshold_db": (-100.0, 0.0)},
    "Compressor": {"attack_ms": (0.0, 2000.0), "ratio": (1.0, 100.0), "release_ms": (0.0, 10000.0),
                   "threshold_db": (-100.0, 0.0)},
    "Convolution": {"mix": _UNIT},
    "Delay": {"delay_seconds": (0.0, 10.0), "feedback": _UNIT, "mix": _UNIT},
    "Distortion": {"drive_db": (-60.0, 100.0)},
    "Gain": {"gain_db": (-100.0, 48.0)},
    "HighShelfFilter": {"cutoff_frequency_hz": _FREQ, "gain_db": (-48.0, 48.0), "q": (0.05, 40.0)},
    "HighpassFilter": {"cutoff_frequency_hz": _FREQ},
    "LadderFilter": {"cutoff_hz": _FREQ, "drive": (1.0, 100.0), "resonance": _UNIT},
    "Limiter": {"release_ms": (0.0, 10000.0), "threshold_db": (-100.0, 0.0)},
    "LowShelfFilter": {"cutoff_frequency_hz": _FREQ, "gain_db": (-48.0, 48.0), "q": (0.05, 40.0)},
    "LowpassFilter": {"cutoff_frequency_hz": _FREQ},
    "MP3Compressor": {"vbr_quality": (0.0, 10.0)},
    "NoiseGate": {"attack_ms": (0.0, 2000.0), "ratio": (1.0, 100.0), "release_ms": (0.0, 10000.0),
                  "threshold_db": (-150.0, 0.0)},
    "PeakFilter": {"cutoff_frequency_hz": _FREQ, "gain_db": (-48.0, 48.0), "q": (0.05, 40.0)},
    "Phaser": {"centre_frequency_hz": _FREQ, "depth": _UNIT, "feedback": (-1.0, 1.0), "mix": _UNIT,
               "rate_hz": (0.0, 99.0)},
    "PitchShift": {"semitones": (-24.0, 24.0)},
    "Resample": {"target_sample_rate": (1000.0, 96000.0)},
    "Reverb": {"damping": _UNIT, "dry_level": _UNIT, "freeze_mode": _UNIT, "room_size": _UNIT,
               "wet_level": _UNIT, "width": _UNIT},
}


def _check_ranges(name: str, params: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]]) -> None:
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if key in ranges:
                raise ParameterError(f"{name}: {key}={value!r} must be a number in [{ranges[key][0]:g}, {ranges[key][1]:g}]")
            continue
        if not math.isfinite(value):
            raise ParameterError(f"{name}: {key}={value!r} must be a finite number")
        low, high = ranges.get(key, (-math.inf, math.inf))
        if not low <= value <= high:
            raise ParameterError(f"{name}: {key}={value!r} must be within [{low:g}, {high:g}]")


@runtime_checkable
class Effect(Protocol):
    """The whole contract of an effect a recipe may name.

    ``name`` is its recipe name (``plugin: NAME``); ``ranges`` the allowed ``[low, high]`` of its
    numeric parameters (units in the names; a value outside is refused when the recipe loads);
    ``path_param`` the parameter that names a file inside the recipe's folder (``None``: none);
    ``parameters()`` every parameter name it takes; ``effect(**params)`` builds it: a
    ``pedalboard.Plugin`` (``plugin(y, sr)``: float32 ``(channels, n)`` -> ``(channels, n)``), so that
    a chain is one ``pedalboard.Pedalboard`` and its latency is compensated across the chain.
    """

    name: str
    ranges: Mapping[str, tuple[float, float]]
    path_param: str | None

    def parameters(self) -> list[str]: ...

    def __call__(self, **params: Any) -> pedalboard.Plugin: ...


class PedalboardEffect:
    """A built-in pedalboard plugin, by class name."""

    def __init__(self, name: str, *, path_param: str | None = None) -> None:
        self.name = name
        self.ranges = PARAM_RANGES.get(name, {})
        self.path_param = path_param

    def parameters(self) -> list[str]:
        """Parameter names (as pedalboard properties)."""
        if self.name == "Convolution":
            return ["impulse_response_filename", "mix"]
        import pedalboard

        probe = getattr(pedalboard, self.name)()
        return sorted(
            p for p in dir(probe)
            if not p.startswith("_") and p not in ("is_effect", "is_instrument") and not callable(getattr(probe, p))
        )

    def __call__(self, **params: Any) -> pedalboard.Plugin:
        import pedalboard

        return getattr(pedalboard, self.name)(**params)


#: The effects a recipe may use, by name (see :class:`Effect`).
EFFECTS = Registry("effect")
for _name in ALLOWED_PLUGINS:
    EFFECTS.register(_name)(PedalboardEffect(_name, path_param=_PATH_PARAMS.get(_name)))


def plugin_parameters(name: str) -> list[str]:
    """Parameter names of the effect ``name``."""
    return EFFECTS.factory(name).parameters()


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build_plugin(name: str, params: Mapping[str, Any], *, root: str | Path | None = None) -> pedalboard.Plugin:
    """Construct the effect ``name`` (:data:`EFFECTS`) with ``params``; raise :class:`ParameterError` with the fix.

    ``root`` is the folder that file parameters (impulse responses) are resolved in.
    """
    if name not in EFFECTS:
        allowed = EFFECTS.available()
        raise ParameterError(f"unknown effect {name!r}{_suggest(name, allowed)}; allowed: {', '.join(allowed)}")
    effect = EFFECTS.factory(name)
    valid = effect.parameters()
    for key in params:
        if key not in valid:
            raise ParameterError(
                f"unknown parameter {key!r} for {name}{_suggest(key, valid)}; valid: {', '.join(valid)}"
            )
    _check_ranges(name, params, effect.ranges)
    kwargs = dict(params)
    path_key = effect.path_param
    if path_key:
        if path_key not in kwargs:
            raise ParameterError(f"{name} needs {path_key!r} (a file inside the recipe's folder)")
        if root is None:  # never the current folder: a recipe's files live beside the recipe
            raise ParameterError(f"{name}: {path_key} {str(kwargs[path_key])!r} needs the recipe's folder; "
                                 "load the recipe from a file")
        try:
            path = recipe_path(root, str(kwargs[path_key]), what=f"{name} {path_key}")
            found = path.is_file()
        except ParameterError:
            raise
        except (OSError, ValueError) as exc:
            raise ParameterError(f"{name}: {path_key} {str(kwargs[path_key])!r} is not a usable file name "
                                 f"({exc.strerror if isinstance(exc, OSError) else exc})") from None
        if not found:
            raise ParameterError(f"{name}: impulse response {str(path)!r} does not exist")
        kwargs[path_key] = str(path)
    try:
        return effect(**kwargs)
    except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
        detail = str(exc).splitlines()[0]
        raise ParameterError(f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())}): {detail}") from None


def build_chain(effects, *, root: str | Path | None = None) -> pedalboard.Pedalboard:
    """A :class:`pedalboard.Pedalboard` from a list of ``(name, params)`` pairs."""
    import pedalboard

    return pedalboard.Pedalboard([build_plugin(name, params, root=root) for name, params in effects])
