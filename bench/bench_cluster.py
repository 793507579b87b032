"""Costs of the cluster features of issue 20: the build check and fetching Demucs weights.

    .venv/bin/python bench/bench_cluster.py [--mb 84] [--write docs/BENCHMARKS.md]

- ``covermill --version`` as a fresh process, and :func:`covermill.buildinfo.version` (git through
  setuptools-scm in a checkout) on its first call in a fresh process;
- :func:`covermill.automation.batch_build.admit_workers` on a local cluster of 2 worker processes
  (each worker works out its build once);
- :func:`covermill.stems.models.fetch` of one checkpoint of ``--mb`` MB (htdemucs's is 84 MB) from
  an HTTP server on loopback in demucs's layout: streamed, hashed (SHA-256), placed atomically.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_section  # noqa: E402


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _proc(code: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(code, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def bench_version(repeat: int) -> dict:
    exe = sys.executable
    cli = min(_proc([exe, "-m", "covermill.cli", "--version"]) for _ in range(repeat))
    bare = min(_proc([exe, "-c", "import covermill.cli"]) for _ in range(repeat))
    code = "import time; from covermill.buildinfo import version; t=time.perf_counter(); version(); print(time.perf_counter()-t)"
    first = min(float(subprocess.run([exe, "-c", code], check=True, capture_output=True, text=True).stdout)
                for _ in range(repeat))
    return {"cli": cli, "bare": bare, "first": first}


def bench_admit(repeat: int) -> float:
    from distributed import Client, LocalCluster

    from covermill.automation.batch_build import admit_workers

    times = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for _ in range(repeat):
            cluster.scale(0)  # fresh worker processes: each works out its build again
            cluster.scale(2)
            with Client(cluster) as client:
                client.wait_for_workers(2)
                t0 = time.perf_counter()
                admit_workers(client)
                times.append(time.perf_counter() - t0)
    return min(times)


def bench_fetch(mb: int, repeat: int) -> dict:
    from covermill.stems.models import fetch

    root = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    data = os.urandom(mb * 1_000_000)
    name = f"b1e2c3d4-{hashlib.sha256(data).hexdigest()[:8]}.th"
    mirror = root / "mirror"
    (mirror / "big").mkdir(parents=True)
    (mirror / "big" / name).write_bytes(data)
    (mirror / "files.txt").write_text(f"root: big/\n{name}\n")
    (mirror / "bigmodel.yaml").write_text("models: ['b1e2c3d4']\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    times = []
    try:
        for i in range(repeat):
            t0 = time.perf_counter()
            fetch("bigmodel", dest=root / f"dest{i}", base_url=url)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        hashlib.sha256((mirror / "big" / name).read_bytes()).hexdigest()
        sha_s = time.perf_counter() - t0
    finally:
        server.shutdown()
    return {"mb": mb, "seconds": min(times), "sha_s": sha_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=84)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    v = bench_version(args.repeat)
    print(f"covermill --version {v['cli']:.2f} s (import covermill.cli alone {v['bare']:.2f} s); "
          f"version() first call {v['first'] * 1000:.0f} ms", flush=True)
    admit = bench_admit(args.repeat)
    print(f"admit_workers, 2 fresh workers: {admit * 1000:.0f} ms", flush=True)
    f = bench_fetch(args.mb, args.repeat)
    print(f"fetch {f['mb']} MB from loopback: {f['seconds']:.2f} s ({f['mb'] / f['seconds']:.0f} MB/s); "
          f"SHA-256 of it alone {f['sha_s']:.2f} s", flush=True)
    if args.write:
        body = "\n".join([
            "| what | time |",
            "|---|---|",
            f"| `covermill --version` (fresh process) | {v['cli']:.2f} s (`import covermill.cli` alone: {v['bare']:.2f} s) |",
            f"| `buildinfo.version()` first call (git through setuptools-scm, in a checkout) | {v['first'] * 1000:.0f} ms |",
            f"| `admit_workers` on 2 fresh worker processes (once per batch) | {admit * 1000:.0f} ms |",
            f"| `models fetch` of a {f['mb']} MB checkpoint from HTTP on loopback (streamed, SHA-256, atomic rename) | "
            f"{f['seconds']:.2f} s = {f['mb'] / f['seconds']:.0f} MB/s (SHA-256 alone: {f['sha_s']:.2f} s) |",
            "",
            f"Best of {args.repeat}; {platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
            f"CPython {platform.python_version()}, {time.strftime('%Y-%m-%d')}. Command: "
            "`.venv/bin/python bench/bench_cluster.py --write docs/BENCHMARKS.md`.",
        ])
        write_section(args.write, "cluster", body, heading="Cluster: build check and model fetch (issue 20)")


if __name__ == "__main__":
    main()
