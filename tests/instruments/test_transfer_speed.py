"""The fast feature and synthesis paths (issue #8) against the exact ones: same pitch, silence kept silent."""

import librosa
import numpy as np
import pytest
import torch
from conftest import melody

from covermill.errors import ParameterError
from covermill.instruments.ddsp.config import preset
from covermill.instruments.ddsp.decoder import DDSPModel
from covermill.instruments.features import FEATURE_SR, active_runs, crepe_f0, crepe_viterbi, extract_controls

SR = 44100
HOP = 160  # 100 frames/s
GAP_S = 1.0


@pytest.fixture(scope="module")
def phrases():
    """Two phrases of a melody with a 1-s rest before, between and after them; and the rest's frames."""
    rest = np.zeros(int(GAP_S * SR), np.float32)
    a = melody([62, 64, 66, 67, 69, 71], bpm=150, sr=SR)
    b = melody([72, 71, 69, 67, 64, 60], bpm=150, sr=SR)
    x = np.concatenate([rest, a, rest, b, rest])
    x = x + 1e-5 * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)  # about -100 dBFS
    fr = FEATURE_SR / HOP
    # frames well inside the rests (0.15 s from every note edge)
    edges = np.cumsum([0, len(rest), len(a), len(rest), len(b), len(rest)]) / SR
    rests = np.zeros(1 + int(len(x) / SR * fr), bool)
    for s, e in [(edges[0], edges[1]), (edges[2], edges[3]), (edges[4], edges[5])]:
        rests[int((s + 0.15) * fr) : int((e - 0.15) * fr)] = True
    return x[None], rests


def cents(a, b):
    return 1200 * np.abs(np.log2(a / b))


def agree(fast, exact, min_share=0.97):
    both = (fast.voiced > 0) & (exact.voiced > 0)
    assert both.sum() > 0.5 * (exact.voiced > 0).sum()
    d = cents(fast.f0_hz[both], exact.f0_hz[both])
    assert np.mean(d < 50) >= min_share, np.percentile(d, [50, 90, 99])


@pytest.fixture(scope="module")
def crepe_exact(phrases):
    torch.manual_seed(0)
    return extract_controls(phrases[0], sr=SR, f0_method="crepe", hop_length=HOP, crepe_model="tiny", exact=True)


def test_fast_crepe_matches_the_exact_path(phrases, crepe_exact):
    x, rests = phrases
    fast = extract_controls(x, sr=SR, f0_method="crepe", hop_length=HOP, crepe_model="tiny")
    assert len(fast) == len(crepe_exact)
    agree(fast, crepe_exact)
    voicing = np.mean((fast.voiced > 0) == (crepe_exact.voiced > 0))
    assert voicing > 0.97
    n = min(len(rests), len(fast))
    assert np.all(fast.f0_hz[:n][rests[:n]] == 0) and np.all(fast.voiced[:n][rests[:n]] == 0)


def test_fast_crepe_at_half_the_frame_rate(phrases, crepe_exact):
    x, rests = phrases
    half = extract_controls(x, sr=SR, f0_method="crepe", hop_length=HOP, crepe_model="tiny", crepe_hop=2 * HOP)
    assert len(half) == len(crepe_exact)
    agree(half, crepe_exact, min_share=0.95)
    n = min(len(rests), len(half))
    assert np.all(half.f0_hz[:n][rests[:n]] == 0)


def test_fast_crepe_is_deterministic(phrases):
    x, _ = phrases
    a = extract_controls(x, sr=SR, f0_method="crepe", hop_length=HOP, crepe_model="tiny")
    b = extract_controls(x, sr=SR, f0_method="crepe", hop_length=HOP, crepe_model="tiny")
    np.testing.assert_array_equal(a.f0_hz, b.f0_hz)
    np.testing.assert_array_equal(a.voiced, b.voiced)


def test_pyin_on_regions_matches_full_pyin(phrases):
    x, rests = phrases
    full = extract_controls(x, sr=SR, hop_length=HOP, exact=True)
    regions = extract_controls(x, sr=SR, hop_length=HOP)
    np.testing.assert_array_equal(regions.loudness_db, full.loudness_db)
    agree(regions, full, min_share=0.99)
    assert np.mean((regions.voiced > 0) == (full.voiced > 0)) > 0.98
    n = min(len(rests), len(regions))
    assert np.all(regions.f0_hz[:n][rests[:n]] == 0)


def test_banded_viterbi_is_librosas_path():
    rng = np.random.default_rng(0)
    sal = rng.random((300, 360)) ** 4
    lo, hi = 20, 300
    obs = np.exp(sal[:, lo:hi])
    obs /= obs.sum(1, keepdims=True)
    full = np.zeros((300, 360))
    full[:, lo:hi] = obs
    tr = np.maximum(12 - np.abs(np.subtract.outer(np.arange(360), np.arange(360))), 0).astype(float)
    tr /= tr.sum(1, keepdims=True)
    np.testing.assert_array_equal(crepe_viterbi(obs, lo) + lo, librosa.sequence.viterbi(full.T, tr))


def test_active_runs_pad_and_merge():
    loud = np.full(100, -90.0)
    loud[10:20] = -30
    loud[25:30] = -30  # 5 frames after the first run: merges with pad 2 (gap 1 < 4)
    loud[60:61] = -30
    assert active_runs(loud, silence_db=-70, pad=2) == [(8, 32), (58, 63)]
    assert active_runs(loud, silence_db=-70, pad=0) == [(10, 20), (25, 30), (60, 61)]
    assert active_runs(np.full(10, -90.0), silence_db=-70) == []


def test_new_options_are_validated(phrases):
    x, _ = phrases
    mono = np.zeros(16000, np.float32)
    with pytest.raises(ParameterError, match="crepe_hop"):
        crepe_f0(mono, hop_length=160, crepe_hop=240)
    with pytest.raises(ParameterError, match="crepe_hop"):
        crepe_f0(mono, hop_length=160, crepe_hop=0)
    with pytest.raises(ParameterError, match="batch_size"):
        crepe_f0(mono, hop_length=160, batch_size=0)
    with pytest.raises(ParameterError, match="model"):
        crepe_f0(mono, hop_length=160, model="huge")
    with pytest.raises(ParameterError, match="crepe_hop"):
        extract_controls(x, sr=SR, f0_method="pyin", crepe_hop=320)
    with pytest.raises(ParameterError, match="crepe_hop"):
        extract_controls(x, sr=SR, f0_method="crepe", exact=True, crepe_hop=320)
    with pytest.raises(ParameterError, match="chunk_frames"):
        DDSPModel(preset("tiny")).render(torch.ones(1, 4) * 220, torch.zeros(1, 4), torch.ones(1, 4), chunk_frames=0)


def test_render_skips_silence_without_changing_the_audio():
    cfg = preset("tiny")
    torch.manual_seed(0)
    model = DDSPModel(cfg).eval()
    t = 90
    f0 = torch.linspace(200, 400, t)[None]
    ld = torch.full((1, t), -30.0)
    gate = torch.ones(1, t)
    gate[:, 20:45] = 0  # a rest
    gate[:, 70:] = 0  # and one at the end
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with torch.no_grad():
        ref = model(f0, ld, gate=gate, generator=gen())
        one_chunk = model.render(f0, ld, gate, chunk_frames=t, generator=gen())
        # the noise is drawn chunk by chunk; silence it to compare chunked renders with the reference
        out = model.decoder.dense_out
        out.weight[1 + cfg.n_harmonics :] = 0
        out.bias[1 + cfg.n_harmonics :] = -100
        ref_h = model(f0, ld, gate=gate, generator=gen())
        chunks = [model.render(f0, ld, gate, chunk_frames=c, generator=gen()) for c in (1, 16, 25, 45)]
    torch.testing.assert_close(one_chunk, ref, atol=1e-4, rtol=0)
    for chunked in chunks:
        torch.testing.assert_close(chunked, ref_h, atol=1e-4, rtol=0)
    hop = cfg.hop
    assert ref_h[0, 27 * hop : 44 * hop].abs().max() < 1e-4 * ref_h.abs().max()  # silent once the 50-ms reverb dies
