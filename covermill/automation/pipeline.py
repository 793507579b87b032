"""The render job: one song + one recipe -> a cover, its stems, the resolved recipe and QA.

Stages (each timed into ``qa.json``): ``load``, ``separate``, ``analyse`` (source tempo),
``revoice`` (re-voiced stems are synthesized at the new tempo from time-scaled controls),
``mix`` (per-stem chains, one Rubber Band pass over the kept stems and their sends, buses),
``master``, ``qa``, ``write``.

Outputs are rendered into a staging folder beside ``OUT`` and moved into place file by
file with ``os.replace`` only when everything succeeded: a failed render leaves ``OUT``
as it was, and a re-render replaces each file atomically.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import instruments, stems
from ..analysis import cover as cover_qa
from ..analysis.rhythm import estimate_tempo, prefetch
from ..analysis.similarity import cover_similarity
from ..audio import load_audio, save_audio
from ..constants import MIN_DURATION_S, WORK_SR
from ..errors import CovermillError, OutputError, ParameterError
from ..fsutil import write_text_atomic
from ..instruments.midi import NoNotesError
from ..recipes import Recipe, recipe_to_yaml
from ..stems.cache import StemCache, separate_cached
from .master import master
from .mixer import audible, finish_mix, process_stem, stretch_kept, sum_stems
from .report import render_report, spectrogram_png
from .tempo import stretch, tempo_ratio

log = logging.getLogger(__name__)

MIXERS = ("pedalboard", "audacity")
STAGES = ("load", "separate", "analyse", "revoice", "mix", "master", "qa", "write")
ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass
class RenderResult:
    out_dir: Path
    cover: Path
    stems: dict[str, Path]
    qa: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def qa_path(self) -> Path:
        return self.out_dir / "qa.json"


def _finite(x: float | None, ndigits: int = 2) -> float | None:
    """JSON-safe number: ``None`` instead of NaN/inf."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), ndigits)


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Refuse an output path that is an existing file (before any work is done)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is a file; choose a folder for the cover (-o OUT)")
    return out


class _Clock:
    def __init__(self, progress: ProgressCallback | None, *, total: int = len(STAGES)) -> None:
        self.progress = progress
        self.total = total
        self.seconds: dict[str, float] = {}
        self._i = 0

    def stage(self, name: str):
        clock = self

        class _Ctx:
            def __enter__(self_inner):
                self_inner.t0 = time.perf_counter()
                if clock.progress:
                    clock.progress({"stage": name, "done": clock._i, "total": clock.total, "state": "start"})

            def __exit__(self_inner, exc_type, exc, tb):
                clock.seconds[name] = round(time.perf_counter() - self_inner.t0, 3)
                clock._i += 1
                if exc_type is None and clock.progress:
                    clock.progress({"stage": name, "done": clock._i, "total": clock.total, "state": "end"})
                return False

        return _Ctx()


def render(
    song: str | os.PathLike,
    recipe: Recipe,
    out_dir: str | os.PathLike,
    *,
    separator: str = "dsp",
    separator_params: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    recipe_root: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    sr: int = WORK_SR,
    excerpt: tuple[float, float] | None = None,
    stretcher: str = "pedalboard",
    soundfont: str | os.PathLike | None = None,
    instruments_dir: str | os.PathLike | None = None,
    session: bool = False,
    mixer: str = "pedalboard",
    audacity: Any = None,
    parallel: bool = True,
) -> RenderResult:
    """Render ``song`` as a cover following ``recipe`` into ``out_dir``.

    Writes ``cover.wav``, ``stems/<name>.wav`` (the separated stems, source tempo),
    ``recipe.yaml`` (the resolved recipe), ``qa.json`` and ``report.html`` (a self-contained
    page: spectrograms, beat chroma, cross-recurrence plot, verdict). The input file is only read.
    ``excerpt=(start_s, seconds)`` renders only that part of the song (for quick listening
    while a recipe is tuned). Stems re-voiced through MIDI (``revoice: {midi_program: ...}``)
    also write their notes as ``midi/<stem>.mid``; ``soundfont`` replaces the recipe's and
    the default soundfont; ``instruments_dir`` is the instruments folder (YAML copies of
    parametric instruments and trained DDSP instruments; default ``$COVERMILL_INSTRUMENTS_DIR``
    or the user data dir). ``stretcher``
    picks the Rubber Band binding (``pedalboard`` or ``pyrubberband``).

    ``session=True`` also saves ``session.aup3``, an Audacity project for review (the
    original, every stem, every audible stem as it enters the mix with the recipe's gain
    and pan, the cover, beat labels): see :func:`.audacity.session.render_session`. It
    needs Audacity; ``audacity`` is an already running :class:`.audacity.Audacity` to use.

    ``mixer="audacity"`` mixes the stems (gain, pan, tempo, key) inside Audacity instead of
    pedalboard and Rubber Band (:mod:`.audacity.mixer`); recipes with stem effects are refused.
    An Audacity started here is stopped before returning, also on errors.

    ``separator`` is a name from :func:`covermill.stems.available` (``auto`` resolves to the
    one it picks, recorded in ``qa.json``), built with ``separator_params``. With ``cache_dir``
    the separated stems are cached there (see :mod:`covermill.stems.cache`): re-rendering the
    same audio with another recipe skips separation.

    ``parallel=True`` runs independent stages side by side on threads (the original's
    tempo, QA features and taste-model probabilities beside separation; the Rubber Band
    stretch of the kept stems beside re-voicing; the report beside writing audio); results
    are the same either way. A batch whose workers already fill the cores passes ``False``.
    """
    if mixer not in MIXERS:
        raise ParameterError(f"mixer={mixer!r} is not one of {', '.join(MIXERS)}")
    if mixer == "audacity":
        from .audacity.mixer import check_recipe

        check_recipe(recipe)
    if (session or mixer == "audacity") and audacity is None:  # fail before the work, not after it
        from .audacity.launcher import find_audacity, find_module

        find_audacity()
        find_module()
    started: list[Any] = []

    def get_audacity():
        if audacity is not None:
            return audacity
        if not started:
            from .audacity.launcher import Audacity

            started.append(Audacity.start())
        return started[0]

    try:
        return _render(song, recipe, out_dir, separator=separator, separator_params=separator_params,
                       cache_dir=cache_dir, recipe_root=recipe_root, progress=progress,
                       sr=sr, excerpt=excerpt, session=session, mixer=mixer, get_audacity=get_audacity,
                       stretcher=stretcher, soundfont=soundfont, instruments_dir=instruments_dir, parallel=parallel)
    finally:
        for app in started:
            app.stop()


class _Deferred(Future):
    """A job of :class:`_Inline`: it runs, in the caller's thread, when its result is first asked for."""

    def __init__(self, fn, args, kwargs) -> None:
        super().__init__()
        self._call = (fn, args, kwargs)

    def result(self, timeout=None):
        if self._call is not None:
            fn, args, kwargs = self._call
            self._call = None
            try:
                self.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # delivered below, as a pool would
                self.set_exception(exc)
        return super().result(timeout)


class _Inline(Executor):
    """An executor for ``render(parallel=False)``: each job runs in the caller's thread when its
    result is needed, so its time counts in the stage that waits for it (as a render in turn)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return _Deferred(fn, args, kwargs)


def _render(song, recipe, out_dir, *, separator, separator_params, cache_dir, recipe_root, progress, sr, excerpt,
            session, mixer, get_audacity, stretcher, soundfont, instruments_dir, parallel) -> RenderResult:
    song = Path(song)
    out = check_out_dir(out_dir)
    clock = _Clock(progress, total=len(STAGES) + (1 if session else 0))
    warnings: list[str] = []
    voices = _instruments(recipe, soundfont=soundfont, instruments_dir=instruments_dir, root=recipe_root)

    with clock.stage("load"):
        mix = load_audio(song, sr=sr)
        if excerpt is not None:
            mix = _cut(mix, song=song, sr=sr, start_s=excerpt[0], seconds=excerpt[1])
    silent = float(np.max(np.abs(mix))) < 1e-5
    if silent:
        warnings.append(f"{song}: the song is silent; the cover will be silent too")
    with (ThreadPoolExecutor(max_workers=3, thread_name_prefix="covermill-render") if parallel else _Inline()) as pool:
        try:
            return _render_stages(pool, song, recipe, out, mix, clock=clock, warnings=warnings, voices=voices,
                                  silent=silent, separator=separator, separator_params=separator_params,
                                  cache_dir=cache_dir, recipe_root=recipe_root, sr=sr, excerpt=excerpt,
                                  session=session, mixer=mixer, get_audacity=get_audacity, stretcher=stretcher)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _render_stages(pool: Executor, song: Path, recipe: Recipe, out: Path, mix: np.ndarray, *, clock: _Clock,
                   warnings: list[str], voices, silent: bool, separator, separator_params, cache_dir, recipe_root,
                   sr: int, excerpt, session, mixer, get_audacity, stretcher) -> RenderResult:
    """The stages after ``load``. Work that needs only the original -- its tempo, its QA
    features and taste-model probabilities -- runs on ``pool`` beside separation; the Rubber
    Band stretch of the kept stems runs beside re-voicing (Rubber Band releases the GIL)."""
    n = mix.shape[1]
    tempo_job = None if silent else pool.submit(estimate_tempo, mix, sr=sr)
    features_job = None if silent else pool.submit(_original_features, mix, sr=sr)
    genre_job = None if silent else pool.submit(_genre_probabilities, mix, sr=sr)

    with clock.stage("separate"):
        sep = stems.resolve(separator, **(separator_params or {}))
        cache = StemCache(cache_dir) if cache_dir is not None else None
        parts, cache_hit = separate_cached(sep, mix, sr=sr, cache=cache)

    with clock.stage("analyse"):
        source_bpm = float("nan") if tempo_job is None else tempo_job.result()
        rule = recipe.tempo
        try:
            ratio = tempo_ratio(source_bpm, target_bpm=rule.target_bpm, bpm_delta=rule.bpm_delta, ratio=rule.ratio,
                                genre=recipe.target_genre if rule.genre_range else None)
        except ParameterError as exc:  # unknown source tempo: keep the tempo, say so
            warnings.append(f"{song}: {exc}; the cover keeps the original tempo")
            ratio = 1.0
        if not 0.5 <= ratio <= 2.0:
            warnings.append(f"tempo ratio {ratio:.3f} clamped to [0.5, 2]")
            ratio = float(np.clip(ratio, 0.5, 2.0))
    semitones = recipe.key.semitones

    for name in recipe.stems:
        if name not in parts:
            warnings.append(f"recipe stem {name!r} is not produced by separator {sep.name!r} (it gives "
                            f"{', '.join(parts)}); ignored")

    heard = audible(recipe, list(parts))
    n_out = int(round(n / ratio))
    for_session: dict[str, tuple[np.ndarray, Any]] = {}  # stem -> (at the cover tempo, centred, unity gain; spec)
    kept = {name: parts[name] for name in heard if recipe.stem(name).action == "keep"}
    stretch_job = None
    if mixer != "audacity":
        stretch_job = pool.submit(stretch_kept, kept, recipe=recipe, sr=sr, n_in=n, time_ratio=ratio,
                                  semitones=semitones, stretcher=stretcher, root=recipe_root)
    side_by_side = isinstance(pool, ThreadPoolExecutor)
    with clock.stage("revoice"):
        revoiced: dict[str, np.ndarray] = {}
        notes: dict[str, Any] = {}
        names = [name for name in heard if name in voices]
        distinct = len({id(voices[name]) for name in names}) == len(names)  # instruments keep per-call state
        workers = min(len(names), os.cpu_count() or 1) if side_by_side and distinct else 1

        def revoice(name: str):
            try:
                return voices[name].revoice(parts[name], sr=sr, time_ratio=ratio, semitones=semitones), None
            except NoNotesError as exc:
                return np.zeros((1, n_out), np.float32), f"stem {name!r}: {exc}"

        with (ThreadPoolExecutor(workers, thread_name_prefix="covermill-revoice", initializer=_yield_to_stretch)
              if workers > 1 else _Inline()) as voicing:
            for name, job in [(name, voicing.submit(revoice, name)) for name in names]:
                revoiced[name], warning = job.result()
                if warning:
                    warnings.append(warning)
                if getattr(voices[name], "midi_", None) is not None:
                    notes[name] = voices[name].midi_
    # drawn by whichever core the stretch leaves free
    original_png = None if silent else pool.submit(spectrogram_png, mix, sr=sr, title="original")
    with clock.stage("mix"):
        if mixer == "audacity":
            from .audacity.mixer import mix as audacity_mix

            cover = audacity_mix(get_audacity(), sr=sr, kept={k: (a, recipe.stem(k)) for k, a in kept.items()},
                                 voiced={k: (a, recipe.stem(k)) for k, a in revoiced.items()},
                                 time_ratio=ratio, semitones=semitones, n_out=n_out)
        else:
            cover = finish_mix(stretch_job, revoiced, recipe=recipe, sr=sr, root=recipe_root, n_out=n_out)
        for name in heard if session else ():  # each stem on its own at the cover tempo, for review
            spec = recipe.stem(name)
            source = revoiced[name] if spec.action == "revoice" else parts[name]
            centred = process_stem(source, sr=sr, spec=spec.model_copy(update={"pan": 0.0, "gain_db": 0.0}),
                                   root=recipe_root)
            if spec.action != "revoice":
                centred = stretch(centred, sr=sr, time_ratio=ratio, semitones=semitones, engine=stretcher,
                                  high_quality=recipe.tempo.quality == "high")
            for_session[name] = (sum_stems([centred], length=n_out), spec)

    with clock.stage("master"):
        mastered = master(cover, sr=sr, spec=recipe.master, root=recipe_root)
        cover = mastered.audio
        if mastered.lufs is None and not silent:
            warnings.append("the cover is silent (every stem muted or empty)")

    with clock.stage("qa"):
        cover_silent = float(np.max(np.abs(cover))) < 1e-5
        target_bpm = source_bpm * ratio if math.isfinite(source_bpm) else float("nan")
        checked = not (silent or cover_silent)
        genre_after = pool.submit(_genre_probabilities, cover, sr=sr) if checked else None
        if checked:
            prefetch(cover, sr=sr, submit=pool.submit)  # the cover's beats beside its chroma
            sim = cover_similarity(mix, cover, sr=sr)
            cover_check, feats = _cover_check(features_job.result(), cover, sr=sr)
        else:
            sim = {"similarity": None, "reference": None, "margin": None}
            cover_check, feats = None, None
        # the cover-detection features already beat-tracked the cover: same tracker, same tempo
        cover_bpm = feats[1].bpm if feats else (float("nan") if cover_silent else estimate_tempo(cover, sr=sr))
        qa: dict[str, Any] = {
            "song": str(song),
            "recipe": recipe.name,
            "separator": sep.name,
            "stem_cache": ("hit" if cache_hit else "miss") if cache is not None else "off",
            **({"mixer": mixer} if mixer != "pedalboard" else {}),
            "duration_s": round(cover.shape[1] / sr, 3),
            "source_duration_s": round(n / sr, 3),
            "excerpt": {"start_s": excerpt[0], "seconds": excerpt[1]} if excerpt else None,
            "tempo": {
                "source_bpm": _finite(source_bpm),
                "target_bpm": _finite(target_bpm),
                "cover_bpm": _finite(cover_bpm),
                "ratio": round(ratio, 5),
            },
            "key": {"semitones": semitones},
            "loudness_lufs": _finite(mastered.lufs) if mastered.lufs is not None and not cover_silent else None,
            "loudness_target_lufs": recipe.master.lufs,
            "true_peak_db": mastered.true_peak_db,
            "cover_similarity": sim["similarity"],
            "cover_similarity_floor": sim["reference"],
            "cover_similarity_margin": sim["margin"],
            "genre": _genre_qa(genre_job.result() if checked else None, genre_after.result() if checked else None,
                               recipe=recipe, warnings=warnings),
            "cover": cover_check,
            "stems": {name: recipe.stem(name).action for name in parts},
        }

    if session:
        from ..analysis.rhythm import track_beats
        from .audacity.session import render_session

        with clock.stage("session"):
            beats = track_beats(cover, sr=sr).times_s if not cover_silent else []
            render_session(out / "session.aup3", sr=sr, original=mix, stems=parts, processed=for_session,
                           cover=cover, beats_s=beats, app=get_audacity())
    with clock.stage("write"):
        report = pool.submit(render_report, original=mix, cover=cover, sr=sr, qa={**qa, "warnings": list(warnings)},
                             features=feats, original_spectrogram=original_png)  # drawn while the audio is written
        _write_audio(out, cover=cover, parts=parts, recipe=recipe, sr=sr, texts={"report.html": report}, notes=notes)
    qa["stages"] = dict(clock.seconds)
    qa["warnings"] = list(warnings)
    qa["outputs"] = {"cover": "cover.wav", "stems": {n: f"stems/{n}.wav" for n in parts}, "recipe": "recipe.yaml",
                     "report": "report.html"}
    if notes:
        qa["outputs"]["midi"] = {name: f"midi/{name}.mid" for name in notes}
    if session:
        qa["outputs"]["session"] = "session.aup3"
    write_text_atomic(out / "qa.json", json.dumps(qa, indent=2, allow_nan=False) + "\n")
    result = RenderResult(out, out / "cover.wav", {n: out / f"stems/{n}.wav" for n in parts}, qa, warnings)
    for w in warnings:
        log.warning(w)
    return result


def _yield_to_stretch() -> None:
    """Run this re-voicing thread at a lower priority (Linux: per-thread nice): beside it, the
    Rubber Band stretch keeps a whole core, as it is single-threaded and the longest job."""
    if sys.platform.startswith("linux"):
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 5))
        except OSError:
            pass


def _original_features(mix: np.ndarray, *, sr: int) -> cover_qa.CoverFeatures:
    """The original's cover-detection features; on the way, its beats and chroma land in the
    analysis memo (:mod:`covermill.analysis.rhythm`) that the chroma similarity reads, and the
    unrelated reference's features are loaded."""
    cover_qa.reference_features()
    return cover_qa.features(mix, sr=sr)


def _genre_probabilities(y: np.ndarray, *, sr: int) -> dict[str, float] | str:
    """The shipped taste model's genre probabilities of ``y``, or the reason there are none."""
    from ..analysis.taste import genre_probabilities, load_model

    try:
        model = load_model()
    except CovermillError as exc:
        return f"genre QA skipped: {exc}"
    return genre_probabilities(y, sr=sr, model=model)


def _genre_qa(before: dict[str, float] | str | None, after: dict[str, float] | str | None, *, recipe: Recipe,
              warnings: list[str]) -> dict[str, Any]:
    """Does the cover move toward the target genre? Taste-model probabilities ``before`` and ``after``
    (from :func:`_genre_probabilities`; ``None`` for silence)."""
    from .profile import NEAREST_CLASS

    target = NEAREST_CLASS.get(recipe.target_genre, recipe.target_genre)
    qa: dict[str, Any] = {"target": recipe.target_genre, "model_class": None, "original_top": None, "cover_top": None,
                          "target_prob_original": None, "target_prob_cover": None}
    if before is None or after is None:
        return qa
    if isinstance(before, str):
        warnings.append(before)
        return qa
    qa.update(original_top=next(iter(before)), cover_top=next(iter(after)))
    if target in before:
        qa.update(model_class=target, target_prob_original=before[target], target_prob_cover=after[target])
    qa["original"] = before
    qa["cover"] = after
    return qa


def _cover_check(fo: cover_qa.CoverFeatures, cover: np.ndarray, *, sr: int) -> tuple[dict[str, Any], tuple]:
    """Cover detection (Qmax verdict, 2DFTM distance) of ``cover`` against the original (its
    features ``fo``), and against an unrelated recording as the floor; also returns the two
    songs' features (for the report)."""
    keys = ("qmax", "twodftm_distance", "is_cover", "threshold")
    fc = cover_qa.features(cover, sr=sr)
    result = cover_qa.compare_features(fo, fc)
    floor = cover_qa.compare_features(fo, cover_qa.reference_features())
    check = {**{k: result[k] for k in keys}, "reference": {k: floor[k] for k in keys},
             "reference_song": cover_qa.REFERENCE_SONG.name}
    return check, (fo, fc)


def _cut(mix: np.ndarray, *, song: Path, sr: int, start_s: float, seconds: float) -> np.ndarray:
    duration = mix.shape[1] / sr
    if start_s >= duration:
        raise ParameterError(f"{song}: excerpt starts at {start_s:g} s but the song is {duration:.1f} s long")
    part = mix[:, int(start_s * sr) : int((start_s + seconds) * sr)]
    if part.shape[1] < MIN_DURATION_S * sr:
        raise ParameterError(f"{song}: the excerpt is {part.shape[1] / sr:.2f} s; make it at least {MIN_DURATION_S:g} s")
    return np.ascontiguousarray(part)


def _instruments(recipe: Recipe, *, soundfont, instruments_dir, root) -> dict[str, instruments.Instrument]:
    """One instrument per re-voiced stem, checked before any audio work (a missing soundfont fails now)."""
    voices = {}
    for name, spec in recipe.stems.items():
        if spec.action != "revoice":
            continue
        rv = spec.revoice
        if rv.instrument is not None:
            voices[name] = instruments.get(rv.instrument, instruments_dir=instruments_dir)
            continue
        font = Path(soundfont).absolute() if soundfont is not None else rv.soundfont_path(root)
        feel = {k: v for k, v in (("quantize", rv.quantize), ("swing", rv.swing), ("velocity_scale", rv.velocity_scale),
                                  ("octave_shift", rv.octave_shift)) if v is not None}
        if rv.drum_kit is not None:
            voices[name] = instruments.get_drums(rv.drum_kit, soundfont=font, **feel)
        else:
            voices[name] = instruments.get_midi(rv.midi_program, soundfont=font, **feel)
        voices[name].check()
    return voices


def _write_audio(out: Path, *, cover, parts, recipe, sr, texts: dict[str, str | Future] | None = None,
                 notes=None) -> None:
    """Render files into a staging folder beside ``out``, then move each into place.

    A text may be a future (a report still being drawn): it is waited for after the audio is written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        save_audio(staging / "cover.wav", cover, sr=sr)
        (staging / "stems").mkdir()
        for name, audio in parts.items():
            save_audio(staging / "stems" / f"{name}.wav", audio, sr=sr, subtype="FLOAT", clip="none")
        (staging / "recipe.yaml").write_text(recipe_to_yaml(recipe), encoding="utf-8")
        for name, text in (texts or {}).items():
            (staging / name).write_text(text.result() if isinstance(text, Future) else text, encoding="utf-8")
        notes = notes or {}
        if notes:
            (staging / "midi").mkdir()
            for name, midi in notes.items():
                midi.write(str(staging / "midi" / f"{name}.mid"))
        out.mkdir(parents=True, exist_ok=True)
        (out / "stems").mkdir(exist_ok=True)
        if notes:
            (out / "midi").mkdir(exist_ok=True)
        for rel in ["cover.wav", "recipe.yaml", *(texts or {}), *[f"stems/{name}.wav" for name in parts],
                    *[f"midi/{name}.mid" for name in notes]]:
            os.replace(staging / rel, out / rel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
