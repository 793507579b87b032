"""The "Listen" section of ``report.html``: players for the original, the cover and each cover stem,
an A/B switch that keeps the musical position, a playhead over a spectrogram strip, and the lead
sheet (sections, chords, bars) drawn under it.

The audio is linked, not embedded (relative links given by the caller, e.g. ``cover.wav``,
``cover_stems/bass.wav``), so the page stays light; the strips are small base64 PNGs whose plot
fills the image, so a time ``t`` is at ``t / duration`` of the width. The original and the cover
differ in length by the tempo ratio, which is constant, so the same *fraction* of either is the
same musical moment: the A/B switch and the lead-sheet lanes use fractions of the duration.
"""

from __future__ import annotations

import html
import math
import posixpath
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import numpy as np

from ..errors import ParameterError
from ..leadsheet import LeadSheet

STRIP_SR = 22050

_PLAYER_STYLE = """.listen{border:1px solid #ddd;border-radius:6px;padding:.8em;margin:1em 0}
.ab button{font-size:1em;padding:.3em 1em;margin-right:.3em;border:1px solid #888;background:#f4f4f4;cursor:pointer}
.ab button[aria-pressed=true]{background:#1f77b4;color:#fff;border-color:#1f77b4}
.strip{position:relative;cursor:pointer;margin-top:.5em}.strip img{width:100%;height:120px;display:block}
.playhead{position:absolute;top:0;bottom:0;width:2px;background:#0f0;left:0;pointer-events:none}
.lane{position:relative;height:1.5em;border-bottom:1px solid #eee;font-size:.8em;overflow:hidden}
.lane span{position:absolute;top:0;bottom:0;border-left:1px solid #999;padding-left:2px;white-space:nowrap;overflow:hidden}
.lane .name{position:static;border:0;color:#888;padding:0}.lane span.on{background:#ffe9a8}
.now{font-family:monospace;margin:.3em 0}.stems td{padding:.2em .5em}audio{vertical-align:middle}"""

_SCRIPT = """(()=>{const a=document.getElementById('play-original'),b=document.getElementById('play-cover');
const players={original:a,cover:b};let cur=b||a;const strip=document.getElementById('strip');
const head=document.getElementById('playhead');const now=document.getElementById('now');
const imgs={original:document.getElementById('strip-original'),cover:document.getElementById('strip-cover')};
const frac=p=>(p&&p.duration>0&&isFinite(p.duration))?p.currentTime/p.duration:0;
function show(){const f=frac(cur);if(head)head.style.left=(100*f)+'%';
 const labels=[];document.querySelectorAll('.lane span[data-a]').forEach(s=>{
  const on=f>=+s.dataset.a&&f<+s.dataset.b;s.classList.toggle('on',on);if(on)labels.push(s.textContent);});
 if(now)now.textContent=labels.join(' \\u00b7 ');}
function tick(){show();if(cur&&!cur.paused)requestAnimationFrame(tick);}
function choose(name){const next=players[name];if(!next||next===cur){return;}const f=frac(cur),playing=cur&&!cur.paused;
 if(cur)cur.pause();if(next.duration>0)next.currentTime=f*next.duration;cur=next;
 document.querySelectorAll('.ab button').forEach(x=>x.setAttribute('aria-pressed',x.dataset.ab===name));
 for(const k in imgs)if(imgs[k])imgs[k].hidden=(k!==name);if(playing)next.play();show();}
document.querySelectorAll('.ab button').forEach(x=>x.addEventListener('click',()=>choose(x.dataset.ab)));
for(const k in players){const p=players[k];if(!p)continue;p.addEventListener('play',()=>{if(p!==cur)choose(k);tick();});
 p.addEventListener('seeked',show);p.addEventListener('timeupdate',show);}
if(strip)strip.addEventListener('click',e=>{const r=strip.getBoundingClientRect();const f=(e.clientX-r.left)/r.width;
 if(cur&&cur.duration>0){cur.currentTime=f*cur.duration;}show();});
window.coverAB=choose;show();})();"""


def strip_png(y: np.ndarray, *, sr: int, width_px: int = 1000) -> str:
    """A mel spectrogram (dB) of the mono mix as a base64 PNG whose plot fills the image (no axes,
    no margins): column ``x`` of ``width_px`` is time ``x / width_px * duration``."""
    import librosa
    from matplotlib.figure import Figure

    from ..audio import resample
    from .report import _png

    mono = resample(np.asarray(y, np.float32).mean(axis=0, keepdims=True), sr_in=sr, sr_out=STRIP_SR)[0]
    hop = max(256, int(math.ceil(len(mono) / width_px)))
    M = librosa.feature.melspectrogram(y=mono, sr=STRIP_SR, n_fft=2048, hop_length=hop, n_mels=64)
    S = librosa.power_to_db(M, ref=np.max(M) if M.size and np.max(M) > 0 else 1.0, top_db=80)
    fig = Figure(figsize=(width_px / 80, 1.5))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(S, aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
    ax.set_axis_off()
    return _png(fig, tight=False)


def check_link(url: str) -> str:
    """A relative link (``cover.wav``, ``cover_stems/bass.wav``) percent-quoted for ``src``; refuses
    absolute paths, schemes and ``..`` (the report must move with its folder)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith("/") or not url.strip():
        raise ParameterError(f"player link {url!r} must be a path relative to report.html (e.g. 'cover.wav')")
    if ".." in posixpath.normpath(url).split("/"):
        raise ParameterError(f"player link {url!r} leaves the report's folder; link files beside or below it")
    return quote(url, safe="/")


def _lanes(sheet: LeadSheet, duration_s: float) -> str:
    def span(t0: float, t1: float, text: str) -> str:
        a, b = max(0.0, t0 / duration_s), min(1.0, t1 / duration_s)
        if b <= a:
            return ""
        return (f"<span data-a='{a:.5f}' data-b='{b:.5f}' style='left:{100 * a:.3f}%;width:{100 * (b - a):.3f}%'"
                f" title='{html.escape(text)}'>{html.escape(text)}</span>")

    rows = []
    if sheet.sections:
        rows.append(("sections", [span(s.start_s, s.end_s, s.label) for s in sheet.sections]))
    chords = [span(c.start_s, c.end_s, c.label) for c in sheet.chords if c.root is not None]
    if chords:
        rows.append(("chords", chords))
    if sheet.downbeats_s:
        rows.append(("bars", [span(a, b, str(i + 1)) for i, (a, b) in enumerate(sheet.bars())]))
    if not rows:
        return "<p>The lead sheet has no sections, chords or bars.</p>"
    key = f" · key {html.escape(sheet.key.label)}" if sheet.key else ""
    bpm = f"{sheet.bpm:.1f} BPM" if math.isfinite(sheet.bpm) else "no steady beat"
    head = f"<p>Lead sheet of the cover: {bpm}, {sheet.beats_per_bar} beats per bar{key}</p>"
    return head + "".join(f"<div class='lane' aria-label='{name}'>{''.join(spans)}</div>" for name, spans in rows)


def player_html(*, original_url: str | None, cover_url: str | None, stem_urls: Mapping[str, str],
                original_png: str | None, cover_png: str | None, leadsheet: LeadSheet | None,
                duration_s: float) -> str:
    """The "Listen" section (HTML with its style and script); see the module docstring."""
    out = [f"<style>{_PLAYER_STYLE}</style><h2>Listen</h2><div class='listen'>"]
    players = [(name, url) for name, url in (("original", original_url), ("cover", cover_url)) if url]
    if players:
        out.append("<div class='ab' role='group' aria-label='A/B'>"
                   + "".join(f"<button type='button' data-ab='{n}' aria-pressed='{str(n == players[-1][0]).lower()}'>"
                             f"{'A: original' if n == 'original' else 'B: cover'}</button>" for n, _ in players)
                   + " <small>switching keeps the position in the song (same fraction of each: the tempo "
                     "ratio is constant)</small></div>")
        for name, url in players:
            out.append(f"<p>{name}: <audio id='play-{name}' controls preload='metadata' "
                       f"src='{html.escape(check_link(url))}'></audio></p>")
    strips = [(n, png) for n, png in (("original", original_png), ("cover", cover_png)) if png]
    if strips:
        out.append("<div class='strip' id='strip'>")
        for name, png in strips:
            hidden = "" if name == strips[-1][0] else " hidden"
            out.append(f"<img id='strip-{name}' alt='spectrogram of the {name}'{hidden} "
                       f"src='data:image/png;base64,{png}'>")
        out.append("<div class='playhead' id='playhead'></div></div>")
    out.append("<div class='now' id='now' aria-live='off'></div>")
    if leadsheet is not None:
        out.append(_lanes(leadsheet, duration_s if duration_s > 0 else leadsheet.duration_s))
    if stem_urls:
        rows = "".join(f"<tr><td>{html.escape(name)}</td><td><audio controls preload='none' "
                       f"src='{html.escape(check_link(url))}'></audio></td></tr>" for name, url in stem_urls.items())
        out.append(f"<h3>The cover's parts</h3><table class='stems'>{rows}</table>")
    out.append(f"</div><script>{_SCRIPT}</script>")
    return "\n".join(out)

