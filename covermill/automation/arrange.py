"""Arrangement: the song's lead sheet, and the genre parts written from it.

:func:`lead_sheet_of` runs once per render (beside re-voicing): the pitch (pYIN) of the vocal
and bass stems -- through :func:`covermill.instruments.features.extract_controls`, whose memo
the re-voicing of the same stems then reuses -- and :func:`covermill.analysis.leadsheet.lead_sheet`
on the original mix. :func:`make_parts` generates the recipe's parts (drum groove, bass line,
comping) on the cover's bar/beat grid from the sheet retimed to the cover's tempo and key, and
plays each with FluidSynth, so every part is a track of its own (``part_<name>``) at the cover's
tempo, mixed like a re-voiced stem.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.leadsheet import lead_sheet
from ..instruments.features import extract_controls
from ..leadsheet import LeadSheet
from ..recipes import Recipe
from ..recipes.schema import PART_PREFIX

LEAD_STEM = "vocals"
BASS_STEM = "bass"


def _f0(y: np.ndarray | None, *, sr: int):
    """``(times_s, f0_hz with nan where unvoiced, voiced probability)`` of a stem, or ``None``."""
    if y is None or float(np.max(np.abs(y), initial=0.0)) < 1e-5:
        return None
    c = extract_controls(y, sr=sr)
    times = np.arange(len(c)) / c.frame_rate
    f0 = np.where(c.voiced > 0, c.f0_hz, np.nan).astype(np.float32)
    return times, f0, c.voiced.astype(np.float32)


#: Separators whose bass stem is clean enough for its onsets to help find the bars. The DSP
#: separator's bass carries bleed: on the demo its onsets turned a 4/4 reading (contrast 0.25
#: against 0.16 for 3/4) into 3/4, and bench_leadsheet measures bass notes F 0.26 from it.
CLEAN_BASS_SEPARATORS = ("demucs",)


def lead_sheet_of(mix: np.ndarray, stems: dict[str, np.ndarray], *, sr: int, separator: str = "dsp") -> LeadSheet:
    """The song's lead sheet: meter, key, chords, melody (from the vocal stem's pitch, its bleed
    notes checked against the mix), bass line (the bass stem's onsets when ``separator``
    separates bass cleanly, else chord roots), sections."""
    bass = stems.get(BASS_STEM) if separator in CLEAN_BASS_SEPARATORS else None
    lead = stems.get(LEAD_STEM)
    lead_f0 = _f0(lead, sr=sr)
    return lead_sheet(mix, sr=sr, lead_f0=lead_f0, bass_f0=_f0(bass, sr=sr),
                      lead_stem=lead if lead_f0 is not None else None)


@dataclass
class Parts:
    """Generated parts: audio ``(2, n_out)`` and MIDI (``pretty_midi.PrettyMIDI``) by track name
    (``part_<name>``), and what could not be honoured."""

    audio: dict[str, np.ndarray] = field(default_factory=dict)
    midi: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def check_parts(recipe: Recipe, *, styles_dir=None) -> None:
    """Fail before any audio work on an unknown style or a style of the wrong kind."""
    from ..instruments.styles import get_style

    for name, part in recipe.parts.items():
        if part.style == "none":
            continue
        style = get_style(part.style, kind=recipe.part_kind(name), user_dir=styles_dir)
        kind = recipe.part_kind(name)
        if style.kind != kind:
            from ..errors import ParameterError

            raise ParameterError(f"parts.{name}: style {part.style!r} is a {style.kind} style; this part is {kind} "
                                 f"(see `covermill styles list --kind {kind}`)")


def make_parts(recipe: Recipe, sheet: LeadSheet, *, sr: int, n_out: int, soundfont: str | Path | None = None,
               styles_dir=None, reuse=None) -> Parts:
    """Generate and play the recipe's parts over ``sheet`` (already at the cover's tempo and key)."""
    from ..instruments.parts import generate_part, part_midi, render_part

    out = Parts()
    if not recipe.parts:
        return out
    bpm = sheet.bpm if math.isfinite(sheet.bpm) else None
    results = {}
    for name, part in recipe.parts.items():
        kind = recipe.part_kind(name)
        result = generate_part(sheet, part.style, kind=kind, seed=part.seed, program=part.program, kit=part.kit,
                               user_dir=styles_dir)
        out.warnings += [f"part {name!r}: {w}" for w in result.warnings]
        track = f"{PART_PREFIX}{name}"
        out.midi[track] = part_midi(result, bpm=bpm or 120.0)
        results[track] = result

    def fresh(track: str) -> np.ndarray:
        if not results[track].midi.notes:
            return np.zeros((2, n_out), np.float32)
        return render_part(results[track], sr=sr, soundfont=soundfont, duration_s=n_out / sr)[:, :n_out]

    def play(track: str) -> np.ndarray:
        if reuse is None:
            return fresh(track)
        from .reuse import MIX_FIELDS, settings_key

        part = recipe.parts[track[len(PART_PREFIX):]]
        key = (settings_key(part, drop=MIX_FIELDS), sheet.to_json(), n_out, sr, str(soundfont))
        return reuse.get("part", key, lambda: fresh(track))

    with ThreadPoolExecutor(max(1, len(results))) as pool:  # one FluidSynth process per part, side by side
        for track, audio in zip(results, pool.map(play, results), strict=True):
            out.audio[track] = audio
    return out

