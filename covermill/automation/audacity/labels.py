"""Label tracks and track settings for review sessions, in a fixed number of scripted commands.

Two per label (``AddLabel:`` + ``SetLabel:``) made a 3-minute song's session take minutes: every
``AddLabel`` is an undo step that copies the label track, so the cost grows with the count. Here:

* a label track is **one** ``NyquistPrompt:`` call whose code reads a label list from a file
  (``((t0 t1 "text") ...)``) and returns it: Nyquist returns labels by creating a new label
  track at the bottom with all of them, one undo step (Audacity 3.2.4: 0.15 s for 360 labels);
* every track's name, gain, pan and mute is set by **one** ``NyquistPrompt:`` call of type
  ``tool`` whose code ``load``\\s a file of ``(aud-do "Select: ...")`` / ``(aud-do "SetTrack: ...")``
  forms: the commands run inside Audacity, not one pipe round trip each.

The code sent is a single line that names a file in covermill's private temporary folder; the
files hold the data (any length, any text), so the pipe's 1000-byte line limit and its quoting
rules never meet a label or a track name. A ``tool`` prompt needs the ``;type tool`` header on a
line of its own: Audacity turns the two characters ``\\n`` of a command line into a newline (see
``docs/audacity.md``), which is the one place covermill sends them on purpose. A Nyquist result
that is a non-empty string would open a message box, so the tool code returns ``""``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ...errors import AudacityError
from ...leadsheet import LeadSheet
from .client import build_command

#: A label: ``(start_s, end_s, text)``; ``start_s == end_s`` is a point label.
Label = tuple[float, float, str]


def lisp_string(text: str) -> str:
    """``text`` as an XLisp string literal (``\\`` and ``"`` escaped)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _safe_path(path: Path) -> str:
    text = str(Path(path).resolve())
    if any(ch in text for ch in '"\\\n\r\x00'):
        raise AudacityError(f"{text}: a temporary path with quotes, backslashes or newlines cannot be passed to "
                            "Audacity's Nyquist; set TMPDIR to a plain folder")
    return text


def label_file_text(labels: Iterable[Label]) -> str:
    """A Lisp list ``((t0 t1 "text") ...)`` that Nyquist returns as labels (times in seconds, >= 0)."""
    items = []
    for t0, t1, text in sorted(labels, key=lambda x: (x[0], x[1])):
        if not (math.isfinite(t0) and math.isfinite(t1)):
            raise AudacityError(f"label {text!r} has a time that is not a number ({t0}, {t1})")
        a = max(0.0, float(t0))
        b = max(a, float(t1))
        items.append(f"({a:.6f} {b:.6f} {lisp_string(text)})")
    return "(" + "\n".join(items) + ")\n"


def read_labels_code(path: Path) -> str:
    """One-line Nyquist code that returns the label list stored in ``path``."""
    return f'(let ((f (open "{_safe_path(path)}"))) (prog1 (read f) (close f)))'


def tool_command(script: Path) -> str:
    """The ``NyquistPrompt:`` command line that runs ``script`` (``aud-do`` forms) as a ``tool``."""
    code = f';type tool\\n(load "{_safe_path(script)}") ""'
    line = build_command("NyquistPrompt", {"Command": code.replace("\\n", "\x01")})
    return line.replace("\x01", "\\n")  # the one newline Audacity must see: the header's end


def aud_do(name: str, params: Mapping[str, object] | None = None) -> str:
    """One ``(aud-do "Command: ...")`` form."""
    return f"(aud-do {lisp_string(build_command(name, params))})"


def tool_script(forms: Iterable[str]) -> str:
    """Nyquist ``tool`` code: the forms, then ``""`` (a non-empty string result opens a message box)."""
    return "\n".join(forms) + '\n""\n'


def settings_script(settings: Sequence[Mapping[str, object]]) -> str:
    """``(aud-do ...)`` forms that select track ``i`` and apply ``settings[i]`` (SetTrack parameters)."""
    return tool_script(settings_forms(settings) + [aud_do("SelectNone")])


def settings_forms(settings: Sequence[Mapping[str, object]]) -> list[str]:
    forms = []
    for i, params in enumerate(settings):
        if params:
            forms += [aud_do("Select", {"Track": i, "TrackCount": 1, "Mode": "Set"}), aud_do("SetTrack", params)]
    return forms


def reorder_forms(current: Sequence[object], wanted: Sequence[object]) -> list[str]:
    """Forms that move tracks (focus + ``TrackMoveBottom``) from order ``current`` to ``wanted``
    (the same items): each track from the first one that is out of place on goes to the bottom in turn."""
    order = list(current)
    if order == list(wanted):
        return []
    first = next(i for i, (a, b) in enumerate(zip(order, wanted, strict=True)) if a != b)
    forms = []
    for item in list(wanted)[first:]:
        i = order.index(item)
        forms += [aud_do("Select", {"Track": i, "TrackCount": 1, "Mode": "Set"}), aud_do("SetTrack", {"Focused": True}),
                  aud_do("TrackMoveBottom")]
        order.append(order.pop(i))
    return forms


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- label tracks from covermill data -------------------------------------------------------------------

def beat_labels(beats_s: Sequence[float], *, downbeats_s: Sequence[float] = (), beats_per_bar: int = 4) -> list[Label]:
    """``bar.beat`` point labels; counted from ``downbeats_s`` when given (a pickup before the
    first downbeat is ``0``), else in ``beats_per_bar`` from the first beat."""
    import bisect

    beats = [float(t) for t in beats_s]
    if len(downbeats_s) == 0:
        return [(t, t, f"{k // beats_per_bar + 1}.{k % beats_per_bar + 1}") for k, t in enumerate(beats)]
    downs = sorted(float(d) for d in downbeats_s)
    out: list[Label] = []
    bar_of_previous, beat = -2, 0
    for t in beats:
        bar = bisect.bisect_right(downs, t + 1e-3) - 1
        beat = beat + 1 if bar == bar_of_previous else 1
        bar_of_previous = bar
        out.append((t, t, "0" if bar < 0 else f"{bar + 1}.{beat}"))
    return out


def leadsheet_label_tracks(sheet: LeadSheet) -> dict[str, list[Label]]:
    """``{"bars": ..., "sections": ..., "chords": ...}`` region labels from a lead sheet (empty
    groups left out); chords use their mir_eval label, no-chord spans are left out."""
    tracks: dict[str, list[Label]] = {}
    # LeadSheet.bars() raises on an empty downbeat list (strict zip): ask only when there are bars
    bars = [(a, b, f"bar {i + 1}") for i, (a, b) in enumerate(sheet.bars() if sheet.downbeats_s else [])]
    if bars:
        tracks["bars"] = bars
    if sheet.sections:
        tracks["sections"] = [(s.start_s, s.end_s, s.label) for s in sheet.sections]
    chords = [(c.start_s, c.end_s, c.label) for c in sheet.chords if c.root is not None and c.end_s > c.start_s]
    if chords:
        tracks["chords"] = chords
    return tracks


def check_label_tracks(label_tracks: Mapping[str, Sequence[Label]]) -> dict[str, list[Label]]:
    """Validated copy: names non-empty, labels ``(t0, t1, text)`` with ``t0 <= t1``."""
    out: dict[str, list[Label]] = {}
    for name, labels in label_tracks.items():
        if not str(name).strip():
            raise AudacityError("a label track needs a name")
        rows = []
        for item in labels:
            if len(item) != 3:
                raise AudacityError(f"label track {name!r}: a label is (start_s, end_s, text), got {item!r}")
            t0, t1, text = float(item[0]), float(item[1]), str(item[2])
            if t1 < t0:
                raise AudacityError(f"label track {name!r}: label {text!r} ends ({t1}) before it starts ({t0})")
            rows.append((t0, t1, text))
        out[str(name)] = rows
    return out


def file_name_for(name: str) -> str:
    """A file name whose stem is ``name`` as far as the filesystem and a ``.lof`` line allow (Audacity
    names an imported clip after its file)."""
    safe = "".join("_" if ch in '/\\"\n\r\x00' else ch for ch in name).strip() or "track"
    if safe.startswith("."):
        safe = "_" + safe[1:]
    return safe[:120] + ".wav"


def lof_text(paths: Sequence[str | os.PathLike]) -> str:
    """A List-of-Files: one ``file "path"`` line per file; Audacity imports them all in one ``Import2``."""
    return "".join(f'file "{_safe_path(Path(p))}"\n' for p in paths)
