"""Grid melodies: one event per 16th-note step.

A grid melody is an integer array, one entry per step:

    0..127      a note starts at this pitch (and the previous one, if any, ends)
    HOLD_EVENT  (-1) nothing changes: the sounding note goes on, or silence goes on
    REST_EVENT  (-2) the sounding note ends

The same events, in the key-relative frame, are what the agent's actions produce. All functions
work on any leading batch shape; the time axis is the last one.
"""

from __future__ import annotations

import numpy as np

from exports.spec import HOLD_EVENT, MIDI_PITCHES, REST_EVENT


def validate_events(events: np.ndarray) -> None:
    """Raise ValueError unless every entry is HOLD_EVENT, REST_EVENT or a MIDI pitch."""
    bad = (events < REST_EVENT) | (events >= MIDI_PITCHES)
    if np.any(bad):
        first = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"grid event {int(events.ravel()[first])} at flat index {first} is not "
            f"HOLD ({HOLD_EVENT}), REST ({REST_EVENT}) or a MIDI pitch 0..127"
        )


def onsets(events: np.ndarray) -> np.ndarray:
    """(..., T) bool: True where a note starts."""
    return events >= 0


def sounding_pitches(events: np.ndarray, initial: np.ndarray | int = -1) -> np.ndarray:
    """(..., T) int: the pitch sounding during each step, -1 for silence.

    ``initial`` is what sounds before the first step (per batch row), so that a window cut out of
    a longer melody can start with HOLD.
    """
    events = np.asarray(events)
    t = events.shape[-1]
    changes = events != HOLD_EVENT  # an onset or a REST sets what sounds
    values = np.where(events >= 0, events, -1)
    # Index of the latest change at or before each step, -1 if none: forward fill.
    idx = np.where(changes, np.arange(t), -1)
    last = np.maximum.accumulate(idx, axis=-1)
    filled = np.take_along_axis(values, np.maximum(last, 0), axis=-1)
    init = np.broadcast_to(np.asarray(initial), events.shape[:-1])[..., None]
    return np.where(last >= 0, filled, init).astype(np.int64)


def transpose(events: np.ndarray, semitones: int | np.ndarray) -> np.ndarray:
    """Shift every onset by ``semitones`` (per row if an array); HOLD and REST stay."""
    shift = np.asarray(semitones)
    if shift.ndim:
        shift = shift.reshape(shift.shape + (1,) * (events.ndim - shift.ndim))
    return np.where(events >= 0, events + shift, events)


def note_list(events: np.ndarray) -> list[tuple[int, int, int]]:
    """The notes of a 1-D grid melody as (start_step, duration_steps, pitch), in order."""
    events = np.asarray(events)
    notes: list[tuple[int, int, int]] = []
    start, pitch = -1, -1
    for step, event in enumerate(events.tolist()):
        if event == HOLD_EVENT:
            continue
        if pitch >= 0:
            notes.append((start, step - start, pitch))
        start, pitch = (step, event) if event >= 0 else (-1, -1)
    if pitch >= 0:
        notes.append((start, len(events) - start, pitch))
    return notes


def events_from_notes(notes: list[tuple[int, int, int]], n_steps: int) -> np.ndarray:
    """Inverse of ``note_list`` for a monophonic line: notes must not overlap."""
    events = np.full(n_steps, HOLD_EVENT, dtype=np.int16)
    end_prev = 0
    for start, duration, pitch in sorted(notes):
        if start < end_prev:
            raise ValueError(f"notes overlap at step {start}: a grid melody is monophonic")
        if start > end_prev and end_prev > 0 and events[end_prev] == HOLD_EVENT:
            events[end_prev] = REST_EVENT
        events[start] = pitch
        end_prev = start + duration
    if 0 < end_prev < n_steps:
        events[end_prev] = REST_EVENT
    return events
