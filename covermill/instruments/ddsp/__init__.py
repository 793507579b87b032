"""DDSP instruments (Engel et al., ICLR 2020): trainable harmonic-plus-noise synthesis in torch.

- :mod:`.synth`: oscillator bank, filtered noise, reverb, multi-scale spectral loss;
- :mod:`.decoder`: DDSP's RNN decoder and the full model;
- :mod:`.config`: the ``cpu``, ``full`` and ``tiny`` configurations;
- :mod:`.train`: features and excerpts of a folder of recordings, training with checkpoints;
- :mod:`.store`: the instruments folder, safetensors + JSON;
- :mod:`.instrument`: :class:`DDSPInstrument`, a trained instrument used for transfer.

Importing this package does not import torch; the modules that need it do.
"""

from __future__ import annotations

from .store import instruments_dir, list_trained


def __getattr__(name: str):
    if name == "DDSPInstrument":
        from .instrument import DDSPInstrument

        return DDSPInstrument
    if name == "train_instrument":
        from .train import train_instrument

        return train_instrument
    raise AttributeError(name)


__all__ = ["DDSPInstrument", "instruments_dir", "list_trained", "train_instrument"]
