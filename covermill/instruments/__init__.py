"""Timbre transfer: re-voice a stem as another instrument.

:func:`get` resolves an instrument name; :func:`available` lists them. The built-in
parametric instruments (:mod:`covermill.instruments.parametric`) need no training.
"""

from __future__ import annotations

from ..errors import ParameterError
from .base import Instrument
from .parametric import BUILTIN_TIMBRES, ParametricInstrument, Timbre


def available() -> dict[str, str]:
    """``{name: description}`` of every instrument that can be used now."""
    return {name: t.description for name, t in sorted(BUILTIN_TIMBRES.items())}


def get(name: str, **params) -> Instrument:
    """The instrument ``name``; an unknown name lists the choices."""
    if name in BUILTIN_TIMBRES:
        return ParametricInstrument(BUILTIN_TIMBRES[name], **params)
    raise ParameterError(f"unknown instrument {name!r}; choose one of {', '.join(available())}")


__all__ = ["Instrument", "ParametricInstrument", "Timbre", "available", "get"]
