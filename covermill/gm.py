"""General MIDI names: the 128 programs and the drum kits, by name or number.

Shared lower layer: the recipe schema validates ``midi_program`` / ``drum_kit`` with it at load
time; the MIDI instruments and the genre parts play them.
"""

from __future__ import annotations

import difflib

import numpy as np

from .errors import ParameterError

#: GM drum kits (program numbers on the percussion channel, as in FluidR3 GM's bank 128).
GM_DRUM_KITS = {"standard": 0, "room": 8, "power": 16, "electronic": 24, "tr808": 25, "jazz": 32, "brush": 40,
                "orchestra": 48}


def gm_program_names() -> list[str]:
    """The 128 General MIDI program names, index = program number."""
    from pretty_midi.constants import INSTRUMENT_MAP

    return list(INSTRUMENT_MAP)


def program_number(program: str | int) -> int:
    """GM program number of a name (case and spacing ignored) or of a number 0-127."""
    if isinstance(program, (int, np.integer)) and not isinstance(program, bool):
        if not 0 <= int(program) <= 127:
            raise ParameterError(f"midi_program={program} must be a GM program number 0-127 or a name")
        return int(program)
    if not isinstance(program, str):
        raise ParameterError(f"midi_program={program!r} must be a GM program name or a number 0-127")
    names = gm_program_names()
    key = " ".join(program.replace("_", " ").split()).lower()
    for i, name in enumerate(names):
        if name.lower() == key:
            return i
    close = difflib.get_close_matches(program, names, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "see `covermill instruments list --midi`"
    raise ParameterError(f"unknown General MIDI program {program!r} ({hint})")


def kit_number(kit: str | int) -> int:
    """GM drum kit program of a name (``brush``, ``jazz``, ...) or a number 0-127."""
    if isinstance(kit, (int, np.integer)) and not isinstance(kit, bool):
        if not 0 <= int(kit) <= 127:
            raise ParameterError(f"drum_kit={kit} must be a kit name or a program number 0-127")
        return int(kit)
    key = str(kit).strip().lower().replace(" ", "").replace("_", "").removesuffix("kit")
    if key in GM_DRUM_KITS:
        return GM_DRUM_KITS[key]
    raise ParameterError(f"unknown drum kit {kit!r}; choose one of {', '.join(GM_DRUM_KITS)} or a number 0-127")
