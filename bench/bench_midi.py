"""Benchmark MIDI re-voicing: transcription note F1, FluidSynth speed, a whole 3-minute re-voice.

    .venv/bin/python bench/bench_midi.py --write docs/BENCHMARKS.md

1. Every pitched stem of Slakh ``Track00001`` (``../shared/data/mirdata_fixtures/slakh``) is
   rendered from its MIDI with FluidSynth (FluidR3 GM, the stem's own program, first
   ``--seconds``), transcribed by covermill (basic-pitch ONNX on onnxruntime), and scored
   against that MIDI with ``mir_eval.transcription`` (onset-only: 50 ms onset tolerance;
   with offsets: also offset within 20 % of the note or 50 ms). Speeds are x realtime on CPU.
2. The harmonic stems (everything but drums and bass) are rendered for ``--revoice-seconds``
   and re-voiced as a whole through :class:`covermill.instruments.midi.MidiInstrument`
   (transcribe, feel, render, at 0.9x tempo): target >= 5x realtime.

Writes the results between the ``<!-- bench:midi -->`` markers of the target file.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import mir_eval  # noqa: E402
import pretty_midi  # noqa: E402

from covermill.instruments.midi import MidiInstrument, beat_times, render_midi, transcribe  # noqa: E402

SLAKH = REPO.parent / "shared" / "data" / "mirdata_fixtures" / "slakh" / "babyslakh_16k" / "Track00001"
SR = 44100


def cropped(midi_path: Path, seconds: float, programs=None) -> pretty_midi.PrettyMIDI:
    """The MIDI's pitched notes that start before ``seconds``, ends clipped to ``seconds``."""
    src = pretty_midi.PrettyMIDI(str(midi_path))
    out = pretty_midi.PrettyMIDI()
    for inst in src.instruments:
        if inst.is_drum:
            continue
        new = pretty_midi.Instrument(program=inst.program, name=inst.name)
        new.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, min(n.end, seconds))
                     for n in inst.notes if n.start < seconds - 0.05]
        out.instruments.append(new)
    return out


def arrays(notes) -> tuple[np.ndarray, np.ndarray]:
    if not notes:
        return np.zeros((0, 2)), np.zeros(0)
    return (np.array([[n.start, n.end] for n in notes]),
            np.array([pretty_midi.note_number_to_hz(n.pitch) for n in notes]))


def score(ref_notes, est_notes) -> tuple[float, float]:
    ri, rp = arrays(ref_notes)
    ei, ep = arrays(est_notes)
    if len(ri) == 0 or len(ei) == 0:
        return 0.0, 0.0
    _, _, f_on, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, offset_ratio=None)
    _, _, f_off, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep)
    return f_on, f_off


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (FluidSynth)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each transcribed stem")
    ap.add_argument("--revoice-seconds", type=float, default=180.0, help="length of the whole re-voice")
    ap.add_argument("--write", type=Path, help="markdown file to update")
    args = ap.parse_args(argv)
    if not SLAKH.is_dir():
        print(f"skipped: {SLAKH} is absent (../shared beside the repository)")
        return 0

    # warm up (ONNX session, numba JIT of librosa's beat tracker): inside a render the analyse
    # stage has already run the beat tracker, so a cold JIT is not part of the re-voice
    warm = (0.1 * np.sin(np.arange(3 * SR) * 0.06)).astype(np.float32)[None]
    transcribe(warm, sr=SR)
    beat_times(warm, sr=SR)
    load_start = os.getloadavg()[0]
    rows, totals = [], {"audio": 0.0, "render": 0.0, "transcribe": 0.0, "transcribe_cpu": 0.0, "on": [], "off": [], "n": 0}
    for midi_path in sorted((SLAKH / "MIDI").glob("*.mid")):
        ref = cropped(midi_path, args.seconds)
        if not ref.instruments or not ref.instruments[0].notes:
            continue
        inst = ref.instruments[0]
        t0 = time.perf_counter()
        audio = render_midi(ref, sr=SR)
        t_render = time.perf_counter() - t0
        audio = audio[:, : int(args.seconds * SR)]
        t0, c0 = time.perf_counter(), cpu_seconds()
        est = transcribe(audio, sr=SR)
        t_tx = time.perf_counter() - t0
        totals["transcribe_cpu"] += cpu_seconds() - c0
        f_on, f_off = score(inst.notes, est)
        dur = audio.shape[1] / SR
        name = pretty_midi.program_to_instrument_name(inst.program)
        rows.append(f"| {midi_path.stem} | {name} ({inst.program}) | {len(inst.notes)} | {len(est)} | {f_on:.3f} | "
                    f"{f_off:.3f} | {dur / t_render:.0f}x | {dur / t_tx:.1f}x |")
        totals["audio"] += dur
        totals["render"] += t_render
        totals["transcribe"] += t_tx
        totals["on"].append(f_on)
        totals["off"].append(f_off)
        print(rows[-1], flush=True)

    # a whole re-voice of the harmonic stems (no drums, no bass) as one polyphonic stem
    harmonic = cropped(SLAKH.parent / "Track00001" / "all_src.mid", args.revoice_seconds)
    harmonic.instruments = [i for i in harmonic.instruments if not 32 <= i.program <= 39]
    stem = render_midi(harmonic, sr=SR)[:, : int(args.revoice_seconds * SR)]
    voice = MidiInstrument("Acoustic Grand Piano", quantize=0.3, swing=0.6, velocity_scale=0.9)
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = voice.revoice(stem, sr=SR, time_ratio=0.9)
    t_whole, c_whole = time.perf_counter() - t0, cpu_seconds() - c0
    whole_dur = stem.shape[1] / SR
    t0 = time.perf_counter()
    render_midi(voice.midi_, sr=SR)
    t_render_whole = time.perf_counter() - t0
    n_played = len(voice.midi_.instruments[0].notes)

    table = "\n".join([
        f"Audio: Slakh `Track00001` MIDI rendered with FluidSynth {fluidsynth_version()} and FluidR3 GM "
        f"(each stem's own program, first {args.seconds:g} s, 44.1 kHz); transcription: basic-pitch 0.4.0 ICASSP-2022 "
        f"model, ONNX on onnxruntime {ort_version()} (CPU); {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}; load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (the cores are shared: wall-clock speeds are pessimistic).",
        "",
        "| stem | GM program | notes (ref) | notes (est) | F1 onset | F1 onset+offset | FluidSynth x realtime | "
        "transcription x realtime |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        f"| **all** | | | | **{np.mean(totals['on']):.3f}** | **{np.mean(totals['off']):.3f}** | "
        f"**{totals['audio'] / totals['render']:.0f}x** | **{totals['audio'] / totals['transcribe']:.1f}x** |",
        "",
        "F1 is mir_eval's note F1 (onset tolerance 50 ms; with offsets also offset within max(50 ms, 20 % of the note)), "
        "the mean over stems in the last row; x realtime = audio seconds / wall seconds. Transcription CPU time: "
        f"{totals['transcribe_cpu']:.1f} s for {totals['audio']:.0f} s of audio "
        f"({totals['audio'] / totals['transcribe_cpu']:.1f}x realtime per CPU-second, all threads summed).",
        "",
        f"Whole MIDI re-voice (transcribe + feel + FluidSynth render, `MidiInstrument('Acoustic Grand Piano', "
        f"quantize=0.3, swing=0.6)`, time ratio 0.9) of a {whole_dur:.0f} s polyphonic stem (Track00001's harmonic "
        f"instruments mixed, {n_played} notes played): **{t_whole:.1f} s wall, {whole_dur / t_whole:.1f}x realtime** "
        f"(target >= 5x); CPU time {c_whole:.1f} s (process + FluidSynth, all threads), "
        f"{whole_dur / c_whole:.1f}x realtime per CPU-second; its FluidSynth render alone: {t_render_whole:.1f} s "
        f"({out.shape[1] / SR / t_render_whole:.0f}x realtime).",
    ])
    print(table)
    if args.write:
        cmd = "`.venv/bin/python bench/bench_midi.py --write docs/BENCHMARKS.md`"
        write_section(args.write, "midi", f"Command: {cmd}\n\n{table}", heading="MIDI re-voicing")
        print(f"\nwritten to {args.write}")
    return 0


def fluidsynth_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "?"
    match = re.search(r"version (\S+)", out)
    return match.group(1) if match else "?"


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


if __name__ == "__main__":
    raise SystemExit(main())
