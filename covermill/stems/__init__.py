"""Source separation: split a song into vocals, drums, bass and other.

Backends register by name; :func:`get` builds one, :func:`available` lists them.
``dsp`` (the embedded, weight-free separator) lives in :mod:`covermill.stems.dsp`, ``demucs``
(Demucs 4 from local checkpoints) in :mod:`covermill.stems.demucs`; ``auto`` picks Demucs when
its weights are found and DSP otherwise (:func:`resolve` returns the one it picked).
"""

from __future__ import annotations

from ..registry import Registry
from .base import STEM_NAMES, Separator


def _load_builtin() -> None:
    from . import auto, demucs, dsp  # noqa: F401  (register "auto", "demucs", "dsp"; none imports torch)


#: The separators, by name (see :class:`covermill.registry.Registry`).
SEPARATORS = Registry("separator", loader=_load_builtin)
register = SEPARATORS.register
available = SEPARATORS.available


def get(name: str, **params) -> Separator:
    """Build the separator ``name`` with ``params``; unknown names list the choices."""
    return SEPARATORS.get(name, **params)


def resolve(name: str, **params) -> Separator:
    """Like :func:`get`, but ``auto`` is replaced by the separator it chooses (logged)."""
    sep = get(name, **params)
    return sep.choose() if hasattr(sep, "choose") else sep


__all__ = ["SEPARATORS", "STEM_NAMES", "Separator", "available", "get", "register", "resolve"]
