"""Timbre transfer: re-voice a stem as another instrument.

:func:`get` resolves an instrument name; :func:`available` lists them. The built-in
parametric instruments (:mod:`covermill.instruments.parametric`) need no training; trained
DDSP instruments (:mod:`covermill.instruments.ddsp`) live in the instruments folder
(``--instruments-dir``, ``$COVERMILL_INSTRUMENTS_DIR`` or the user's data dir).
"""

from __future__ import annotations

import os

from ..errors import ParameterError
from .base import Instrument
from .ddsp.store import instruments_dir, list_trained
from .parametric import BUILTIN_TIMBRES, ParametricInstrument, Timbre


def available(instruments_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: description}`` of every instrument that can be used now: built-ins first, then trained ones."""
    found = {name: t.description for name, t in sorted(BUILTIN_TIMBRES.items())}
    for name, desc in list_trained(instruments_dir).items():
        found.setdefault(name, desc)
    return found


def kinds(instruments_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: "built-in" | "trained"}`` for :func:`available`'s names."""
    return {name: ("built-in" if name in BUILTIN_TIMBRES else "trained") for name in available(instruments_dir)}


def get(name: str, *, instruments_dir: str | os.PathLike | None = None, **params) -> Instrument:
    """The instrument ``name`` (a built-in, else a trained one); an unknown name lists the choices."""
    if name in BUILTIN_TIMBRES:
        return ParametricInstrument(BUILTIN_TIMBRES[name], **params)
    if name in list_trained(instruments_dir):
        from .ddsp.instrument import DDSPInstrument
        from .ddsp.store import instruments_dir as resolve

        return DDSPInstrument(resolve(instruments_dir) / name, **params)
    raise ParameterError(f"unknown instrument {name!r}; choose one of {', '.join(available(instruments_dir))}")


__all__ = ["Instrument", "ParametricInstrument", "Timbre", "available", "get", "instruments_dir", "kinds"]
