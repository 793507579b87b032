"""Ground-truth songs: scores written here (chords, melody, bass, drums), rendered with FluidSynth.

Every :class:`Song` is a small score built from a chord progression given in scale degrees,
so the same song shape exists in any key. :func:`score_midi` writes it as a
``pretty_midi.PrettyMIDI`` (lead on a vocal-like GM voice, electric piano harmony, finger
bass, GM drums), :func:`score_sheet` exposes it as a :class:`covermill.leadsheet.LeadSheet`
(the ground truth), :func:`render` renders the mix (and the lead and bass alone, the
"perfect separation" stems) with ``fluidsynth -ni -F out.wav -r 44100 -- SOUNDFONT MIDI``.

The set (:data:`SONGS`): six regular songs in 3 major and 3 minor keys, 4/4 and 3/4, six
tempi (76-138 BPM), on which the lead sheet's settings were tuned; :data:`HELDOUT`: four
songs written afterwards and never tuned on (other harmony instruments, broken chords, dim
and min7 progressions); and, reported apart, one in free time (rubato, no drums), one with a
key change and one of 3 s.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covermill.leadsheet import CHORD_INTERVALS, MODE_SCALES, PITCH_NAMES, Chord, Key, LeadSheet, Note, Section

SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf3/MuseScore_General.sf3"))
SR = 44100
CACHE = Path(__file__).resolve().parents[1] / "out" / "groundtruth"

# progressions: one (degree semitones, quality, beats) per chord; None beats = one bar
POP = [(0, "maj", None), (9, "min", None), (5, "maj", None), (7, "7", None)]
POP_CHORUS = [(5, "maj", None), (7, "maj", None), (4, "min", None), (9, "min7", None)]
MINOR = [(0, "min", None), (8, "maj", None), (3, "maj", None), (10, "maj", None)]
MINOR_CHORUS = [(5, "min7", None), (7, "7", None), (0, "min", None), (7, "sus4", 2), (7, "7", 2)]
WALTZ = [(0, "maj", None), (5, "maj", None), (7, "7", None), (0, "maj", None)]
WALTZ_MINOR = [(0, "min", None), (5, "min", None), (7, "7", None), (0, "min", None)]
JAZZ = [(2, "min7", None), (7, "7", None), (0, "maj", None), (9, "7", None)]
MINOR_DIM = [(0, "min", None), (2, "dim", None), (7, "7", None), (0, "min", None)]
FOLK = [(0, "maj", None), (7, "maj", None), (9, "min", None), (5, "maj", 2), (7, "sus4", 2)]


@dataclass(frozen=True)
class Song:
    name: str
    tonic: int
    mode: str
    bpm: float
    beats_per_bar: int
    verse: tuple
    chorus: tuple
    lead_program: int = 53  # Voice Oohs
    repeats: int = 2  # verse x repeats, chorus x repeats
    drums: bool = True
    rubato: float = 0.0  # free time: beat lengths vary by up to this fraction
    modulate: int = 0  # semitones the second half moves by (key change)
    seconds: float | None = None  # cut the score here (the short song)
    seed: int = 0
    harmony_program: int = 4  # Electric Piano 1
    arpeggio: bool = False  # harmony as broken chords (eighths) instead of block chords


SONGS = (
    Song("pop_C_major_100", 0, "major", 100, 4, POP, POP_CHORUS, 53, seed=1),
    Song("ballad_A_minor_76", 9, "minor", 76, 4, MINOR, MINOR_CHORUS, 53, seed=2),
    Song("rock_Eb_major_128", 3, "major", 128, 4, POP_CHORUS, POP, 53, seed=3),
    Song("waltz_F_major_138", 5, "major", 138, 3, WALTZ, POP, 53, seed=4),
    Song("waltz_D_minor_96", 2, "minor", 96, 3, WALTZ_MINOR, MINOR, 53, seed=5),
    Song("pop_B_minor_112", 11, "minor", 112, 4, MINOR_CHORUS, MINOR, 53, seed=6),
)
#: Written after the algorithm was tuned on :data:`SONGS`, never tuned on: other harmony instruments
#: (piano, nylon guitar, strings), broken chords, dim/min7 progressions, other keys and tempi.
HELDOUT = (
    Song("jazz_G_major_105_piano", 7, "major", 105, 4, JAZZ, POP, 53, seed=11, harmony_program=0),
    Song("folk_Bb_major_90_guitar", 10, "major", 90, 4, FOLK, POP_CHORUS, 53, seed=12, harmony_program=24,
         arpeggio=True),
    Song("minor_F#_minor_150_strings", 6, "minor", 150, 4, MINOR_DIM, MINOR, 54, seed=13, harmony_program=48),
    Song("waltz_E_minor_120_piano", 4, "minor", 120, 3, MINOR_DIM, WALTZ_MINOR, 53, seed=14, harmony_program=0,
         arpeggio=True),
)
SPECIAL = (
    Song("free_time_G_major", 7, "major", 72, 4, POP, POP_CHORUS, 52, repeats=1, drums=False, rubato=0.35, seed=7),
    Song("key_change_C_to_D", 0, "major", 112, 4, POP, POP_CHORUS, 53, modulate=2, seed=8),
    Song("short_3s_E_minor", 4, "minor", 120, 4, MINOR, MINOR, 53, repeats=1, seconds=3.0, seed=9),
)


def _beat_times(song: Song, n_beats: int) -> np.ndarray:
    period = 60.0 / song.bpm
    lengths = np.full(n_beats, period)
    if song.rubato:
        rng = np.random.default_rng(song.seed)
        lengths = period * (1 + song.rubato * np.cumsum(rng.uniform(-0.5, 0.5, n_beats)) / np.sqrt(n_beats))
        lengths *= 1 + song.rubato * rng.uniform(-1, 1, n_beats)
        lengths = np.clip(lengths, 0.45 * period, 1.8 * period)
    return 0.5 + np.concatenate([[0.0], np.cumsum(lengths)])  # half a second of lead-in


def _plan(song: Song) -> list[tuple[int, int, int, str]]:
    """``(first_beat, n_beats, root_pc, quality)`` of every chord."""
    bpb = song.beats_per_bar
    parts = [song.verse] * song.repeats + [song.chorus] * song.repeats
    plan, beat = [], 0
    half = len(parts) // 2
    for i, part in enumerate(parts):
        shift = song.modulate if i >= half and song.modulate else 0
        for degree, quality, beats in part:
            n = beats or bpb
            plan.append((beat, n, (song.tonic + shift + degree) % 12, quality))
            beat += n
    return plan


def _melody(song: Song, plan, beats: np.ndarray) -> list[Note]:
    rng = np.random.default_rng(song.seed)
    bpb = song.beats_per_bar
    notes: list[Note] = []
    prev = 60 + (song.tonic % 12) + (0 if song.tonic % 12 < 8 else -12)
    for first, n, root, quality in plan:
        tones = [(root + i) % 12 for i in CHORD_INTERVALS[quality]]
        shift = 0 if first < plan[len(plan) // 2][0] or not song.modulate else song.modulate
        scale = [(song.tonic + shift + i) % 12 for i in MODE_SCALES[song.mode]]
        b = first
        while b < first + n:
            strong = (b % bpb) in (0, 2) if bpb == 4 else (b % bpb) == 0
            length = 2 if (strong and rng.random() < 0.35 and b + 2 <= first + n) else 1
            pool = tones if strong else scale
            cands = [p for p in range(55, 80) if p % 12 in pool and abs(p - prev) <= 5]
            pitch = int(rng.choice(cands)) if cands else prev
            if rng.random() < 0.12 and not strong:  # a rest
                b += 1
                continue
            if length == 1 and not strong and rng.random() < 0.4:  # two eighths
                mid = 0.5 * (beats[b] + beats[b + 1])
                second = [p for p in range(55, 80) if p % 12 in scale and 0 < abs(p - pitch) <= 2]
                notes.append(Note(float(beats[b]), float(mid) - 0.02, pitch, 96))
                pitch2 = int(rng.choice(second)) if second else pitch
                notes.append(Note(float(mid), float(beats[b + 1]) - 0.03, pitch2, 92))
                prev = pitch2
            else:
                notes.append(Note(float(beats[b]), float(beats[b + length]) - 0.03, pitch, 100))
                prev = pitch
            b += length
    return notes


def _bass(song: Song, plan, beats: np.ndarray) -> list[Note]:
    notes = []
    for first, n, root, quality in plan:
        low = 36 + root % 12 if root % 12 >= 4 else 48 + root % 12  # E2 .. Eb3
        fifth = low + (7 if quality != "dim" else 6)
        fifth = fifth - 12 if fifth > 55 else fifth
        if n >= 4:
            notes.append(Note(float(beats[first]), float(beats[first + 2]) - 0.04, low, 100))
            notes.append(Note(float(beats[first + 2]), float(beats[first + n]) - 0.04, fifth, 90))
        else:
            notes.append(Note(float(beats[first]), float(beats[first + n]) - 0.04, low, 100))
    return notes


def score_sheet(song: Song) -> LeadSheet:
    """The song's score as a :class:`LeadSheet` (ground truth for :mod:`scoring`)."""
    plan = _plan(song)
    n_beats = plan[-1][0] + plan[-1][1]
    beats = _beat_times(song, n_beats)
    end = float(beats[n_beats]) + 1.0
    chords = [Chord(0.0, float(beats[0]), None)]
    chords += [Chord(float(beats[f]), float(beats[f + n]), r, q) for f, n, r, q in plan]
    chords.append(Chord(float(beats[n_beats]), end, None))
    melody, bass = _melody(song, plan, beats), _bass(song, plan, beats)
    part_beats = [sum(b or song.beats_per_bar for _, _, b in part) for part in (song.verse, song.chorus)]
    sections, at = [], 0
    for label, nb in [("A", part_beats[0])] * song.repeats + [("B", part_beats[1])] * song.repeats:
        if sections and sections[-1].label == label:
            sections[-1] = Section(sections[-1].start_s, float(beats[at + nb]), label)
        else:
            sections.append(Section(0.0 if at == 0 else float(beats[at]), float(beats[at + nb]), label))
        at += nb
    sections[-1] = Section(sections[-1].start_s, end, sections[-1].label)
    sheet = LeadSheet(
        duration_s=end, bpm=float(song.bpm) if not song.rubato else float("nan"),
        beats_s=tuple(float(b) for b in beats[:n_beats]),
        downbeats_s=tuple(float(b) for b in beats[:n_beats:song.beats_per_bar]),
        beats_per_bar=song.beats_per_bar, key=Key(song.tonic, song.mode), chords=tuple(chords),
        melody=tuple(melody), bass=tuple(bass), sections=tuple(sections), methods={"score": song.name})
    if song.seconds is not None:
        sheet = cut(sheet, song.seconds)
    return sheet


def cut(sheet: LeadSheet, seconds: float) -> LeadSheet:
    """The first ``seconds`` of a sheet."""
    from dataclasses import replace

    def keep(items):
        return tuple(replace(x, end_s=min(x.end_s, seconds)) for x in items if x.start_s < seconds)

    return replace(sheet, duration_s=seconds, sections=keep(sheet.sections), beats_s=tuple(b for b in sheet.beats_s if b < seconds),
                   downbeats_s=tuple(b for b in sheet.downbeats_s if b < seconds), chords=keep(sheet.chords),
                   melody=keep(sheet.melody), bass=keep(sheet.bass))


def score_midi(song: Song, parts: tuple[str, ...] = ("lead", "harmony", "bass", "drums")):
    """The song as a ``pretty_midi.PrettyMIDI`` holding ``parts``."""
    import pretty_midi

    sheet = score_sheet(song)
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(song.bpm))
    if "lead" in parts:
        lead = pretty_midi.Instrument(program=song.lead_program, name="lead")
        lead.notes += [pretty_midi.Note(n.velocity, n.pitch, n.start_s, n.end_s) for n in sheet.melody]
        pm.instruments.append(lead)
    if "harmony" in parts:
        keys = pretty_midi.Instrument(program=song.harmony_program, name="harmony")
        beats = np.asarray(sheet.beats_s + (sheet.chords[-1].start_s,))
        for c in sheet.chords:
            if c.root is None:
                continue
            hits = [b for b in beats if c.start_s - 1e-6 <= b < c.end_s - 1e-6]
            base = 48 + c.root if c.root < 7 else 36 + c.root  # voiced around C3..F#4
            tones = [base + i for i in CHORD_INTERVALS[c.quality]]
            if song.arpeggio:  # broken chords in eighths: root, fifth, third, fifth, ...
                order = [tones[0], tones[2 % len(tones)], tones[1], tones[-1]]
                steps = [t for b, nxt in zip(hits, hits[1:] + [c.end_s], strict=True) for t in (b, 0.5 * (b + nxt))]
                ends = steps[1:] + [c.end_s]
                for k, (a, b) in enumerate(zip(steps, ends, strict=True)):
                    keys.notes.append(pretty_midi.Note(72, order[k % len(order)], float(a), float(b) + 0.15))
                continue
            hits = hits[::2] if song.beats_per_bar == 4 else hits[:1]
            bounds = hits + [c.end_s]
            for a, b in zip(bounds, bounds[1:], strict=False):
                for pitch in tones:
                    keys.notes.append(pretty_midi.Note(68, pitch, float(a), float(b) - 0.02))
        pm.instruments.append(keys)
    if "bass" in parts:
        bass = pretty_midi.Instrument(program=33, name="bass")
        bass.notes += [pretty_midi.Note(n.velocity, n.pitch, n.start_s, n.end_s) for n in sheet.bass]
        pm.instruments.append(bass)
    if "drums" in parts and song.drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
        bpb = song.beats_per_bar
        for i, b in enumerate(sheet.beats_s):
            pos = i % bpb
            nxt = sheet.beats_s[i + 1] if i + 1 < len(sheet.beats_s) else b + 60 / song.bpm
            if pos == 0 or (bpb == 4 and pos == 2):
                kit.notes.append(pretty_midi.Note(110 if pos == 0 else 95, 36, b, b + 0.1))
            if (bpb == 4 and pos in (1, 3)) or (bpb == 3 and pos in (1, 2)):
                kit.notes.append(pretty_midi.Note(90 if bpb == 4 else 60, 38, b, b + 0.1))
            kit.notes.append(pretty_midi.Note(70, 42, b, b + 0.05))
            if bpb == 4:
                kit.notes.append(pretty_midi.Note(50, 42, 0.5 * (b + nxt), 0.5 * (b + nxt) + 0.05))
        pm.instruments.append(kit)
    return pm


def soundfont() -> Path:
    for sf in SOUNDFONTS:
        if sf.is_file():
            return sf
    raise SystemExit("no soundfont: apt-get install fluid-soundfont-gm")


def render(song: Song, part: str = "mix", *, cache: Path = CACHE) -> tuple[np.ndarray, int]:
    """``(audio (2, n) float32, sr)`` of the song's ``part``: ``mix``, ``lead`` or ``bass``; cached as WAV."""
    import soundfile as sf

    parts = {"mix": ("lead", "harmony", "bass", "drums"), "lead": ("lead",), "bass": ("bass",)}[part]
    cache.mkdir(parents=True, exist_ok=True)
    wav = cache / f"{song.name}.{part}.wav"
    if not wav.is_file():
        exe = shutil.which("fluidsynth")
        if exe is None:
            raise SystemExit("fluidsynth not found: apt-get install fluidsynth")
        mid = wav.with_suffix(".mid")
        score_midi(song, parts).write(str(mid))
        tmp = wav.with_suffix(".tmp.wav")
        subprocess.run([exe, "-ni", "-q", "-g", "0.5", "-F", str(tmp), "-r", str(SR), "--", str(soundfont()),
                        str(mid)], check=True, capture_output=True)
        tmp.replace(wav)
    audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    audio = np.ascontiguousarray(audio.T)
    if song.seconds is not None:
        audio = audio[:, : int(song.seconds * sr)]
    return audio, sr


def describe(song: Song) -> str:
    meter = f"{song.beats_per_bar}/4"
    key = f"{PITCH_NAMES[song.tonic]} {song.mode}"
    tempo = "rubato" if song.rubato else f"{song.bpm:g} BPM"
    return f"{key}, {meter}, {tempo}"
