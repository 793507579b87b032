"""Benchmark taste profiles: GTZAN feature extraction x realtime and `covermill profile` on 50 songs.

    .venv/bin/python bench/bench_profile.py --write docs/BENCHMARKS.md

The 50 "songs" are 30-s excerpts at different offsets (and levels, so every file hashes
differently) of the real recordings shipped or in ../shared; profile runs twice: cold
(empty cache) and warm (every song's result cached by content hash).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill.analysis.genre_features import gtzan_features  # noqa: E402
from covermill.audio import load_audio, save_audio  # noqa: E402
from covermill.automation.profile import profile_folder  # noqa: E402

SR = 44100


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--songs", type=int, default=50)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    sources = [REPO / "examples" / "lets_go_fishin.ogg", REPO / "covermill" / "analysis" / "data" / "sugar_plum_fairy.ogg"]
    shared = REPO.parent / "shared" / "data" / "librosa_data" / "cc_by_nc"
    sources += sorted(shared.glob("*.ogg")) if shared.is_dir() else []
    audio = [load_audio(p) for p in sources]
    clip = audio[0][:, : 30 * SR]
    t0 = time.perf_counter()
    reps = 3
    for _ in range(reps):
        gtzan_features(clip, sr=SR)
    t_feat = (time.perf_counter() - t0) / reps
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "music"
        folder.mkdir()
        total_s = 0.0
        for i in range(args.songs):
            y = audio[i % len(audio)]
            n = min(y.shape[1], 30 * SR)
            start = (i * 7 * SR) % max(1, y.shape[1] - n + 1)
            part = y[:, start : start + n] * (0.9 + 0.002 * i)
            total_s += part.shape[1] / SR
            save_audio(folder / f"song{i:02d}.wav", part, sr=SR)
        cache = Path(tmp) / "cache"
        t0 = time.perf_counter()
        prof = profile_folder(folder, Path(tmp) / "out", cache_dir=cache)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        profile_folder(folder, Path(tmp) / "out", cache_dir=cache)
        t_warm = time.perf_counter() - t0
    top = ", ".join(f"{g} {p:.0%}" for g, p in list(prof.distribution.items())[:3])
    text = "\n".join([
        f"{args.songs} songs (30-s excerpts of {len(sources)} real recordings, {total_s / 60:.1f} min of audio), 2 CPU cores.",
        "",
        "| step | seconds | rate |",
        "|---|---:|---:|",
        f"| GTZAN features of one 30-s clip | {t_feat:.2f} | {30 / t_feat:.1f}x realtime |",
        f"| profile, cold cache ({args.songs} songs) | {t_cold:.1f} | {args.songs / t_cold:.2f} songs/s, {total_s / t_cold:.1f}x realtime |",
        f"| profile, warm cache | {t_warm:.1f} | {args.songs / t_warm:.1f} songs/s |",
        "",
        f"Top genres of this folder: {top}.",
    ])
    print(text)
    if args.write:
        cmd = "`.venv/bin/python bench/bench_profile.py --write docs/BENCHMARKS.md`"
        write_section(args.write, "profile", f"Command: {cmd}\n\n{text}", heading="Taste profiles")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
