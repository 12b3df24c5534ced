"""The one state encoder, and action decoding. Training and the live agent both use these.

A state is a float32 vector (``spec.state_dim``) made of

* the agent's part over the last W steps, and the player's part over the same W steps; per part
  and step: ``onset`` (1), sounding ``chroma`` (12, key-relative pitch classes) and the octave of
  the top sounding note as a one-hot (``spec.n_octaves``, relative to ``spec.pitch_low``,
  clipped at both ends);
* the context of the step being decided: its position in the bar (one-hot), minor key (1),
  answering (1: call-and-response, 0: duet) and progress through the agent's turn (1, 0..1);
* the call summary (``spec.call_features``, ``summarize_call``): the rhythm, register, density and
  contour of what the player played in the ``spec.call_window_steps`` before the agent's turn.
  It is made once per turn, when the key frame may move (answer: at the answer's start; duet: at
  each phrase start), so the agent hears the whole call however far its answer has gone.

Chords. A keyboard is polyphonic: the player's part shows every held note in ``chroma``, the
highest held note's octave in the register one-hot, and ``onset`` is set when any key went down
during the step. The agent's part is the same with one note. Steps are oldest first; the last
window step is the one just played, and the context describes the next one.

Everything is batch-first; one state is the batch of one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from exports.spec import (
    CALL_SUMMARY_FEATURES,
    FIRST_NOTE_ACTION,
    HOLD,
    HOLD_EVENT,
    PITCH_CLASSES,
    REST,
    REST_EVENT,
    Spec,
)
from exports.tonality import fold_into_range

_CHROMA_TABLE = np.vstack([np.eye(PITCH_CLASSES, dtype=bool), np.zeros((1, PITCH_CLASSES), bool)])
_REGISTER_TABLES: dict[tuple[int, int], np.ndarray] = {}
_BAR_TABLES: dict[int, np.ndarray] = {}
# Row s: the relative pitch classes as absolute ones, for a frame shifted by s semitones.
_CLASS_ROTATIONS = (np.arange(PITCH_CLASSES)[None, :] + np.arange(PITCH_CLASSES)[:, None]) % 12


class PartWindow(NamedTuple):
    """One part over the window, key-relative (or absolute, before ``in_frame``)."""

    onset: np.ndarray  # (B, W) bool: a note started during the step
    chroma: np.ndarray  # (B, W, 12) bool: pitch classes sounding during the step
    top: np.ndarray  # (B, W) int: highest sounding key-relative pitch, -1 when silent

    def in_frame(self, tonic_semitones: int) -> PartWindow:
        """This window of absolute pitches moved into the key-relative frame of a tonic
        ``tonic_semitones`` above C (``exports.tonality.key_shift``, -6..+5): pitch p becomes
        p - tonic_semitones, pitch class c becomes (c - tonic_semitones) mod 12, silence stays
        silence. Returns a new PartWindow."""
        if tonic_semitones == 0:
            return self  # C is its own frame
        chroma = self.chroma[..., _CLASS_ROTATIONS[tonic_semitones % PITCH_CLASSES]]
        top = np.where(self.top >= 0, self.top - tonic_semitones, -1)
        return PartWindow(self.onset, chroma, top)


class StepContext(NamedTuple):
    """What the network knows about the step it decides."""

    bar_position: np.ndarray  # (B,) int: 0 .. steps_per_bar - 1
    minor: np.ndarray  # (B,) bool: the current key is minor
    answering: np.ndarray  # (B,) bool: call-and-response turn (True) or duet (False)
    progress: np.ndarray  # (B,) float: 0 at the start of the agent's turn .. 1 at its end
    call: np.ndarray | None = None
    """(B, spec.call_features) float32 from ``summarize_call``; None: no call heard (zeros)."""


# The call summary's inter-onset-interval bins, in steps: 1, 2, 3, 4, 5-6, 7-8, 9 or more.
CALL_IOI_BIN_EDGES = np.array([1, 2, 3, 4, 5, 7, 9])
CALL_REGISTER_CENTRE = 66.0
"""Key-relative pitch the register features are centred on (F#4 in C: the agent range's middle)."""
CALL_OCTAVE_BINS = 4
CALL_DENSITY_SCALE = 8.0
"""Onsets per bar are divided by this (8 = steady eighth notes reads as 1)."""
CALL_BARS_SCALE = 4.0


def summarize_call(spec: Spec, part: PartWindow) -> np.ndarray:
    """(B, spec.call_features) float32: a summary of the call in ``part`` (key-relative,
    (B, Wc) steps, oldest first; usually the ``spec.call_window_steps`` before the turn).

    Features: heard (1 if the call has a note); the share of inter-onset intervals in each of
    ``CALL_IOI_BIN_EDGES`` (7); the mean log2 IOI / 4; the mean, lowest and highest onset pitch
    (minus ``CALL_REGISTER_CENTRE``, / 12); the share of onsets in each octave above
    ``spec.pitch_low`` (4, clipped); onsets per bar over the call's span / 8; the contour: mean
    signed and mean absolute interval / 12, last minus first pitch / 12, the share of rising and
    of repeated intervals; the call's span (first onset to its last sounding step) in bars / 4.
    A call with no note is all zeros.
    """
    onset = np.asarray(part.onset, dtype=bool)
    top = np.asarray(part.top, dtype=np.int64)
    b, wc = top.shape
    out = np.zeros((b, CALL_SUMMARY_FEATURES), dtype=np.float32)
    onset = onset & (top >= 0)
    n = onset.sum(axis=1)  # (B,)
    heard = n > 0
    if not heard.any():
        return out
    # Onset steps left-aligned per row (sorted), padded with -1.
    order = np.argsort(~onset, axis=1, kind="stable")  # onsets first, in time order
    k_max = int(n.max())
    steps = np.where(np.arange(k_max)[None, :] < n[:, None], order[:, :k_max], -1)  # (B, K)
    valid = steps >= 0
    pitch = np.where(valid, np.take_along_axis(top, np.maximum(steps, 0), axis=1), 0)
    nf = np.maximum(n, 1).astype(np.float64)
    # Rhythm: inter-onset intervals between consecutive onsets.
    ioi = steps[:, 1:] - steps[:, :-1]  # (B, K-1)
    ioi_ok = valid[:, 1:] & valid[:, :-1]
    n_ioi = ioi_ok.sum(axis=1)
    nif = np.maximum(n_ioi, 1).astype(np.float64)
    bins = np.searchsorted(CALL_IOI_BIN_EDGES, np.maximum(ioi, 1), side="right") - 1
    for j in range(len(CALL_IOI_BIN_EDGES)):
        out[:, 1 + j] = ((bins == j) & ioi_ok).sum(axis=1) / nif
    log_ioi = np.where(ioi_ok, np.log2(np.maximum(ioi, 1)), 0.0)
    out[:, 8] = log_ioi.sum(axis=1) / nif / 4.0
    # Register.
    mean_pitch = np.where(valid, pitch, 0).sum(axis=1) / nf
    low = np.where(valid, pitch, 999).min(axis=1)
    high = np.where(valid, pitch, -999).max(axis=1)
    out[:, 9] = (mean_pitch - CALL_REGISTER_CENTRE) / 12.0
    out[:, 10] = (low - CALL_REGISTER_CENTRE) / 12.0
    out[:, 11] = (high - CALL_REGISTER_CENTRE) / 12.0
    octave = np.clip((pitch - spec.pitch_low) // PITCH_CLASSES, 0, CALL_OCTAVE_BINS - 1)
    for j in range(CALL_OCTAVE_BINS):
        out[:, 12 + j] = ((octave == j) & valid).sum(axis=1) / nf
    # Density over the call's span: first onset to its last sounding step.
    sounding = top >= 0
    first = np.where(heard, steps[:, 0], 0)
    last = np.where(sounding.any(axis=1), wc - 1 - np.argmax(sounding[:, ::-1], axis=1), 0)
    span = np.maximum(last - first + 1, 1)
    bars = span / spec.steps_per_bar
    out[:, 16] = n / np.maximum(bars, 1.0) / CALL_DENSITY_SCALE
    # Contour.
    interval = np.where(ioi_ok, pitch[:, 1:] - pitch[:, :-1], 0)
    out[:, 17] = interval.sum(axis=1) / nif / 12.0
    out[:, 18] = np.abs(interval).sum(axis=1) / nif / 12.0
    last_pitch = np.take_along_axis(pitch, np.maximum(n - 1, 0)[:, None], axis=1)[:, 0]
    out[:, 19] = (last_pitch - pitch[:, 0]) / 12.0
    out[:, 20] = ((interval > 0) & ioi_ok).sum(axis=1) / nif
    out[:, 21] = ((interval == 0) & ioi_ok).sum(axis=1) / nif
    out[:, 22] = bars / CALL_BARS_SCALE
    out[:, 0] = 1.0
    out[~heard] = 0.0
    return out


def monophonic_window(sounding: np.ndarray, onset: np.ndarray) -> PartWindow:
    """A PartWindow for a one-note-at-a-time part.

    ``sounding`` (B, W) is the key-relative pitch sounding at each step (-1 silence), ``onset``
    (B, W) marks the steps where a note started.
    """
    sounding = np.asarray(sounding)
    # Row 12 of the table is silence: all pitch classes off.
    chroma = _CHROMA_TABLE[np.where(sounding >= 0, sounding % PITCH_CLASSES, PITCH_CLASSES)]
    return PartWindow(onset=np.asarray(onset, dtype=bool), chroma=chroma, top=sounding)


def _fill_part(spec: Spec, part: PartWindow, out: np.ndarray) -> None:
    """Write one part's features into ``out`` (B, W, features_per_part_step), in place."""
    out[..., 0] = part.onset
    out[..., 1 : 1 + PITCH_CLASSES] = part.chroma
    # One lookup by top + 1 (clipped to the table) gives the register one-hot; it is the same as
    # clip((top - pitch_low) // 12, 0, n_octaves - 1), with row 0 (top -1 and below) silence.
    table = _register_table(spec.pitch_low, spec.n_octaves)
    out[..., 1 + PITCH_CLASSES :] = table.take(np.asarray(part.top) + 1, axis=0, mode="clip")


def _register_table(pitch_low: int, n_octaves: int) -> np.ndarray:
    """(rows, n_octaves) float32: row top + 1 is the register one-hot of top; row 0 silence."""
    table = _REGISTER_TABLES.get((pitch_low, n_octaves))
    if table is None:
        top = np.arange(max(0, pitch_low) + n_octaves * PITCH_CLASSES)
        octave = np.clip((top - pitch_low) // PITCH_CLASSES, 0, n_octaves - 1)
        rows = np.vstack([np.zeros((1, n_octaves)), np.eye(n_octaves)[octave]])
        table = _REGISTER_TABLES[(pitch_low, n_octaves)] = rows.astype(np.float32)
    return table


def encode_states(
    spec: Spec,
    agent: PartWindow,
    player: PartWindow,
    context: StepContext,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """States for the Q-network: (B, spec.state_dim) float32, written into ``out`` when given
    (a (B, state_dim) float32 array the live agent reuses: no allocation per decision)."""
    b, w = agent.top.shape
    if w != spec.window_steps or player.top.shape != (b, w):
        raise ValueError(
            f"expected windows of shape (B, {spec.window_steps}) for both parts, "
            f"got agent {agent.top.shape} and player {player.top.shape}"
        )
    f = spec.features_per_part_step
    states = np.empty((b, spec.state_dim), dtype=np.float32) if out is None else out  # (B, D)
    _fill_part(spec, agent, states[:, : w * f].reshape(b, w, f))
    _fill_part(spec, player, states[:, w * f : 2 * w * f].reshape(b, w, f))
    ctx = states[:, 2 * w * f :]
    spb = spec.steps_per_bar
    ctx[:, :spb] = _bar_table(spb)[np.asarray(context.bar_position) % spb]
    ctx[:, spb] = context.minor
    ctx[:, spb + 1] = context.answering
    # minimum/maximum, not np.clip: the same values, several microseconds less per call.
    ctx[:, spb + 2] = np.minimum(np.maximum(context.progress, 0.0), 1.0)
    call = states[:, 2 * w * f + spec.context_features :]
    if context.call is None:
        call[:] = 0.0
    else:
        call[:] = context.call
    return states


def _bar_table(steps_per_bar: int) -> np.ndarray:
    table = _BAR_TABLES.get(steps_per_bar)
    if table is None:
        table = _BAR_TABLES[steps_per_bar] = np.eye(steps_per_bar, dtype=np.float32)
    return table


def action_events(spec: Spec, actions: np.ndarray) -> np.ndarray:
    """Actions -> key-relative grid events (HOLD_EVENT, REST_EVENT or a relative pitch)."""
    a = np.asarray(actions)
    return np.where(
        a == HOLD,
        HOLD_EVENT,
        np.where(a == REST, REST_EVENT, spec.pitch_low + a - FIRST_NOTE_ACTION),
    )


def event_actions(spec: Spec, events: np.ndarray) -> np.ndarray:
    """Key-relative grid events -> actions; onsets outside the range are folded by octaves."""
    e = np.asarray(events)
    pitch = fold_into_range(e, spec.pitch_low, spec.pitch_high)
    return np.where(
        e == HOLD_EVENT,
        HOLD,
        np.where(e == REST_EVENT, REST, FIRST_NOTE_ACTION + pitch - spec.pitch_low),
    ).astype(np.int64)


class NoteChange(NamedTuple):
    """What an action does to the sounding note, in absolute MIDI pitches (None: nothing)."""

    note_off: int | None
    note_on: int | None


def decode_action(
    spec: Spec, action: int, sounding: int | None, to_absolute_semitones: int
) -> NoteChange:
    """The MIDI effect of one action.

    ``sounding`` is the absolute pitch the agent holds now (None if silent);
    ``to_absolute_semitones`` is what takes a key-relative pitch to an absolute one: the frame's
    ``tonality.key_shift`` plus any register shift. NOTE_ON of the sounding pitch
    re-articulates it.
    """
    if action == HOLD:
        return NoteChange(None, None)
    if action == REST:
        return NoteChange(sounding, None)
    relative = spec.pitch_of_action(action)
    assert relative is not None  # action >= FIRST_NOTE_ACTION here
    return NoteChange(sounding, min(127, max(0, relative + to_absolute_semitones)))
