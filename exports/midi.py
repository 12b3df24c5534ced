"""MIDI's own numbers, in one place (the MIDI 1.0 specification's names).

Status bytes of channel messages carry the channel (0-based) in their low nibble:
``NOTE_ON | channel``. Channels are 0-based everywhere inside deepjam, 1-16 only at the CLI.
``MESSAGE_LENGTH`` is the one table of message lengths: the live input validates by it
(``live_agent.listener.classify``) and cuts swallowed messages out of a sysex by it
(``split_swallowed``).
"""

from __future__ import annotations

from collections.abc import Sequence

# Channel messages (high nibble of the status byte).
NOTE_OFF = 0x80
NOTE_ON = 0x90
POLY_PRESSURE = 0xA0
CONTROL_CHANGE = 0xB0
PROGRAM_CHANGE = 0xC0
CHANNEL_PRESSURE = 0xD0
PITCH_BEND = 0xE0
STATUS_MASK = 0xF0
CHANNEL_MASK = 0x0F

# System messages.
SYSEX_START = 0xF0
MTC_QUARTER_FRAME = 0xF1
SONG_POSITION = 0xF2
SONG_SELECT = 0xF3
TUNE_REQUEST = 0xF6
SYSEX_END = 0xF7
TIMING_CLOCK = 0xF8
START = 0xFA
CONTINUE = 0xFB
STOP = 0xFC
ACTIVE_SENSING = 0xFE
SYSTEM_RESET = 0xFF

# Controllers (data byte 1 of a control change).
SUSTAIN_PEDAL = 64
PEDAL_DOWN_MIN = 64
"""A sustain pedal value at or above this is down."""
ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123

# Undefined statuses (MIDI 1.0: reserved; a receiver ignores them, and the data bytes after
# 0xF4 / 0xF5 until the next status byte).
UNDEFINED_SYSTEM_COMMON = (0xF4, 0xF5)
UNDEFINED_REAL_TIME = (0xF9, 0xFD)

STATUS_MIN = 0x80
"""Bytes from here up are status bytes; below, data bytes."""
BYTE_MAX = 0xFF
MAX_DATA = 0x7F
"""The largest data byte (velocity, controller value, pitch)."""
MAX_VELOCITY = MAX_DATA
MIDI_CHANNELS = 16
MIDI_PITCHES = 128
SEMITONES_PER_OCTAVE = 12

MESSAGE_LENGTH: dict[int, int] = {
    NOTE_OFF: 3,
    NOTE_ON: 3,
    POLY_PRESSURE: 3,
    CONTROL_CHANGE: 3,
    PROGRAM_CHANGE: 2,
    CHANNEL_PRESSURE: 2,
    PITCH_BEND: 3,
    MTC_QUARTER_FRAME: 2,
    SONG_POSITION: 3,
    SONG_SELECT: 2,
    TUNE_REQUEST: 1,
    TIMING_CLOCK: 1,
    START: 1,
    CONTINUE: 1,
    STOP: 1,
    ACTIVE_SENSING: 1,
    SYSTEM_RESET: 1,
}
"""Status -> bytes in the message, the status included (MIDI 1.0): channel messages by their
high nibble, system messages by the whole byte. Not in it: sysex (``SYSEX_START`` ...
``SYSEX_END``, any length) and the undefined statuses, which have no length."""


def message_length(status: int) -> int | None:
    """Bytes in a message that starts with ``status``, the status included; None for a data
    byte, a sysex start or end, and the undefined 0xF4, 0xF5, 0xF9 and 0xFD."""
    return MESSAGE_LENGTH.get(status & STATUS_MASK if status < SYSEX_START else status)


def split_swallowed(data: Sequence[int]) -> list[tuple[int, ...]]:
    """The messages inside a "sysex" that swallowed them: ``F0 7D 01 90 3C 64 80 3C 00 F7`` ->
    ``[(0x90, 60, 100), (0x80, 60, 0)]`` (rtmidi's JACK input glues every event after an
    unterminated sysex onto it).

    The sysex's own data bytes are dropped. Any status byte but a real-time one ends a sysex
    (MIDI 1.0); from there complete messages are cut out, running status included. Real-time
    bytes are messages of their own wherever they stand and leave running status alone. A system
    common message cancels running status. An undefined status comes out alone (the input's
    validation counts it) and the data bytes after it are dropped until the next status byte. A
    truncated message and another sysex inside are dropped. Empty for a clean sysex.
    """
    messages: list[tuple[int, ...]] = []
    status = 0  # running status; 0: none (in a sysex, after a system message): data is dropped
    current: list[int] = []
    for byte in data[1:]:
        if byte >= TIMING_CLOCK:  # real-time: one byte, may stand anywhere
            messages.append((byte,))
            continue
        if byte >= STATUS_MIN:
            current = []
            status = byte if message_length(byte) is not None else 0
            if byte in UNDEFINED_SYSTEM_COMMON:
                messages.append((byte,))
            if not status:
                continue
            current = [byte]
        elif status:
            if not current:  # running status
                current = [status]
            current.append(byte)
        else:
            continue
        if len(current) == message_length(current[0]):
            messages.append(tuple(current))
            current = []
            if status >= SYSEX_START:
                status = 0  # system common messages set no running status
    return messages


NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Pitch-class names, index = pitch class (0 = C): the one table deepjam names notes and keys by."""


def pitch_name(pitch: int) -> str:
    """A MIDI pitch's name with its octave, middle C being C4: 60 -> 'C4', 63 -> 'Eb4'."""
    return f"{NOTE_NAMES[pitch % SEMITONES_PER_OCTAVE]}{pitch // SEMITONES_PER_OCTAVE - 1}"


def key_name(tonic_pc: int, minor: bool) -> str:
    """'Eb major', 'A minor'."""
    return f"{NOTE_NAMES[tonic_pc % SEMITONES_PER_OCTAVE]} {'minor' if minor else 'major'}"
