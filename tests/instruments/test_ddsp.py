"""DDSP instruments: synthesis, training, save/load, transfer, bad inputs. Tiny models, a few steps."""

import json

import librosa
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import melody, write

from covermill import instruments
from covermill.errors import ModelLoadingError, ParameterError
from covermill.instruments.ddsp import store
from covermill.instruments.ddsp.config import DDSPConfig, preset
from covermill.instruments.ddsp.decoder import DDSPModel
from covermill.instruments.ddsp.instrument import DDSPInstrument
from covermill.instruments.ddsp.synth import filtered_noise, harmonic_synth, multiscale_spectral_loss
from covermill.instruments.ddsp.train import prepare_dataset, train_instrument
from covermill.instruments.features import Controls

SR16 = 16000
TRAIN_NOTES = [62, 64, 66, 67, 69, 67, 66, 64]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def bright_material(seed: int = 0) -> np.ndarray:
    """4 s of a 6-harmonic melody with a faint noise floor (a pure sine makes the log-spectral loss degenerate)."""
    x = melody(TRAIN_NOTES, bpm=120, sr=SR16, harmonics=6)
    return x + 0.002 * np.random.default_rng(seed).standard_normal(len(x)).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddsp")
    (root / "solo").mkdir()
    write(root / "solo" / "take1.wav", bright_material()[None], SR16)
    dataset = prepare_dataset(root / "solo", preset("tiny"))
    losses = []
    result = train_instrument(root / "solo", name="toy", instruments_dir=root / "inst", steps=40, config="tiny",
                              dataset=dataset, progress=lambda ev: losses.append(ev["loss"]))
    return {"root": root, "dataset": dataset, "losses": losses, "result": result}


def test_harmonics_above_nyquist_are_removed():
    f0 = torch.full((1, 50, 1), 3000.0)
    amps = torch.ones(1, 50, 60)
    y = harmonic_synth(f0, amps, sample_rate=SR16, n_samples=8000)[0].numpy()
    power = np.abs(np.fft.rfft(y[2000:6000] * np.hanning(4000))) ** 2
    freqs = np.fft.rfftfreq(4000, 1 / SR16)
    near = (np.abs(freqs - 3000) < 40) | (np.abs(freqs - 6000) < 40)
    assert power[~near].sum() < 1e-4 * power.sum()


def test_filtered_noise_follows_band_magnitudes():
    mags = torch.zeros(1, 100, 65)
    mags[..., :16] = 1.0  # pass below ~2 kHz only
    y = filtered_noise(mags, n_samples=16000, generator=torch.Generator().manual_seed(0))[0].numpy()
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / SR16)
    assert y.shape == (16000,) and np.all(np.isfinite(y))
    assert power[freqs < 2200].sum() > 0.95 * power.sum()


def test_training_reduces_the_loss(trained):
    losses = trained["losses"]
    assert len(losses) == 40 and np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    meta = json.loads((trained["result"].path / "instrument.json").read_text())
    lo, hi = meta["stats"]["f0_range_hz"]
    assert 280 < lo < hi < 460  # the training melody spans D4..A4


def test_save_load_round_trip_is_identical(tmp_path):
    torch.manual_seed(1)
    model = DDSPModel(preset("tiny")).eval()
    store.write_tensors(tmp_path / "m.safetensors", model.state_dict())
    again = DDSPModel(preset("tiny")).eval()
    store.load_state(again, store.read_tensors(tmp_path / "m.safetensors"), tmp_path / "m.safetensors")
    f0, ld = torch.full((1, 60), 330.0), torch.full((1, 60), -20.0)
    with torch.no_grad():
        a = model(f0, ld, generator=torch.Generator().manual_seed(0))
        b = again(f0, ld, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_trained_instrument_loads_identically_twice(trained):
    path = trained["result"].path
    ctl = Controls(np.full(50, 330.0, np.float32), np.ones(50, np.float32), np.full(50, 10.0, np.float32), 100.0)
    a = DDSPInstrument(path).synthesize(ctl)
    b = DDSPInstrument(path).synthesize(ctl)
    assert a.shape == (50 * 160,) and np.array_equal(a, b) and np.max(np.abs(a)) > 0


SR_T = 22050  # transfer tests run at this rate (any rate works; pyin is cheaper here)
PYIN = dict(fmin=100, fmax=1500, sr=SR_T, frame_length=1024, hop_length=256)


@pytest.fixture(scope="module")
def transfer(trained):
    x = melody([60, 62, 64, 65, 67, 65, 64, 62], bpm=120, sr=SR_T, harmonics=1)  # a plain sine melody
    inst = instruments.get("toy", instruments_dir=trained["root"] / "inst")
    return x, inst.revoice(x[None], sr=SR_T)


def test_revoice_keeps_the_melody(transfer):
    x, y = transfer
    assert y.shape == (1, len(x)) and y.dtype == np.float32 and np.all(np.isfinite(y))
    f_in, v_in, _ = librosa.pyin(x, **PYIN)
    f_out, v_out, _ = librosa.pyin(y[0], **PYIN)
    both = v_in & v_out
    assert both.mean() > 0.6
    cents = 1200 * np.abs(np.log2(f_out[both] / f_in[both]))
    assert np.median(cents) < 50 and np.mean(cents < 50) > 0.8


def test_revoice_takes_the_instruments_timbre(trained, transfer):
    x, y = transfer
    centroid = lambda z, sr: float(librosa.feature.spectral_centroid(y=z, sr=sr).mean())  # noqa: E731
    c_train, c_in, c_out = centroid(bright_material(), SR16), centroid(x, SR_T), centroid(y[0], SR_T)
    assert abs(np.log(c_out / c_train)) < abs(np.log(c_out / c_in))


def test_revoice_retimes_and_transposes_the_controls(trained):
    x = melody([66] * 4, bpm=120, sr=SR_T, harmonics=3)  # F#4, inside the toy's range
    inst = instruments.get("toy", instruments_dir=trained["root"] / "inst")
    y = inst.revoice(x[None], sr=SR_T, time_ratio=0.8, semitones=2.0)
    assert abs(y.shape[1] - round(len(x) / 0.8)) <= 1
    f0, voiced, _ = librosa.pyin(y[0], **PYIN)
    assert abs(1200 * np.log2(np.nanmedian(f0[voiced]) / (librosa.midi_to_hz(68)))) < 50


def test_notes_mode_plays_the_notes_with_the_stems_loudness(trained):
    """f0 from the notes (not the stem's: it sings other pitches), loudness from the stem; chords by voices."""
    from covermill.leadsheet import Chord, Note

    x = melody([60, 60, 60, 60], bpm=120, sr=SR_T, harmonics=3)  # the stem: C4 four times
    notes = tuple(Note(0.5 * i + 0.05, 0.5 * i + 0.45, p) for i, p in enumerate([62, 64, 66, 67]))
    inst = instruments.get("toy", instruments_dir=trained["root"] / "inst")
    v = inst.render(x[None], sr=SR_T, notes=notes, mode="notes")
    assert v.audio.shape == (1, len(x)) and np.all(np.isfinite(v.audio)) and v.notes == notes
    f0, voiced, _ = librosa.pyin(v.audio[0], **PYIN)
    times = librosa.times_like(f0, sr=SR_T, hop_length=PYIN["hop_length"])
    for n in notes:
        m = voiced & (times > n.start_s + 0.1) & (times < n.end_s - 0.05)
        assert m.sum() >= 3 and abs(np.median(librosa.hz_to_midi(f0[m])) - n.pitch) < 0.5
    chords = instruments.voice_chords([Chord(0.0, 2.0, 2, "maj")], low=57, high=76, voices=3)
    v = inst.render(x[None], sr=SR_T, notes=chords, mode="chords")
    assert v.audio.shape == (1, len(x)) and np.all(np.isfinite(v.audio)) and np.max(np.abs(v.audio)) > 0


def test_unvoiced_input_stays_silent(trained):
    inst = instruments.get("toy", instruments_dir=trained["root"] / "inst")
    y = inst.revoice(np.zeros((2, 44100 * 2), np.float32), sr=44100, time_ratio=1.25)
    assert y.shape == (1, round(88200 / 1.25)) and np.max(np.abs(y)) == 0.0


def test_resume_after_interruption(trained, tmp_path):
    data, seen = trained["dataset"], []

    def stop_at_7(ev):
        seen.append(ev["done"])
        if ev["done"] == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_instrument("unused", name="r", instruments_dir=tmp_path, steps=10, config="tiny", dataset=data,
                         checkpoint_every=5, progress=stop_at_7)
    assert (tmp_path / "r" / "checkpoint.json").is_file() and not (tmp_path / "r" / "model.safetensors").exists()
    result = train_instrument("unused", name="r", instruments_dir=tmp_path, steps=10, config="tiny", dataset=data,
                              checkpoint_every=5, progress=lambda ev: seen.append(ev["done"]))
    assert seen == [1, 2, 3, 4, 5, 6, 7, 6, 7, 8, 9, 10] and result.steps == 10
    assert "r" in instruments.available(tmp_path)
    with pytest.raises(ParameterError, match="another config"):
        train_instrument("unused", name="r", instruments_dir=tmp_path, steps=12, config="cpu", dataset=data)


def _copy_instrument(src, dst):
    dst.mkdir()
    for f in ("instrument.json", "model.safetensors"):
        (dst / f).write_bytes((src / f).read_bytes())
    return dst


def test_corrupt_or_foreign_checkpoints_are_refused(trained, tmp_path):
    src = trained["result"].path
    bad = _copy_instrument(src, tmp_path / "bad")
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadingError, match="corrupt or not a safetensors file"):
        DDSPInstrument(bad).load()
    foreign = _copy_instrument(src, tmp_path / "foreign")
    store.write_tensors(foreign / "model.safetensors", {"encoder.weight": torch.zeros(3, 3)})
    with pytest.raises(ModelLoadingError, match="weights do not match"):
        DDSPInstrument(foreign).load()
    other = _copy_instrument(src, tmp_path / "other")
    (other / "instrument.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelLoadingError, match="not a covermill DDSP instrument"):
        DDSPInstrument(other).load()
    (other / "instrument.json").write_text("{not json")
    with pytest.raises(ModelLoadingError, match="corrupt JSON"):
        DDSPInstrument(other).load()


def test_bad_training_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="no audio files"):
        train_instrument(tmp_path / "empty", name="x", instruments_dir=tmp_path / "i", steps=1, config="tiny")
    (tmp_path / "quiet").mkdir()
    write(tmp_path / "quiet" / "a.wav", np.zeros((1, SR16 * 2), np.float32), SR16)
    with pytest.raises(ParameterError, match="every recording is silent"):
        train_instrument(tmp_path / "quiet", name="x", instruments_dir=tmp_path / "i", steps=1, config="tiny")
    (tmp_path / "noise").mkdir()
    noise = 0.3 * np.random.default_rng(0).standard_normal((1, SR16 * 2)).astype(np.float32)
    write(tmp_path / "noise" / "a.wav", noise, SR16)
    with pytest.raises(ParameterError, match="monophonic"):
        train_instrument(tmp_path / "noise", name="x", instruments_dir=tmp_path / "i", steps=1, config="tiny")
    (tmp_path / "chords").mkdir()
    chords = sum(melody([n, n + 2, n + 4, n + 5], bpm=120, sr=SR16, harmonics=6) for n in (60, 64, 67)) / 3
    write(tmp_path / "chords" / "a.wav", chords[None], SR16)
    with pytest.raises(ParameterError, match="polyphonic"):
        train_instrument(tmp_path / "chords", name="x", instruments_dir=tmp_path / "i", steps=1, config="tiny")
    with pytest.raises(ParameterError, match="built-in"):
        train_instrument(tmp_path / "empty", name="trumpet", instruments_dir=tmp_path / "i", steps=1)


def test_config_round_trip_and_refusal():
    cfg = preset("full")
    assert DDSPConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.n_harmonics >= 60 and cfg.n_noise_bands >= 65 and preset("cpu").n_harmonics >= 60
    with pytest.raises(ModelLoadingError, match="unknown keys"):
        DDSPConfig.from_dict({"layers": 3})


def test_cli_list_shows_both_kinds(trained):
    from covermill.cli import main

    out = CliRunner().invoke(main, ["instruments", "list", "--instruments-dir", str(trained["root"] / "inst")])
    assert out.exit_code == 0, out.output
    assert "trumpet" in out.output and "built-in" in out.output
    assert any(line.startswith("toy") and "trained" in line for line in out.output.splitlines())


def test_cli_trains_and_resumes(trained, tmp_path):
    from covermill.cli import main

    args = ["instruments", "train", str(trained["root"] / "solo"), "--name", "cli_toy", "--config", "tiny",
            "--instruments-dir", str(tmp_path), "-q"]
    out = CliRunner().invoke(main, [*args, "--steps", "2"])
    assert out.exit_code == 0, out.output
    assert "cli_toy: 2 steps" in out.output and (tmp_path / "cli_toy" / "model.safetensors").is_file()
    out = CliRunner().invoke(main, [*args, "--steps", "3"])
    assert out.exit_code == 0 and "cli_toy: 3 steps" in out.output


def test_cli_train_error_is_one_line(tmp_path):
    from covermill.cli import main

    (tmp_path / "empty").mkdir()
    out = CliRunner().invoke(main, ["instruments", "train", str(tmp_path / "empty"), "--name", "x",
                                    "--instruments-dir", str(tmp_path / "i"), "-q"])
    assert out.exit_code == 1 and "no audio files" in out.output and "Traceback" not in out.output


def test_spectral_loss_is_zero_on_identical_audio():
    y = torch.randn(2, 4000)
    assert multiscale_spectral_loss(y, y, fft_sizes=(256, 64)).item() == pytest.approx(0.0, abs=1e-6)
