"""Parametric instruments as data: the :class:`Timbre` dataclass and its YAML file format.

Every built-in instrument is a YAML file in ``covermill/instruments/builtin/`` that a
producer can copy, edit and load (``instruments.get(name, instruments_dir=FOLDER)`` or
``covermill instruments validate FILE``). A file is validated like a recipe: unknown keys
are rejected and every error names ``file:line``. The format::

    name: cello
    description: warm bowed cello
    range_hz: [65, 700]               # the melody moves by octaves into this range
    harmonics:
      count: 40                       # harmonics above Nyquist are always dropped
      tilt_db_per_harmonic: 1.4       # spectral slope at medium loudness
      brightness_db: 0.6              # slope flattens by this much from quiet to loud
      pitch_tilt_db_per_octave: 0.3   # slope steepens per octave above range_hz[0]
      even_gain_db: 0                 # even harmonics relative to odd (clarinet: -18)
    noise: {share: 0.04, band_hz: [1500, 7000]}   # bow/breath noise, relative amplitude
    envelope: {attack_ms: 70, release_ms: 150}
    vibrato: {rate_hz: 5.5, depth_cents: 18}
    body:                             # optional resonances: peak filters on the output
      - {freq_hz: 220, gain_db: 5, q: 2}
    expect:                           # optional listening-free check (see docs/instruments.md)
      centroid_hz: [300, 900]
      fundamental_share: [0.2, 0.6]
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ParameterError
from ..yamlsafe import line_map, load_yaml_file

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


@dataclass(frozen=True)
class Timbre:
    """Parameters of a parametric instrument (units in the names)."""

    name: str
    description: str
    range_hz: tuple[float, float]
    n_harmonics: int = 40
    tilt_db_per_harmonic: float = 1.5  # spectral slope at medium loudness
    brightness_db: float = 0.8  # how much the slope flattens from quiet to loud
    even_gain_db: float = 0.0  # even harmonics relative to odd (clarinet: strongly negative)
    noise_share: float = 0.02  # breath/bow noise amplitude relative to the harmonics
    noise_band_hz: tuple[float, float] = (1000.0, 6000.0)
    attack_ms: float = 20.0
    release_ms: float = 80.0
    vibrato_hz: float = 0.0
    vibrato_cents: float = 0.0
    pitch_tilt_db_per_octave: float = 0.0  # slope steepens by this per octave above range_hz[0]
    body: tuple[tuple[float, float, float], ...] = ()  # (freq_hz, gain_db, q) peak filters
    expect_centroid_hz: tuple[float, float] | None = None
    expect_fundamental_share: tuple[float, float] | None = None


# ---------------------------------------------------------------- the file format


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ordered(pair: tuple[float, float], what: str) -> None:
    if not pair[0] < pair[1]:
        raise ValueError(f"{what} must be [low, high] with low < high")


class Harmonics(_Strict):
    count: int = Field(40, ge=1, le=100)
    tilt_db_per_harmonic: float = Field(1.5, ge=0.0, le=12.0)
    brightness_db: float = Field(0.8, ge=0.0, le=6.0)
    pitch_tilt_db_per_octave: float = Field(0.0, ge=-3.0, le=3.0)
    even_gain_db: float = Field(0.0, ge=-40.0, le=12.0)


class Noise(_Strict):
    share: float = Field(0.02, ge=0.0, le=1.0)
    band_hz: tuple[float, float] = (1000.0, 6000.0)

    @field_validator("band_hz")
    @classmethod
    def _band(cls, band: tuple[float, float]) -> tuple[float, float]:
        _ordered(band, "band_hz")
        if band[0] < 20.0:
            raise ValueError("band_hz must start at 20 Hz or above")
        return band


class Envelope(_Strict):
    attack_ms: float = Field(20.0, ge=0.5, le=2000.0)
    release_ms: float = Field(80.0, ge=1.0, le=5000.0)


class Vibrato(_Strict):
    rate_hz: float = Field(0.0, ge=0.0, le=12.0)
    depth_cents: float = Field(0.0, ge=0.0, le=100.0)


class Resonance(_Strict):
    freq_hz: float = Field(ge=20.0, le=16000.0)
    gain_db: float = Field(ge=-24.0, le=24.0)
    q: float = Field(1.0, ge=0.1, le=30.0)


class Expect(_Strict):
    centroid_hz: tuple[float, float] | None = None
    fundamental_share: tuple[float, float] | None = None

    @field_validator("centroid_hz", "fundamental_share")
    @classmethod
    def _pairs(cls, pair: tuple[float, float] | None) -> tuple[float, float] | None:
        if pair is not None:
            _ordered(pair, "the range")
        return pair


class InstrumentFile(_Strict):
    """One parametric instrument file."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    range_hz: tuple[float, float]
    harmonics: Harmonics = Harmonics()
    noise: Noise = Noise()
    envelope: Envelope = Envelope()
    vibrato: Vibrato = Vibrato()
    body: tuple[Resonance, ...] = Field((), max_length=8)
    expect: Expect = Expect()

    @field_validator("range_hz")
    @classmethod
    def _range(cls, range_hz: tuple[float, float]) -> tuple[float, float]:
        _ordered(range_hz, "range_hz")
        if range_hz[0] < 20.0 or range_hz[1] > 8000.0:
            raise ValueError("range_hz must lie within [20, 8000] Hz")
        return range_hz

    def to_timbre(self) -> Timbre:
        h, e = self.harmonics, self.expect
        return Timbre(
            name=self.name, description=self.description, range_hz=self.range_hz, n_harmonics=h.count,
            tilt_db_per_harmonic=h.tilt_db_per_harmonic, brightness_db=h.brightness_db,
            even_gain_db=h.even_gain_db, noise_share=self.noise.share, noise_band_hz=self.noise.band_hz,
            attack_ms=self.envelope.attack_ms, release_ms=self.envelope.release_ms,
            vibrato_hz=self.vibrato.rate_hz, vibrato_cents=self.vibrato.depth_cents,
            pitch_tilt_db_per_octave=h.pitch_tilt_db_per_octave,
            body=tuple((r.freq_hz, r.gain_db, r.q) for r in self.body),
            expect_centroid_hz=e.centroid_hz, expect_fundamental_share=e.fundamental_share,
        )


_SECTIONS = {"harmonics": Harmonics, "noise": Noise, "envelope": Envelope, "vibrato": Vibrato, "expect": Expect,
             "body": Resonance}


def _format(path: Path, lines: dict[tuple, int], err: dict) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p.startswith("function-") or p[:1].isupper())))
    line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
    prefix = f"{path}:{line}" if line else str(path)
    if err["type"] == "extra_forbidden":
        parent = [p for p in loc[:-1] if isinstance(p, str)]
        model = _SECTIONS.get(parent[-1], InstrumentFile) if parent else InstrumentFile
        valid = list(model.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        where = ".".join(str(p) for p in loc[:-1]) or "the top level"
        return f"{prefix}: unknown key {loc[-1]!r} in {where} ({hint})"
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    shown = f" (got {value!r})" if value is not None and not isinstance(value, (dict, list)) else ""
    return f"{prefix}: {'.'.join(str(p) for p in loc) or 'instrument'}: {msg}{shown}"


def load_timbre(path: str | Path) -> Timbre:
    """Load and validate one instrument YAML file; errors are one line, ``file:line: problem``."""
    path = Path(path)
    data, node = load_yaml_file(path, ParameterError, "instrument file")
    if not isinstance(data, dict):
        raise ParameterError(f"{path}:1: an instrument file must be a mapping (name, range_hz, harmonics, ...)")
    try:
        spec = InstrumentFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ParameterError(_format(path, line_map(node), errors[0]) + more) from None
    if spec.name != path.stem:
        raise ParameterError(f"{path}: name {spec.name!r} must match the file name {path.stem!r}")
    return spec.to_timbre()


def builtin_dir() -> Path:
    return Path(str(resources.files("covermill.instruments") / "builtin"))


def load_folder(folder: str | Path, *, strict: bool = True, need: str | None = None) -> dict[str, Timbre]:
    """Every ``*.yaml`` instrument in ``folder``, by name.

    With ``strict=False`` a file that does not load is skipped with a warning (one bad file
    must not break every render that uses the folder), unless it is ``need``, the
    instrument asked for: then its error is raised.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ParameterError(f"{folder}: no such instruments folder")
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            found[path.stem] = load_timbre(path)
        except ParameterError as exc:
            if strict or path.stem == need:
                raise
            log.warning("skipping instrument %s: %s", path.name, exc)
    return found


def load_builtin_timbres() -> dict[str, Timbre]:
    return load_folder(builtin_dir())
