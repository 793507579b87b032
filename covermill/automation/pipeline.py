"""The render: one song + one recipe -> a cover, its stems, the resolved recipe and QA.

Stages (each timed into ``qa.json``): ``load``, ``separate``, ``analyse`` (source tempo),
``revoice`` (re-voiced stems are synthesized at the new tempo from time-scaled controls),
``mix`` (per-stem chains, one Rubber Band pass over the kept stems and their sends, buses),
``master``, ``qa``, ``session`` (``--session`` only), ``write``.

This module only orders the stages: the stage runner (:mod:`.runner`) times them and runs
side jobs, :mod:`.voices` turns the recipe into instruments, :mod:`.qa` fills the typed QA
report, :mod:`.outputs` stages every file beside ``OUT`` and moves it into place only when
everything succeeded: a failed render leaves ``OUT`` as it was.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import stems
from ..analysis.rhythm import estimate_tempo, prefetch
from ..analysis.similarity import cover_similarity
from ..audio import load_audio, save_audio
from ..errors import ParameterError
from ..recipes import Recipe, recipe_to_yaml
from ..recipes.schema import PART_PREFIX
from ..stems.cache import StemCache, separate_cached
from . import arrange, warmup
from . import qa as qa_mod
from .daw import write_project
from .master import master
from .mixer import audible, process_stem, sum_stems
from .mixers import MIXERS
from .options import RenderOptions
from .outputs import Staging, check_out_dir
from .report import render_report, spectrogram_png
from .runner import ProgressCallback, Runner
from .tempo import stretch, tempo_ratio
from .voices import revoice_all, voices

log = logging.getLogger(__name__)

STAGES = ("load", "separate", "analyse", "revoice", "arrange", "mix", "master", "qa", "write")
__all__ = ["MIXERS", "STAGES", "RenderOptions", "RenderResult", "check_out_dir", "render"]


@dataclass
class RenderResult:
    out_dir: Path
    cover: Path
    stems: dict[str, Path]
    qa: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    report: qa_mod.QAReport | None = None

    @property
    def qa_path(self) -> Path:
        return self.out_dir / "qa.json"


def render(song: str | os.PathLike, recipe: Recipe, out_dir: str | os.PathLike, options: RenderOptions | None = None,
           *, progress: ProgressCallback | None = None, audacity: Any = None, **kwargs: Any) -> RenderResult:
    """Render ``song`` as a cover following ``recipe`` into ``out_dir``, as ``options`` say
    (:class:`RenderOptions`; its fields may also be given as keywords).

    Writes ``cover.wav``, ``stems/<name>.wav`` (the separated stems, source tempo),
    ``recipe.yaml`` (the resolved recipe), ``qa.json`` and ``report.html`` (a self-contained
    page: spectrograms, beat chroma, cross-recurrence plot, verdict). The input file is only
    read (an ``OUT`` that would overwrite it is refused). Stems re-voiced through MIDI also
    write their notes as ``midi/<stem>.mid``.

    ``options.session`` also saves ``session.aup3``, an Audacity project for review (see
    :func:`.audacity.session.render_session`); ``options.mixer="audacity"`` mixes inside
    Audacity (:mod:`.audacity.mixer`). Both need Audacity: ``audacity`` is an already running
    :class:`.audacity.Audacity` to use; one started here is stopped before returning.
    ``progress`` receives ``{"stage", "done", "total", "state"}`` dicts.
    """
    opts = RenderOptions.of(options, **kwargs)
    if opts.recipe_root is None and recipe.root is not None:  # the recipe's own folder
        opts = RenderOptions.of(opts, recipe_root=recipe.root)
    mixer = MIXERS.get(opts.mixer)
    mixer.check(recipe)
    if (opts.session or mixer.uses_audacity) and audacity is None:  # fail before the work, not after it
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
        return _render(Path(song), recipe, Path(out_dir), opts, progress=progress, get_audacity=get_audacity,
                       mixer=mixer)
    finally:
        for app in started:
            app.stop()


def _render(song: Path, recipe: Recipe, out_dir: Path, opts: RenderOptions, *, progress, get_audacity,
            mixer) -> RenderResult:
    out = check_out_dir(out_dir, inputs=(song,))
    sr = opts.sr
    warnings: list[str] = []
    voiced = voices(recipe, soundfont=opts.soundfont, instruments_dir=opts.instruments_dir, root=opts.recipe_root)
    arrange.check_parts(recipe)
    stages = STAGES[:-1] + (("session",) if opts.session else ()) + STAGES[-1:]
    with Runner(stages, progress=progress, parallel=opts.parallel) as run, Staging(out) as staging:
        with run.stage("load"):
            mix = load_audio(song, sr=sr, excerpt=opts.excerpt)  # only the excerpt is decoded
        return _stages(run, staging, song, recipe, out, mix, opts, voiced=voiced, warnings=warnings,
                       get_audacity=get_audacity, mixer=mixer)


def _stages(run: Runner, staging: Staging, song: Path, recipe: Recipe, out: Path, mix: np.ndarray, opts: RenderOptions,
            *, voiced, warnings: list[str], get_audacity, mixer) -> RenderResult:
    """The stages after ``load``. Work that needs only the original -- its tempo, its QA
    features and taste-model probabilities -- runs beside separation; the Rubber Band stretch
    of the kept stems runs beside re-voicing (Rubber Band releases the GIL)."""
    sr, n, root = opts.sr, mix.shape[1], opts.recipe_root
    silent = float(np.max(np.abs(mix))) < 1e-5
    if silent:
        warnings.append(f"{song}: the song is silent; the cover will be silent too")
    run.submit(warmup.later_stages)  # a fresh process's one-off imports for the write stage, beside separation
    tempo_job = None if silent else run.submit(estimate_tempo, mix, sr=sr)
    features_job = None if silent else run.submit(qa_mod.original_features, mix, sr=sr)
    genre_job = None if silent else run.submit(qa_mod.genre_probabilities, mix, sr=sr)

    with run.stage("separate"):
        sep = stems.resolve(opts.separator, **opts.separator_params)
        cache = StemCache(opts.cache_dir) if opts.cache_dir is not None else None
        parts, cache_hit = separate_cached(sep, mix, sr=sr, cache=cache)
    sheet_job = run.submit(arrange.lead_sheet_of, mix, parts, sr=sr, separator=sep.name)  # beside the stretch and re-voicing

    with run.stage("analyse"):
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

    part_tracks = [f"{PART_PREFIX}{name}" for name in recipe.parts]
    heard_all = audible(recipe, [*parts, *part_tracks])
    heard = [name for name in heard_all if name in parts]
    heard_parts = [name for name in heard_all if name in part_tracks]
    n_out = int(round(n / ratio))
    kept = {name: parts[name] for name in heard if recipe.stem(name).action == "keep"}
    stretch_job = run.submit(_stretch_kept, mixer, opts.reuse, kept, recipe=recipe, sr=sr, n_in=n, time_ratio=ratio,
                             semitones=semitones, stretcher=opts.stretcher, root=root)
    with run.stage("revoice"):
        cover_sheet_of = _Once(lambda: sheet_job.result().retimed(ratio, semitones))
        revoiced, notes, _, voice_warnings = revoice_all(
            voiced, parts, [name for name in heard if name in voiced], sr=sr, time_ratio=ratio, semitones=semitones,
            n_out=n_out, side_by_side=run.parallel, sheet=cover_sheet_of,
            modes={name: recipe.stem(name).revoice.mode for name in voiced}, reuse=opts.reuse,
            specs={name: recipe.stem(name).revoice.model_dump_json() for name in voiced})
        warnings.extend(voice_warnings)
    with run.stage("arrange"):
        sheet = sheet_job.result()
        warnings.extend(f"lead sheet: {w}" for w in sheet.warnings if recipe.parts or w.startswith("free time"))
        cover_sheet = cover_sheet_of()
        font = opts.soundfont if opts.soundfont is not None else recipe.soundfont_path(root)
        generated = (arrange.Parts() if silent else  # a silent song gets a silent cover, parts included
                     arrange.make_parts(recipe, cover_sheet, sr=sr, n_out=n_out, soundfont=font, reuse=opts.reuse))
        warnings.extend(generated.warnings)
        played = {**revoiced, **{name: generated.audio[name] for name in heard_parts if name in generated.audio}}
    original_png = None if silent or opts.light else run.submit(spectrogram_png, mix, sr=sr, title="original")
    for_session: dict[str, tuple[np.ndarray, Any]] = {}  # stem -> (at the cover tempo, centred, unity gain; spec)
    with run.stage("mix"):  # tracks: every part of the cover as heard, before the master
        cover, tracks = mixer.mix(stretch_job.result, played, kept=kept, recipe=recipe, sr=sr, n_out=n_out,
                                  time_ratio=ratio, semitones=semitones, root=root, audacity=get_audacity)
        for name in [*heard, *heard_parts] if opts.session else ():  # each on its own at the cover tempo, for review
            spec = recipe.stem(name)
            source = played[name] if spec.action != "keep" else parts[name]
            centred = process_stem(source, sr=sr, spec=spec.model_copy(update={"pan": 0.0, "gain_db": 0.0}), root=root)
            if spec.action == "keep":  # re-voiced stems and parts are already at the cover tempo
                centred = stretch(centred, sr=sr, time_ratio=ratio, semitones=semitones, engine=opts.stretcher,
                                  high_quality=recipe.tempo.quality == "high")
            for_session[name] = (sum_stems([centred], length=n_out), spec)

    with run.stage("master"):
        mastered = master(cover, sr=sr, spec=recipe.master, root=root)
        cover = mastered.audio
        if mastered.lufs is None and not silent:
            warnings.append("the cover is silent (every stem muted or empty)")

    with run.stage("qa"):
        cover_silent = float(np.max(np.abs(cover))) < 1e-5
        target_bpm = source_bpm * ratio if math.isfinite(source_bpm) else float("nan")
        checked = not (silent or cover_silent)
        genre_after = run.submit(qa_mod.genre_probabilities, cover, sr=sr) if checked else None
        if checked:
            prefetch(cover, sr=sr, submit=run.submit)  # the cover's beats beside its chroma
            sim = cover_similarity(mix, cover, sr=sr)
            cover_check, feats = qa_mod.cover_check(features_job.result(), cover, sr=sr)
            if cover_check.get("is_cover") is None and cover_check.get("verdict"):
                warnings.append(f"cover verdict: {cover_check['verdict']}")
        else:
            sim = {"similarity": None, "reference": None, "margin": None}
            cover_check, feats = None, None
        # the cover-detection features already beat-tracked the cover: same tracker, same tempo
        cover_bpm = feats[1].bpm if feats else (float("nan") if cover_silent else estimate_tempo(cover, sr=sr))
        report = qa_mod.QAReport(
            song=str(song), recipe=recipe.name, separator=sep.name,
            stem_cache=("hit" if cache_hit else "miss") if cache is not None else "off", mixer=opts.mixer,
            duration_s=round(cover.shape[1] / sr, 3), source_duration_s=round(n / sr, 3),
            excerpt={"start_s": opts.excerpt[0], "seconds": opts.excerpt[1]} if opts.excerpt else None,
            tempo=qa_mod.TempoQA(qa_mod.finite(source_bpm), qa_mod.finite(target_bpm), qa_mod.finite(cover_bpm),
                                 round(ratio, 5)),
            key={"semitones": semitones},
            loudness_lufs=qa_mod.finite(mastered.lufs) if mastered.lufs is not None and not cover_silent else None,
            loudness_target_lufs=recipe.master.lufs, true_peak_db=mastered.true_peak_db,
            cover_similarity=sim["similarity"], cover_similarity_floor=sim["reference"],
            cover_similarity_margin=sim["margin"],
            genre=qa_mod.genre_qa(genre_job.result() if checked else None, genre_after.result() if checked else None,
                                  recipe=recipe, warnings=warnings),
            cover=cover_check, stems={name: recipe.stem(name).action for name in parts}, warnings=warnings,
            checks=qa_mod.run_checks(qa_mod.QAContext(mix, cover, sr, recipe, sheet, cover_sheet, tracks)),
        )

    if opts.session:
        from ..analysis.rhythm import track_beats
        from .audacity.session import render_session

        with run.stage("session"):
            from .audacity.labels import leadsheet_label_tracks

            beats = track_beats(cover, sr=sr).times_s if not cover_silent else []
            render_session(staging / "session.aup3", sr=sr, original=mix, stems=parts, processed=for_session,
                           cover=cover, beats_s=beats, downbeats_s=cover_sheet.downbeats_s,
                           beats_per_bar=cover_sheet.beats_per_bar, label_tracks=leadsheet_label_tracks(cover_sheet),
                           app=get_audacity())
    with run.stage("write"):
        page = None if opts.light else run.submit(  # drawn while the audio is written
            _report_page, mix, cover, sr=sr, qa=report.to_dict(final=False), features=feats,
            original_png=original_png, stems=list(tracks), sheet=cover_sheet)
        _write_audio(staging, cover=cover, parts=parts, recipe=recipe, sr=sr, notes=notes)
        report.outputs = {"cover": "cover.wav", "stems": {n: f"stems/{n}.wav" for n in parts}, "recipe": "recipe.yaml"}
        report.outputs.update(_write_arrangement(staging, sheet=sheet, cover_sheet=cover_sheet, tracks=tracks,
                                                 part_midi=generated.midi, notes=notes, sr=sr, project=not opts.light,
                                                 title=f"{song.stem} ({recipe.name})", warnings=warnings))
        if page is not None:  # the report plays the original beside the cover
            save_audio(staging / "original.flac", mix, sr=sr, subtype="PCM_24")
            (staging / "report.html").write_text(page.result(), encoding="utf-8")
            report.outputs.update(report="report.html", original="original.flac")
    report.stages = dict(run.seconds)
    if opts.session:
        report.outputs["session"] = "session.aup3"
    qa = report.to_dict()
    (staging / "qa.json").write_text(json.dumps(qa, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    staging.commit(last="qa.json")
    for w in warnings:
        log.warning(w)
    return RenderResult(out, out / "cover.wav", {n: out / f"stems/{n}.wav" for n in parts}, qa, warnings, report)


def _report_page(mix, cover, *, sr, qa, features, original_png, stems: list[str], sheet) -> str:
    """The report, with players (the original, the cover, each cover stem: links beside the page)
    and the cover's lead sheet under a playhead."""
    return render_report(original=mix, cover=cover, sr=sr, qa=qa, features=features,
                         original_spectrogram=None if original_png is None else original_png.result(),
                         original_url="original.flac", cover_url="cover.wav",
                         stem_urls={name: f"cover_stems/{name}.wav" for name in stems}, leadsheet=sheet)


def _write_audio(staging: Staging, *, cover, parts, recipe, sr, notes) -> None:
    """The cover, the stems, the resolved recipe and the MIDI notes, into the staging folder."""
    save_audio(staging / "cover.wav", cover, sr=sr)
    (staging / "stems").mkdir()
    for name, audio in parts.items():
        save_audio(staging / "stems" / f"{name}.wav", audio, sr=sr, subtype="FLOAT", clip="none")
    (staging / "recipe.yaml").write_text(recipe_to_yaml(recipe), encoding="utf-8")
    if notes:
        (staging / "midi").mkdir()
        for name, midi in notes.items():
            midi.write(str(staging / "midi" / f"{name}.mid"))


def _write_arrangement(staging: Staging, *, sheet, cover_sheet, tracks: dict[str, np.ndarray], part_midi: dict,
                       notes: dict, sr: int, title: str, warnings: list[str], project: bool = True) -> dict[str, Any]:
    """``leadsheet.json`` (the original's), ``midi/leadsheet.mid`` (the cover's: its tempo and key),
    ``midi/parts/<part>.mid``, ``cover_stems/<track>.wav`` (every part of the cover as heard in
    the mix, before the master: their sum through the master chain is ``cover.wav``) and
    ``cover.dawproject`` (those tracks, the MIDI, tempo, meter, bars and sections for a DAW)."""
    from ..leadsheet import to_midi

    (staging / "leadsheet.json").write_text(sheet.to_json(), encoding="utf-8")
    (staging / "midi" / "parts").mkdir(parents=True, exist_ok=True)
    to_midi(cover_sheet).write(str(staging / "midi" / "leadsheet.mid"))
    outputs: dict[str, Any] = {"leadsheet": "leadsheet.json", "leadsheet_midi": "midi/leadsheet.mid"}
    if notes:
        outputs["midi"] = {name: f"midi/{name}.mid" for name in notes}
    for track, pm in part_midi.items():
        name = track[len(PART_PREFIX):]
        pm.write(str(staging / "midi" / "parts" / f"{name}.mid"))
        outputs.setdefault("parts_midi", {})[name] = f"midi/parts/{name}.mid"
    if tracks:
        (staging / "cover_stems").mkdir()
        for name, audio in tracks.items():
            save_audio(staging / "cover_stems" / f"{name}.wav", audio, sr=sr, subtype="FLOAT", clip="none")
        outputs["cover_stems"] = {name: f"cover_stems/{name}.wav" for name in tracks}
    if tracks and project:
        project_warnings: list[str] = []
        write_project(staging / "cover.dawproject", staging=staging, sheet=cover_sheet, tracks=list(tracks),
                      part_midi=part_midi, notes=notes, sr=sr, title=title, warnings=project_warnings)
        outputs["dawproject"] = "cover.dawproject"
        warnings.extend(project_warnings)
    return outputs


class _Once:
    """A function's result, computed on the first call (thread-safe), the same on later ones."""

    def __init__(self, fn) -> None:
        self._fn, self._lock, self._done, self._value = fn, threading.Lock(), False, None

    def __call__(self):
        with self._lock:
            if not self._done:
                self._value, self._done = self._fn(), True
            return self._value


def _stretch_kept(mixer, reuse, kept: dict[str, np.ndarray], *, recipe: Recipe, **kw):
    """The mixer's ``stretch_kept``, reused (``reuse``) when the mixer, the kept stems, their mix
    settings, the tempo, key and quality are those of an earlier render in this process."""
    if reuse is None or not kept:
        return mixer.stretch_kept(kept, recipe=recipe, **kw)
    from .reuse import settings_key

    key = (tuple((name, reuse.audio_key(y), settings_key(recipe.stem(name))) for name, y in kept.items()),
           settings_key(recipe.tempo), json.dumps({k: str(v) for k, v in kw.items()}, sort_keys=True),
           tuple(settings_key(recipe.buses[b]) for b in sorted(recipe.buses)))
    return reuse.get("stretch", (mixer.name, *key), lambda: mixer.stretch_kept(kept, recipe=recipe, **kw))

