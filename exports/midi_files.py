"""MIDI files in and out, on the 16th-note grid.

Reading uses symusic (a C++ parser: ~50x faster than mido on a corpus), writing uses mido so that
each part gets its own track and channel. A file becomes a grid melody (see ``exports.grid``):
onsets and offsets are quantized to the nearest 16th, the drum channel is left out, and of a
polyphonic part the top line is kept: at each step, the highest note that starts there. A note
ends at its own (quantized) end or at the next kept onset, whichever comes first, so the line
stays monophonic.

Round trips are exact on the grid: ``write_melodies`` then ``read_melodies`` gives back the same
events, and a file already on the grid survives MIDI -> grid -> MIDI -> grid unchanged. A grid
read from a file ends where its last note or last event (marker, tempo, controller) ends: files
we write keep trailing silence with an end marker (a ``marker`` meta event) at the grid's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from exports.errors import MidiFileError
from exports.grid import note_list, validate_events
from exports.midi import MAX_VELOCITY, MIDI_CHANNELS
from exports.spec import GRID_STEPS_PER_BEAT, HOLD_EVENT, REST_EVENT

STEPS_PER_QUARTER = GRID_STEPS_PER_BEAT
"""The grid: one step is a 16th note (``Spec`` refuses any other)."""
WRITE_TICKS_PER_QUARTER = 480
DRUM_CHANNEL = 9
"""General MIDI percussion (channel 10 counted from 1): never part of a melody."""
DEFAULT_VELOCITY = 90
END_MARKER = "deepjam:end"
"""Text of the marker meta event that records a written grid's length (its trailing silence)."""
MIDI_SUFFIXES = (".mid", ".midi")
MICROSECONDS_PER_MINUTE = 60_000_000


def events_from_timed_notes(
    starts_steps: np.ndarray,
    ends_steps: np.ndarray,
    pitches: np.ndarray,
    min_steps: int = 0,
) -> tuple[np.ndarray, int]:
    """Quantize notes to the grid and keep their top line.

    ``starts_steps``/``ends_steps`` are in 16th-note steps (floats allowed: they are rounded to
    the nearest step, halves up; a note shorter than a step after rounding lasts one step).
    Of the notes starting on one step the highest is kept (the top line of a polyphonic part;
    for a monophonic line, triplets that round onto the same step collide and the higher one
    stays). A kept note ends at its end or at the next kept onset.

    Returns (events (n_steps,) int16 with n_steps >= ``min_steps``, number of notes dropped).
    """
    starts = np.floor(np.asarray(starts_steps, dtype=np.float64) + 0.5).astype(np.int64)
    ends = np.floor(np.asarray(ends_steps, dtype=np.float64) + 0.5).astype(np.int64)
    pitch = np.asarray(pitches, dtype=np.int64)
    if len(starts) == 0:
        return np.full(max(min_steps, 0), HOLD_EVENT, dtype=np.int16), 0
    starts = np.maximum(starts, 0)
    ends = np.maximum(ends, starts + 1)
    order = np.lexsort((-pitch, starts))  # by start, highest pitch first
    starts, ends, pitch = starts[order], ends[order], pitch[order]
    first = np.ones(len(starts), dtype=bool)
    first[1:] = starts[1:] != starts[:-1]
    dropped = int(len(starts) - first.sum())
    starts, ends, pitch = starts[first], ends[first], pitch[first]
    next_start = np.append(starts[1:], np.iinfo(np.int64).max)
    ends = np.minimum(ends, next_start)
    n_steps = max(int(ends[-1]), min_steps)
    events = np.full(n_steps, HOLD_EVENT, dtype=np.int16)
    # A REST where a note ends before the next onset (and before the end of the grid).
    rests = ends[(ends < next_start) & (ends < n_steps)]
    events[rests] = REST_EVENT
    events[starts] = pitch
    return events, dropped


SYMUSIC_WORDING = (
    ("MiniMidi: ", ""),
    ("Invaild midi file!", "not a valid MIDI file:"),
    ("!", ""),
    (": iostream error", ""),
)
"""symusic's error text, as it is passed on: its parser's name dropped and its typo mended."""


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    for old, new in SYMUSIC_WORDING:
        text = text.replace(old, new)
    return text


def _load_score(path: Path, data: bytes | None = None) -> Any:  # a symusic.Score (untyped C++)
    from symusic import Score

    path = Path(path)
    if data is None and not path.is_file():
        raise MidiFileError(f"MIDI file {path} does not exist or is not a file")
    try:
        return Score(str(path)) if data is None else Score.from_midi(data)
    except Exception as err:  # symusic raises RuntimeError/ValueError/IndexError for bad bytes
        raise MidiFileError(
            f"cannot read MIDI file {path}: {_one_line(err)}; expected a Standard MIDI File"
        ) from err


def _step_ticks(score: Any, path: Path) -> float:
    tpq = int(score.ticks_per_quarter)
    if tpq <= 0:
        raise MidiFileError(
            f"MIDI file {path} has {tpq} ticks per quarter note; expected a positive "
            "metrical division (SMPTE-timed files are not supported)"
        )
    return tpq / STEPS_PER_QUARTER


def _track_arrays(track: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start_tick, end_tick, pitch) arrays of a symusic track."""
    notes = track.notes.numpy()
    start = notes["time"].astype(np.float64)
    return start, start + notes["duration"], notes["pitch"].astype(np.int64)


def _score_steps(score: Any, step_ticks: float) -> int:
    return int(np.floor(float(score.end()) / step_ticks + 0.5))


def _melodic_tracks(path: Path, data: bytes | None = None) -> tuple[Any, float, list[Any]]:
    """(score, ticks per 16th, the tracks with notes outside the drum channel); MidiFileError
    when there are none."""
    score = _load_score(path, data)
    step_ticks = _step_ticks(score, path)
    tracks = [t for t in score.tracks if not t.is_drum and len(t.notes) > 0]
    if not tracks:
        raise MidiFileError(
            f"MIDI file {path} has no notes outside the drum channel; expected a melody"
        )
    return score, step_ticks, tracks


def read_melody(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """Read a MIDI file as one grid melody: (n_steps,) int16 absolute grid events.

    All tracks except the drum channel are merged and their top line is kept: the top line of a
    polyphonic part (at each 16th, the highest note starting there). Raises MidiFileError, one
    line naming the file and the reason, for corrupt bytes or a file without melodic notes.
    With ``data`` (the file's bytes, e.g. read from a remote filesystem) those bytes are parsed
    and ``path`` only names the file in messages.
    """
    score, step_ticks, tracks = _melodic_tracks(Path(path), data)
    arrays = [_track_arrays(t) for t in tracks]
    starts = np.concatenate([a[0] for a in arrays]) / step_ticks
    ends = np.concatenate([a[1] for a in arrays]) / step_ticks
    pitches = np.concatenate([a[2] for a in arrays])
    events, _ = events_from_timed_notes(starts, ends, pitches, _score_steps(score, step_ticks))
    return events


def read_melody_velocities(path: str | Path) -> np.ndarray:
    """The velocity of each note ``read_melody`` keeps, by its onset step: (n_steps,) int16,
    1..127 where a kept note starts, 0 elsewhere (the same grid: onsets rounded to the nearest
    16th, and of the notes starting on one step the highest). Raises MidiFileError as
    ``read_melody`` does."""
    score, step_ticks, tracks = _melodic_tracks(Path(path))
    notes = [t.notes.numpy() for t in tracks]
    starts = np.concatenate([n["time"] for n in notes]).astype(np.float64) / step_ticks
    pitches = np.concatenate([n["pitch"] for n in notes]).astype(np.int64)
    velocities = np.concatenate([n["velocity"] for n in notes]).astype(np.int64)
    steps = np.maximum(np.floor(starts + 0.5).astype(np.int64), 0)
    order = np.lexsort((-pitches, steps))  # by start, highest pitch first: the kept note first
    steps, velocities = steps[order], velocities[order]
    first = np.ones(len(steps), dtype=bool)
    first[1:] = steps[1:] != steps[:-1]
    out = np.zeros(max(_score_steps(score, step_ticks), int(steps.max()) + 1), dtype=np.int16)
    out[steps[first]] = np.clip(velocities[first], 1, MAX_VELOCITY)
    return out


def read_melodies(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """Read each melodic track of a MIDI file as its own grid melody (its top line).

    Returns [(track name, (n_steps,) int16 events)], in track order, drum tracks and empty tracks
    left out; every melody has the same length (the file's, on the grid), so parts written by
    ``write_melodies`` come back step-aligned. Raises MidiFileError as ``read_melody`` does.
    """
    score, step_ticks, tracks = _melodic_tracks(Path(path))
    n_steps = _score_steps(score, step_ticks)
    parts = []
    for i, track in enumerate(tracks):
        start, end, pitch = _track_arrays(track)
        events, _ = events_from_timed_notes(start / step_ticks, end / step_ticks, pitch, n_steps)
        parts.append((str(track.name) or f"track {i + 1}", events))
    n_steps = max(len(e) for _, e in parts)
    padded = np.full(n_steps, HOLD_EVENT, dtype=np.int16)
    return [(name, np.concatenate([e, padded[len(e) :]])) for name, e in parts]


def _default_channels(n_parts: int) -> list[int]:
    return [c for c in range(MIDI_CHANNELS) if c != DRUM_CHANNEL][:n_parts]


def write_melodies(
    path: str | Path,
    parts: Sequence[tuple[str, np.ndarray]],
    bpm: float = 120.0,
    channels: Sequence[int] | None = None,
    velocity: int | Sequence[int] = DEFAULT_VELOCITY,
) -> None:
    """Write grid melodies as a type-1 MIDI file: one named track per part (e.g. player, agent).

    ``parts`` are (track name, (n_steps,) absolute grid events); ``channels`` are 0-based, one
    per part (default 0, 1, 2, ... skipping the drum channel 9); ``velocity`` is one value for
    all parts or one per part. The file is 4/4 at ``bpm`` quarter notes per minute, 480 ticks
    per quarter; an end marker keeps the grid's length, trailing silence included.
    """
    import mido

    path = Path(path)
    if not parts:
        raise MidiFileError(f"nothing to write to {path}: expected at least one part, got none")
    if not bpm > 0:
        raise MidiFileError(f"tempo for {path} must be positive, got {bpm} bpm")
    channel_list = list(channels) if channels is not None else _default_channels(len(parts))
    velocities = [velocity] * len(parts) if isinstance(velocity, int) else list(velocity)
    if len(channel_list) != len(parts) or len(velocities) != len(parts):
        raise MidiFileError(
            f"expected one channel and one velocity per part ({len(parts)} parts), got "
            f"{len(channel_list)} channels and {len(velocities)} velocities"
        )
    for c in channel_list:
        if not 0 <= c < MIDI_CHANNELS:
            raise MidiFileError(f"MIDI channels are 0..15 (0-based), got {c}")
    for v in velocities:
        if not 1 <= v <= MAX_VELOCITY:
            raise MidiFileError(f"note velocity must be 1..127, got {v}")
    step_ticks = WRITE_TICKS_PER_QUARTER // STEPS_PER_QUARTER
    midi = mido.MidiFile(type=1, ticks_per_beat=WRITE_TICKS_PER_QUARTER)
    n_steps = 0
    tracks = []
    for (name, events), channel, vel in zip(parts, channel_list, velocities, strict=True):
        events = np.asarray(events)
        try:
            validate_events(events)
        except ValueError as err:
            raise MidiFileError(f"part {name!r} for {path}: {err}") from err
        n_steps = max(n_steps, len(events))
        timed: list[tuple[int, int, mido.Message]] = []
        for start, duration, pitch in note_list(events):
            on = mido.Message("note_on", channel=channel, note=pitch, velocity=vel)
            off = mido.Message("note_off", channel=channel, note=pitch, velocity=0)
            # Order key 0 for note_off: a repeated note's release comes before its re-attack.
            timed.append((start * step_ticks, 1, on))
            timed.append(((start + duration) * step_ticks, 0, off))
        timed.sort(key=lambda item: (item[0], item[1]))
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        now = 0
        for tick, _, message in timed:
            track.append(message.copy(time=tick - now))
            now = tick
        tracks.append(track)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=round(MICROSECONDS_PER_MINUTE / bpm), time=0),
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
        ]
    )
    if n_steps > 0:
        conductor.append(mido.MetaMessage("marker", text=END_MARKER, time=n_steps * step_ticks))
    midi.tracks.append(conductor)
    midi.tracks.extend(tracks)
    try:
        midi.save(str(path))
    except OSError as err:
        raise MidiFileError(f"cannot write MIDI file {path}: {_one_line(err)}") from err


def midi_folder_files(folder: str | Path) -> list[Path]:
    """Every *.mid / *.midi file under ``folder``, recursively, in the corpus order (sorted by
    path). Raises MidiFileError when ``folder`` is not a folder."""
    root = Path(folder)
    if not root.is_dir():
        raise MidiFileError(f"expected a folder of MIDI files, got {root} (not a folder)")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


def read_midi_folder(
    folder: str | Path,
) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, str]]]:
    """Read every *.mid / *.midi under ``folder`` (recursively, sorted) with ``read_melody``.

    Returns (melodies [(path relative to the folder, events)], skipped [(relative path,
    reason)]): one bad file never stops the rest.
    """
    root = Path(folder)
    files = midi_folder_files(root)
    melodies: list[tuple[str, np.ndarray]] = []
    skipped: list[tuple[str, str]] = []
    for file in files:
        name = file.relative_to(root).as_posix()
        try:
            melodies.append((name, read_melody(file)))
        except MidiFileError as err:
            skipped.append((name, str(err)))
    return melodies, skipped
