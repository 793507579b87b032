"""Audacity as the mixer: gain, pan and tempo/key of the stems done inside Audacity.

``render(..., mixer="audacity")`` hands the stems to Audacity instead of the pedalboard
mixer (:mod:`..mixer`) and Rubber Band (:mod:`..tempo`): each stem becomes a track with
the recipe's gain and pan (covermill's constant-power law, see
:func:`.session.audacity_gain_pan`), the kept stems get Audacity's *Change Tempo* and
*Change Pitch* (SoundTouch, Audacity's default; SBSMS with ``hq``), the re-voiced stems (already synthesized at the new tempo by
covermill) join them, and Audacity exports the mix as 32-bit float. Mastering stays in
covermill.

What Audacity's scripting can express here is :data:`CAN_EXPRESS`; a recipe that asks
for more (stem effects) is rejected before any work with that list.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ...errors import ParameterError
from .launcher import Audacity
from .session import audacity_gain_pan

CAN_EXPRESS = ("stem gain_db", "stem pan", "stem action keep/mute/revoice", "tempo (target_bpm, bpm_delta, ratio)",
               "key.semitones", "master (done by covermill)")


def check_recipe(recipe) -> None:
    """Raise :class:`ParameterError` if the recipe needs something the Audacity mixer cannot do."""
    problems = [f"stems.{name}.effects ({', '.join(e.plugin for e in spec.effects)})"
                for name, spec in recipe.stems.items() if spec.action != "mute" and spec.effects]
    problems += [f"stems.{name}.sends" for name, spec in recipe.stems.items() if spec.action != "mute" and spec.sends]
    problems += [f"buses.{name}" for name in recipe.buses]
    problems += [f"parts.{name}.{what}" for name, part in recipe.parts.items() for what in ("effects", "sends")
                 if getattr(part, what)]
    if problems:
        raise ParameterError(f"--mixer audacity cannot apply {'; '.join(problems)}; it can express: "
                             f"{', '.join(CAN_EXPRESS)}. Use the default mixer (pedalboard) for effects")


def mix(app: Audacity, *, sr: int, kept: dict, voiced: dict, time_ratio: float, semitones: float,
        n_out: int, hq: bool = False) -> np.ndarray:
    """Mix stems in Audacity; returns float32 ``(2, n_out)``.

    ``kept`` and ``voiced`` map names to ``(audio (channels, n), Stem)``: kept stems are at the
    source tempo (Audacity changes their tempo and key), voiced ones at the cover tempo.
    ``hq`` uses SBSMS instead of Audacity's default SoundTouch for tempo and pitch (about
    4x slower here).
    """
    from ...audio import read_audio, save_audio
    from .session import SessionTrack

    if not kept and not voiced:
        return np.zeros((2, n_out), np.float32)
    c = app.client
    c.do("SelectAll")
    c.do("RemoveTracks")
    with tempfile.TemporaryDirectory(prefix="covermill-amix-") as tmp:
        folder = Path(tmp)
        tracks: list[SessionTrack] = []
        for group in (kept, voiced):
            for name, (audio, spec) in group.items():
                path = folder / f"track{len(tracks):02d}.wav"
                save_audio(path, audio, sr=sr, subtype="FLOAT", clip="none")
                tracks.append(SessionTrack(name, path, gain_db=spec.gain_db, pan=spec.pan, channels=audio.shape[0]))
        for index, track in enumerate(tracks):
            c.do("Import2", Filename=str(track.path))
            gain, pan = audacity_gain_pan(track.gain_db, track.pan, channels=track.channels)
            c.do("Select", Track=index, TrackCount=1, Mode="Set")
            c.do("SetTrack", Name=track.name, Gain=gain, Pan=pan)
        if kept and (time_ratio != 1.0 or semitones != 0.0):
            # One stretch of the bus of kept stems, as covermill does: stems stretched one by one lose their
            # phase relations (separated stems partly cancel), which changes the level of their sum.
            seconds = max(a.shape[1] for a, _ in kept.values()) / sr
            c.do("Select", Track=0, TrackCount=len(kept), Mode="Set", Start=0.0, End=seconds)
            if len(kept) > 1:
                c.do("MixAndRender", timeout_s=600)  # gains and pans applied; the new track is last and selected
                c.do("Select", Track=len(tracks) - len(kept), TrackCount=1, Mode="Set", Start=0.0, End=seconds)
            if time_ratio != 1.0:
                c.do("ChangeTempo", Percentage=100.0 * (time_ratio - 1.0), SBSMS=hq, timeout_s=600)
            if semitones != 0.0:
                c.do("ChangePitch", Percentage=100.0 * (2.0 ** (semitones / 12.0) - 1.0), SBSMS=hq, timeout_s=600)
        out = folder / "mix.wav"
        c.do("SelectAll")  # Export2 exports the selection
        c.do("Export2", Filename=str(out), NumChannels=2, timeout_s=600)
        c.do("SelectAll")
        c.do("RemoveTracks")
        y, file_sr = read_audio(out)
    if file_sr != sr:
        raise ParameterError(f"Audacity exported at {file_sr} Hz instead of {sr} Hz")
    y = y[:, :n_out]
    return np.pad(y, ((0, 0), (0, n_out - y.shape[1]))).astype(np.float32)
