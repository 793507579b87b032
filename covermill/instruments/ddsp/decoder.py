"""DDSP's RNN decoder and the model that turns (f0, loudness) into audio.

:class:`RnnFcDecoder` mirrors ``ddsp.training.decoders.RnnFcDecoder``: one MLP per input
(scaled f0, scaled loudness), their outputs concatenated into a GRU, the GRU output
concatenated with the MLP outputs into a final MLP, and a dense layer to
``1 + n_harmonics + n_noise_bands`` outputs. Each MLP layer is Dense -> LayerNorm -> leaky ReLU.
:class:`DDSPModel` adds the processors: harmonic amplitude and distribution and noise
magnitudes through :func:`~.synth.exp_sigmoid`, the synthesizers and the reverb.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...errors import ParameterError
from .config import DDSPConfig
from .synth import Reverb, exp_sigmoid, filtered_noise, harmonic_synth, remove_above_nyquist, upsample

#: DDSP's input scaling: MIDI pitch / 127, loudness dB / 120 + 1 (``DDSPConfig.ld_range``: Magenta 2.x+ uses 80).
F0_RANGE = 127.0
LD_RANGE = 120.0


def hz_to_midi(f0_hz: torch.Tensor) -> torch.Tensor:
    return 12 * torch.log2(torch.clamp(f0_hz, min=1e-5) / 440.0) + 69.0


def mlp(n_in: int, units: int, layers: int, *, slope: float = 0.01, eps: float = 1e-5) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else units, units), nn.LayerNorm(units, eps=eps), nn.LeakyReLU(slope)]
    return nn.Sequential(*mods)


class RnnFcDecoder(nn.Module):
    """(f0, loudness) frames ``(b, t, 1)`` each -> raw controls ``(b, t, 1 + harmonics + noise bands)``."""

    def __init__(self, config: DDSPConfig) -> None:
        super().__init__()
        c = config
        kw = {"slope": c.leaky_slope, "eps": c.norm_eps}
        self.f0_mlp = mlp(1, c.mlp_units, c.mlp_layers, **kw)
        self.ld_mlp = mlp(1, c.mlp_units, c.mlp_layers, **kw)
        self.gru = nn.GRU(2 * c.mlp_units, c.gru_units, batch_first=True)
        self.out_mlp = mlp(c.gru_units + 2 * c.mlp_units, c.mlp_units, c.mlp_layers, **kw)
        self.dense_out = nn.Linear(c.mlp_units, 1 + c.n_harmonics + c.n_noise_bands)

    def forward(self, f0_scaled: torch.Tensor, ld_scaled: torch.Tensor) -> torch.Tensor:
        a, b = self.f0_mlp(f0_scaled), self.ld_mlp(ld_scaled)
        h, _ = self.gru(torch.cat([a, b], dim=-1))
        return self.dense_out(self.out_mlp(torch.cat([h, a, b], dim=-1)))


class DDSPModel(nn.Module):
    """Decoder + harmonic and noise synthesizers + reverb; audio at ``config.sample_rate``."""

    def __init__(self, config: DDSPConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.decoder = RnnFcDecoder(config)
        self.reverb = Reverb(max(1, int(round(config.reverb_s * config.sample_rate))), config.sample_rate,
                             free=config.reverb_mode == "free")

    def controls(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> dict[str, torch.Tensor]:
        """Synthesizer controls from ``f0_hz`` and ``loudness_db``, both ``(b, t)``."""
        c = self.config
        f0 = f0_hz[..., None]
        ld = loudness_db[..., None]
        if c.ld_clip:
            ld = ld.clamp_min(-c.ld_range)
        raw = self.decoder(hz_to_midi(f0) / F0_RANGE, ld / c.ld_range + 1.0)
        amplitude = exp_sigmoid(raw[..., :1])
        dist = exp_sigmoid(raw[..., 1 : 1 + c.n_harmonics])
        dist = remove_above_nyquist(dist, f0, c.sample_rate)
        dist = dist / dist.sum(-1, keepdim=True).clamp_min(1e-7)
        noise = exp_sigmoid(raw[..., 1 + c.n_harmonics :] + c.noise_bias)  # DDSP's initial bias -5: quiet noise
        return {"f0_hz": f0, "harmonic_amplitudes": amplitude * dist, "noise_magnitudes": noise}

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, *, gate: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Audio ``(b, t * hop)`` for frame controls ``(b, t)``; ``gate (b, t)`` in [0, 1] mutes frames."""
        ctl = self.controls(f0_hz, loudness_db)
        harm, noise = ctl["harmonic_amplitudes"], ctl["noise_magnitudes"]
        if gate is not None:
            harm = harm * gate[..., None]
            noise = noise * gate[..., None]
        n = f0_hz.shape[1] * self.config.hop
        audio = harmonic_synth(ctl["f0_hz"], harm, sample_rate=self.config.sample_rate, n_samples=n,
                               amp_method=self.config.amp_upsample)
        audio = audio + filtered_noise(noise, n_samples=n, generator=generator)
        return self.reverb(audio)

    @torch.no_grad()
    def render(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, gate: torch.Tensor, *, chunk_frames: int = 500,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Like :meth:`forward` for one long sequence ``(1, t)``, synthesized in chunks to bound memory.

        The decoder runs once over the whole sequence (the GRU keeps its state); oscillator
        phase carries from chunk to chunk and each chunk interpolates into the next frame.
        Spans where the gated harmonic amplitudes are zero on a frame and on the next (silence
        between phrases) skip the oscillator bank: their harmonic output is exactly zero, and
        only the phase is advanced, so the result equals synthesizing them (up to float
        rounding of the phase). The noise is drawn for every chunk, as before.
        """
        c = self.config
        if chunk_frames < 1:
            raise ParameterError(f"chunk_frames={chunk_frames} must be >= 1")
        # The GRU steps one frame at a time through tiny matrix products: a second intra-op
        # thread cannot help, and on a busy machine every step waits for it to be scheduled
        # (measured 0.1 s with 1 thread vs 10 s with 2 for 1200 frames at load 4 on 2 cores).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            ctl = self.controls(f0_hz, loudness_db)
        finally:
            torch.set_num_threads(threads)
        harm = ctl["harmonic_amplitudes"] * gate[..., None]
        noise = ctl["noise_magnitudes"] * gate[..., None]
        f0 = ctl["f0_hz"]
        n_frames = f0.shape[1]
        sounding = (harm != 0).any(-1).any(0)  # (t,) frames with any harmonic amplitude
        quiet = ~(sounding | torch.cat([sounding[1:], sounding.new_zeros(1)]))  # silent on this and the next frame
        out, phase = [], None
        for s in range(0, n_frames, chunk_frames):
            e = min(s + chunk_frames, n_frames)
            harmonic = torch.zeros(f0.shape[0], (e - s) * c.hop, dtype=harm.dtype, device=harm.device)
            for a, b, silent in _runs(quiet[s:e], s):
                b1 = min(b + 1, n_frames)  # one frame of look-ahead: interpolation runs on across the seam
                n = (b - a) * c.hop
                omega = None
                if silent:
                    omega = 2 * torch.pi * upsample(f0[:, a:b1], (b1 - a) * c.hop).double() / c.sample_rate
                    phase0 = phase if phase is not None else 0.0
                    phase = (phase0 + omega[:, :n].sum(1, keepdim=True)) % (2 * torch.pi)
                    continue
                y, phase = harmonic_synth(f0[:, a:b1], harm[:, a:b1], sample_rate=c.sample_rate,
                                          n_samples=(b1 - a) * c.hop, phase0=phase, return_phase=True,
                                          amp_method=c.amp_upsample)
                if b1 > b:  # the phase after this span is the phase at sample n, not at the look-ahead's end
                    omega = 2 * torch.pi * upsample(f0[:, a:b1], (b1 - a) * c.hop).double() / c.sample_rate
                    phase = (phase - omega[:, n:].sum(1, keepdim=True)) % (2 * torch.pi)
                harmonic[:, (a - s) * c.hop : (b - s) * c.hop] = y[:, :n]
            out.append(harmonic + filtered_noise(noise[:, s:e], n_samples=(e - s) * c.hop, generator=generator))
        return self.reverb(torch.cat(out, dim=1))


def _runs(mask: torch.Tensor, offset: int) -> list[tuple[int, int, bool]]:
    """``(start, end, value)`` of the runs of equal values in the boolean ``mask``, shifted by ``offset``."""
    m = mask.cpu().numpy()
    if len(m) == 0:
        return []
    cuts = [0, *(np.flatnonzero(m[1:] != m[:-1]) + 1).tolist(), len(m)]
    return [(offset + a, offset + b, bool(m[a])) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
