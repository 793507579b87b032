"""The same batch with local paths and with S3 (moto on loopback): seconds, overhead, bytes moved per song.

    python bench/bench_remote.py [--songs 8] [--seconds 10] [--workers 2] [--repeat 2] [--recipe FILE_OR_NAME]
                                 [--write docs/BENCHMARKS.md]

Songs: ``--songs`` excerpts of ``--seconds`` of ``examples/lets_go_fishin.ogg`` (one every 12 s, FLAC).
Recipe: by default a mix-only recipe (drums -6 dB, vocals +2 dB: no re-voicing, no stretch), so the
render is short and the storage's share of the time shows; ``--recipe pop_to_jazz`` for a full one.
Separator ``dsp``; a private local Dask cluster of ``--workers`` processes (its start is counted in
both runs). One local render first, not counted (imports, compiled kernels). Then ``--repeat`` rounds,
local and S3 in alternating order; each run with an empty ``OUT`` and an empty stem cache; the table
gives the fastest run of each kind (the others in the note) and the median seconds inside a render
task (fetch + render + upload, from the manifest):

- **local**: FOLDER, OUT and ``--cache-dir`` are local folders;
- **S3**: FOLDER, OUT and ``--cache-dir`` are ``s3://`` URLs on moto's standalone S3 server on
  127.0.0.1 (an emulator, in this process's threads: its speed is not a real store's), reached by
  the workers through s3fs and a byte-counting TCP proxy: the bytes are everything on the wire
  (HTTP headers, listings, the songs down, the stems and covers up);
- **S3 rerun**: the same command again, every song done (the client's ``qa.json`` checks only).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_section  # noqa: E402

MIX_ONLY = "name: mix_only\nstems:\n  drums: {gain_db: -6}\n  vocals: {gain_db: 2}\n"


class CountingProxy:
    """A TCP proxy that counts the bytes each way."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = self.down = 0
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
                with self._lock:
                    setattr(self, way, getattr(self, way) + len(data))
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def reset(self) -> None:
        with self._lock:
            self.up = self.down = 0


def make_songs(folder: Path, n: int, seconds: float) -> list[Path]:
    import soundfile as sf

    y, sr = sf.read(str(REPO / "examples" / "lets_go_fishin.ogg"), dtype="float32", always_2d=True)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        start = int((i * 12.0) % max(1.0, len(y) / sr - seconds) * sr)
        p = folder / f"excerpt_{i:02d}.flac"
        sf.write(str(p), y[start:start + int(seconds * sr)], sr)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--recipe", default=None)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()

    import logging

    import fsspec
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's one line per request

    from covermill.automation.batch import run_batch

    tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    os.environ["COVERMILL_CACHE_DIR"] = str(tmp / "covermill-cache")  # the workers' local mirrors too
    recipe = args.recipe
    if recipe is None:
        (tmp / "mix_only.yaml").write_text(MIX_ONLY)
        recipe = str(tmp / "mix_only.yaml")
    songs = make_songs(tmp / "songs", args.songs, args.seconds)
    song_bytes = sum(p.stat().st_size for p in songs)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = CountingProxy((host, port))
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    fs = fsspec.filesystem("s3")
    fs.mkdir("bench")
    for p in songs:
        fs.put_file(str(p), f"bench/songs/{p.name}")

    import statistics

    from covermill.automation.pipeline import render
    from covermill.recipes import load_recipe

    render(songs[0], load_recipe(recipe), tmp / "warmup", separator="dsp")  # not counted
    runs: dict[str, list] = {}

    def run(label: str, folder: str, out: str, cache: str) -> None:
        proxy.reset()
        t0 = time.perf_counter()
        summary = run_batch(folder, [recipe], out, workers=args.workers, separator="dsp", cache_dir=cache)
        seconds = time.perf_counter() - t0
        if summary.failed:
            raise SystemExit(f"{label}: {summary.failed} renders failed: {summary.records}")
        task_s = statistics.median([r["seconds"] for r in summary.records if r.get("seconds") is not None] or [0])
        rendered = summary.total - summary.skipped
        runs.setdefault(label, []).append((seconds, rendered, summary.skipped, proxy.up, proxy.down,
                                           task_s if rendered else None))
        print(f"{label}: {seconds:.1f} s, {rendered} rendered, {summary.skipped} skipped, "
              f"up {proxy.up / 1e6:.2f} MB, down {proxy.down / 1e6:.2f} MB", flush=True)

    for i in range(args.repeat):
        order = [("local", str(tmp / f"out{i}"), str(tmp / f"cache{i}")),
                 ("S3 (moto)", f"s3://bench/covers{i}", f"s3://bench/stems{i}")]
        for label, out, cache in (order if i % 2 == 0 else order[::-1]):
            run(label, str(tmp / "songs") if label == "local" else "s3://bench/songs", out, cache)
    run("S3 rerun, all done", "s3://bench/songs", "s3://bench/covers0", "s3://bench/stems0")
    out_bytes = sum(fs.du("bench/covers0", total=False).values())
    server.stop()

    n = args.songs
    local_s = min(runs["local"])[0]
    lines = [f"Command: `.venv/bin/python bench/bench_remote.py --songs {n} --seconds {args.seconds:g} "
             f"--workers {args.workers} --repeat {args.repeat}{' --recipe ' + args.recipe if args.recipe else ''} --write docs/BENCHMARKS.md`",
             "",
             f"{n} excerpts of {args.seconds:g} s of `examples/lets_go_fishin.ogg` (FLAC, {song_bytes / n / 1e6:.2f} MB "
             f"each), recipe {'`' + args.recipe + '`' if args.recipe else 'mix-only (drums -6 dB, vocals +2 dB)'}, "
             f"separator `dsp`, a local Dask cluster of {args.workers} worker process(es) (its start counted), "
             f"empty OUT and stem cache for the first two runs. S3 is **moto's emulator** on 127.0.0.1 (in "
             f"the client's process, on the same CPUs as the workers), not a real store: the overhead is "
             f"covermill's, s3fs's and moto's work on loopback, not network latency. Bytes: every byte through a TCP proxy in front of moto "
             f"(HTTP included); outputs in S3 after the run: {out_bytes / n / 1e6:.2f} MB per song. "
             f"{os.cpu_count()} CPUs shared with other work; CPython {platform.python_version()}, "
             f"{time.strftime('%Y-%m-%d')}.",
             "",
             "| run | seconds (fastest) | vs local | median s in a task | rendered | skipped | up per song | "
             "down per song |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, results in runs.items():
        seconds, ok, skipped, up, down, task_s = min(results)
        vs = f"{100 * (seconds - local_s) / local_s:+.0f} %" if label == "S3 (moto)" else "—"
        per = f"{up / n / 1e6:.2f} MB" if label != "local" else "—"
        per_down = f"{down / n / 1e6:.2f} MB" if label != "local" else "—"
        task = f"{task_s:.1f}" if task_s is not None else "—"
        lines.append(f"| {label} | {seconds:.1f} | {vs} | {task} | {ok} | {skipped} | {per} | {per_down} |")
    lines += ["", "All runs (s): " + "; ".join(f"{label} " + ", ".join(f"{r[0]:.1f}" for r in results)
                                             for label, results in runs.items()) + "."]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.write, "remote", body, heading="Batch on object storage (S3 emulator) against local paths")


if __name__ == "__main__":
    main()
