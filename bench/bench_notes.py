"""Benchmark note-true re-voicing: pitch classes right and heard, expressive vs notes vs chords.

    .venv/bin/python bench/bench_notes.py --write docs/BENCHMARKS.md

Slakh ``Track00001`` (``../shared/data/mirdata_fixtures/slakh``), first ``--seconds``:

* **harmony stem**: its piano (S02) and organ (S05) parts rendered from their MIDI with
  FluidSynth (FluidR3 GM, their own programs), re-voiced by the parametric ``electric_piano``
  (``expressive``: one pYIN f0 line; ``chords`` from the stem's own notes, basic-pitch;
  ``chords`` from the score's notes, what a lead sheet gives) and by MIDI (``Electric Piano 1``).
* **lead stem**: the top line of the piano part played by a GM flute, plus the harmony stem at
  -12 dB as bleed, re-voiced by the parametric ``tenor_sax`` (``expressive``; ``notes`` from the
  stem's notes, top line; ``notes`` from the score's melody with the stem's expression).

Every re-voice runs at 0.9x tempo (note times of the given notes divided by 0.9). Each output is
transcribed with basic-pitch and compared with the score as pitch classes per frame (50 frames/s):
precision = share of the output's active pitch-class frames the score has at that time, recall =
share of the score's that the output has (for the lead: the melody's = "melody heard").
Writes the results between the ``<!-- bench:notes -->`` markers of the target file.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pretty_midi  # noqa: E402

from covermill import instruments  # noqa: E402
from covermill.instruments.midi import render_midi  # noqa: E402
from covermill.instruments.notes import monophonic, retime_notes, stem_notes  # noqa: E402
from covermill.instruments.parametric import BUILTIN_TIMBRES, ParametricInstrument  # noqa: E402
from covermill.leadsheet import Note  # noqa: E402

TRACK = REPO.parent / "shared" / "data" / "mirdata_fixtures" / "slakh" / "babyslakh_16k" / "Track00001"
SR = 44100
FPS = 50
RATIO = 0.9


def score_notes(stems: list[str], seconds: float) -> tuple[tuple[Note, ...], pretty_midi.PrettyMIDI]:
    """The stems' notes starting before ``seconds`` (ends clipped), and a MIDI of them with their programs."""
    out = pretty_midi.PrettyMIDI()
    notes = []
    for s in stems:
        src = pretty_midi.PrettyMIDI(str(TRACK / "MIDI" / f"{s}.mid"))
        for inst in src.instruments:
            new = pretty_midi.Instrument(program=inst.program)
            for n in inst.notes:
                if n.start < seconds - 0.05:
                    new.notes.append(pretty_midi.Note(n.velocity, n.pitch, n.start, min(n.end, seconds)))
                    notes.append(Note(n.start, min(n.end, seconds), n.pitch, n.velocity))
            out.instruments.append(new)
    return tuple(sorted(notes, key=lambda n: (n.start_s, n.pitch))), out


def played(notes, program: int) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=program)
    inst.notes = [pretty_midi.Note(int(n.velocity), int(n.pitch), float(n.start_s), float(n.end_s)) for n in notes]
    pm.instruments.append(inst)
    return pm


def pc_frames(notes, n_frames: int) -> np.ndarray:
    """(frames, 12) booleans: pitch classes sounding per 1/FPS s frame."""
    out = np.zeros((n_frames, 12), bool)
    for n in notes:
        a, b = int(round(n.start_s * FPS)), int(round(n.end_s * FPS))
        out[max(0, a) : min(n_frames, max(b, a + 1)), n.pitch % 12] = True
    return out


def pr(audio: np.ndarray, reference, n_frames: int) -> tuple[float, float]:
    est = pc_frames(stem_notes(audio, sr=SR), n_frames)
    ref = pc_frames(reference, n_frames)
    hit = (est & ref).sum()
    return float(hit / max(est.sum(), 1)), float(hit / max(ref.sum(), 1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--write", type=Path, help="update this markdown file's bench:notes section")
    args = ap.parse_args(argv)
    seconds = args.seconds
    harmony_notes, harmony_midi = score_notes(["S02", "S05"], seconds)
    harmony = render_midi(harmony_midi, sr=SR)[:, : int(seconds * SR)]
    melody = monophonic(score_notes(["S02"], seconds)[0])
    lead = render_midi(played(melody, 73), sr=SR)[:, : int(seconds * SR)]
    lead = np.pad(lead, ((0, 0), (0, max(0, harmony.shape[1] - lead.shape[1]))))[:, : harmony.shape[1]]
    lead = (lead + 10 ** (-12 / 20) * harmony * np.sqrt(np.mean(lead**2) / np.mean(harmony**2))).astype(np.float32)
    n_frames = int(seconds / RATIO * FPS)
    cover_harmony, cover_melody = retime_notes(harmony_notes, time_ratio=RATIO), retime_notes(melody, time_ratio=RATIO)

    rows = []

    def run(what, inst, stem, ref, **kw):
        t0 = time.perf_counter()
        audio = inst.render(stem, sr=SR, time_ratio=RATIO, **kw).audio
        elapsed = time.perf_counter() - t0
        p, r = pr(audio, ref, n_frames)
        rows.append((what, p, r, elapsed))
        print(f"{what}: precision {p:.2f} recall {r:.2f} ({elapsed:.1f} s)", flush=True)

    rows.append(("harmony stem itself (ceiling of the method)", *pr(harmony, harmony_notes, int(seconds * FPS)), 0.0))
    ep = instruments.get("electric_piano")
    run("harmony: parametric electric_piano, expressive (one f0 line)", ep, harmony, cover_harmony)
    run("harmony: parametric electric_piano, chords from the stem's notes", ep, harmony, cover_harmony, mode="chords")
    run("harmony: parametric electric_piano, chords from the score", ep, harmony, cover_harmony, mode="chords",
        notes=cover_harmony)
    run("harmony: MIDI Electric Piano 1, transcribed (as before)", instruments.get_midi("Electric Piano 1"), harmony,
        cover_harmony)
    rows.append(("lead stem itself (melody + harmony bleed at -12 dB)", *pr(lead, melody, int(seconds * FPS)), 0.0))
    sax = instruments.get("tenor_sax")
    run("lead: parametric tenor_sax, expressive", sax, lead, cover_melody)
    run("lead: parametric tenor_sax, notes from the stem (transcribed, those its f0 confirms)", sax, lead, cover_melody, mode="notes")
    run("lead: parametric tenor_sax, notes from the score + expression", sax, lead, cover_melody, mode="notes",
        notes=cover_melody)
    short = ParametricInstrument(dataclasses.replace(BUILTIN_TIMBRES["tenor_sax"], release_ms=20.0))
    run("lead: the same with the sax's release 90 -> 20 ms", short, lead, cover_melody, mode="notes", notes=cover_melody)

    table = ["| stem and re-voicing | pitch classes right (precision) | score heard (recall) | render s |",
             "|---|---:|---:|---:|"]
    table += [f"| {w} | {p:.2f} | {r:.2f} | {t:.1f} |" for w, p, r, t in rows]
    body = "\n".join(table)
    print(body)
    if args.write:
        cmd = f"`.venv/bin/python bench/bench_notes.py --seconds {seconds:g} --write docs/BENCHMARKS.md`"
        note = (f"Slakh Track00001, first {seconds:g} s, re-voiced at {RATIO}x tempo; each output transcribed with "
                f"basic-pitch and scored as pitch classes per frame ({FPS} frames/s) against the score "
                f"(for the lead: its melody, the top line of the piano part). Most of what notes mode plays "
                "off the score is the timbre's release ringing into the score's rests (the last row). "
                f"Render s: {platform.machine()}, 2 shared cores.")
        write_section(args.write, "notes", f"Command: {cmd}\n\n{note}\n\n{body}",
                      heading="Note-true re-voicing (notes and chords modes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
