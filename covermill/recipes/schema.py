"""The recipe format: frozen pydantic models, unknown keys rejected, ranges checked.

A recipe says what happens to each stem (``keep``, ``mute`` or ``revoice`` as an
instrument, with gain, pan and an effect chain), the tempo and key of the cover, and the
master chain and loudness. ``covermill recipes schema`` prints the JSON Schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from ..constants import DEFAULT_LUFS, DEFAULT_TRUE_PEAK_DB
from ..errors import ParameterError

#: A part's track in the mix (and in ``cover_stems/``, ``midi/parts/``) is ``part_<name>``.
PART_PREFIX = "part_"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Effect(BaseModel):
    """One pedalboard plugin: ``{plugin: Reverb, room_size: 0.3, ...}``."""

    model_config = ConfigDict(extra="allow", frozen=True)
    plugin: str = Field(description="A pedalboard plugin name, e.g. Reverb, Compressor, PeakFilter")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _check_plugin(self, info: ValidationInfo) -> Effect:
        from ..effects import build_plugin  # validates name, params and values

        root = (info.context or {}).get("root") if info is not None else None
        build_plugin(self.plugin, self.params, root=root)
        return self


class Revoice(_Strict):
    """Re-voice a stem as an instrument (by name: built-in or trained) or, for polyphonic stems,
    through MIDI: transcribed notes played with a General MIDI program from a soundfont."""

    instrument: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                                   description="instrument name, see `covermill instruments list`")
    midi_program: int | str | None = Field(
        None, description="General MIDI program, a name (\"Acoustic Grand Piano\") or a number 0-127; the stem is "
                          "transcribed to notes and played with this program (see `covermill instruments list --midi`)")
    drum_kit: int | str | None = Field(
        None, description="re-voice a drum stem's kick/snare/hi-hat onsets to a General MIDI drum kit: "
                          "standard, room, power, electronic, tr808, jazz, brush, orchestra, or a number 0-127")
    soundfont: str | None = Field(
        None, description="a .sf2/.sf3 file for midi_program / drum_kit (default: the system's General MIDI soundfont): "
                          "a path inside the recipe's folder, or a bare file name found in the user's covermill "
                          "soundfonts folder or the system soundfont folders; absolute paths, '~' and '..' are refused")
    quantize: float | None = Field(None, ge=0.0, le=1.0, description="MIDI feel: pull note starts to the 16th grid (0 off, 1 hard)")
    swing: float | None = Field(None, ge=0.5, le=0.75, description="MIDI feel: where the off-beat 8th falls (0.5 straight, 0.67 swung)")
    velocity_scale: float | None = Field(None, ge=0.1, le=2.0, description="MIDI feel: multiply note velocities")
    octave_shift: int | None = Field(None, ge=-3, le=3, description="MIDI feel: move every note by whole octaves")
    mode: Literal["expressive", "notes", "chords"] | None = Field(
        None, description="what the instrument plays: expressive = the stem's continuous pitch (f0) as sung/played; "
                          "notes = the song's melody as clean notes (lead sheet), with the stem's expression on top; "
                          "chords = the song's chords (lead sheet) voiced in the instrument's range. Default: "
                          "expressive for `instrument`, the stem's transcribed notes for `midi_program`")

    @field_validator("soundfont")
    @classmethod
    def _soundfont_inside(cls, soundfont: str | None, info: ValidationInfo) -> str | None:
        if soundfont is not None:
            from ..fsutil import recipe_path, soundfont_dirs

            root = (info.context or {}).get("root")
            try:
                recipe_path(root, soundfont, what="soundfont", search=soundfont_dirs())
            except ParameterError as exc:
                raise ValueError(str(exc)) from None
        return soundfont

    def soundfont_path(self, root) -> Path | None:
        """The absolute path of :attr:`soundfont` for a recipe in folder ``root``."""
        from ..fsutil import recipe_path, soundfont_dirs

        if self.soundfont is None:
            return None
        return recipe_path(root, self.soundfont, what="soundfont", search=soundfont_dirs())

    @field_validator("midi_program")
    @classmethod
    def _known_program(cls, program: int | str | None) -> int | str | None:
        if program is not None:
            from ..gm import program_number

            try:
                program_number(program)
            except ValueError as exc:
                raise ValueError(str(exc)) from None
        return program

    @field_validator("drum_kit")
    @classmethod
    def _known_kit(cls, kit: int | str | None) -> int | str | None:
        if kit is not None:
            from ..gm import kit_number

            try:
                kit_number(kit)
            except ValueError as exc:
                raise ValueError(str(exc)) from None
        return kit

    @model_validator(mode="after")
    def _one_voice(self) -> Revoice:
        given = [k for k in ("instrument", "midi_program", "drum_kit") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `instrument: NAME`, `midi_program: NAME_OR_NUMBER` or "
                             "`drum_kit: KIT`" + (f" (got {', '.join(given)})" if given else ""))
        if self.instrument is not None:
            midi_only = [k for k in ("soundfont", "quantize", "swing", "velocity_scale", "octave_shift")
                         if getattr(self, k) is not None]
            if midi_only:
                raise ValueError(f"{', '.join(midi_only)} only apply to `midi_program` / `drum_kit` re-voicing")
        if self.drum_kit is not None and self.octave_shift is not None:
            raise ValueError("octave_shift does not apply to `drum_kit` re-voicing")
        return self


class Stem(_Strict):
    """What to do with one stem."""

    action: Literal["keep", "mute", "revoice"] = "keep"
    revoice: Revoice | None = None
    gain_db: float = Field(0.0, ge=-60.0, le=24.0, description="gain in dB")
    pan: float = Field(0.0, ge=-1.0, le=1.0, description="-1 hard left .. 0 centre .. 1 hard right (constant power)")
    effects: tuple[Effect, ...] = ()
    solo: bool = Field(False, description="if any stem is soloed, only soloed stems are heard")
    sends: dict[str, float] = Field(default_factory=dict,
                                    description="bus name -> send level in dB (post-fader), e.g. {band_reverb: -12}")

    @field_validator("sends")
    @classmethod
    def _send_levels(cls, sends: dict[str, float]) -> dict[str, float]:
        for bus, level in sends.items():
            if not -60.0 <= level <= 12.0:
                raise ValueError(f"send level to {bus!r} is {level} dB; use -60..12 dB")
        return sends

    @model_validator(mode="before")
    @classmethod
    def _revoice_implies_action(cls, data: Any) -> Any:
        if isinstance(data, dict) and "revoice" in data and "action" not in data:
            data = {**data, "action": "revoice"}
        return data

    @model_validator(mode="after")
    def _revoice_needs_instrument(self) -> Stem:
        if self.action == "revoice" and self.revoice is None:
            raise ValueError("action 'revoice' needs `revoice: {instrument: NAME}` or `revoice: {midi_program: NAME}`")
        return self


class Part(_Strict):
    """A part written for the cover from the song's lead sheet (bars, chords, melody) in a genre style:
    a drum groove, a bass line, comping or a doubling of the melody (see `covermill styles list`),
    played by FluidSynth with a General MIDI program or kit, mixed like a stem."""

    style: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                       description="a style name from `covermill styles list` (built-in or in your styles folder)")
    kind: Literal["drums", "bass", "comping", "melody"] | None = Field(
        None, description="drums | bass | comping | melody (the lead sheet's melody, doubled) (default: the part's "
                          "name when it is one of these)")
    program: int | str | None = Field(None, description="General MIDI program (name or 0-127) for "
                                                        "bass/comping/melody; default: the style's")
    kit: int | str | None = Field(None, description="General MIDI drum kit for drums; default: the style's")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="humanisation seed (timing and velocity)")
    gain_db: float = Field(0.0, ge=-60.0, le=24.0, description="gain in dB")
    pan: float = Field(0.0, ge=-1.0, le=1.0, description="-1 hard left .. 0 centre .. 1 hard right (constant power)")
    effects: tuple[Effect, ...] = ()
    sends: dict[str, float] = Field(default_factory=dict, description="bus name -> send level in dB (post-fader)")
    solo: bool = False

    @field_validator("program")
    @classmethod
    def _known_program(cls, program: int | str | None) -> int | str | None:
        return Revoice._known_program(program)

    @field_validator("kit")
    @classmethod
    def _known_kit(cls, kit: int | str | None) -> int | str | None:
        return Revoice._known_kit(kit)

    @field_validator("sends")
    @classmethod
    def _send_levels(cls, sends: dict[str, float]) -> dict[str, float]:
        return Stem._send_levels(sends)

    @property
    def action(self) -> str:
        return "part"


class Tempo(_Strict):
    """Tempo of the cover: at most one of ``target_bpm``, ``bpm_delta``, ``ratio``, ``genre_range``."""

    target_bpm: float | None = Field(None, ge=30.0, le=300.0)
    bpm_delta: float | None = Field(None, ge=-120.0, le=120.0)
    ratio: float | None = Field(None, ge=0.5, le=2.0, description="cover tempo / source tempo")
    genre_range: bool | None = Field(
        None, description="move the tempo into the target genre's typical range (see docs/genres.md)")
    quality: Literal["high", "draft"] = Field(
        "high", description="Rubber Band engine for the kept stems: high = R3 (finer), draft = R2 (about 4x faster, "
                            "for quick listening while a recipe is tuned)")

    @model_validator(mode="after")
    def _one_of(self) -> Tempo:
        given = [k for k in ("target_bpm", "bpm_delta", "ratio", "genre_range") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give only one of target_bpm, bpm_delta, ratio, genre_range (got {', '.join(given)})")
        return self


class Key(_Strict):
    semitones: float = Field(0.0, ge=-12.0, le=12.0, description="transpose the cover by this many semitones")


class Master(_Strict):
    effects: tuple[Effect, ...] = ()
    lufs: float = Field(DEFAULT_LUFS, ge=-40.0, le=-5.0, description="integrated loudness target (BS.1770)")
    true_peak_db: float = Field(DEFAULT_TRUE_PEAK_DB, ge=-12.0, le=0.0, description="true-peak ceiling (dBTP)")


class Bus(_Strict):
    """A shared effect bus (e.g. one reverb for the band) fed by stems' ``sends``."""

    effects: tuple[Effect, ...] = ()
    gain_db: float = Field(0.0, ge=-60.0, le=24.0)
    pan: float = Field(0.0, ge=-1.0, le=1.0)


class Recipe(_Strict):
    """A genre recipe. Stems not listed are kept unchanged."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    source_genre: str = ""
    target_genre: str = ""
    extends: str | None = Field(None, description="a built-in recipe name or a file beside this one")
    stems: dict[str, Stem] = Field(default_factory=dict)
    parts: dict[str, Part] = Field(default_factory=dict, description="parts written for the cover from the lead "
                                   "sheet: {drums: {style: reggae_one_drop}, bass: {style: reggae}, ...}")
    soundfont: str | None = Field(
        None, description="default .sf2/.sf3 soundfont for this recipe's MIDI-played stems and parts (same path rules "
                          "as revoice.soundfont)")
    buses: dict[str, Bus] = Field(default_factory=dict)
    tempo: Tempo = Tempo()
    key: Key = Key()
    master: Master = Master()
    _root: Path | None = PrivateAttr(None)

    @property
    def root(self) -> Path | None:
        """The folder this recipe's paths resolve in (set by ``load_recipe``; ``None`` for a
        recipe built in code)."""
        return self._root

    def __eq__(self, other: object) -> bool:  # the same settings, wherever the file was
        return type(other) is type(self) and self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(self.model_dump_json())

    @field_validator("soundfont")
    @classmethod
    def _soundfont_inside(cls, soundfont: str | None, info: ValidationInfo) -> str | None:
        return Revoice._soundfont_inside(soundfont, info)

    def soundfont_path(self, root) -> Path | None:
        """The absolute path of the recipe-wide :attr:`soundfont` for a recipe in folder ``root``."""
        return Revoice.soundfont_path(self, root)

    @field_validator("parts")
    @classmethod
    def _part_names(cls, parts: dict[str, Part]) -> dict[str, Part]:
        for name, part in parts.items():
            if not name.replace("_", "").isalnum():
                raise ValueError(f"part name {name!r} must be letters, digits or _")
            if part.kind is None and name not in ("drums", "bass", "comping", "melody"):
                raise ValueError(f"part {name!r}: give `kind: drums | bass | comping | melody` (or name the part so)")
        return parts

    @field_validator("stems")
    @classmethod
    def _stem_names(cls, stems: dict[str, Stem]) -> dict[str, Stem]:
        for name in stems:
            if not name.replace("_", "").isalnum():
                raise ValueError(f"stem name {name!r} must be letters, digits or _")
        return stems

    @model_validator(mode="after")
    def _sends_and_genres(self) -> Recipe:
        for name, stem in [*self.stems.items(), *self.parts.items()]:
            for bus in stem.sends:
                if bus not in self.buses:
                    known = ", ".join(self.buses) or "none defined"
                    raise ValueError(f"stems.{name}.sends names bus {bus!r}, which is not under `buses:` ({known})")
        if self.tempo.genre_range:
            from .genres import GENRE_TEMPO_BPM

            if self.target_genre not in GENRE_TEMPO_BPM:
                raise ValueError(f"tempo.genre_range needs a target_genre from: {', '.join(GENRE_TEMPO_BPM)} "
                                 f"(got {self.target_genre!r})")
        return self

    def stem(self, name: str) -> Stem | Part:
        """Mix settings of stem ``name`` (defaults when the recipe does not mention it), or of
        part ``NAME`` when ``name`` is ``part_NAME`` (see :func:`part_track`)."""
        if name.startswith(PART_PREFIX) and name[len(PART_PREFIX):] in self.parts:
            return self.parts[name[len(PART_PREFIX):]]
        return self.stems.get(name, Stem())

    def part_kind(self, name: str) -> str:
        part = self.parts[name]
        return part.kind or name

    def to_dict(self) -> dict[str, Any]:
        """Plain data (effects flattened back to ``{plugin: ..., param: ...}``), for YAML output."""
        return self.model_dump(mode="json", exclude_none=True)
