"""Batch rendering: every song of a folder x every recipe, as Dask tasks.

One task renders one (song, recipe) pair with :func:`covermill.automation.pipeline.render`.
Tasks run on a private :class:`distributed.LocalCluster` (TLS with certificates made for the
run; one single-threaded worker process per core by default) or on an existing cluster
(``scheduler="tcp://host:port"``, trusted like your own account): the same code either way
(:mod:`covermill.automation.batch_cluster`). Output names: :mod:`covermill.automation.batch_plan`.

``OUT/manifest.jsonl`` holds one record per pair (``song``, ``recipe``, ``status`` ``ok`` |
``failed``, ``output``, ``error``, ``seconds``, ``retries``: times its worker died under it and it
was run again elsewhere), rewritten atomically after every finished
task. A rerun skips pairs already ``ok`` whose ``qa.json`` exists, and retries failures only
when asked. A song that fails, or kills its worker three times, is recorded and the batch
goes on; the manifest and ``index.html`` are written however the batch ends. Each render
writes its files atomically, and the staging folders and ``.part`` files an interrupted run
left (only those covermill names) are removed at start, so a batch killed at any moment
leaves no half-written file once rerun. A lock file keeps two batches off one ``OUT``.
``FOLDER``, ``OUT`` and the stem cache may be URLs (``s3://``, ``sftp://``): workers then fetch
each song and render in their own scratch folder, upload ``qa.json`` last, and the manifest is
the client's (:mod:`covermill.automation.batch_remote`, ``docs/remote.md``).

Separating first (:func:`separate_first`): when the separator is Demucs, the songs not yet in
the stem cache can be separated before the render tasks start, in the calling process, the
segments of several songs pooled into the same model calls
(:meth:`covermill.stems.demucs.DemucsSeparator.iter_separate_many`), and written to the stem
cache under the keys the renders look up; the render tasks then find their stems there. One
process then feeds the GPU full batches, instead of every worker loading the model and
separating its own song. ``separate_first_pass=None`` (the default) does it when the separator resolves to Demucs on
CUDA; ``True`` whenever it resolves to Demucs (on a CPU it only serialises the separations);
``False`` never. A song that fails to load or separate there is left to its render task, which
records the failure as before.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import CovermillError, ParameterError
from ..fsutil import write_text_atomic
from ..locations import Location, is_url, redact
from .batch_cluster import WORKER_DEATH_RETRIES, death_reason, make_client
from .batch_plan import (
    MANIFEST,
    Job,
    clean_stale,
    find_songs,
    out_lock,
    plan,
    read_manifest,
    safe_name,
    state_dir,
    write_manifest,
)
from .batch_remote import is_finished, upload_summary

__all__ = ["MANIFEST", "BatchSummary", "Job", "clean_stale", "find_songs", "plan", "read_manifest", "run_batch",
           "run_job", "safe_name", "separate_first", "write_index"]

log = logging.getLogger(__name__)


def _with_settings(settings: dict[str, str], task: Callable[..., dict[str, Any]], job: Job, *args: Any) -> dict[str, Any]:
    """Run ``task(job, *args)`` with the client's ``COVERMILL_*`` variables (model folder, cache,
    fetch permission): a local worker forked from a forkserver that an earlier batch of this
    process started would otherwise keep that time's environment."""
    for name in [k for k in os.environ if k.startswith("COVERMILL_") and k not in settings]:
        del os.environ[name]
    os.environ.update(settings)
    return task(job, *args)


def run_job(job: Job, separator: str = "auto", cache_dir: str | None = None, session: bool = False,
            parallel: bool = False, recipe: Any = None) -> dict[str, Any]:
    """Render one job; never raises for a bad song: the error goes into the record.

    ``cache_dir`` is the stem cache shared by all jobs, so the recipes of one song separate it once.
    ``parallel`` lets the render run its independent stages on threads (worth it only when the
    workers leave cores idle). ``recipe``: the recipe as the client loaded it (else loaded here
    from ``job.recipe``). The song, ``OUT`` and the cache may be URLs: the render then runs in a
    scratch folder of this process and is uploaded (:func:`covermill.automation.remote.render_at`)."""
    from ..recipes import load_recipe, recipe_root
    from .remote import render_at

    t0 = time.perf_counter()
    record = {"song": job.song, "recipe": job.recipe, "output": job.out_dir, "status": "ok", "error": None}
    try:
        if recipe is None:
            recipe, root = load_recipe(job.recipe), recipe_root(job.recipe)
        else:
            root = recipe.root
        render_at(job.song, recipe, job.out_dir, separator=separator, recipe_root=root,
                  cache_dir=cache_dir, session=session, parallel=parallel)
    except CovermillError as exc:
        record.update(status="failed", error=redact(str(exc)))
    except Exception as exc:  # a bug must not stop the batch either; keep its trace in the log
        log.error("render of %s failed:\n%s", job.song, redact(traceback.format_exc()))
        record.update(status="failed", error=redact(f"{type(exc).__name__}: {exc}"))
    record["seconds"] = round(time.perf_counter() - t0, 2)
    return record


def separate_first(songs: Iterable[str | os.PathLike], *, separator: str = "auto",
                   cache_dir: str | os.PathLike | None = None, force: bool = False) -> dict[str, int]:
    """Put the Demucs stems of ``songs`` into the stem cache, their segments pooled across songs.

    Only when ``separator`` resolves to Demucs, and (unless ``force``) runs on CUDA. Songs are
    loaded as the renders load them (:func:`covermill.audio.load_audio` at the working rate) and
    keyed with :func:`covermill.stems.cache.cache_key`, so a render of the same song finds the
    entry; songs already in the cache are skipped. Never raises: a song that cannot be loaded is
    skipped (its render reports it), and an error during separation ends this pass (the
    remaining songs are separated by their render tasks). Returns counts: ``separated``,
    ``cached`` (already there), ``skipped`` (not loadable, or the pass ended before them).
    """
    from collections import deque

    from ..audio import load_audio
    from ..constants import WORK_SR
    from ..stems import resolve
    from ..stems.base import PooledSeparator
    from ..stems.cache import StemCache, cache_key

    songs = list(dict.fromkeys(str(s) for s in songs if not is_url(str(s))))  # remote songs: their renders
    counts = {"separated": 0, "cached": 0, "skipped": 0}
    try:
        sep = resolve(separator)
        if not isinstance(sep, PooledSeparator):
            log.info("separate-first: separator %s does not pool songs (only Demucs does); the renders separate",
                     sep.name)
            return {**counts, "skipped": len(songs)}
        device = sep.runs_on()
        if not force and not str(device).startswith("cuda"):
            log.info("separate-first: Demucs runs on %s; the renders separate in parallel instead", device)
            return {**counts, "skipped": len(songs)}
        sep.load()
    except Exception as exc:  # a bad separator or model is reported by every render task
        log.warning("separate-first skipped: %s", exc)
        return {**counts, "skipped": len(songs)}
    cache = StemCache(cache_dir)
    keys: deque = deque()

    def items():
        for song in songs:
            try:
                mix = load_audio(song, sr=WORK_SR)
            except Exception as exc:
                log.info("separate-first: skipping %s (%s)", song, exc)
                counts["skipped"] += 1
                continue
            key = cache_key(mix, sr=WORK_SR, sep=sep)
            if cache.path(key).is_file():
                counts["cached"] += 1
                continue
            keys.append((song, key))
            yield mix, WORK_SR

    t0 = time.perf_counter()
    try:
        for parts in sep.iter_separate_many(items()):
            song, key = keys.popleft()
            cache.put(key, parts)
            counts["separated"] += 1
            log.info("separate-first: %s -> %s", song, cache.path(key))
    except Exception as exc:
        log.warning("separate-first stopped (%s: %s); the render tasks separate the remaining songs",
                    type(exc).__name__, exc)
    counts["skipped"] = len(songs) - counts["separated"] - counts["cached"]
    log.info("separate-first: %s in %.1f s on %s (batch of %d segments)", counts, time.perf_counter() - t0,
             device, sep.segments_per_call())
    sep.release()  # the GPU memory goes back before the workers start
    return counts


def write_index(out: str | os.PathLike, records: list[dict[str, Any]]) -> Path:
    """``OUT/index.html`` (the client's copy for a remote ``OUT``: :func:`state_dir`): one row per
    render with status, tempo, verdict and a link to its report."""
    import html

    from .batch_remote import summary_of

    rows = []
    for rec in records:
        rel, qa, has_report = summary_of(out, rec)
        tempo = qa.get("tempo") or {}
        verdict = (qa.get("cover") or {}).get("is_cover")
        link = f"<a href='{html.escape(rel)}/report.html'>report</a>" if has_report else ""
        cells = [Path(rec["song"]).name, Path(rec["recipe"]).stem, rec["status"],
                 f"{tempo.get('source_bpm')} → {tempo.get('cover_bpm')}" if tempo else "",
                 {True: "cover", False: "NOT a cover"}.get(verdict, "too short to judge" if qa.get("cover") else ""),
                 rec.get("error") or ""]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + f"<td>{link}</td></tr>")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>covermill batch</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2em}td,th{padding:.2em .8em;"
            "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
            f"<h1>covermill batch: {len(records)} renders</h1><table><tr><th>song</th><th>recipe</th>"
            "<th>status</th><th>tempo (BPM)</th><th>verdict</th><th>error</th><th></th></tr>"
            + "".join(rows) + "</table></body></html>\n")
    return write_text_atomic(state_dir(out) / "index.html", page)


@dataclass
class BatchSummary:
    total: int
    ok: int
    failed: int
    skipped: int
    seconds: float
    records: list[dict[str, Any]]
    manifest: str = ""  # the client's manifest file

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[dict[str, Any]], None]


def run_batch(
    folder: str | os.PathLike,
    recipes: list[str],
    out: str | os.PathLike,
    *,
    workers: int = 2,
    memory_limit: str | None = None,
    scheduler: str | None = None,
    retry_failed: bool = False,
    separator: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    session: bool = False,
    progress: ProgressCallback | None = None,
    separate_first_pass: bool | None = None,
    render_threads: bool | None = None,
    task: Callable[..., dict[str, Any]] = run_job,
) -> BatchSummary:
    """Render every song in ``folder`` with every recipe into ``out`` (see module docstring).

    Separated stems go to the stem cache (``cache_dir``, default
    :func:`covermill.stems.cache.default_cache_dir`), so a song rendered with several
    recipes is separated once. ``session=True`` also saves an Audacity review session per
    render; Audacity's script pipes are one per user, so those renders run one at a time.
    ``OUT/index.html`` links every render's report. ``separate_first_pass``: see
    :func:`separate_first` (``None``: when the separator is Demucs on CUDA; ``True``: whenever it
    is Demucs; ``False``: never). ``render_threads``: whether each render runs its independent
    stages side by side on threads (``render(parallel=...)``); ``None`` lets a local cluster whose
    workers leave cores idle use them, and renders in turn otherwise. ``task``: the function run
    for each job (:func:`run_job`; tests pass one that kills its worker). One batch at a time
    writes to ``out`` (:func:`out_lock`); with ``out`` inside ``folder`` its files are not songs.
    """
    if not recipes:
        raise ParameterError("name at least one recipe (--recipe NAME_OR_FILE)")
    out_loc = Location.parse(out)
    out = Path(out_loc.path) if not out_loc.is_remote else out_loc.url
    if isinstance(out, Path) and out.exists() and not out.is_dir():
        raise ParameterError(f"{out}: exists and is a file; choose a folder for the batch output")
    jobs = plan(folder, recipes, out)
    if cache_dir is None:
        from ..stems.cache import default_cache_dir

        cache_dir = default_cache_dir()
    if session and (workers > 1 or scheduler):
        log.warning("--session: Audacity serves one client per user; rendering one song at a time")
        workers, scheduler = 1, None
    state_dir(out).mkdir(parents=True, exist_ok=True)
    with out_lock(state_dir(out)):
        return _run_locked(jobs, out, workers=workers, memory_limit=memory_limit, scheduler=scheduler,
                           retry_failed=retry_failed, separator=separator, cache_dir=cache_dir, session=session,
                           progress=progress, separate_first_pass=separate_first_pass,
                           render_threads=render_threads, task=task)


def _run_locked(jobs: list[Job], out: Path | str, *, workers, memory_limit, scheduler, retry_failed, separator, cache_dir,
                session, progress, separate_first_pass, render_threads, task) -> BatchSummary:
    if isinstance(out, Path):
        clean_stale(out, jobs)
    records = read_manifest(out)
    todo, skipped = [], 0
    for job in jobs:
        prev = records.get(job.key)
        done = prev and prev.get("status") == "ok" and is_finished(job.out_dir)
        if done or (prev and prev.get("status") == "failed" and not retry_failed):
            skipped += 1
        else:
            todo.append(job)
    t0 = time.perf_counter()
    state = {"total": len(jobs), "done": skipped, "failed": sum(1 for j in jobs if records.get(j.key, {}).get("status") == "failed" and j not in todo), "todo": len(todo)}
    if progress:
        progress({**state, "event": "start"})
    if todo and separate_first_pass is not False:
        separate_first([job.song for job in todo], separator=separator, cache_dir=cache_dir,
                       force=bool(separate_first_pass))
    try:
        if todo:
            _render_all(todo, records, state, out, workers=workers, memory_limit=memory_limit, scheduler=scheduler,
                        separator=separator, cache_dir=cache_dir, session=session, progress=progress,
                        render_threads=render_threads, task=task)
            clean_stale(out, todo)  # what the renders of workers that died left; their retries finished
    finally:  # the manifest and the index are written whatever happened above
        write_manifest(out, records)
        final = [records[j.key] for j in jobs if j.key in records]
        write_index(out, final)
        upload_summary(out, (MANIFEST, "index.html"))
    ok = sum(1 for r in final if r["status"] == "ok")
    return BatchSummary(total=len(jobs), ok=ok, failed=len(final) - ok, skipped=skipped,
                        seconds=round(time.perf_counter() - t0, 2), records=final,
                        manifest=str(state_dir(out) / MANIFEST))


def _render_all(todo: list[Job], records: dict, state: dict, out: Path | str, *, workers, memory_limit, scheduler,
                separator, cache_dir, session, progress, render_threads, task) -> None:
    from distributed import as_completed

    from .batch_build import RenderStarts, admit_workers, run_checked

    client, cluster = make_client(workers=workers, memory_limit=memory_limit, scheduler=scheduler)
    # one local worker leaves cores idle: let each render use them; more workers fill them already
    parallel = render_threads if render_threads is not None else (
        scheduler is None and workers < (os.cpu_count() or 1))
    from ..recipes import load_recipe

    loaded = {r: load_recipe(r) for r in {job.recipe for job in todo}}  # workers need not read the recipe files
    try:
        # every worker of a cluster runs this covermill build, or the batch is refused (a private local
        # cluster runs this very installation)
        build = admit_workers(client) if scheduler else None
        starts = RenderStarts(client)
        if scheduler is None:  # this machine's workers render with this process's covermill settings
            task = functools.partial(_with_settings, {k: v for k, v in os.environ.items() if k.startswith("COVERMILL_")},
                                     task)
        waiting, futures, done = iter(enumerate(todo)), {}, as_completed()

        def top_up() -> None:
            """At most one render in flight per worker thread: a worker never holds a queued render,
            so its death counts against the one song it was rendering, not against a bystander."""
            threads = sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values())
            while len(futures) < max(1, threads):
                i, job = next(waiting, (None, None))
                if job is None:
                    return
                future = client.submit(run_checked, task, build, job, separator, str(cache_dir), session, parallel,
                                       loaded[job.recipe], key=f"render-{i}-{safe_name(Path(job.song).stem)[0][:40]}",
                                       pure=False)
                futures[future] = job
                done.add(future)

        top_up()
        for future in done:
            job = futures.pop(future)
            try:
                rec = {**future.result(), "retries": starts.retries(future.key)}
            except Exception as exc:  # the worker died every time, or the cluster failed the task
                reason = redact(death_reason(exc) or f"{type(exc).__name__}: {exc}")
                log.warning("render of %s failed: %s", job.song, reason)
                rec = {"song": job.song, "recipe": job.recipe, "output": job.out_dir, "status": "failed",
                       "error": reason, "seconds": None, "retries": WORKER_DEATH_RETRIES if death_reason(exc) else 0}
            if rec["retries"]:
                log.warning("render of %s was run again %d time(s): its worker died", job.song, rec["retries"])
            records[(rec["song"], rec["recipe"])] = rec
            write_manifest(out, records)
            state["done"] += 1
            state["failed"] += rec["status"] == "failed"
            if progress:
                progress({**state, "event": "done", "record": rec})
            top_up()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
