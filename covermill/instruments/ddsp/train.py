"""Train a DDSP instrument on a folder of solo recordings (or stems separated from songs).

:func:`prepare_dataset` reads every audio file, extracts f0 / voicing / loudness at the
model's frame rate and cuts it into excerpts; :func:`train_instrument` fits the decoder and
reverb with Adam on the multi-scale spectral loss, writes a checkpoint every
``checkpoint_every`` steps and resumes from it when run again with the same name.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio import read_audio, resample
from ...constants import AUDIO_EXTENSIONS
from ...errors import ModelLoadingError, ParameterError
from ...fsutil import find_audio
from ..features import FEATURE_SR, extract_controls
from . import store
from .config import DDSPConfig, preset

log = logging.getLogger(__name__)

#: Frames quieter than this (dB, A-weighted) count as silence.
SILENCE_DB = -70.0
#: Least share of voiced frames among the non-silent ones for material to count as monophonic and pitched.
MIN_VOICED_SHARE = 0.25


#: Below this median share of harmonic energy in harmonics 1-3 of the tracked f0, material counts as polyphonic.
MIN_LOW_HARMONIC_SHARE = 0.05


def low_harmonic_share(x: np.ndarray, f0_hz: np.ndarray, voiced: np.ndarray, *, sr: int, hop: int,
                       max_frames: int = 400) -> np.ndarray:
    """Per voiced frame: the share of the energy on f0's harmonics that lies on harmonics 1-3.

    Monophonic instruments score high (0.8-0.95 on the solo trumpet and on synthesized
    melodies). A chord fools a pitch tracker into a low common fundamental (C-E-G -> C two
    octaves down) whose first harmonics are empty, so the share falls near 0.
    """
    import librosa

    idx = np.flatnonzero((voiced > 0) & (f0_hz > 0))
    if idx.size == 0:
        return np.zeros(0)
    idx = idx[np.linspace(0, idx.size - 1, min(idx.size, max_frames)).astype(int)]
    S = np.abs(librosa.stft(x, n_fft=2048, hop_length=hop, center=True)) ** 2
    idx = idx[idx < S.shape[1]]
    freqs = librosa.fft_frequencies(sr=sr, n_fft=2048)[:, None]
    f0 = f0_hz[idx][None, :]
    k = np.round(freqs / f0)
    near = (np.abs(freqs - k * f0) < np.maximum(12.0, 0.03 * f0)) & (k >= 1)
    P = S[:, idx]
    total = (P * near).sum(0)
    low = (P * (near & (k <= 3))).sum(0)
    return low / np.maximum(total, 1e-12)


@dataclass
class Dataset:
    """Excerpts ``audio (n, samples)``, ``f0_hz``/``loudness_db`` ``(n, frames)`` and the material's statistics."""

    audio: np.ndarray
    f0_hz: np.ndarray
    loudness_db: np.ndarray
    stats: dict


def fill_unvoiced(f0_hz: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """f0 with unvoiced frames filled by log-frequency interpolation of the voiced ones (the decoder's input)."""
    idx = np.flatnonzero((voiced > 0) & (f0_hz > 0))
    if idx.size == 0:
        return np.full_like(f0_hz, 440.0)
    return (2.0 ** np.interp(np.arange(len(f0_hz)), idx, np.log2(f0_hz[idx]))).astype(np.float32)


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """The training recordings: :func:`covermill.fsutil.find_audio` of ``folder``; none raises."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ParameterError(f"{folder}: not a folder; pass a folder of solo recordings")
    files = find_audio(folder)
    if not files:
        raise ParameterError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)}); "
                             "put solo recordings or separated stems of one instrument there")
    return files


def prepare_dataset(folder: str | os.PathLike, config: DDSPConfig) -> Dataset:
    """Features and excerpts of every recording in ``folder`` (recursively)."""
    c = config
    if FEATURE_SR % c.frame_rate:
        raise ParameterError(f"frame_rate={c.frame_rate} must divide {FEATURE_SR}")
    feat_hop = FEATURE_SR // c.frame_rate
    n_ex = max(2, int(round(c.excerpt_s * c.frame_rate)))
    audio, f0s, louds, voiced_f0, voiced_ld, low_share = [], [], [], [], [], []
    n_sounding = n_voiced = 0
    for path in audio_files(folder):
        y, sr = read_audio(path)
        mono = y.mean(axis=0, keepdims=True)
        ctl = extract_controls(mono, sr=sr, f0_method=c.f0_method, hop_length=feat_hop, silence_db=SILENCE_DB)
        sounding = ctl.loudness_db > SILENCE_DB
        if not sounding.any():
            log.warning("%s: silent, skipped", path)
            continue
        n_sounding += int(sounding.sum())
        n_voiced += int((ctl.voiced > 0).sum())
        x = resample(mono, sr_in=sr, sr_out=c.sample_rate)[0]
        n_frames = max(len(ctl), n_ex)
        x = np.pad(x, (0, max(0, n_frames * c.hop - len(x))))[: n_frames * c.hop]
        f0 = np.pad(fill_unvoiced(ctl.f0_hz, ctl.voiced), (0, n_frames - len(ctl)), mode="edge")
        ld = np.pad(ctl.loudness_db, (0, n_frames - len(ctl)), constant_values=-120.0)
        low_share.append(low_harmonic_share(x, ctl.f0_hz, ctl.voiced, sr=c.sample_rate, hop=c.hop))
        voiced_f0.append(ctl.f0_hz[ctl.voiced > 0])
        voiced_ld.append(ctl.loudness_db[ctl.voiced > 0])
        for s in range(0, n_frames - n_ex + 1, max(1, n_ex // 2)):
            if (ld[s : s + n_ex] > SILENCE_DB).mean() < 0.1:
                continue  # mostly silence: nothing to learn
            audio.append(x[s * c.hop : (s + n_ex) * c.hop])
            f0s.append(f0[s : s + n_ex])
            louds.append(ld[s : s + n_ex])
    if n_sounding == 0:
        raise ParameterError(f"{folder}: every recording is silent; nothing to learn an instrument from")
    if n_voiced < MIN_VOICED_SHARE * n_sounding or n_voiced < 10:
        raise ParameterError(
            f"{folder}: only {n_voiced} of {n_sounding} sounding frames have a clear pitch; DDSP needs monophonic, "
            "pitched material (one instrument playing one note at a time), not chords, drums or noise")
    vf0, vld = np.concatenate(voiced_f0), np.concatenate(voiced_ld)
    share = float(np.median(np.concatenate(low_share)))
    if share < MIN_LOW_HARMONIC_SHARE:
        raise ParameterError(
            f"{folder}: sounds polyphonic (the tracked pitch, median {np.median(vf0):.0f} Hz, has almost no energy on "
            f"its first harmonics: {share:.1%}, as when several notes sound together); DDSP needs one instrument "
            "playing one note at a time (a solo recording or a separated stem)")
    stats = {
        "f0_range_hz": [float(np.percentile(vf0, 5)), float(np.percentile(vf0, 95))],
        "f0_median_hz": float(np.median(vf0)),
        "loudness_mean_db": float(np.mean(vld)),
        "loudness_std_db": float(np.std(vld)),
        "loudness_max_db": float(np.max(vld)),
        "seconds": float(sum(len(a) for a in audio) / c.sample_rate),
    }
    return Dataset(np.stack(audio).astype(np.float32), np.stack(f0s).astype(np.float32),
                   np.stack(louds).astype(np.float32), stats)


@dataclass
class TrainResult:
    path: Path
    steps: int
    loss: float
    first_loss: float | None
    steps_per_s: float


def _opt_tensors(opt) -> dict:
    """Adam's state as flat ``{"<param index>.<key>": tensor}`` (safetensors holds tensors only)."""
    import torch

    out = {}
    for idx, st in opt.state_dict()["state"].items():
        for key, value in st.items():
            out[f"{idx}.{key}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    return out


def _load_opt(opt, tensors: dict, path: Path) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    sd = opt.state_dict()
    try:
        opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise ModelLoadingError(f"{path}: optimizer state does not match the model ({exc})") from None


def train_instrument(
    folder: str | os.PathLike, *, name: str, instruments_dir: str | os.PathLike | None = None, steps: int = 1000,
    config: str | DDSPConfig = "cpu", device: str = "cpu", checkpoint_every: int = 100, seed: int = 0,
    progress: Callable[[dict], None] | None = None, dataset: Dataset | None = None,
) -> TrainResult:
    """Train (or resume training) the instrument ``name`` on the recordings in ``folder``.

    ``steps`` is the total number of optimizer steps; a run that finds ``checkpoint.json``
    from an earlier run with the same config continues from its step. ``progress`` gets
    ``{"stage": "train", "done", "total", "loss"}`` after every step. Returns the instrument
    folder, the last loss and steps/s of this run.
    """
    import torch

    from .decoder import DDSPModel
    from .synth import multiscale_spectral_loss

    store.check_name(name)
    from ..parametric import BUILTIN_TIMBRES

    if name in BUILTIN_TIMBRES:
        raise ParameterError(f"instrument name {name!r} is a built-in instrument; choose another name")
    if steps < 1:
        raise ParameterError(f"steps={steps} must be >= 1")
    cfg = (preset(config) if isinstance(config, str) else config).validate()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device={device!r} but CUDA is not available; use --device cpu")
    folder_out = store.instruments_dir(instruments_dir) / name
    data = dataset if dataset is not None else prepare_dataset(folder, cfg)

    torch.manual_seed(seed)
    model = DDSPModel(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    start = 0
    if (folder_out / store.CKPT_META).is_file():
        meta = store.read_meta(folder_out, store.CKPT_META)
        if meta["config"] != cfg:
            raise ParameterError(f"{folder_out}: has a checkpoint trained with another config; use another --name "
                                 "or delete that folder to start over")
        tensors = store.read_tensors(folder_out / store.CKPT_WEIGHTS)
        store.load_state(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
                         folder_out / store.CKPT_WEIGHTS)
        _load_opt(opt, {k[4:]: v.to(device) for k, v in tensors.items() if k.startswith("opt.")},
                  folder_out / store.CKPT_WEIGHTS)
        start = int(meta["step"])
        log.info("resuming %s from step %d", name, start)

    audio = torch.from_numpy(data.audio).to(device)
    f0 = torch.from_numpy(data.f0_hz).to(device)
    ld = torch.from_numpy(data.loudness_db).to(device)
    n = len(audio)

    def save(step: int, loss: float, final: bool) -> None:
        meta = {"config": cfg, "stats": data.stats, "step": step, "loss": loss,
                "description": f"trained DDSP instrument ({cfg.n_harmonics} harmonics, {step} steps, "
                               f"{data.stats['seconds']:.0f} s of audio)"}
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update({f"opt.{k}": v for k, v in _opt_tensors(opt).items()})
        store.write_tensors(folder_out / store.CKPT_WEIGHTS, tensors)
        store.write_meta(folder_out, meta, store.CKPT_META)
        if final:
            store.write_tensors(folder_out / store.WEIGHTS, model.state_dict())
            store.write_meta(folder_out, meta)

    loss_value, first = (float(meta["loss"]) if start else float("nan")), None
    t0 = time.perf_counter()
    model.train()
    for step in range(start, steps):
        rng = np.random.default_rng(seed * 1_000_003 + step)  # same batches after a resume
        idx = torch.from_numpy(rng.choice(n, size=cfg.batch_size, replace=n < cfg.batch_size))
        gen = torch.Generator(device=device).manual_seed(seed + step)
        pred = model(f0[idx], ld[idx], generator=gen)
        loss = multiscale_spectral_loss(pred, audio[idx], fft_sizes=cfg.fft_sizes)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        loss_value = float(loss.detach())
        if first is None:
            first = loss_value
        done = step + 1
        if progress is not None:
            progress({"stage": "train", "done": done, "total": steps, "loss": loss_value})
        if done % checkpoint_every == 0 and done < steps:
            save(done, loss_value, final=False)
    elapsed = time.perf_counter() - t0
    save(max(steps, start), loss_value, final=True)
    return TrainResult(folder_out, max(steps, start), loss_value, first, (steps - start) / elapsed if steps > start else 0.0)
