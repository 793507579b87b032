"""FluidSynth: the General MIDI soundfonts covermill plays MIDI with, and rendering a
``pretty_midi.PrettyMIDI`` to audio with the ``fluidsynth`` command line (absolute paths after
``--``, so no file name is read as an option; only the samples played are loaded)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..audio import disk_full, resample
from ..errors import BackendUnavailableError, OutputError, ParameterError

#: The General MIDI soundfonts tried in turn when none is given: MuseScore General (Debian
#: ``musescore-general-soundfont``, an HQ .sf3 FluidSynth 2 reads), then FluidR3 GM
#: (``fluid-soundfont-gm``). See docs/styles.md for why.
SOUNDFONTS = (Path("/usr/share/sounds/sf3/MuseScore_General.sf3"), Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"))
FLUIDR3 = SOUNDFONTS[1]


def default_soundfont() -> Path:
    """The first installed of :data:`SOUNDFONTS` (the last one when none is, for the error message)."""
    return next((p for p in SOUNDFONTS if p.is_file()), SOUNDFONTS[-1])


DEFAULT_SOUNDFONT = FLUIDR3  # kept for callers that name FluidR3 itself


def fluidsynth_program() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise BackendUnavailableError("MIDI re-voicing needs the fluidsynth program: apt-get install fluidsynth")
    return exe


def check_soundfont(soundfont: str | os.PathLike | None) -> Path:
    """The soundfont path, checked to exist and to be a RIFF sfbk file."""
    path = Path(soundfont) if soundfont is not None else default_soundfont()
    if not path.is_file():
        hint = ("install Debian's musescore-general-soundfont or fluid-soundfont-gm, or pass --soundfont FILE.sf2" if soundfont is None
                else "check the path (--soundfont or the recipe's revoice.soundfont)")
        raise BackendUnavailableError(f"soundfont {path} not found; {hint}")
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise ParameterError(f"{path}: is not a SoundFont 2 file (.sf2, or .sf3 with compressed samples)")
    return path


def _scratch_error(exc: BaseException, tmp: Path, doing: str) -> Exception:
    """One line for a failure in FluidSynth's scratch folder: a full disk says where to free space."""
    if disk_full(exc, tmp):
        return OutputError(f"disk full in {tmp.parent} while {doing}; free some space there or point TMPDIR at "
                           "a disk with room")
    return BackendUnavailableError(f"fluidsynth: {doing} in {tmp} failed ({exc}); check that FluidSynth 2 works "
                                   "(`fluidsynth --version`) and the disk is healthy")


def render_midi(midi, *, sr: int, soundfont: str | os.PathLike | None = None, gain: float = 0.6) -> np.ndarray:
    """Render a ``pretty_midi.PrettyMIDI`` with FluidSynth: float32 ``(2, n)`` at ``sr``.

    ``n`` covers the notes plus FluidSynth's release tails.
    """
    import soundfile as sf

    path = check_soundfont(soundfont)
    exe = fluidsynth_program()
    with tempfile.TemporaryDirectory(prefix="covermill-midi-") as tmp:
        mid, wav = Path(tmp) / "notes.mid", Path(tmp) / "notes.wav"
        try:
            midi.write(str(mid))
        except OSError as exc:
            raise _scratch_error(exc, Path(tmp), "writing the notes for FluidSynth") from None
        cmd = [exe, "-ni", "-q", "-g", f"{gain:g}", "-r", str(sr), "-O", "float", "-T", "wav", "-F", str(wav),
               "-o", "synth.reverb.active=0", "-o", "synth.chorus.active=0", "-o", "synth.cpu-cores=2",
               "-o", "synth.dynamic-sample-loading=1",  # only the samples played are read (an .sf3 decodes them)
               "--", str(path.absolute()), str(mid.absolute())]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if (proc.returncode != 0 or not wav.is_file()) and disk_full(OSError(), Path(tmp)):
            raise _scratch_error(OSError(28, "No space left on device"), Path(tmp), "FluidSynth wrote its audio")
        if proc.returncode != 0 or not wav.is_file():
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise BackendUnavailableError(f"fluidsynth failed ({detail[-1] if detail else proc.returncode}) "
                                          f"rendering with {path}")
        try:
            audio, file_sr = sf.read(str(wav), dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:  # soundfile's errors are RuntimeErrors: a damaged file
            raise _scratch_error(exc, Path(tmp), "reading FluidSynth's audio") from None
        wanted_s = float(midi.get_end_time())
        if len(audio) < (wanted_s - 0.1) * file_sr:  # FluidSynth exits 0 after a failed write: a short file
            short = OSError(f"FluidSynth wrote {len(audio) / file_sr:.2f} s of a {wanted_s:.2f}-s part")
            if disk_full(short, Path(tmp)):
                short = OSError(28, "No space left on device")
            raise _scratch_error(short, Path(tmp), "FluidSynth wrote its audio")
    audio = np.ascontiguousarray(audio.T)
    return resample(audio, sr_in=file_sr, sr_out=sr) if file_sr != sr else audio


def render_mono(midi, *, sr: int, n_samples: int, soundfont: str | os.PathLike | None = None) -> np.ndarray:
    """:func:`render_midi` summed to mono and cut or padded to ``n_samples``: float32 ``(n_samples,)``."""
    audio = render_midi(midi, sr=sr, soundfont=soundfont).mean(axis=0)
    out = np.zeros(n_samples, np.float32)
    out[: min(n_samples, len(audio))] = audio[:n_samples]
    return out

