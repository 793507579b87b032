"""The built-in instrument kinds (ways of making an instrument), registered in
:data:`covermill.instruments.KINDS`; the contract is :class:`~covermill.instruments.base.InstrumentKind`.

* ``parametric``: the harmonic-plus-noise synthesizer playing a timbre (YAML: built-in, or a copy
  in the instruments folder that wins over it); named by ``revoice: {instrument: NAME}``;
* ``ddsp``: a trained DDSP instrument, one sub-folder of the instruments folder; named the same way;
* ``midi``: the stem transcribed by basic-pitch and played by FluidSynth with a General MIDI
  program (``revoice: {midi_program: ...}``);
* ``drums``: a drum stem's kick/snare/hi-hat hits played on a General MIDI kit (``revoice: {drum_kit: ...}``).

Registering imports no backend: each kind imports its instrument class when it builds one.
"""

from __future__ import annotations

import os

from . import KINDS
from .base import Instrument

PathLike = str | os.PathLike | None


@KINDS.register("parametric")
class ParametricKind:
    name = "parametric"
    field = "instrument"
    priority = 0  # a parametric instrument wins a name a trained one also has

    @staticmethod
    def _timbres(instruments_dir: PathLike, need: str | None = None):
        """Built-in timbres, overridden by ``*.yaml`` files in the instruments folder. A file that
        does not load is skipped with a warning, unless it is ``need`` (the instrument asked for)."""
        from .ddsp.store import instruments_dir as resolve
        from .parametric import BUILTIN_TIMBRES
        from .timbre import load_folder

        root = resolve(instruments_dir)
        if instruments_dir is None and not root.is_dir():
            return BUILTIN_TIMBRES
        return {**BUILTIN_TIMBRES, **load_folder(root, strict=False, need=need)}

    def names(self, instruments_dir: PathLike = None) -> dict[str, str]:
        return {name: t.description for name, t in sorted(self._timbres(instruments_dir).items())}

    def offers(self, name: str, instruments_dir: PathLike = None) -> bool:
        return name in self._timbres(instruments_dir, need=name)

    def label(self, name: str, instruments_dir: PathLike = None) -> str:
        from .parametric import BUILTIN_TIMBRES

        return "built-in" if self._timbres(instruments_dir)[name] is BUILTIN_TIMBRES.get(name) else "user"

    def example(self, folder: os.PathLike) -> str:
        return "cello"

    def build(self, value: str, *, instruments_dir: PathLike = None, **params) -> Instrument:
        from .parametric import ParametricInstrument

        return ParametricInstrument(self._timbres(instruments_dir, need=value)[value], **params)


@KINDS.register("ddsp")
class DDSPKind:
    name = "ddsp"
    field = "instrument"
    priority = 10

    def names(self, instruments_dir: PathLike = None) -> dict[str, str]:
        from .ddsp.store import list_trained

        return list_trained(instruments_dir)

    def offers(self, name: str, instruments_dir: PathLike = None) -> bool:
        return name in self.names(instruments_dir)

    def label(self, name: str, instruments_dir: PathLike = None) -> str:
        return "trained"

    def example(self, folder: os.PathLike) -> str:
        """An untrained (seeded) instrument of the smallest config, ``example``, written into ``folder``:
        it exercises the loading and transfer paths, as demucs's ``demucs_unittest`` does."""
        from pathlib import Path

        import torch

        from .ddsp import store
        from .ddsp.config import preset
        from .ddsp.decoder import DDSPModel

        out = Path(folder) / "example"
        if not (out / store.META).is_file():
            out.mkdir(parents=True, exist_ok=True)
            cfg = preset("tiny")
            with torch.random.fork_rng():
                torch.manual_seed(0)
                model = DDSPModel(cfg)
            store.write_tensors(out / store.WEIGHTS, model.state_dict())
            store.write_meta(out, {"config": cfg, "step": 0, "loss": 0.0, "description": "untrained example",
                                   "stats": {"f0_range_hz": [200.0, 800.0], "f0_median_hz": 400.0,
                                             "loudness_mean_db": -30.0, "loudness_std_db": 10.0,
                                             "loudness_max_db": -10.0, "seconds": 0.0}})
        return "example"

    def build(self, value: str, *, instruments_dir: PathLike = None, **params) -> Instrument:
        from .ddsp.instrument import DDSPInstrument
        from .ddsp.store import instruments_dir as resolve

        return DDSPInstrument(resolve(instruments_dir) / value, **params)


class _ByField:
    """A kind selected by a ``revoice`` field of its own: it offers no names."""

    priority = 100

    def names(self, instruments_dir: PathLike = None) -> dict[str, str]:
        return {}

    def offers(self, name: str, instruments_dir: PathLike = None) -> bool:
        return False

    def label(self, name: str, instruments_dir: PathLike = None) -> str:
        return self.name


@KINDS.register("midi")
class MidiKind(_ByField):
    name = "midi"
    field = "midi_program"

    def example(self, folder: os.PathLike) -> str:
        return "Acoustic Grand Piano"

    def build(self, value, *, instruments_dir: PathLike = None, **params) -> Instrument:
        """``value``: a GM program name or 0-127; ``params``: ``soundfont`` and the feel (see
        :class:`~covermill.instruments.midi.MidiInstrument`)."""
        from .midi import MidiInstrument

        return MidiInstrument(value, **params)


@KINDS.register("drums")
class DrumsKind(_ByField):
    name = "drums"
    field = "drum_kit"

    def example(self, folder: os.PathLike) -> str:
        return "standard"

    def build(self, value, *, instruments_dir: PathLike = None, **params) -> Instrument:
        """``value``: a GM kit name or number; ``params``: ``soundfont`` and the feel (see
        :class:`~covermill.instruments.drums.DrumKitInstrument`)."""
        from .drums import DrumKitInstrument

        return DrumKitInstrument(value, **params)
