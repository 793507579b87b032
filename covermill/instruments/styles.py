"""Genre parts as data: drum grooves, bass lines and comping styles as YAML files.

Every built-in style is a file in ``covermill/instruments/styles/`` (one style per file, the
file name is the style name); a producer's folder of ``*.yaml`` styles (``user_dir``,
``$COVERMILL_STYLES_DIR`` or ``<user data dir>/covermill/styles``) overrides built-ins of the
same name. A file is validated like an instrument or a recipe: unknown keys are rejected
with a did-you-mean and every error names ``file:line``. :func:`get_style` loads one,
:func:`list_styles` lists them, :func:`validate_style_file` checks one file.
:mod:`covermill.instruments.parts` turns a style and a lead sheet into MIDI.

The format (full reference with examples in ``docs/styles.md``)::

    name: reggae_one_drop
    kind: drums                      # drums | bass | comping | melody
    description: one drop: kick and rim on beat 3, hi-hat 8ths
    genre: reggae
    sound: {kit: standard}           # drums: GM kit; bass/comping: {program: "Electric Bass (finger)"}
    range: [28, 52]                  # bass/comping: MIDI notes the part may use
    swing: 0.5                       # where an off-beat falls in its beat/half-beat (0.5 straight, 0.67 triplet)
    swing_unit: 8th                  # 8th | 16th
    humanize: {timing_ms: 6, velocity: 8}
    meters:                          # beats per bar -> pattern; 4 is required
      4:
        steps_per_beat: 2            # drums: characters per beat in the voice strings
        voices: {kick: "....X...", side_stick: "....x...", closed_hat: "xxxxxxxx"}
    fills:                           # drums: the last beats of a bar before a section and of the song
      4: {steps_per_beat: 4, voices: {snare: "..xx.xxX", high_tom: "x.......", floor_tom: "....x..."}}

Drum strings: ``X`` accent, ``x`` normal, ``o`` ghost, ``.``/``-`` rest (``|``, spaces ignored). Bass
and comping bars list events ``[at_beat, length_beats, what, velocity?]``; ``what`` is a degree
(``1 3 5 7 9 11 13 8``), ``walk``/``approach``/``arp`` (bass) or ``chord``/``up``/``low``/``high``/``arp``
(comping), `` push`` anticipating the next chord. A ``melody`` style has no ``meters``: it plays the
lead sheet's melody (a doubling of the tune) with its ``sound``, moved by octaves into its ``range``.
"""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ParameterError
from ..yamlsafe import line_map, load_yaml_file

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
KINDS = ("drums", "bass", "comping", "melody")

#: Drum voices -> General MIDI percussion notes. ``timpani``/``timpani5`` are pitched: the Orchestra
#: kit's timpani (GM2 notes 41-53, F to F) on the chord's root / fifth.
DRUM_VOICES: dict[str, int] = {
    "kick": 36, "side_stick": 37, "snare": 38, "clap": 39, "snare2": 40, "floor_tom": 41, "closed_hat": 42,
    "low_tom": 45, "pedal_hat": 44, "open_hat": 46, "mid_tom": 47, "high_tom": 50, "crash": 49, "ride": 51,
    "ride_bell": 53, "tambourine": 54, "splash": 55, "cowbell": 56, "cabasa": 69, "shaker": 70, "claves": 75,
    "timpani": -1, "timpani5": -2,
}
DRUM_VELOCITY = {"X": 118, "x": 92, "o": 52}
DEGREES = ("1", "3", "5", "7", "8", "9", "11", "13")
BASS_WORDS = DEGREES + ("walk", "approach", "arp", "rest")
COMPING_WORDS = ("chord", "up", "low", "high", "arp", "rest")
FLAGS = ("push",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Humanize(_Strict):
    timing_ms: float = Field(5.0, ge=0.0, le=40.0)
    velocity: int = Field(6, ge=0, le=40)


class Sound(_Strict):
    program: str | int | None = None
    kit: str | int | None = None
    swap: dict[str, str] = {}  # options only: play one drum voice's part on another (brushes: ride -> snare)

    @field_validator("swap")
    @classmethod
    def _swap(cls, swap: dict[str, str]) -> dict[str, str]:
        for voice in (*swap, *swap.values()):
            if voice not in DRUM_VOICES:
                close = difflib.get_close_matches(voice, DRUM_VOICES, n=1, cutoff=0.5)
                raise ValueError(f"unknown drum voice {voice!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return swap


class Event(_Strict):
    at: float = Field(ge=0.0, le=12.0)
    length: float = Field(gt=0.0, le=16.0)
    what: str
    velocity: int | None = Field(None, ge=1, le=127)
    push: bool = False


def _event(value: object) -> object:
    """``[at, length, "what [push]", velocity?]`` -> an :class:`Event` mapping."""
    if not isinstance(value, (list, tuple)):
        return value
    if len(value) not in (3, 4):
        raise ValueError("an event is [at_beat, length_beats, what] or [at_beat, length_beats, what, velocity]")
    words = str(value[2]).split()
    data = {"at": value[0], "length": value[1], "what": words[0] if words else "", "push": "push" in words[1:]}
    unknown = [w for w in words[1:] if w not in FLAGS]
    if unknown:
        raise ValueError(f"unknown event flag {unknown[0]!r}; the only flag is 'push'")
    if len(value) == 4:
        data["velocity"] = value[3]
    return data


class DrumBar(_Strict):
    """A drum bar (``steps_per_beat`` + ``voices``) or, for bass and comping, ``bars`` of events."""

    steps_per_beat: int = Field(2, ge=1, le=12)
    voices: dict[str, str] = {}
    bars: tuple[tuple[Event, ...], ...] = ()

    @field_validator("voices")
    @classmethod
    def _voices(cls, voices: dict[str, str]) -> dict[str, str]:
        for name, pattern in voices.items():
            if name not in DRUM_VOICES:
                close = difflib.get_close_matches(name, DRUM_VOICES, n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}?" if close else f"voices: {', '.join(DRUM_VOICES)}"
                raise ValueError(f"@+{name} unknown drum voice {name!r} ({hint})")
            bad = set(pattern) - set("Xxo.-| ")
            if bad:
                raise ValueError(f"@+{name} voice {name!r}: characters {''.join(sorted(bad))!r} are not X x o . - |")
        return voices

    @field_validator("bars", mode="before")
    @classmethod
    def _events(cls, bars: object) -> object:
        if isinstance(bars, list):
            return [[_event(e) for e in bar] if isinstance(bar, list) else bar for bar in bars]
        return bars

    def steps(self, voice: str) -> str:
        return "".join(c for c in self.voices[voice] if c not in "| ")


class Style(_Strict):
    """One style file, validated. ``meters`` maps beats per bar to the pattern for that meter."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["drums", "bass", "comping", "melody"]
    description: str = ""
    genre: str = ""
    sound: Sound = Sound()
    range: tuple[int, int] | None = None
    swing: float = Field(0.5, ge=0.5, le=0.8)
    swing_unit: Literal["8th", "16th"] = "8th"
    humanize: Humanize = Humanize()
    meters: dict[int, DrumBar] = {}
    fills: dict[int, DrumBar] = {}
    options: dict[str, Sound] = {}
    voicings: tuple[tuple[str, ...], ...] = ()
    triad_seventh: Literal["6", "7", "maj7", "none"] = "none"
    chord_sevenths: bool = False
    strum_ms: float = Field(0.0, ge=0.0, le=60.0)
    ending: Literal["hold", "none"] = "hold"
    source: str = "built-in"

    @field_validator("range")
    @classmethod
    def _range(cls, r: tuple[int, int] | None) -> tuple[int, int] | None:
        if r is not None and not 0 <= r[0] < r[1] <= 127:
            raise ValueError("range must be [low, high] MIDI notes with 0 <= low < high <= 127")
        return r

    @field_validator("voicings")
    @classmethod
    def _voicings(cls, shapes: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        for shape in shapes:
            bad = [d for d in shape if d not in DEGREES]
            if bad or not shape:
                raise ValueError(f"voicing {list(shape)}: degrees are {', '.join(DEGREES)} (got {bad or 'nothing'})")
        return shapes

    @model_validator(mode="after")
    def _consistent(self) -> Style:
        if self.kind == "melody":
            if self.meters or self.fills or self.voicings:
                raise ValueError("a melody style plays the lead sheet's melody: it takes no meters, fills or voicings")
        elif 4 not in self.meters:
            raise ValueError("meters needs a 4 (4/4) pattern; other meters are optional")
        drums = self.kind == "drums"
        for beats, bar in self.meters.items():
            if not 1 <= beats <= 12:
                raise ValueError(f"meters: {beats} beats per bar is not 1-12")
            if (not bar.voices if drums else not bar.bars) or (bar.bars if drums else bar.voices):
                raise ValueError(f"meters.{beats}: a {self.kind} style needs "
                                 f"{'voices: {kick: ...}' if drums else 'bars: [[[at, length, what], ...]]'} only")
            if drums:
                for voice in bar.voices:
                    n_steps = len(bar.steps(voice))
                    if not n_steps or n_steps % (beats * bar.steps_per_beat):
                        raise ValueError(f"@meters.{beats}.voices.{voice} {n_steps} steps, a bar of "
                                         f"{beats} beats at {bar.steps_per_beat} steps per beat needs "
                                         f"{beats * bar.steps_per_beat} (or a multiple: a pattern of several bars)")
            else:
                words = BASS_WORDS if self.kind == "bass" else COMPING_WORDS + DEGREES
                for b, events in enumerate(bar.bars):
                    for j, e in enumerate(events):
                        if e.what not in words:
                            close = difflib.get_close_matches(e.what, words, n=1, cutoff=0.5)
                            hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(words)}"
                            raise ValueError(f"@meters.{beats}.bars.{b}.{j} unknown {self.kind} event {e.what!r} ({hint})")
                        if e.at >= beats:
                            raise ValueError(f"@meters.{beats}.bars.{b}.{j} an event at beat {e.at:g} lies outside a "
                                             f"{beats}-beat bar")
        for beats, fill in self.fills.items():
            for voice in fill.voices:
                n = len(fill.steps(voice))
                if n % fill.steps_per_beat or n > beats * fill.steps_per_beat:
                    raise ValueError(f"@fills.{beats}.voices.{voice} {n} steps is not whole beats of a {beats}-beat bar")
        if self.kind != "drums" and self.range is None:
            raise ValueError(f"a {self.kind} style needs range: [low, high] (MIDI notes)")
        if self.kind == "comping" and not self.voicings:
            raise ValueError("a comping style needs voicings: [[1, 3, 7], ...]")
        self._check_sound(self.sound, "sound")
        for name, option in self.options.items():
            self._check_sound(option, f"options.{name}")
        return self

    def _check_sound(self, sound: Sound, where: str) -> None:
        from .drums import kit_number
        from .midi import program_number

        if self.kind == "drums":
            if sound.program is not None:
                raise ValueError(f"{where}: a drums style takes kit:, not program:")
            if sound.kit is not None:
                kit_number(sound.kit)
        else:
            if sound.kit is not None:
                raise ValueError(f"{where}: a {self.kind} style takes program:, not kit:")
            if sound.program is not None:
                program_number(sound.program)


# ---------------------------------------------------------------- loading


_SECTIONS: dict[str, type[BaseModel]] = {"humanize": Humanize, "sound": Sound, "options": Sound}


def _format(path: Path, lines: dict[tuple, int], err: dict) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (
        p.startswith("function-") or p[:1].isupper())))
    loc = tuple(p for p in loc if p not in ("at", "length", "what", "velocity") or loc[-1] == p)
    line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
    prefix = f"{path}:{line}" if line else str(path)
    if err["type"] == "extra_forbidden":
        parent = [p for p in loc[:-1] if isinstance(p, str)]
        first = parent[0] if parent else ""
        model = DrumBar if first in ("meters", "fills") else _SECTIONS.get(first, Style)
        valid = [f for f in model.model_fields if f != "source"]
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        where = ".".join(str(p) for p in loc[:-1]) or "the top level"
        return f"{prefix}: unknown key {loc[-1]!r} in {where} ({hint})"
    msg = err["msg"].removeprefix("Value error, ")
    if msg.startswith("@"):  # a whole-file check that knows where it failed: "@meters.4.voices.ride problem"
        where, _, msg = msg[1:].partition(" ")
        more = tuple(int(p) if p.isdigit() else p for p in where.lstrip("+").split("."))
        loc = loc + more if where.startswith("+") else more
        where = ".".join(str(p) for p in loc)
        line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
        return f"{path}:{line}: {where}: {msg}" if line else f"{path}: {where}: {msg}"
    if loc[-1:] == ("[key]",) and loc[:1] in (("meters",), ("fills",)):
        return f"{prefix}: {loc[0]}: {err.get('input')!r} is not a number of beats per bar (write 4 for 4/4, 3 for 3/4)"
    value = err.get("input")
    shown = f" (got {value!r})" if value is not None and not isinstance(value, (dict, list)) else ""
    return f"{prefix}: {'.'.join(str(p) for p in loc) or 'style'}: {msg}{shown}"


def validate_style_file(path: str | os.PathLike, *, source: str = "user") -> Style:
    """Load and validate one style file; any problem is a :class:`ParameterError` ``file:line: problem``."""
    path = Path(path)
    if path.is_dir():
        raise ParameterError(f"{path}: is a folder; pass a UTF-8 YAML style file")
    if not path.exists():
        raise ParameterError(f"{path}: no such style file")
    data, node = load_yaml_file(path, ParameterError, "style file")  # the same limits as recipes
    if not isinstance(data, dict):
        raise ParameterError(f"{path}:1: a style file must be a mapping (name, kind, meters, ...)")
    if "source" in data:
        raise ParameterError(f"{path}:{line_map(node, digit_keys=True).get(('source',), 1)}: unknown key 'source' at the top level")
    try:
        style = Style.model_validate({**data, "source": source})
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ParameterError(_format(path, line_map(node, digit_keys=True), errors[0]) + more) from None
    except ParameterError as exc:  # a kit or program the sound tables refuse
        raise ParameterError(f"{path}: {exc}") from None
    if style.name != path.stem:
        raise ParameterError(f"{path}: name {style.name!r} must match the file name {path.stem!r}")
    return style


def builtin_dir() -> Path:
    return Path(str(resources.files("covermill.instruments") / "styles"))


def styles_dir(user_dir: str | os.PathLike | None = None) -> Path | None:
    """The user's styles folder: ``user_dir``, else ``$COVERMILL_STYLES_DIR``, else the user data dir's
    ``covermill/styles`` (``None`` when that does not exist)."""
    if user_dir is not None:
        return Path(user_dir)
    env = os.environ.get("COVERMILL_STYLES_DIR")
    if env:
        return Path(env)
    import platformdirs

    path = Path(platformdirs.user_data_dir("covermill")) / "styles"
    return path if path.is_dir() else None


_BUILTIN: dict[tuple[str, str], Style] | None = None


def _folder(folder: Path, source: str) -> dict[tuple[str, str], Style]:
    """``{(kind, name): Style}`` of ``folder/*.yaml`` and ``folder/<kind>/*.yaml``."""
    found: dict[tuple[str, str], Style] = {}
    for path in sorted(folder.glob("*.yaml")) + sorted(p for k in KINDS for p in (folder / k).glob("*.yaml")):
        style = validate_style_file(path, source=source)
        if path.parent.name in KINDS and path.parent != folder and style.kind != path.parent.name:
            raise ParameterError(f"{path}: kind {style.kind!r} does not match its folder {path.parent.name!r}")
        found[(style.kind, style.name)] = style
    return found


def _all(user_dir: str | os.PathLike | None) -> dict[tuple[str, str], Style]:
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = _folder(builtin_dir(), "built-in")
    styles = dict(_BUILTIN)
    folder = styles_dir(user_dir)
    if folder is not None:
        if not folder.is_dir():
            raise ParameterError(f"{folder}: no such styles folder")
        styles.update(_folder(folder, str(folder)))
    return styles


def list_styles(kind: str | None = None, user_dir: str | os.PathLike | None = None) -> list[Style]:
    """Every style sorted by kind and name (built-ins overridden by the user folder's files of the same
    kind and name); ``kind`` (``drums``/``bass``/``comping``/``melody``) keeps one kind. ``none`` (no part) is not listed."""
    if kind is not None and kind not in KINDS:
        raise ParameterError(f"unknown part kind {kind!r}; choose one of {', '.join(KINDS)}")
    return [s for _, s in sorted(_all(user_dir).items()) if kind is None or s.kind == kind]


def get_style(name: str, *, kind: str | None = None, user_dir: str | os.PathLike | None = None) -> Style:
    """The style ``name`` (``"kind/name"`` or ``kind=`` where two kinds share a name, e.g. ``chiptune_arp``
    is a bass line and a comping style); a user folder's file wins over the built-in. An unknown name
    lists the choices."""
    if kind is not None and kind not in KINDS:
        raise ParameterError(f"unknown part kind {kind!r}; choose one of {', '.join(KINDS)}")
    if "/" in str(name):
        prefix, _, name = str(name).partition("/")
        if kind is not None and prefix != kind:
            raise ParameterError(f"style {prefix}/{name} is not a {kind} style")
        kind = prefix
    styles = _all(user_dir)
    matches = [s for (k, n), s in styles.items() if n == name and (kind is None or k == kind)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ParameterError(f"style {name!r} is a {' and a '.join(s.kind for s in matches)} style; "
                             f"say which: {', '.join(f'{s.kind}/{name}' for s in matches)}")
    names = sorted({n for (k, n) in styles if kind is None or k == kind})
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    what = f"{kind} style" if kind else "style"
    raise ParameterError(f"unknown {what} {name!r}; {hint}choose one of {', '.join(names)} or none")
