"""Source separation: split a song into vocals, drums, bass and other.

Backends register by name; :func:`get` builds one, :func:`available` lists them.
``dsp`` (the embedded, weight-free separator) lives in :mod:`covermill.stems.dsp`, ``demucs``
(Demucs 4 from local checkpoints) in :mod:`covermill.stems.demucs`; ``auto`` picks Demucs when
its weights are found and DSP otherwise (:func:`resolve` returns the one it picked).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ParameterError
from .base import STEM_NAMES, Separator

_REGISTRY: dict[str, Callable[..., Separator]] = {}


def register(name: str) -> Callable:
    """Class decorator: make a separator available under ``name``."""

    def deco(cls):
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> list[str]:
    """Names of the registered separators."""
    _load_builtin()
    return sorted(_REGISTRY)


def get(name: str, **params) -> Separator:
    """Build the separator ``name`` with ``params``; unknown names list the choices."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ParameterError(f"unknown separator {name!r}; choose one of {', '.join(available())}") from None
    return factory(**params)


def resolve(name: str, **params) -> Separator:
    """Like :func:`get`, but ``auto`` is replaced by the separator it chooses (logged)."""
    sep = get(name, **params)
    return sep.choose() if hasattr(sep, "choose") else sep


def _load_builtin() -> None:
    from . import auto, demucs, dsp  # noqa: F401  (register "auto", "demucs", "dsp"; none imports torch)


__all__ = ["STEM_NAMES", "Separator", "available", "get", "register", "resolve"]
