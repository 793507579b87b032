"""Hardening: a render killed with SIGKILL, or one that fills the disk, leaves nothing
half-written in OUT (an earlier render stays whole, qa.json parseable), and the input untouched."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import file_digest, song, write

QUICK = "name: quick\nstems:\n  vocals: {revoice: {instrument: flute}}\n  drums: {gain_db: -6}\ntempo: {ratio: 0.9}\n"


@contextlib.contextmanager
def _small_disk(folder: Path, size: str):
    """A tmpfs of ``size`` mounted at ``folder`` for the body (skips where mounting is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs for the disk-full case")
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", f"covermill-{uuid.uuid4().hex[:6]}",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or mounted.returncode})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def _render(src: Path, recipe: Path, out: Path, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "covermill.cli", "render", str(src), "-r", str(recipe), "-o", str(out), "-q",
           "--no-cache"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _whole(out: Path) -> None:
    """OUT holds one complete render: qa.json parses and every file it lists exists."""
    qa = json.loads((out / "qa.json").read_text())

    def files(v):
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            for x in v.values():
                yield from files(x)

    for rel in files(qa["outputs"]):
        assert (out / rel).is_file(), rel
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


@pytest.mark.slow
def test_render_killed_with_sigkill_leaves_the_earlier_render_whole(tmp_path):
    src = write(tmp_path / "s.wav", song(bars=8))
    before = file_digest(src)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(QUICK)
    out = tmp_path / "out"
    first = _render(src, recipe, out)
    assert first.wait(600) == 0, first.stderr.read()
    _whole(out)
    cover = file_digest(out / "cover.wav")
    for delay in (1.5, 5.0):  # killed at different stages
        recipe.write_text(QUICK.replace("ratio: 0.9", f"ratio: {0.8 + delay / 100:.2f}"))
        proc = _render(src, recipe, out)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        _whole(out)  # never a mix of two renders, never a half-written file
        if file_digest(out / "cover.wav") != cover:  # the second render finished before the kill
            cover = file_digest(out / "cover.wav")
    assert file_digest(src) == before
    again = _render(src, recipe, out)  # staging leftovers beside OUT do not stop the next render
    assert again.wait(600) == 0, again.stderr.read()
    _whole(out)


@pytest.mark.slow
def test_disk_full_is_one_line_and_out_is_untouched(tmp_path):
    with _small_disk(tmp_path / "small", "3m") as small:
        src = write(tmp_path / "s.wav", song(bars=12))
        recipe = tmp_path / "r.yaml"
        recipe.write_text(QUICK)
        out = small / "out"
        out.mkdir()
        (out / "keep.txt").write_text("the user's")
        proc = _render(src, recipe, out)
        assert proc.wait(600) == 1
        err = proc.stderr.read().strip().splitlines()
        assert len(err) == 1 and "disk full" in err[0] and "Traceback" not in err[0]
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
        assert not [p for p in small.iterdir() if ".staging-" in p.name]


def test_fluidsynth_on_a_full_scratch_disk_is_one_line(tmp_path, monkeypatch):
    """FluidSynth's scratch files live in TMPDIR: when that disk fills, one line says so (FluidSynth
    exits 0 after a failed write: the part used to come back silently cut to its first second)."""
    import tempfile

    import pretty_midi

    from covermill.errors import OutputError
    from covermill.instruments.fluidsynth import render_midi

    with _small_disk(tmp_path / "small", "256k") as small:
        pm = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(program=0)
        piano.notes = [pretty_midi.Note(velocity=90, pitch=60 + i % 12, start=i * 0.5, end=i * 0.5 + 0.5)
                       for i in range(40)]  # 20 s: about 7 MB of float WAV, far over 256 kB
        pm.instruments.append(piano)
        monkeypatch.setattr(tempfile, "tempdir", str(small))
        with pytest.raises(OutputError, match=r"^disk full in .*small while .*; free some space there") as err:
            render_midi(pm, sr=44100)
        assert "\n" not in str(err.value)
        assert not list(small.iterdir())  # the scratch folder went with the error
