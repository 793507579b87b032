"""Benchmark: Audacity startup, and mixing stems in Audacity vs the pedalboard mixer.

    make bench-audacity   # or: .venv/bin/python bench/bench_audacity.py --write docs/BENCHMARKS.md

Startup: a fresh covermill profile (warm-up start included) and warm starts (Xvfb included).
Mix: the demo song's stems (dsp separator, an excerpt), a gain/pan/tempo recipe, mixed by
pedalboard + Rubber Band and by Audacity (Change Tempo); level and spectrogram agreement.
Session: a review session of a 3-minute song (the demo song looped to ``--session-seconds``):
10 tracks, beat, bar, section and chord label tracks; seconds and pipe commands; optional
screenshot of the session opened in Audacity (``--screenshot PNG``, ffmpeg's ``x11grab``).
Writes between the ``<!-- bench:audacity -->`` markers of the target file.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill import stems as separators  # noqa: E402
from covermill.audio import load_audio  # noqa: E402
from covermill.automation.audacity import Audacity  # noqa: E402
from covermill.automation.audacity.mixer import mix as audacity_mix  # noqa: E402
from covermill.automation.audacity.session import render_session  # noqa: E402
from covermill.automation.mixer import process_stem, sum_stems  # noqa: E402
from covermill.automation.tempo import stretch  # noqa: E402
from covermill.constants import WORK_SR  # noqa: E402
from covermill.recipes import Stem  # noqa: E402

DEMO = REPO / "examples" / "lets_go_fishin.ogg"
SPECS = {"vocals": Stem(gain_db=-1.0, pan=0.2), "drums": Stem(gain_db=-4.0, pan=-0.3),
         "bass": Stem(gain_db=0.0, pan=0.0), "other": Stem(gain_db=-2.0, pan=0.5)}


def spectral_correlation(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.signal import stft

    sx, sy = (np.log1p(100 * np.abs(stft(z, nperseg=2048, noverlap=1024)[2])) for z in (x, y))
    return float(np.corrcoef(sx.ravel(), sy.ravel())[0, 1])


def bench_long_session(args, profile: Path, tmp: Path) -> dict:
    """A review session of a ``--session-seconds`` song, timed end to end, pipe commands counted."""
    from covermill.audio import save_audio
    from covermill.automation.audacity.session import aup3_info, open_session

    sr = WORK_SR
    y = load_audio(args.song, sr=sr)
    n = int(args.session_seconds * sr)
    y = np.tile(y, (1, n // y.shape[1] + 1))[:, :n]
    parts = separators.get("dsp").separate(y, sr=sr)
    processed = {k: (a, SPECS[k]) for k, a in parts.items()}
    beats = np.arange(0.25, n / sr, 0.5)
    downbeats = beats[::4]
    bars = [(float(a), float(b), f"bar {i + 1}") for i, (a, b) in enumerate(zip(downbeats, list(downbeats[1:]) + [n / sr], strict=True))]
    names = ["intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"]
    step = n / sr / len(names)
    sections = [(i * step, (i + 1) * step, s) for i, s in enumerate(names)]
    chords = [(a, b, ("C:maj", "A:min", "F:maj", "G:7")[i % 4]) for i, (a, b, _) in enumerate(bars)]
    label_tracks = {"bars": bars, "sections": sections, "chords": chords}
    with Audacity.start(profile=profile, headless=True, command_timeout_s=600) as app:
        sent = []
        write = app.client._write
        app.client._write = lambda line: (sent.append(line), write(line))[1]
        t0 = time.perf_counter()
        target = render_session(tmp / "long.aup3", sr=sr, original=y, stems=parts, processed=processed, cover=y,
                                beats_s=beats, downbeats_s=downbeats, label_tracks=label_tracks, app=app)
        total = time.perf_counter() - t0
        app.client._write = write
        t0 = time.perf_counter()
        for i, a in enumerate([y, *parts.values(), *parts.values(), y]):
            save_audio(tmp / f"w{i}.wav", a, sr=sr, subtype="FLOAT", clip="none")
        t_write = time.perf_counter() - t0
        info = aup3_info(target)
        if args.screenshot:
            import subprocess

            open_session(target, app=app)
            app.client.do("SelectNone")
            time.sleep(1.0)  # let the window repaint
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "x11grab", "-video_size", "1280x1024",
                            "-i", app.xvfb.display, "-frames:v", "1", str(args.screenshot)], check=True)
            app.client.do("Close")
    assert [t["name"] for t in info if t["kind"] == "label"] == ["beats", "bars", "sections", "chords"]
    counts = {"beats": len(beats), "bars": len(bars), "sections": len(sections), "chords": len(chords)}
    return {"seconds": n / sr, "total": total, "write": t_write, "commands": len(sent),
            "mb": 10 * 2 * 4 * n / 1e6, "labels": ", ".join(f"{k} ({v})" for k, v in counts.items())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--song", type=Path, default=DEMO)
    ap.add_argument("--start", type=float, default=30.0, help="excerpt start (s)")
    ap.add_argument("--seconds", type=float, default=30.0, help="excerpt length (s)")
    ap.add_argument("--ratio", type=float, default=0.9, help="tempo ratio of the mix")
    ap.add_argument("--warm-starts", type=int, default=3)
    ap.add_argument("--sbsms", action="store_true", help="also time Audacity's SBSMS stretcher (slow)")
    ap.add_argument("--session-seconds", type=float, default=180.0, help="length of the session benchmark's song")
    ap.add_argument("--screenshot", type=Path, help="PNG of the 3-minute session opened in Audacity (Xvfb)")
    ap.add_argument("--write", type=Path, help="markdown file to update")
    args = ap.parse_args(argv)
    sr = WORK_SR

    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile"
        t0 = time.perf_counter()
        Audacity.start(profile=profile, headless=True).stop()
        fresh = time.perf_counter() - t0
        warm = []
        for _ in range(args.warm_starts):
            with Audacity.start(profile=profile, headless=True) as app:
                warm.append(app.startup_s)

        y = load_audio(args.song, sr=sr)[:, int(args.start * sr) : int((args.start + args.seconds) * sr)]
        n = y.shape[1]
        parts = separators.get("dsp").separate(y, sr=sr)
        kept = {name: (audio, SPECS[name]) for name, audio in parts.items()}
        n_out = round(n / args.ratio)

        t0 = time.perf_counter()
        bus = sum_stems([process_stem(a, sr=sr, spec=s) for a, s in kept.values()], length=n)
        ours = stretch(bus, sr=sr, time_ratio=args.ratio)
        t_pedalboard = time.perf_counter() - t0
        rows = []
        with Audacity.start(profile=profile, headless=True, command_timeout_s=600) as app:
            for hq in (False, True) if args.sbsms else (False,):
                t0 = time.perf_counter()
                theirs = audacity_mix(app, sr=sr, kept=kept, voiced={}, time_ratio=args.ratio, semitones=0.0,
                                      n_out=n_out, hq=hq)
                seconds = time.perf_counter() - t0
                diff = [20 * np.log10(np.sqrt(np.mean(theirs[c] ** 2)) / np.sqrt(np.mean(ours[c] ** 2))) for c in (0, 1)]
                corr = [spectral_correlation(ours[c], theirs[c]) for c in (0, 1)]
                rows.append((f"Audacity, Change Tempo ({'SBSMS' if hq else 'SoundTouch'})", seconds, diff, corr))
            processed = {k: (stretch(a, sr=sr, time_ratio=args.ratio), s) for k, (a, s) in kept.items()}
            t0 = time.perf_counter()
            render_session(Path(tmp) / "session.aup3", sr=sr, original=y, stems=parts, processed=processed,
                           cover=ours, beats_s=np.arange(0.5, n_out / sr, 0.5), app=app)
            t_session = time.perf_counter() - t0

        long_stats = bench_long_session(args, profile, Path(tmp))

    dur = n / sr
    name = args.song.relative_to(REPO) if args.song.is_relative_to(REPO) else args.song
    lines = [
        f"Audacity 3.2.4 (Debian), Xvfb; song `{name}` {args.start:g}-{args.start + args.seconds:g} s "
        f"({dur:.1f} s), dsp stems, gains/pans per stem, tempo ratio {args.ratio}; "
        f"{os.cpu_count()} CPU cores (shared), Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| Audacity start | seconds |",
        "|---|---:|",
        f"| fresh profile (warm-up start + start, Xvfb) | {fresh:.2f} |",
        f"| warm profile, median of {len(warm)} (Xvfb included) | {statistics.median(warm):.2f} |",
        "",
        "| mix (gain, pan, tempo) of 4 stems | seconds | x realtime | RMS diff L / R (dB) | spectrogram corr. L / R |",
        "|---|---:|---:|---:|---:|",
        f"| pedalboard + Rubber Band R3 (default mixer) | {t_pedalboard:.2f} | {dur / t_pedalboard:.1f}x | reference | reference |",
        *[f"| {label} | {sec:.2f} | {dur / sec:.1f}x | {d[0]:+.2f} / {d[1]:+.2f} | {c[0]:.3f} / {c[1]:.3f} |"
          for label, sec, d, c in rows],
        "",
        f"Building a review session of this excerpt (10 tracks, {len(np.arange(0.5, n_out / sr, 0.5))} labels, "
        f"save): {t_session:.2f} s.",
        "",
        f"Review session of a {long_stats['seconds']:.0f}-s song (the demo song looped; 10 tracks: original, 4 stems, "
        f"4 processed stems, cover; label tracks: {long_stats['labels']}):",
        "",
        "| session | seconds | pipe commands |",
        "|---|---:|---:|",
        f"| `render_session` (write 10 WAVs, one List-of-Files import, one Nyquist call per label track, "
        f"one Nyquist tool call for names/gains/pans/mutes, fit, save) | {long_stats['total']:.2f} | "
        f"{long_stats['commands']} |",
        f"| of which writing the 10 float WAVs ({long_stats['mb']:.0f} MB) | {long_stats['write']:.2f} | |",
        "",
        "Before (one `AddLabel` + `SetLabel` per label, one `Import2` + `Select` + `SetTrack` per track): "
        "32 s for a 30-s excerpt (60 beat labels), about 0.5 s per label and growing with the count.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section(args.write, "audacity", f"Command: `make bench-audacity`\n\n{table}", heading="Audacity")
        print(f"\nwritten to {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
