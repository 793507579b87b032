"""Benchmark: lead-sheet accuracy on the ground-truth songs of ``bench/groundtruth.py``, and its time.

    .venv/bin/python bench/bench_leadsheet.py --write docs/BENCHMARKS.md [--no-transcribe] [--seconds 20]

For every song the original mix is rendered with FluidSynth (and the lead and bass alone: the
"perfect separation" stems whose pYIN f0 is passed as ``lead_f0``/``bass_f0``), then
:func:`covermill.analysis.leadsheet.lead_sheet` is scored with ``bench/scoring.py``. With
transcription (default), basic-pitch's notes of the mix are scored as pitch classes per frame
too: the ceiling of the cover benchmark's method. The time is CPU seconds of ``lead_sheet`` on
the 133-s demo song, with the analysis memo cold (beats and chroma computed here) and warm
(what a render pays: its tempo and cover stages have computed them already).

With ``--seconds S`` every song is also analysed on its first ``S`` seconds only (the excerpt
the cover benchmark ``bench_covers.py`` renders, default there 20 s), scored against its score
cut alike: a short excerpt holds fewer phrases and cadences, so the key is harder to tell.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import groundtruth as gt  # noqa: E402
import numpy as np  # noqa: E402
import scoring  # noqa: E402
from _markdown import write_section  # noqa: E402

from covermill.analysis import rhythm  # noqa: E402
from covermill.analysis.leadsheet import lead_sheet  # noqa: E402
from covermill.audio import load_audio, resample  # noqa: E402
from covermill.instruments.pyin import pyin  # noqa: E402

DEMO = REPO / "examples" / "lets_go_fishin.ogg"
COLS = ("majmin", "sevenths", "downbeat_f", "key", "melody_f", "melody_pc", "bass_f", "section_f", "sep_melody_f",
        "sep_melody_pc", "sep_bass_f", "roots_bass_f")


def f0_track(audio: np.ndarray, sr: int, *, fmin: float, fmax: float):
    """``(times_s, f0_hz, voiced_prob)`` as the render computes it (pYIN at 16 kHz, 62.5 frames/s)."""
    mono = resample(audio.mean(axis=0)[None], sr_in=sr, sr_out=16000)[0]
    f0, _, vp = pyin(mono, fmin=fmin, fmax=fmax, sr=16000, frame_length=2048, hop_length=256, resolution=0.25,
                     n_thresholds=50)
    return np.arange(len(f0)) * 256 / 16000, f0, vp


def bass_f(truth, est) -> float:
    ri, rp = scoring._note_arrays(truth.bass)
    ei, ep = scoring._note_arrays(est.bass)
    if not len(rp) or not len(ep):
        return float("nan") if not len(rp) else 0.0
    import mir_eval

    return float(mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, offset_ratio=None)[2])


def separated_scores(song: gt.Song, mix: np.ndarray, sr: int, truth) -> dict:
    """Melody and bass scores when the f0 comes from the DSP separator's stems (the render's default
    without Demucs weights) instead of the perfectly separated renders."""
    from covermill import stems

    parts = stems.get("dsp").separate(mix, sr=sr)
    lf = f0_track(parts["vocals"], sr, fmin=80, fmax=1000)
    bf = f0_track(parts["bass"], sr, fmin=35, fmax=300)
    sheet = lead_sheet(mix, sr=sr, lead_f0=lf, bass_f0=bf, lead_stem=parts["vocals"])
    mel = scoring.melody_scores(truth, sheet)
    return {"sep_melody_f": mel["melody_f"], "sep_melody_pc": mel["melody_pc"], "sep_bass_f": bass_f(truth, sheet)}


CLIP_COLS = ("majmin", "sevenths", "downbeat_f", "key", "melody_f", "melody_pc", "bass_f")


def evaluate_clip(song: gt.Song, seconds: float) -> dict:
    """The lead sheet of the song's first ``seconds`` (mix, lead and bass cut alike) against its
    score cut alike: the sheet's scores only (no separation, no transcription)."""
    mix, sr = gt.render(song)
    n = min(mix.shape[1], int(seconds * sr))
    lead, _ = gt.render(song, "lead")
    bass, _ = gt.render(song, "bass")
    truth = gt.score_sheet(song)
    if n / sr < truth.duration_s:
        truth = gt.cut(truth, n / sr)
    lf = f0_track(lead[:, :n], sr, fmin=80, fmax=1000)
    bf = f0_track(bass[:, :n], sr, fmin=35, fmax=300)
    sheet = lead_sheet(mix[:, :n], sr=sr, lead_f0=lf, bass_f0=bf)
    return {**scoring.sheet_scores(truth, sheet), "bass_f": bass_f(truth, sheet),
            "meter": f"{sheet.beats_per_bar}/4" if sheet.has_beat else "free",
            "key_est": sheet.key.label if sheet.key else "-", "warnings": "; ".join(sheet.warnings)}


def evaluate(song: gt.Song, *, transcribe: bool) -> dict:
    mix, sr = gt.render(song)
    lead, _ = gt.render(song, "lead")
    bass, _ = gt.render(song, "bass")
    truth = gt.score_sheet(song)
    lf, bf = f0_track(lead, sr, fmin=80, fmax=1000), f0_track(bass, sr, fmin=35, fmax=300)
    sheet = lead_sheet(mix, sr=sr, lead_f0=lf, bass_f0=bf)
    row = {**scoring.sheet_scores(truth, sheet), "bass_f": bass_f(truth, sheet),
           "meter": f"{sheet.beats_per_bar}/4" if sheet.has_beat else "free", "key_est": sheet.key.label
           if sheet.key else "-", "warnings": "; ".join(sheet.warnings)}
    row["roots_bass_f"] = bass_f(truth, lead_sheet(mix, sr=sr))  # no bass f0: the chord roots
    row.update(separated_scores(song, mix, sr, truth))
    if transcribe:
        heard = scoring.transcribe(mix, sr=sr)
        row.update(scoring.pitch_class_scores(heard, truth))
        # the other melody source issue 15 asks to measure: predominant melody of the mix (basic-pitch skyline)
        sky = scoring.melody_scores(truth, replace(sheet, melody=tuple(scoring.skyline(heard))))
        row.update({"mix_melody_f": sky["melody_f"], "mix_melody_pc": sky["melody_pc"]})
    return row


def timing() -> dict:
    y = load_audio(DEMO)
    rhythm.forget()
    t0 = time.process_time()
    lead_sheet(y, sr=44100)
    cold = time.process_time() - t0
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        lead_sheet(y, sr=44100)
        best = min(best, time.process_time() - t0)
    return {"cold": cold, "warm": best, "duration": y.shape[1] / 44100}


def _fmt(x) -> str:
    return "–" if isinstance(x, float) and not np.isfinite(x) else (f"{x:.2f}" if isinstance(x, float) else str(x))


def table(results: list[tuple[gt.Song, dict]], transcribe: bool, cols: tuple[str, ...] = COLS) -> list[str]:
    extra = ("pc_precision", "pc_recall", "melody_heard", "mix_melody_f", "mix_melody_pc") if transcribe else ()
    head = ["song", "score", "meter", "key (est.)", *cols, *extra, "warnings"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for song, r in results:
        cells = [song.name, gt.describe(song), r["meter"], r["key_est"], *(_fmt(r[c]) for c in cols),
                 *(_fmt(r[c]) for c in extra), r["warnings"] or "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def clip_lines(clips: dict[str, list[tuple[gt.Song, dict]]], seconds: float) -> list[str]:
    """The ``--seconds`` part of the section: means and one table of every song's excerpt."""
    def mean(group: str) -> dict:
        return {c: float(np.nanmean([r[c] for _, r in clips[group]])) for c in CLIP_COLS}

    reg, held = mean("regular"), mean("heldout")
    summary = ("chords majmin **{majmin:.2f}**, sevenths {sevenths:.2f}, downbeat F **{downbeat_f:.2f}**, key "
               "**{key:.2f}**, melody notes F {melody_f:.2f}, bass notes F {bass_f:.2f}")
    rows = [(s, r) for group in ("regular", "heldout", "special") for s, r in clips[group]]
    return [f"**The first {seconds:g} s of every song** (`--seconds {seconds:g}`: the excerpt `bench_covers.py` "
            f"renders; mix, lead and bass cut alike, scored against the score cut alike). Regular songs (mean of "
            f"{len(clips['regular'])}): " + summary.format(**reg) + f"; held-out (mean of {len(clips['heldout'])}): "
            + summary.format(**held) + ". Rows: the regular songs, then the held-out ones, then the special ones.",
            "", *table(rows, False, CLIP_COLS), ""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="markdown file whose leadsheet section is replaced")
    ap.add_argument("--no-transcribe", action="store_true", help="skip basic-pitch on the mixes")
    ap.add_argument("--seconds", type=float, help="also analyse the first SECONDS of every song (e.g. 20: the "
                    "excerpt bench_covers.py renders) and report it in a table of its own")
    args = ap.parse_args(argv)
    if args.seconds is not None and args.seconds < 2:
        ap.error(f"--seconds {args.seconds:g}: give at least 2 (covermill's shortest song)")
    transcribe = not args.no_transcribe
    warnings.filterwarnings("ignore")
    regular = [(s, evaluate(s, transcribe=transcribe)) for s in gt.SONGS]
    heldout = [(s, evaluate(s, transcribe=transcribe)) for s in gt.HELDOUT]
    special = [(s, evaluate(s, transcribe=transcribe)) for s in gt.SPECIAL]
    clips = {}
    if args.seconds is not None:
        clips = {name: [(s, evaluate_clip(s, args.seconds)) for s in songs]
                 for name, songs in (("regular", gt.SONGS), ("heldout", gt.HELDOUT), ("special", gt.SPECIAL))}
    t = timing()
    cols = COLS + (("pc_precision", "pc_recall", "melody_heard", "mix_melody_f", "mix_melody_pc") if transcribe
                   else ())
    mean = {c: float(np.nanmean([r[c] for _, r in regular])) for c in cols}
    held = {c: float(np.nanmean([r[c] for _, r in heldout])) for c in cols}
    lines = [
        "Command: `.venv/bin/python bench/bench_leadsheet.py --write docs/BENCHMARKS.md"
        + ("" if args.seconds is None else f" --seconds {args.seconds:g}") + ("" if transcribe else " --no-transcribe")
        + "` "
        f"({platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS=1). Songs: `bench/groundtruth.py` "
        "(scores written there, rendered by FluidSynth with FluidR3_GM: lead on *Voice Oohs* (*Choir Aahs* in "
        "free time, *Synth Voice* in one held-out song), electric piano (held out: piano, nylon guitar, "
        "strings; two with broken chords), finger bass, GM drums). `lead_f0`/`bass_f0`: pYIN of the lead and "
        "bass rendered alone (the separation is perfect here: separation errors are not measured). "
        "Scoring: `bench/scoring.py` (mir_eval). The settings were tuned on the regular songs; the held-out "
        "songs were written afterwards and are reported as first measured.",
        "",
        "**Regular songs (mean of 6)**: chords majmin **{majmin:.2f}** (target ≥ 0.80), sevenths {sevenths:.2f}, "
        "downbeat F **{downbeat_f:.2f}** (target ≥ 0.80), key **{key:.2f}** (target ≥ 0.9), melody notes F "
        "{melody_f:.2f} (pitch class per frame {melody_pc:.2f}), bass notes F {bass_f:.2f}, section boundaries "
        "F {section_f:.2f}; with the f0 of the DSP separator's vocals and bass stems instead (`sep_*`): melody "
        "notes F {sep_melody_f:.2f} (pitch class per frame {sep_melody_pc:.2f}), bass notes F {sep_bass_f:.2f}; "
        "the chord-root bass line (no `bass_f0`): bass notes F {roots_bass_f:.2f}."
        .format(**mean),
    ]
    if transcribe:
        lines.append("Basic-pitch on the original mixes (the ceiling of the cover benchmark's method): pitch-class "
                     "precision {pc_precision:.2f}, recall {pc_recall:.2f}, melody heard {melody_heard:.2f}. The other melody "
                     "source, predominant melody of the mix (basic-pitch notes of the mix, skyline from G3 up, "
                     "`mix_melody_*`): melody notes F {mix_melody_f:.2f}, pitch class per frame {mix_melody_pc:.2f} "
                     "(arrangement-dependent: here the lead lies above the chords)."
                     .format(**mean))
    lines.append("**Held-out songs (mean of 4; written after the tuning, never tuned on)**: chords majmin "
                 "**{majmin:.2f}**, sevenths {sevenths:.2f}, downbeat F **{downbeat_f:.2f}**, key **{key:.2f}**, "
                 "melody notes F {melody_f:.2f}, bass notes F {bass_f:.2f}, section boundaries F {section_f:.2f}; "
                 "DSP-separated: melody notes F {sep_melody_f:.2f}, bass notes F {sep_bass_f:.2f}."
                 .format(**held))
    lines += ["", *table(regular, transcribe), "", "Held out:", "", *table(heldout, transcribe), "",
              "Reported apart (bad input, no targets):", "",
              *table(special, transcribe), ""]
    if clips:
        lines += clip_lines(clips, args.seconds)
    lines.append(f"Time: `lead_sheet()` on the demo song ({t['duration']:.0f} s) takes **{t['warm']:.2f} CPU-s** "
                 f"with the analysis memo warm (the render has tracked the beats and computed the chroma for tempo "
                 f"and cover detection already) and {t['cold']:.2f} CPU-s cold (beats and CQT chroma included).")
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.write, "leadsheet", body, heading="Lead sheet (ground truth)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
