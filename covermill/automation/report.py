"""The per-render HTML report: one page (images embedded as base64 PNG, no external resources) with
the spectrograms of original and cover, their beat chroma, the cross-recurrence plot behind the Qmax
verdict, and the tempo, loudness and verdict lines of ``qa.json``. Given links to the audio (relative
to the page) and/or the cover's lead sheet, it also gets a "Listen" section (:mod:`.report_player`):
players, an A/B switch, a playhead over a spectrogram strip, the lead sheet under it; that section is
the page's only script. Without them the page has no script.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..analysis import cover as cover_qa
from ..audio import resample
from ..leadsheet import LeadSheet

REPORT_SR = 22050
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;background:#fff}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}table{border-collapse:collapse}
td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}img{max-width:100%;display:block}
.ok{color:#1a7f37;font-weight:bold}.bad{color:#cf222e;font-weight:bold}"""


def _png(fig, *, tight: bool = True) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight" if tight else None)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def spectrogram_png(y: np.ndarray, *, sr: int, title: str) -> str:
    """A 128-band mel spectrogram (dB) of the mono mix as base64 PNG, at most ~1000 columns
    (about the figure's width in pixels: more would be drawn and thrown away)."""
    import librosa
    import librosa.display
    from matplotlib.figure import Figure

    mono = resample(np.asarray(y, np.float32).mean(axis=0, keepdims=True), sr_in=sr, sr_out=REPORT_SR)[0]
    hop = max(1024, 512 * int(np.ceil(len(mono) / 1000 / 512)))
    M = librosa.feature.melspectrogram(y=mono, sr=REPORT_SR, n_fft=2048, hop_length=hop, n_mels=128)
    S = librosa.power_to_db(M, ref=np.max, top_db=80)
    fig = Figure(figsize=(11, 3))
    ax = fig.add_subplot()
    img = librosa.display.specshow(S, sr=REPORT_SR, hop_length=hop, x_axis="time", y_axis="mel", ax=ax, cmap="magma")
    fig.colorbar(img, ax=ax, format="%+2.0f dB")
    ax.set_title(title)
    return _png(fig)


def _chroma_png(chromas: list[tuple[str, np.ndarray]]) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 1.8 * len(chromas)))
    for i, (title, c) in enumerate(chromas, 1):
        ax = fig.add_subplot(len(chromas), 1, i)
        ax.imshow(c, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(0, 12, 2), ["C", "D", "E", "F#", "G#", "A#"])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("beat")
    fig.tight_layout()
    return _png(fig)


def _recurrence_png(a: np.ndarray, b: np.ndarray) -> str:
    from matplotlib.figure import Figure

    shift = int(cover_qa.transposition_order(a, b)[0])
    rec = cover_qa.cross_recurrence(a, np.roll(b, shift, axis=0))
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot()
    ax.imshow(rec if rec.size else np.zeros((1, 1)), origin="lower", cmap="gray_r", interpolation="nearest")
    ax.set_xlabel("cover beat")
    ax.set_ylabel("original beat")
    ax.set_title(f"cross-recurrence (cover shifted {shift} semitones)", fontsize=9)
    return _png(fig)


def _genre_png(before: dict[str, float], after: dict[str, float], target: str | None) -> str:
    from matplotlib.figure import Figure

    genres = sorted(set(before) | set(after))
    fig = Figure(figsize=(7, 0.35 * len(genres) + 1.0))
    ax = fig.add_subplot()
    y = np.arange(len(genres))
    ax.barh(y - 0.2, [before.get(g, 0) for g in genres], height=0.4, label="original", color="#8c8c8c")
    ax.barh(y + 0.2, [after.get(g, 0) for g in genres], height=0.4, label="cover", color="#1f77b4")
    ax.set_yticks(y, [f"{g} (target)" if g == target else g for g in genres])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("taste-model probability")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _png(fig)


def _row(name: str, value: Any) -> str:
    return f"<tr><th>{html.escape(name)}</th><td>{html.escape('—' if value is None else str(value))}</td></tr>"


def render_report(*, original: np.ndarray, cover: np.ndarray, sr: int, qa: dict[str, Any],
                  features: tuple[cover_qa.CoverFeatures, cover_qa.CoverFeatures] | None = None,
                  original_spectrogram: str | None = None, original_url: str | None = None,
                  cover_url: str | None = None, stem_urls: Mapping[str, str] | None = None,
                  leadsheet: LeadSheet | None = None) -> str:
    """The HTML text of a render's report (self-contained).

    Parameters
    ----------
    original, cover : np.ndarray [shape=(channels, n)], float32
    sr : int > 0
    qa : dict
        The render's ``qa.json`` content (tempo, loudness, ``cover`` verdict).
    features : (CoverFeatures, CoverFeatures), optional
        Cover-detection features of original and cover (computed when missing and both
        are audible; skipped for silence).
    original_spectrogram : str, optional
        :func:`spectrogram_png` of the original, drawn earlier (the render draws it while the
        kept stems are stretched); drawn here when missing.
    original_url, cover_url : str, optional
        Links to the original and the cover, relative to the page (``"cover.wav"``): players
        with an A/B switch that keeps the position.
    stem_urls : {name: str}, optional
        Links to each cover stem (``{"bass": "cover_stems/bass.wav"}``): one player each.
    leadsheet : LeadSheet, optional
        The cover's lead sheet (cover times): sections, chords and bars drawn under the
        spectrogram strip, the current ones highlighted under the playhead.
    """
    if original_url or cover_url or stem_urls:
        from .report_player import check_link

        for url in (original_url, cover_url, *(stem_urls or {}).values()):
            if url is not None:
                check_link(url)  # refused before any drawing
    audible = [float(np.max(np.abs(x))) >= 1e-5 if x.size else False for x in (original, cover)]
    if features is None and all(audible):
        features = (cover_qa.features(original, sr=sr), cover_qa.features(cover, sr=sr))
    tempo, check = qa.get("tempo", {}), qa.get("cover")
    ok = None if check is None else check["is_cover"]
    if check is None:
        verdict = '<p class="bad">No cover verdict: the original or the cover is silent.</p>'
    elif ok is None:
        verdict = (f'<p class="bad">No cover verdict: {html.escape(str(check.get("verdict", "too short to judge")))}; '
                   f'Qmax {check["qmax"]} is shown for information only.</p>')
    else:
        ref = check.get("reference", {})
        verdict = (f'<p class="{"ok" if ok else "bad"}">{"Recognisably a cover" if ok else "NOT recognisably a cover"}'
                   f' of the original: Qmax {check["qmax"]} (cover when &ge; {check["threshold"]}); an unrelated '
                   f'recording scores {ref.get("qmax")}. 2DFTM distance {check["twodftm_distance"]} '
                   f'(unrelated: {ref.get("twodftm_distance")}).</p>')
    rows = "".join([
        _row("song", qa.get("song")), _row("recipe", qa.get("recipe")),
        _row("tempo (BPM)", f"{tempo.get('source_bpm')} → {tempo.get('cover_bpm')} (target {tempo.get('target_bpm')})"),
        _row("key (semitones)", qa.get("key", {}).get("semitones")),
        _row("loudness (LUFS)", f"{qa.get('loudness_lufs')} (target {qa.get('loudness_target_lufs')})"),
        _row("true peak (dBTP)", qa.get("true_peak_db")),
        _row("duration (s)", f"{qa.get('source_duration_s')} → {qa.get('duration_s')}"),
    ])
    genre_images = []
    genre = qa.get("genre") or {}
    if genre.get("original") and genre.get("cover"):
        genre_images.append((f"Genre before and after (target: {genre.get('target')})",
                             _genre_png(genre["original"], genre["cover"], genre.get("model_class"))))
        rows += _row("genre", f"{genre.get('original_top')} → {genre.get('cover_top')}; P({genre.get('model_class')}) "
                              f"{genre.get('target_prob_original')} → {genre.get('target_prob_cover')}")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>covermill report: "
             f"{html.escape(str(qa.get('song', '')))}</title><style>{_STYLE}</style></head><body>",
             f"<h1>covermill report: {html.escape(str(qa.get('song', '')))} as {html.escape(str(qa.get('recipe', '')))}</h1>",
             verdict, f"<table>{rows}</table>"]
    if original_url or cover_url or stem_urls or leadsheet is not None:
        from .report_player import player_html, strip_png

        parts.append(player_html(
            original_url=original_url, cover_url=cover_url, stem_urls=dict(stem_urls or {}),
            original_png=strip_png(original, sr=sr) if original_url and audible[0] else None,
            cover_png=strip_png(cover, sr=sr) if audible[1] else None,
            leadsheet=leadsheet, duration_s=cover.shape[-1] / sr))
    images = []
    for title, y, loud in (("original", original, audible[0]), ("cover", cover, audible[1])):
        if loud:
            png = original_spectrogram if title == "original" and original_spectrogram else None
            images.append((f"Spectrogram of the {title}", png or spectrogram_png(y, sr=sr, title=title)))
    if features is not None:
        a, b = features
        images.append(("Beat chroma", _chroma_png([("original", a.chroma), ("cover", b.chroma)])))
        images.append(("Cross-recurrence plot (Qmax follows its longest diagonal)", _recurrence_png(a.chroma, b.chroma)))
    images += genre_images
    for title, data in images:
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    for w in qa.get("warnings", []):
        parts.append(f"<p class='bad'>warning: {html.escape(str(w))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
