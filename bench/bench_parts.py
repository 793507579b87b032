"""Benchmark the generated genre parts on hand-written lead sheets: harmony, groove and speed.

    .venv/bin/python bench/bench_parts.py --write docs/BENCHMARKS.md

Lead sheets (no audio needed): a pop progression (I-vi-IV-V, a chord per bar), a jazz ii-V-I
cycle (two chords per bar, 7th chords) and a minor-key progression with a half-diminished ii and a
dominant V, each in 4/4 and 3/4 at 72, 104 and 152 bpm, 16 bars, two sections. For every built-in style:

* **out of scale**: share of note time outside the current chord's tones + the style's extensions
  (chromatic approach notes and anticipations count as in), worst case over the sheets (target <= 10 %);
* **swing**: long:short ratio of the ride/hi-hat off-beats vs the style's (drums);
* **off-beat**: share of onsets on the off-beat 8th (reggae skank and bass; walking bass for contrast);
* **bossa**: share of the cross-stick onsets (outside fills) on the two-bar pattern's positions;
* **generate**: ms to generate one 16-bar part (median); **render**: FluidSynth time for a 3-part
  ensemble of 16 bars at 104 bpm (x realtime).

Writes the results between the ``<!-- bench:parts -->`` markers of the target file.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill.instruments.fluidsynth import default_soundfont  # noqa: E402
from covermill.instruments.part_checks import (  # noqa: E402
    TIME_KEEPERS,
    offbeat_share,
    onset_positions,
    onsets,
    out_of_scale_share,
    swing_ratio,
)
from covermill.instruments.parts import generate_part, render_part  # noqa: E402
from covermill.instruments.styles import DRUM_VOICES, list_styles  # noqa: E402
from covermill.leadsheet import Chord, Key, LeadSheet, Section  # noqa: E402

PROGRESSIONS = {
    "pop I-vi-IV-V (G major)": (["G:maj", "E:min", "C:maj", "D:maj"], 1, Key(7)),
    "jazz ii-V-I (Bb major)": (["C:min7", "F:7", "Bb:maj7", "G:7"], 2, Key(10)),
    "minor ii-V-i (A minor)": (["B:hdim7", "E:7", "A:min7", "A:min6", "D:min7", "G:7", "C:maj7", "E:7"], 2, Key(9, "minor")),
}
TEMPI = (72.0, 104.0, 152.0)
BARS = 16


def sheet(labels, per_bar, key, beats_per_bar, bpm) -> LeadSheet:
    period = 60 / bpm
    beats = tuple(0.25 + period * np.arange(BARS * beats_per_bar + 1))
    duration = beats[-1] + 0.01
    step = max(1, beats_per_bar // per_bar) if per_bar > 1 and beats_per_bar % per_bar == 0 else beats_per_bar
    edges = list(range(0, BARS * beats_per_bar, step))
    chords = tuple(Chord.from_label(labels[i % len(labels)], beats[b], beats[b + step] if b + step < len(beats) - 1
                                    else duration) for i, b in enumerate(edges))
    half = beats[BARS // 2 * beats_per_bar]
    return LeadSheet(duration_s=duration, bpm=bpm, beats_s=beats, downbeats_s=beats[::beats_per_bar][:BARS],
                     beats_per_bar=beats_per_bar, key=key, chords=chords,
                     sections=(Section(0.0, half, "A"), Section(half, duration, "B")))


def jittered(sh: LeadSheet, rng: np.random.Generator) -> LeadSheet:
    """The sheet with every chord change moved by up to +-15 % of a beat (an analysis off the grid)."""
    from dataclasses import replace

    period = 60 / sh.bpm
    edges = [c.start_s for c in sh.chords[1:]]
    moved = [0.0] + [e + rng.uniform(-0.15, 0.15) * period for e in edges] + [sh.duration_s]
    return replace(sh, chords=tuple(replace(c, start_s=a, end_s=b) for c, a, b in zip(sh.chords, moved, moved[1:],
                                                                                        strict=False)))


def measure() -> tuple[str, dict]:
    sheets = [(name, m, bpm, sheet(labels, per_bar, key, m, bpm)) for name, (labels, per_bar, key) in PROGRESSIONS.items()
              for m in (4, 3) for bpm in TEMPI]
    rng = np.random.default_rng(0)
    rough = [(m, jittered(sh, rng)) for _, m, _, sh in sheets]
    rows = []
    for style in list_styles():
        if style.kind == "melody":  # plays the song's own tune (no pattern to check): bench_covers scores it
            continue
        worst, means, times, swings, offs, warned = 0.0, [], [], [], [], 0
        off_grid = [out_of_scale_share(generate_part(sh, style, kind=style.kind, seed=1).midi, sh, style)
                    for m, sh in rough if m in style.meters and style.kind != "drums"]
        for _, meter, _, sh in sheets:
            t0 = time.perf_counter()
            result = generate_part(sh, style, kind=style.kind, seed=1)
            times.append(time.perf_counter() - t0)
            warned += bool(result.warnings)
            if meter not in style.meters:
                continue
            share = out_of_scale_share(result.midi, sh, style)
            worst, means = max(worst, share), means + [share]
            body = [t for t in onsets(result.midi) if t < sh.downbeats_s[-1]]
            offs.append(offbeat_share(body, sh.beats_s))
            if style.kind == "drums":
                swings.append(swing_ratio(onsets(result.midi, TIME_KEEPERS), sh.beats_s, unit=style.swing_unit))
        target = style.swing / (1 - style.swing)
        swing = (f"{np.nanmedian(swings):.2f} (style {target:.2f})" if style.kind == "drums" and
                 np.isfinite(swings).any() else "-")
        scale = "-" if style.kind == "drums" else f"{100 * np.mean(means):.1f} / {100 * worst:.1f}"
        rough_scale = "-" if style.kind == "drums" else f"{100 * np.mean(off_grid):.1f} / {100 * max(off_grid):.1f}"
        rows.append(f"| {style.kind} | {style.name} | {', '.join(f'{m}/4' for m in sorted(style.meters))} | {scale} | {rough_scale} "
                    f"| {swing} | {100 * np.mean(offs):.0f} | {1000 * np.median(times):.1f} |")
    bossa_sheet = sheets[1][3]
    part = generate_part(bossa_sheet, "bossa_nova", kind="drums", seed=1).midi
    fill_free = [t for t in onsets(part, [DRUM_VOICES["side_stick"]]) if t < bossa_sheet.downbeats_s[BARS // 2 - 1]]
    positions = onset_positions(fill_free, bossa_sheet, bars=2)
    on = sum(c for p, c in positions.items() if p in (0.0, 1.5, 3.0, 5.0, 6.5)) / max(1, sum(positions.values()))
    render = "-"
    if shutil.which("fluidsynth") and default_soundfont().is_file():
        sh = sheets[1][3]
        parts = [generate_part(sh, "reggae_one_drop", kind="drums"), generate_part(sh, "reggae", kind="bass"),
                 generate_part(sh, "reggae_skank", kind="comping")]
        t0 = time.perf_counter()
        render_part(*parts, sr=44100)
        render = f"{sh.duration_s / (time.perf_counter() - t0):.0f}x realtime ({sh.duration_s:.1f} s of audio, {default_soundfont().name})"
    table = "\n".join([
        "| kind | style | meters | out of scale % (mean / worst) | same, chords off the grid | swing ratio "
        "| off-beat onsets % | generate ms |",
        "|---|---|---|---:|---:|---|---:|---:|", *rows])
    extra = (f"\nBossa cross-stick onsets on the two-bar pattern's positions (1, 2-and, 4 | 2, 3-and): "
             f"{100 * on:.0f} %.\nFluidSynth render of drums + bass + skank (reggae, 16 bars at 104 bpm): {render}.\n"
             f"Sheets: {len(sheets)} ({', '.join(PROGRESSIONS)}; 4/4 and 3/4; {', '.join(f'{b:g}' for b in TEMPI)} bpm; "
             f"{BARS} bars); 'chords off the grid': every chord change moved by up to +-15 % of a beat, as an "
             f"analysis off the beat might place it. Out-of-scale and off-beat figures are over the meters a style "
             f"has; styles without a "
             f"3/4 variant generate their documented fallback (a warning) and are timed there too. Melody styles "
             f"(doublings of the song's own tune, no pattern) are left out: `bench_covers.py` scores them.")
    return table + "\n" + extra, {"rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="replace the parts section of this markdown file")
    args = ap.parse_args()
    table, _ = measure()
    print(table)
    if args.write:
        machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        cmd = "`.venv/bin/python bench/bench_parts.py --write docs/BENCHMARKS.md`"
        write_section(args.write, "parts", f"Command: {cmd} ({machine})\n\n{table}", heading="Genre parts")


if __name__ == "__main__":
    main()
