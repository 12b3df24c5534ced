"""From raw incoming MIDI to the player's part, one 16th step at a time.

``classify`` is the one place incoming bytes are validated: anything malformed (no status byte,
wrong length, a data byte above 127), sysex, or of an undefined status is dropped and counted by
reason, never raised. ``PlayerListener`` folds the note messages that pass into the state the
encoder needs per step: whether a key went down (onset), which pitch classes sounded during the
step (chroma, absolute), and the highest sounding pitch (top). A note-on with velocity 0 is a
note-off. While the sustain pedal (CC 64) is down, a released key keeps sounding until the pedal
comes up, as it does on the player's synth: the phrase has not ended while the pedal holds it.
"""

from __future__ import annotations

from collections import Counter
from enum import Enum
from typing import NamedTuple

import numpy as np

from exports.midi import (
    BYTE_MAX,
    CHANNEL_MASK,
    CONTINUE,
    CONTROL_CHANGE,
    MAX_DATA,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
    SONG_POSITION,
    START,
    STATUS_MASK,
    STATUS_MIN,
    STOP,
    SYSEX_START,
    TIMING_CLOCK,
    message_length,
)
from exports.spec import PITCH_CLASSES


class Kind(Enum):
    """What a valid incoming message is, for the session's purposes."""

    NOTE_ON = "note_on"
    NOTE_OFF = "note_off"
    CONTROL = "control_change"
    PROGRAM = "program_change"
    CLOCK = "clock"
    START = "start"
    CONTINUE = "continue"
    STOP = "stop"
    SONG_POSITION = "song_position"
    OTHER = "other"
    """Valid but unused here (pressure, pitch bend, MTC, active sensing ...)."""


class Message(NamedTuple):
    """A validated message: its kind, channel and data bytes (0 when absent)."""

    kind: Kind
    channel: int
    data1: int
    """The first data byte: the pitch of a note, the controller of a CC, the program."""
    data2: int
    """The second data byte: the velocity of a note, the value of a CC."""


_REALTIME_KIND = {
    TIMING_CLOCK: Kind.CLOCK,
    START: Kind.START,
    CONTINUE: Kind.CONTINUE,
    STOP: Kind.STOP,
}


def classify(data: tuple[int, ...] | list[int], dropped: Counter[str]) -> Message | None:
    """Validate raw bytes; returns a Message, or None after counting the reason in ``dropped``.

    Reasons: ``empty``, ``no_status`` (first byte < 0x80), ``sysex``, ``undefined_status``
    (0xF4, 0xF5, 0xF9, 0xFD, a stray 0xF7), ``bad_length``, ``data_out_of_range`` (a data byte
    outside 0..127, including status bytes where data belongs), ``not_bytes``.
    """
    n = len(data)
    if n == 0:
        dropped["empty"] += 1
        return None
    status = data[0]
    if not isinstance(status, int) or status > BYTE_MAX or status < 0:
        dropped["not_bytes"] += 1
        return None
    if status < STATUS_MIN:
        dropped["no_status"] += 1
        return None
    if status == SYSEX_START:
        dropped["sysex"] += 1
        return None
    high = status & STATUS_MASK if status < SYSEX_START else status
    expected = message_length(status)
    if expected is None:
        dropped["undefined_status"] += 1
        return None
    if n != expected:
        dropped["bad_length"] += 1
        return None
    a = data[1] if n > 1 else 0
    b = data[2] if n > 2 else 0
    if not (isinstance(a, int) and isinstance(b, int)) or not (
        0 <= a <= MAX_DATA and 0 <= b <= MAX_DATA
    ):
        dropped["data_out_of_range"] += 1
        return None
    if high < SYSEX_START:
        channel = status & CHANNEL_MASK
        if high == NOTE_ON:
            return Message(Kind.NOTE_ON if b > 0 else Kind.NOTE_OFF, channel, a, b)
        if high == NOTE_OFF:
            return Message(Kind.NOTE_OFF, channel, a, b)
        if high == CONTROL_CHANGE:
            return Message(Kind.CONTROL, channel, a, b)
        if high == PROGRAM_CHANGE:
            return Message(Kind.PROGRAM, channel, a, 0)
        return Message(Kind.OTHER, channel, a, b)
    if status == SONG_POSITION:
        return Message(Kind.SONG_POSITION, 0, a, b)
    return Message(_REALTIME_KIND.get(status, Kind.OTHER), 0, a, b)


def pitch_class_bits(mask: int) -> int:
    """128-bit pitch mask -> 12-bit pitch-class mask."""
    bits = 0
    while mask:
        bits |= mask & ALL_CLASSES
        mask >>= PITCH_CLASSES
    return bits


ALL_CLASSES = (1 << PITCH_CLASSES) - 1


class PlayerStep(NamedTuple):
    """The player's part during one closed step (absolute pitches)."""

    onset: bool
    chroma: np.ndarray  # (12,) bool, absolute pitch classes sounding at any time in the step
    top: int  # highest pitch sounding in the step, -1 when silent
    chroma_bits: int  # the same pitch classes as a 12-bit int (bit c: class c)


class PlayerListener:
    """Held notes and the step being accumulated. Not thread-safe: the scheduler thread owns it.

    ``held`` and ``step_sounding`` are 128-bit masks (bit p = pitch p), cheap to update per
    message and to close per step.
    """

    def __init__(self, held_timeout_steps: int) -> None:
        self.held_timeout_steps = held_timeout_steps
        self.held = 0
        self.step_sounding = 0
        self.step_onset = False
        self.pressed_step: dict[int, int] = {}
        """pitch -> step its key went down, for the held-note timeout."""
        self.timed_out = 0
        self.timed_out_pitches: list[int] = []
        """Keys taken as released by the timeout, for the session to end their MIDI thru."""
        self.pedal_down = False
        self.sustained = 0
        """128-bit mask of notes whose key is up but the sustain pedal holds them."""
        self._chroma_of_mask: dict[int, tuple[np.ndarray, int]] = {}

    def note_on(self, pitch: int, step: int) -> None:
        bit = 1 << pitch
        self.sustained &= ~bit
        self.held |= bit
        self.step_sounding |= bit
        self.step_onset = True
        self.pressed_step[pitch] = step

    def note_off(self, pitch: int, before_step: bool = False) -> None:
        """Release ``pitch``; ``before_step``: it was released before the open step began (the
        step was opened a margin ahead of its boundary), so it did not sound in it. With the
        sustain pedal down the note sounds on until the pedal comes up."""
        self.pressed_step.pop(pitch, None)
        if self.pedal_down and self.held >> pitch & 1:
            self.sustained |= 1 << pitch
            return
        self.held &= ~(1 << pitch)
        if before_step:
            self.step_sounding &= ~(1 << pitch)

    def sustain_pedal(self, down: bool, before_step: bool = False) -> None:
        """CC 64: pedal down holds released notes; pedal up releases the ones it held
        (``before_step`` as for ``note_off``)."""
        self.pedal_down = down
        if not down:
            self.held &= ~self.sustained
            if before_step:
                self.step_sounding &= ~self.sustained
            self.sustained = 0

    def all_off(self) -> None:
        """Forget every held note (the player's controller sent All Notes Off, or panic)."""
        self.held = 0
        self.sustained = 0
        self.pressed_step.clear()

    @property
    def sounding(self) -> bool:
        """Whether any key is held now."""
        return self.held != 0

    def close_step(self, step: int) -> PlayerStep:
        """The step that just ended; the next one starts with the keys still held."""
        mask = self.step_sounding
        onset = self.step_onset
        cached = self._chroma_of_mask.get(mask)
        if cached is None:
            chroma = np.zeros(PITCH_CLASSES, dtype=bool)
            bits = 0
            rest = mask
            while rest:
                low = rest & -rest
                pitch_class = (low.bit_length() - 1) % PITCH_CLASSES
                chroma[pitch_class] = True
                bits |= 1 << pitch_class
                rest ^= low
            cached = (chroma, bits)
            if len(self._chroma_of_mask) < 4096:
                self._chroma_of_mask[mask] = cached
        if self.pressed_step:
            self._time_out_stuck_notes(step)
        self.step_sounding = self.held
        self.step_onset = False
        return PlayerStep(onset, cached[0], mask.bit_length() - 1, cached[1])

    def _time_out_stuck_notes(self, step: int) -> None:
        # A note-off can be lost upstream (an unterminated sysex swallows it): a key "held"
        # for longer than the timeout is taken as released, and counted.
        limit = step - self.held_timeout_steps
        for pitch, pressed in list(self.pressed_step.items()):
            if pressed <= limit:
                self.note_off(pitch)
                self.timed_out += 1
                self.timed_out_pitches.append(pitch)
