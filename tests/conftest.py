"""Shared test helpers: synthesized audio, so unit tests need no data files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 44100
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEMO_SONG = REPO / "examples" / "lets_go_fishin.ogg"


@pytest.fixture(autouse=True, scope="session")
def private_stem_cache(tmp_path_factory):
    """Renders in tests cache stems in a temporary folder, never in the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COVERMILL_CACHE_DIR", str(tmp_path_factory.mktemp("stem_cache")))
    yield
    mp.undo()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def sine(freq_hz: float, seconds: float, *, sr: int = SR, amp: float = 0.5, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return np.repeat(x[None], channels, axis=0)


def click_track(bpm: float, seconds: float, *, sr: int = SR, channels: int = 2) -> np.ndarray:
    """Decaying noise bursts on every beat (a metronome)."""
    n = int(seconds * sr)
    y = np.zeros(n, np.float32)
    rng = np.random.default_rng(1)
    burst = (rng.standard_normal(int(0.03 * sr)) * np.exp(-np.linspace(0, 8, int(0.03 * sr)))).astype(np.float32)
    for t in np.arange(0.1, seconds - 0.05, 60.0 / bpm):
        i = int(t * sr)
        y[i : i + len(burst)] += 0.8 * burst[: n - i]
    return np.repeat(y[None], channels, axis=0)


def midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def melody(notes, *, bpm: float = 120.0, sr: int = SR, harmonics: int = 6, amp: float = 0.3) -> np.ndarray:
    """A mono melody, one note per beat, with a few harmonics and short fades; shape (n,)."""
    beat = 60.0 / bpm
    n_note = int(beat * sr)
    t = np.arange(n_note) / sr
    env = np.minimum(1.0, np.minimum(t / 0.01, (beat - t) / 0.03)).astype(np.float32)
    out = []
    for note in notes:
        f = midi_hz(note)
        x = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, harmonics + 1) if k * f < sr / 2)
        out.append((amp * env * x).astype(np.float32))
    return np.concatenate(out)


def song(*, bpm: float = 120.0, bars: int = 6, sr: int = SR, transpose: int = 0, seed: int = 0) -> np.ndarray:
    """A small stereo 'song': clicks (drums), a bass line, a lead melody; shape (2, n)."""
    rng = np.random.default_rng(seed)
    progression = [60, 65, 67, 60, 57, 62, 67, 60]
    roots = [progression[i % len(progression)] + transpose for i in range(bars)]
    lead_notes = [r + int(rng.choice([0, 4, 7, 12])) for r in roots for _ in range(4)]
    lead = melody(lead_notes, bpm=bpm, sr=sr)
    bass = melody([r - 24 for r in roots for _ in range(4)], bpm=bpm, sr=sr, harmonics=3, amp=0.25)
    n = len(lead)
    drums = click_track(bpm, n / sr, sr=sr)[0][:n]
    left = lead * 0.8 + bass + drums * 0.5
    right = lead * 0.8 + bass + drums * 0.5
    return np.vstack([left, right]).astype(np.float32)


def write(path: Path, y: np.ndarray, sr: int = SR, **kw) -> Path:
    sf.write(str(path), np.asarray(y).T, sr, **kw)
    return path


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rms_db(y: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.asarray(y, np.float64) ** 2)) + 1e-12))
