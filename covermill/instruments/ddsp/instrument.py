"""A trained DDSP instrument as an :class:`~covermill.instruments.base.Instrument`.

Transfer follows DDSP's timbre-transfer demo: the stem's f0 moves by whole octaves into the
instrument's f0 range, its loudness on voiced frames is shifted so its mean matches the
training material's, the decoder turns (f0, loudness) into synthesizer controls, and
unvoiced frames are gated to silence (a decoder left alone would breathe noise there).

:meth:`DDSPInstrument.render` also plays notes (``mode="notes"``: f0 from the notes, loudness and
optional pitch expression from the stem) and chords (``mode="chords"``: one model run per voice,
summed), returning a :class:`~covermill.instruments.notes.Voicing`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ...audio import check_audio, resample
from ...errors import ParameterError
from ...leadsheet import Note
from ..features import FEATURE_SR, Controls, extract_controls, retime
from ..notes import (
    NoNotesError,
    Voicing,
    allocate_voices,
    check_mode,
    check_notes,
    expression_cents,
    lead_line,
    match_rms,
    midi_hz,
    monophonic,
    note_tracks,
    retime_notes,
    stem_notes,
)
from ..parametric import octave_shift
from . import store
from .train import fill_unvoiced

#: crepe's hop for transfer: 320 samples at 16 kHz, 50 looks per second (see :class:`DDSPInstrument`).
TRANSFER_CREPE_HOP = 320


class DDSPInstrument:
    """A trained instrument in ``folder`` (``instrument.json`` + ``model.safetensors``); loads on first use.

    ``f0_method`` (``"pyin"`` or ``"crepe"``) tracks the stem's pitch; ``None`` uses the one the
    instrument was trained with. Features take the fast path of
    :func:`~covermill.instruments.features.extract_controls` (f0 only on non-silent runs; crepe's
    fast network and decoding), within 50 cents of the exact path on voiced frames;
    ``exact_f0=True`` analyses every frame with the published trackers.

    ``crepe_hop`` (samples at 16 kHz) is how often crepe looks; f0 is interpolated in log
    frequency to the model's frame rate between looks. The default, :data:`TRANSFER_CREPE_HOP`
    (50 looks/s), halves crepe's time -- what brings a 3-minute transfer with crepe tiny past
    5x realtime on 2 cores -- at the cost measured in ``docs/BENCHMARKS.md`` (raw pitch
    accuracy unchanged at 0.990/0.995 on vocadito and NightOwl; voicing false alarm 0.150 ->
    0.140 and 0.105 -> 0.137). ``None`` looks at every model frame. A hop that is not a
    multiple of the model's hop falls back to every frame.
    """

    def __init__(self, folder: str | os.PathLike, *, f0_method: str | None = None, device: str = "cpu",
                 seed: int = 0, exact_f0: bool = False, crepe_hop: int | None = TRANSFER_CREPE_HOP) -> None:
        self.folder = Path(folder)
        self.name = self.folder.name
        self.f0_method = f0_method
        self.device = device
        self.seed = seed
        self.exact_f0 = exact_f0
        self.crepe_hop = crepe_hop

    def check(self) -> None:
        """Fail early (before any audio work) on a missing or foreign ``instrument.json``; the
        weights load on first use."""
        store.read_meta(self.folder)

    def load(self) -> DDSPInstrument:
        """Read config, statistics and weights (safetensors, never pickle) into ``model_`` / ``meta_``."""
        if getattr(self, "model_", None) is not None:
            return self
        from .decoder import DDSPModel

        meta = store.read_meta(self.folder)
        model = DDSPModel(meta["config"])
        store.load_state(model, store.read_tensors(self.folder / store.WEIGHTS), self.folder / store.WEIGHTS)
        self.meta_ = meta
        self.model_ = model.to(self.device).eval()
        return self

    @property
    def config(self):
        return self.load().meta_["config"]

    def synthesize(self, controls: Controls) -> np.ndarray:
        """Render frame ``controls`` (at the model's frame rate) to mono float32 at the model's sample rate."""
        import torch

        self.load()
        gate = np.convolve(controls.voiced, np.ones(3) / 3, mode="same").astype(np.float32)  # soft note edges
        f0 = fill_unvoiced(controls.f0_hz, controls.voiced)
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32))[None].to(self.device)  # noqa: E731
        gen = torch.Generator(device=self.device).manual_seed(self.seed)
        audio = self.model_.render(as_t(f0), as_t(controls.loudness_db), as_t(gate), generator=gen)
        return audio[0].cpu().numpy().astype(np.float32)

    def adjust(self, controls: Controls, *, semitones: float = 0.0) -> Controls:
        """Transpose by ``semitones``, then by octaves into the instrument's range; match loudness on voiced frames."""
        stats = self.load().meta_["stats"]
        shift = 2.0 ** (semitones / 12.0)
        factor = shift * octave_shift(controls.f0_hz * shift, tuple(stats["f0_range_hz"]))
        voiced = controls.voiced > 0
        loud = controls.loudness_db.copy()
        if voiced.any():
            loud = loud + (stats["loudness_mean_db"] - float(np.mean(loud[voiced])))
            loud = np.minimum(loud, stats["loudness_max_db"] + 3.0)
        return Controls((controls.f0_hz * factor).astype(np.float32), controls.voiced, loud.astype(np.float32),
                        controls.frame_rate)

    def revoice(self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0) -> np.ndarray:
        """See :class:`~covermill.instruments.base.Instrument`. Output RMS matches the input stem's."""
        return self.render(y, sr=sr, time_ratio=time_ratio, semitones=semitones).audio

    def render(self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0,
               notes: tuple[Note, ...] | None = None, mode: str = "expressive", expression: bool = True) -> Voicing:
        """Re-voice stem ``y``: a :class:`~covermill.instruments.notes.Voicing` (audio ``(1, n_out)``, RMS
        matched to the stem's; the notes as played, ``None`` in ``expressive`` mode).

        ``mode`` and ``notes`` as in :meth:`~covermill.instruments.parametric.ParametricInstrument.render`:
        ``"expressive"`` follows the stem's f0 (:meth:`revoice`); ``"notes"`` takes f0 from the notes'
        top line (with the stem's pitch expression within +-50 cents when ``expression``) and the
        loudness from the stem; ``"chords"`` runs the model once per voice and sums the voices.
        """
        y = check_audio(y, sr)
        if time_ratio <= 0:
            raise ParameterError(f"time_ratio={time_ratio} must be > 0")
        if check_mode(mode) == "expressive":
            return Voicing(self._expressive(y, sr=sr, time_ratio=time_ratio, semitones=semitones))
        cfg = self.config
        controls = self._controls(y, sr=sr, time_ratio=time_ratio)
        n_out = int(round(y.shape[1] / time_ratio))
        detune = semitones - round(semitones)
        stem_f0 = controls.f0_hz * 2.0 ** (semitones / 12.0)
        if notes is None:
            notes = retime_notes(stem_notes(y, sr=sr), time_ratio=time_ratio, semitones=semitones)
            if mode == "notes":  # the notes the stem's own f0 confirms, not its bleed
                notes = lead_line(notes, stem_f0 / 2.0 ** (detune / 12.0), controls.frame_rate)
        notes = check_notes(notes)
        notes = monophonic(notes) if mode == "notes" else notes
        if notes:
            factor = octave_shift(np.array([midi_hz(n.pitch) for n in notes]), tuple(self.meta_["stats"]["f0_range_hz"]))
            shift = 12 * int(round(np.log2(factor)))
            notes = tuple(replace(n, pitch=int(np.clip(n.pitch + shift, 0, 127))) for n in notes)
        if not notes:
            raise NoNotesError("no notes to play (silent, noisy or purely percussive stem, or an empty note list); "
                               "keep or mute this stem, or re-voice it expressively",
                               Voicing(np.zeros((1, n_out), np.float32), (), None))
        voices = [list(notes)] if mode == "notes" else allocate_voices(notes, max_voices=8)
        tracks = [note_tracks(v, sr=cfg.frame_rate, n_samples=len(controls), detune_semitones=detune) for v in voices]
        inside = np.zeros(len(controls), bool)
        for _, gate, _ in tracks:
            inside |= gate > 0
        loud = np.maximum(controls.loudness_db, np.float32(np.percentile(controls.loudness_db[inside], 95) - 30.0))
        audio = None
        for f0, gate, pitch in tracks:
            if mode == "notes" and expression:
                f0 = (f0 * 2.0 ** (expression_cents(stem_f0, pitch) / 1200.0)).astype(np.float32)
            voice = Controls(f0, gate, loud.astype(np.float32), controls.frame_rate)
            adjusted = self.adjust(voice)  # loudness matched to the training material
            part = self.synthesize(Controls(f0, gate, adjusted.loudness_db, controls.frame_rate))
            audio = part if audio is None else audio + part
        count = np.sum([g for _, g, _ in tracks], axis=0)
        audio = audio / np.float32(np.sqrt(max(1.0, float(count[count > 0].mean()))))
        out = resample(audio[None], sr_in=cfg.sample_rate, sr_out=sr)[0]
        out = np.pad(out, (0, max(0, n_out - len(out))))[:n_out].astype(np.float32)
        return Voicing(match_rms(out, y)[None, :], notes, None)

    def _controls(self, y: np.ndarray, *, sr: int, time_ratio: float) -> Controls:
        """The stem's controls at the model's frame rate, retimed to cover ``round(n / time_ratio)`` samples."""
        cfg = self.config
        method = self.f0_method or cfg.f0_method
        hop = FEATURE_SR // cfg.frame_rate
        crepe_hop = self.crepe_hop
        if method != "crepe" or self.exact_f0 or crepe_hop is None or crepe_hop % hop:
            crepe_hop = None
        controls = extract_controls(y, sr=sr, f0_method=method, hop_length=hop, device=self.device,
                                    exact=self.exact_f0, crepe_hop=crepe_hop)
        n_out = int(round(y.shape[1] / time_ratio))
        n_frames = int(np.ceil(n_out / sr * cfg.frame_rate)) + 1
        if time_ratio != 1.0 or len(controls) < n_frames:
            controls = retime(controls, time_ratio=time_ratio, n_frames=n_frames)
        return controls

    def _expressive(self, y: np.ndarray, *, sr: int, time_ratio: float, semitones: float) -> np.ndarray:
        cfg = self.config
        controls = self._controls(y, sr=sr, time_ratio=time_ratio)
        n_out = int(round(y.shape[1] / time_ratio))
        if not (controls.voiced > 0).any():
            return np.zeros((1, n_out), np.float32)
        audio = self.synthesize(self.adjust(controls, semitones=semitones))
        out = resample(audio[None], sr_in=cfg.sample_rate, sr_out=sr)[0]
        out = np.pad(out, (0, max(0, n_out - len(out))))[:n_out]
        rms_in = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
        rms_out = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
        if rms_out > 1e-9:
            out = out * (rms_in / rms_out)
        return out[None, :].astype(np.float32)
