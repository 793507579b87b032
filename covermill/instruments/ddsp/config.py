"""Configurations of a DDSP instrument: the CPU-sized one, DDSP's full one, and a tiny one for tests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...errors import ModelLoadingError, ParameterError


@dataclass(frozen=True)
class DDSPConfig:
    """Everything that fixes a DDSP model's shape and its training.

    DDSP (Engel et al. 2020) trains at 16 kHz, 250 frames/s, 100 harmonics, 65 noise bands,
    a GRU of 512 units, 4-s excerpts in batches of 16 and a 6-scale spectral loss. The
    ``cpu`` preset is a smaller decoder on 1-s excerpts at 100 frames/s that trains a usable
    instrument in minutes on two cores.
    """

    sample_rate: int = 16000
    frame_rate: int = 100
    n_harmonics: int = 60
    n_noise_bands: int = 65
    mlp_units: int = 128
    mlp_layers: int = 2
    gru_units: int = 192
    reverb_s: float = 0.25
    excerpt_s: float = 1.0
    batch_size: int = 8
    learning_rate: float = 3e-3
    fft_sizes: tuple[int, ...] = (1024, 512, 256, 128, 64)
    f0_method: str = "pyin"
    # Details that differ between covermill's own instruments and Magenta's DDSP (set by
    # ``covermill instruments import-ddsp``); the defaults keep earlier instruments unchanged.
    #: negative slope of the decoder's leaky ReLUs (Magenta: ``tf.nn.leaky_relu``'s 0.2)
    leaky_slope: float = 0.01
    #: LayerNorm epsilon (Magenta: Keras ``LayerNormalization``'s 1e-3)
    norm_eps: float = 1e-5
    #: loudness scaling ``dB / ld_range + 1`` (Magenta >= 2.0: ``DB_RANGE`` = 80)
    ld_range: float = 120.0
    #: clamp loudness at ``-ld_range`` dB before scaling (Magenta's ``compute_loudness`` does)
    ld_clip: bool = False
    #: frame-to-sample upsampling of harmonic amplitudes: ``linear`` or ``window`` (Magenta's
    #: overlapping Hann windows, ``amp_resample_method='window'``)
    amp_upsample: str = "linear"
    #: bias added to the noise outputs before ``exp_sigmoid`` (Magenta's ``FilteredNoise.initial_bias``)
    noise_bias: float = -5.0
    #: ``decay``: covermill's enveloped learned reverb; ``free``: the impulse response is the
    #: trained taps as they are (Magenta's trainable ``Reverb``)
    reverb_mode: str = "decay"

    @property
    def hop(self) -> int:
        return self.sample_rate // self.frame_rate

    def validate(self) -> DDSPConfig:
        if self.sample_rate <= 0 or self.frame_rate <= 0 or self.sample_rate % self.frame_rate:
            raise ParameterError(f"sample_rate={self.sample_rate} must be a positive multiple of "
                                 f"frame_rate={self.frame_rate}")
        if self.n_harmonics < 1 or self.n_noise_bands < 2:
            raise ParameterError(f"n_harmonics={self.n_harmonics} must be >= 1 and n_noise_bands="
                                 f"{self.n_noise_bands} >= 2")
        if self.amp_upsample not in ("linear", "window"):
            raise ParameterError(f"amp_upsample={self.amp_upsample!r} must be 'linear' or 'window'")
        if self.reverb_mode not in ("decay", "free"):
            raise ParameterError(f"reverb_mode={self.reverb_mode!r} must be 'decay' or 'free'")
        if self.ld_range <= 0 or self.norm_eps <= 0:
            raise ParameterError(f"ld_range={self.ld_range} and norm_eps={self.norm_eps} must be > 0")
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["fft_sizes"] = list(self.fft_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DDSPConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ModelLoadingError(f"instrument config has unknown keys {sorted(unknown)}; not a covermill DDSP model")
        try:
            d = {**d, "fft_sizes": tuple(d.get("fft_sizes", cls.fft_sizes))}
            return cls(**d).validate()
        except (TypeError, ParameterError) as exc:
            raise ModelLoadingError(f"instrument config is invalid: {exc}") from None


PRESETS: dict[str, DDSPConfig] = {
    "cpu": DDSPConfig(),
    "full": DDSPConfig(frame_rate=250, n_harmonics=100, mlp_units=512, mlp_layers=3, gru_units=512, reverb_s=1.0,
                       excerpt_s=4.0, batch_size=16, learning_rate=1e-3, fft_sizes=(2048, 1024, 512, 256, 128, 64),
                       f0_method="crepe"),
    "tiny": DDSPConfig(n_harmonics=60, mlp_units=32, mlp_layers=1, gru_units=32, reverb_s=0.05, excerpt_s=0.5,
                       batch_size=4, learning_rate=3e-3, fft_sizes=(512, 256, 128)),
}


def preset(name: str) -> DDSPConfig:
    """The named configuration (``cpu``, ``full`` or ``tiny``)."""
    if name not in PRESETS:
        raise ParameterError(f"unknown config {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
