"""Importing Magenta DDSP checkpoints (``covermill instruments import-ddsp``).

The checkpoints are written with TensorFlow and Keras 2 under ddsp's layer layout, and the reference
forward pass follows ddsp's source, in ``magenta_tf.py`` beside this file, run in a subprocess:
TensorFlow loaded into pytest's process would make a later import of triton (torch's compiler) crash
it. The importer reads checkpoints in a subprocess for the same reason.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

for _mod, _why in (("tensorflow", "tensorflow not installed: pip install 'covermill[magenta]'"),
                   ("tf_keras", "tf_keras (Keras 2, writes ddsp-layout checkpoints) not installed"),
                   ("gin", "gin-config not installed: pip install 'covermill[magenta]'")):
    if importlib.util.find_spec(_mod) is None:
        pytest.skip(_why, allow_module_level=True)

from covermill.cli import main  # noqa: E402
from covermill.instruments.ddsp import store  # noqa: E402
from covermill.instruments.ddsp.instrument import DDSPInstrument  # noqa: E402
from covermill.instruments.ddsp.magenta import import_ddsp  # noqa: E402
from covermill.instruments.ddsp.synth import harmonic_synth  # noqa: E402

HELPER = Path(__file__).with_name("magenta_tf.py")
CH, RNN, LAYERS, N_HARM, N_NOISE, IR_LEN = 16, 16, 2, 20, 17, 800  # as in magenta_tf.py


def tf_helper(*args: str) -> str:
    proc = subprocess.run([sys.executable, str(HELPER), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def controls_input(n_frames=60):
    t = np.arange(n_frames) / 250.0
    f0 = (220.0 * 2 ** (2 * t / t[-1]) * (1 + 0.01 * np.sin(2 * np.pi * 6 * t)))[None].astype(np.float32)
    f0[0, 40:] = 1300.0 + 200 * t[40:]  # high notes: harmonics above Nyquist are removed
    ld = np.linspace(-95.0, -5.0, n_frames)[None].astype(np.float32)  # below -80: clipped as Magenta's loudness
    return f0, ld


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def magenta(tmp_path_factory):
    root = tmp_path_factory.mktemp("magenta")
    f0, ld = controls_input()
    np.savez(root / "inputs.npz", f0_hz=f0, loudness_db=ld)
    keys = tf_helper("write-all", str(root), "--reference", str(root / "inputs.npz"), str(root / "ref.npz")).split()
    result = import_ddsp(root / "solo_toy_ckpt", name="toy_violin", instruments_dir=root / "inst")
    inst = DDSPInstrument(result.path).load()
    ref = dict(np.load(root / "ref.npz"))
    return {"root": root, "ckpt": root / "solo_toy_ckpt", "ref": ref, "f0": f0, "ld": ld, "result": result,
            "inst": inst, "keys": keys, "foreign": root / "foreign"}


def test_checkpoint_has_ddsp_object_graph_keys(magenta):
    names = magenta["keys"]
    assert any(n.startswith("model/decoder/input_stacks/1/") for n in names)
    assert any(n.startswith("model/decoder/rnn/") for n in names)
    assert any(n.startswith("model/processor_group/reverb/") for n in names)
    assert any(".OPTIMIZER_SLOT" in n or n.startswith("optimizer/") for n in names)


def test_imported_config_mirrors_magenta(magenta):
    c = magenta["result"].config
    assert (c.sample_rate, c.frame_rate, c.n_harmonics, c.n_noise_bands) == (16000, 250, N_HARM, N_NOISE)
    assert (c.mlp_units, c.mlp_layers, c.gru_units) == (CH, LAYERS, RNN)
    assert (c.leaky_slope, c.norm_eps, c.ld_range, c.ld_clip) == (0.2, 1e-3, 80.0, True)
    assert (c.amp_upsample, c.noise_bias, c.reverb_mode, c.f0_method) == ("window", -5.0, "free", "crepe")
    assert round(c.reverb_s * c.sample_rate) == IR_LEN


def test_decoder_and_controls_match_tensorflow(magenta):
    model = magenta["inst"].model_
    f0, ld, ref = magenta["f0"], magenta["ld"], magenta["ref"]
    with torch.no_grad():
        f0_t, ld_t = torch.from_numpy(f0), torch.from_numpy(ld)
        from covermill.instruments.ddsp.decoder import hz_to_midi

        raw = model.decoder(hz_to_midi(f0_t[..., None]) / 127.0, ld_t[..., None].clamp_min(-80.0) / 80.0 + 1.0)
        ctl = model.controls(f0_t, ld_t)
    assert np.abs(raw.numpy() - ref["raw"]).max() < 1e-5
    for key in ("harmonic_amplitudes", "noise_magnitudes"):
        ours, theirs = ctl[key].numpy(), ref[key]
        assert np.abs(ours - theirs).max() < 1e-5 * max(1.0, np.abs(theirs).max()), key
    amps = ref["harmonic_amplitudes"]
    assert (amps[0, 45:, 10:] == 0).all() and (ctl["harmonic_amplitudes"].numpy()[0, 45:, 10:] == 0).all()


def test_harmonic_audio_and_reverb_match_tensorflow(magenta):
    model, cfg = magenta["inst"].model_, magenta["result"].config
    f0, ld, theirs = magenta["f0"], magenta["ld"], magenta["ref"]["audio"]
    n = f0.shape[1] * cfg.hop
    with torch.no_grad():
        ctl = model.controls(torch.from_numpy(f0), torch.from_numpy(ld))
        dry = harmonic_synth(ctl["f0_hz"], ctl["harmonic_amplitudes"], sample_rate=cfg.sample_rate, n_samples=n,
                             amp_method=cfg.amp_upsample)
        ours = model.reverb(dry).numpy()
    peak = np.abs(theirs).max()
    assert peak > 0.05
    # ddsp accumulates phase with a float32 tf.cumsum, we in float64: measured 5e-4 of the peak here
    assert np.abs(ours - theirs).max() < 2e-3 * peak
    # with the phase accumulated in float64 on both sides the rest agrees to float32 rounding (measured 8e-6)
    assert np.abs(ours - magenta["ref"]["audio_phase64"]).max() < 1e-4 * peak
    with torch.no_grad():  # the full model (noise included) renders finite audio of the right length
        y = model.render(torch.from_numpy(f0), torch.from_numpy(ld), torch.ones(1, f0.shape[1]),
                         generator=torch.Generator().manual_seed(0))
    assert y.shape == (1, n) and torch.isfinite(y).all()


def test_statistics_become_instrument_stats(magenta):
    stats = store.read_meta(magenta["result"].path)["stats"]
    assert stats["f0_range_hz"] == pytest.approx([440 * 2 ** ((57 - 69) / 12), 440 * 2 ** ((81 - 69) / 12)], rel=1e-5)
    assert stats["loudness_mean_db"] == pytest.approx(-35.0) and stats["loudness_max_db"] == pytest.approx(-8.0)
    assert magenta["result"].warnings == []


def test_imported_instrument_revoices_a_stem(magenta):
    from conftest import melody

    y = melody([67, 69, 71], bpm=120, sr=44100)[None]
    inst = DDSPInstrument(magenta["result"].path, f0_method="pyin")
    out = inst.revoice(y, sr=44100)
    assert out.shape == (1, y.shape[-1]) and np.isfinite(out).all() and np.abs(out).max() > 0


def test_cli_imports_lists_and_warns_without_statistics(magenta, tmp_path):
    ckpt = copy_ckpt(magenta["ckpt"], tmp_path / "nostats")
    (ckpt / "dataset_statistics.pkl").unlink()
    inst = tmp_path / "inst"
    args = ["instruments", "import-ddsp", str(ckpt), "--name", "cli_violin", "--instruments-dir", str(inst)]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "cli_violin: imported ckpt-1" in out.output and "dataset_statistics.pkl not found" in out.output
    listed = CliRunner().invoke(main, ["instruments", "list", "--instruments-dir", str(inst)])
    assert any(line.startswith("cli_violin") and "trained" in line and "Magenta" in line
               for line in listed.output.splitlines())
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "already exists" in again.output
    forced = CliRunner().invoke(main, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert sorted(p.name for p in inst.iterdir()) == ["cli_violin"]


def _bad(tmp_path, folder, expect):
    inst = tmp_path / "inst"
    out = CliRunner().invoke(main, ["instruments", "import-ddsp", str(folder), "--name", "bad",
                                    "--instruments-dir", str(inst)])
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert out.exit_code == 1, out.output
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in out.output, out.output
    assert not inst.exists() or list(inst.iterdir()) == []  # nothing written, no staging left behind


def copy_ckpt(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_bad_inputs_are_one_clear_line(magenta, tmp_path):
    _bad(tmp_path, tmp_path / "nowhere", "no such folder")
    (tmp_path / "empty").mkdir()
    _bad(tmp_path, tmp_path / "empty", "no TensorFlow checkpoint")
    # foreign: a TensorFlow checkpoint without ddsp's decoder
    _bad(tmp_path, magenta["foreign"], "foreign checkpoint, no Magenta RnnFcDecoder variables (expected model/decoder/")
    # corrupt: flipped bytes in the data file (checksums), a truncated data file, a garbage index
    flipped = copy_ckpt(magenta["ckpt"], tmp_path / "flipped")
    data = next(flipped.glob("ckpt-1.data-*"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(b ^ 0xFF for b in raw[len(raw) // 2 : len(raw) // 2 + 64])
    data.write_bytes(bytes(raw))
    _bad(tmp_path, flipped, "corrupt")
    truncated = copy_ckpt(magenta["ckpt"], tmp_path / "truncated")
    data = next(truncated.glob("ckpt-1.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    _bad(tmp_path, truncated, "corrupt")
    garbage = copy_ckpt(magenta["ckpt"], tmp_path / "garbage")
    (garbage / "ckpt-1.index").write_bytes(b"not a checkpoint index" * 10)
    _bad(tmp_path, garbage, "corrupt or not a TensorFlow checkpoint")
    nodata = copy_ckpt(magenta["ckpt"], tmp_path / "nodata")
    next(nodata.glob("ckpt-1.data-*")).unlink()
    _bad(tmp_path, nodata, "is missing")
    # shape mismatch: the gin config promises other output sizes than the checkpoint has
    mismatch = copy_ckpt(magenta["ckpt"], tmp_path / "mismatch")
    gin = (mismatch / "operative_config-0.gin").read_text()
    (mismatch / "operative_config-0.gin").write_text(gin.replace(f"('noise_magnitudes', {N_NOISE})",
                                                                 "('noise_magnitudes', 65)"))
    _bad(tmp_path, mismatch, "shape mismatch: dense_out kernel")
    nogin = copy_ckpt(magenta["ckpt"], tmp_path / "nogin")
    (nogin / "operative_config-0.gin").unlink()
    _bad(tmp_path, nogin, "no operative_config-*.gin")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_statistics_pickle_never_runs_code(magenta, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = copy_ckpt(magenta["ckpt"], tmp_path / "evil")
    (evil / "dataset_statistics.pkl").write_bytes(pickle.dumps({"mean_pitch": 60.0, "x": _Evil()}))
    _bad(tmp_path, evil, "refusing to load posix.system")
    assert not (tmp_path / "pwned.txt").exists()
    (evil / "dataset_statistics.pkl").write_bytes(b"\x80\x04garbage")
    _bad(tmp_path, evil, "corrupt statistics pickle")


def test_missing_tensorflow_is_one_line(magenta, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # find_spec("tensorflow") is None: as if not installed
    out = CliRunner().invoke(main, ["instruments", "import-ddsp", str(magenta["ckpt"]), "--name", "x",
                                    "--instruments-dir", str(tmp_path)])
    assert out.exit_code == 1 and "pip install 'covermill[magenta]'" in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_tensorflow_is_imported_only_by_the_importer():
    # basic_pitch/__init__ imports TensorFlow whenever it is installed; covermill hides it there (ONNX is ours)
    code = ("import sys; import covermill.cli, covermill.instruments, covermill.instruments.ddsp.magenta; "
            "from covermill.instruments.ddsp import instrument, decoder; from covermill.instruments import midi; "
            "midi._import_basic_pitch(); "
            "assert 'tensorflow' not in sys.modules and 'gin' not in sys.modules, 'imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_importing_keeps_tensorflow_out_of_this_process(magenta):
    assert "tensorflow" not in sys.modules  # the checkpoint was read in a child process
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # imports triton, which crashes beside TensorFlow


def test_old_instruments_keep_their_config_defaults():
    from covermill.instruments.ddsp.config import DDSPConfig

    c = DDSPConfig.from_dict({"sample_rate": 16000, "frame_rate": 100})
    assert (c.leaky_slope, c.norm_eps, c.ld_range, c.ld_clip, c.amp_upsample, c.noise_bias, c.reverb_mode) == (
        0.01, 1e-5, 120.0, False, "linear", -5.0, "decay")
