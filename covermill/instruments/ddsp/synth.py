"""Differentiable harmonic-plus-noise synthesis in torch, after DDSP (Engel et al., ICLR 2020).

Frame-rate controls (``(batch, frames, ...)``) become audio (``(batch, samples)``) with
``samples = frames * hop``:

- :func:`harmonic_synth`: an additive bank of ``n_harmonics`` sinusoids at integer multiples
  of f0; amplitudes and f0 are upsampled linearly to audio rate (no zipper noise) and every
  harmonic at or above Nyquist gets zero amplitude.
- :func:`filtered_noise`: white noise shaped per frame by a linear-phase FIR designed from
  ``n_bands`` magnitudes (frequency sampling, Hann-windowed), overlap-added frame by frame.
- :class:`Reverb`: a learned impulse response convolved with the dry signal (dry path kept).
- :func:`multiscale_spectral_loss`: L1 of linear and log magnitudes over several FFT sizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def exp_sigmoid(x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7):
    """DDSP's scaled sigmoid ``max * sigmoid(x) ** log(exponent) + threshold``: positive, well-conditioned."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


def upsample(x: torch.Tensor, n_samples: int, method: str = "linear") -> torch.Tensor:
    """Interpolate ``(batch, frames, channels)`` to ``(batch, n_samples, channels)``.

    Frame ``i`` sits at sample ``i * hop``; the last frame is held to the end. ``linear``
    interpolates linearly between frames (as ``tf.compat.v1.image.resize`` does in DDSP's
    ``core.resample``); ``window`` crossfades with half-overlapping periodic Hann windows, DDSP's
    ``upsample_with_windows`` (``a[i] cos^2 + a[i+1] sin^2`` of ``pi/2 * (n - i*hop) / hop``).
    """
    b, n_frames, c = x.shape
    hop = n_samples // n_frames
    if n_frames == 1:
        return x.expand(b, n_samples, c)
    if method == "window":
        if n_samples != n_frames * hop:
            raise ValueError(f"window upsampling needs n_samples={n_samples} to be a multiple of {n_frames} frames")
        xe = torch.cat([x, x[:, -1:]], dim=1)
        t = torch.arange(hop, device=x.device, dtype=torch.float64) / hop
        w = (torch.sin(0.5 * math.pi * t) ** 2).to(x.dtype)[None, None, :, None]
        out = xe[:, :-1, None, :] * (1 - w) + xe[:, 1:, None, :] * w
        return out.reshape(b, n_samples, c)
    if method != "linear":
        raise ValueError(f"unknown upsampling method {method!r}")
    # interpolate over the span of frame centres, then hold the last value for one hop
    inner = F.interpolate(x.transpose(1, 2), size=(n_frames - 1) * hop + 1, mode="linear", align_corners=True)
    tail = inner[..., -1:].expand(b, c, n_samples - inner.shape[-1])
    return torch.cat([inner, tail], dim=-1).transpose(1, 2)


def remove_above_nyquist(amplitudes: torch.Tensor, f0_hz: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Zero the harmonics ``k * f0 >= sr / 2``; ``amplitudes (b, t, k)``, ``f0_hz (b, t, 1)``."""
    k = torch.arange(1, amplitudes.shape[-1] + 1, device=amplitudes.device, dtype=amplitudes.dtype)
    return amplitudes * (f0_hz * k < sample_rate / 2).to(amplitudes.dtype)


def harmonic_synth(
    f0_hz: torch.Tensor, amplitudes: torch.Tensor, *, sample_rate: int, n_samples: int,
    phase0: torch.Tensor | None = None, return_phase: bool = False, amp_method: str = "linear",
):
    """Sum of harmonics; ``f0_hz (b, t, 1)``, per-harmonic ``amplitudes (b, t, k)`` -> ``(b, n_samples)``.

    Amplitudes are band-limited at frame rate and again at audio rate (f0 glides between frames).
    ``phase0 (b, 1, 1)`` continues a previous chunk; ``return_phase`` also returns the phase
    after the last sample, for the next chunk. ``amp_method`` upsamples the amplitudes
    (:func:`upsample`); f0 is always upsampled linearly.
    """
    amplitudes = remove_above_nyquist(amplitudes, f0_hz, sample_rate)
    f0 = upsample(f0_hz, n_samples)  # (b, n, 1)
    amps = upsample(amplitudes, n_samples, amp_method)  # (b, n, k)
    amps = remove_above_nyquist(amps, f0, sample_rate)
    # phase accumulated in float64: float32 cumsum drifts audibly over seconds
    omega = 2 * math.pi * f0.double() / sample_rate
    phase64 = torch.cumsum(omega, dim=1)
    if phase0 is not None:
        phase64 = phase64 + phase0
    phase = (phase64 % (2 * math.pi)).to(amps.dtype)
    k = torch.arange(1, amps.shape[-1] + 1, device=amps.device, dtype=amps.dtype)
    audio = (torch.sin(phase * k) * amps).sum(-1)
    if return_phase:
        return audio, phase64[:, -1:] % (2 * math.pi)
    return audio


def noise_filter_ir(magnitudes: torch.Tensor) -> torch.Tensor:
    """Linear-phase FIR ``(b, t, 2 * (bands - 1))`` from filter ``magnitudes (b, t, bands)``.

    Frequency sampling: zero-phase IR by inverse real FFT, shifted to be causal, Hann window.
    """
    ir = torch.fft.irfft(torch.complex(magnitudes, torch.zeros_like(magnitudes)), dim=-1)
    n = ir.shape[-1]
    ir = torch.roll(ir, n // 2, dims=-1)
    return ir * torch.hann_window(n, periodic=False, device=ir.device, dtype=ir.dtype)


def filtered_noise(magnitudes: torch.Tensor, *, n_samples: int, generator: torch.Generator | None = None):
    """Uniform noise in [-1, 1] filtered per frame by :func:`noise_filter_ir` -> ``(b, n_samples)``."""
    b, n_frames, _ = magnitudes.shape
    hop = n_samples // n_frames
    noise = torch.rand(b, n_frames, hop, generator=generator, device=magnitudes.device) * 2 - 1
    ir = noise_filter_ir(magnitudes)
    n_ir = ir.shape[-1]
    n_fft = 1 << (hop + n_ir - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(noise, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)[..., : hop + n_ir - 1]
    # overlap-add the filtered frames (each one hop apart), then drop the FIR's group delay
    frame_len = y.shape[-1]
    out = F.fold(y.transpose(1, 2), output_size=(1, (n_frames - 1) * hop + frame_len),
                 kernel_size=(1, frame_len), stride=(1, hop))
    out = out.reshape(b, -1)
    delay = n_ir // 2
    return out[:, delay : delay + n_samples]


class Reverb(nn.Module):
    """Trainable reverb: a learned impulse response convolved with the signal, dry path added.

    The impulse response is ``ir[t] = noise[t] * exp(-softplus(decay) * t_s * 20) * sigmoid(wet)``
    with ``noise`` (one trainable value per sample), ``decay`` and ``wet`` all learned (as in
    acids-ircam's ddsp_pytorch); the decay envelope and wet gain stop the free taps from turning
    into a long resonant filter that imitates the instrument instead of the room. ``ir[0] = 0``.
    Convolution by FFT; the output keeps the input's length.

    ``free=True`` uses ``noise`` itself as the impulse response (``ir[0] = 0`` still): the
    layout of Magenta DDSP's trainable ``Reverb``, whose taps are imported as they are.
    """

    def __init__(self, n_samples: int, sample_rate: int = 16000, *, free: bool = False) -> None:
        super().__init__()
        self.n_samples = n_samples
        self.sample_rate = sample_rate
        self.free = free
        g = torch.Generator().manual_seed(0)
        self.noise = nn.Parameter(torch.rand(n_samples, generator=g) * 2 - 1)
        self.decay = nn.Parameter(torch.tensor(2.0))
        self.wet = nn.Parameter(torch.tensor(-3.0))

    def impulse_response(self) -> torch.Tensor:
        if self.free:
            return torch.cat([self.noise.new_zeros(1), self.noise[1:]])
        t = torch.arange(self.n_samples, device=self.noise.device, dtype=self.noise.dtype) / self.sample_rate
        ir = self.noise * torch.exp(-F.softplus(self.decay) * t * 20.0) * torch.sigmoid(self.wet)
        return torch.cat([ir.new_zeros(1), ir[1:]])

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        n = audio.shape[-1]
        ir = self.impulse_response()
        n_fft = 1 << (n + self.n_samples - 1).bit_length()
        wet = torch.fft.irfft(torch.fft.rfft(audio, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)[..., :n]
        return audio + wet


def multiscale_spectral_loss(
    pred: torch.Tensor, target: torch.Tensor, *, fft_sizes=(2048, 1024, 512, 256, 128, 64), overlap: float = 0.75,
    log_weight: float = 1.0,
) -> torch.Tensor:
    """DDSP's multi-scale spectral loss: mean L1 of magnitudes plus of log magnitudes, summed over FFT sizes.

    ``pred`` and ``target`` are ``(batch, samples)`` audio of the same length.
    """
    total = pred.new_zeros(())
    for n_fft in fft_sizes:
        hop = max(1, int(n_fft * (1 - overlap)))
        window = torch.hann_window(n_fft, device=pred.device, dtype=pred.dtype)
        sp = torch.stft(pred, n_fft, hop, window=window, center=True, return_complex=True).abs()
        st = torch.stft(target, n_fft, hop, window=window, center=True, return_complex=True).abs()
        total = total + (sp - st).abs().mean()
        if log_weight:
            total = total + log_weight * (torch.log(sp + 1e-7) - torch.log(st + 1e-7)).abs().mean()
    return total
