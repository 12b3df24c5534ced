"""MIDI's own numbers, in one place (the MIDI 1.0 specification's names).

Status bytes of channel messages carry the channel (0-based) in their low nibble:
``NOTE_ON | channel``. Channels are 0-based everywhere inside deepjam, 1-16 only at the CLI.
"""

from __future__ import annotations

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

MAX_DATA = 0x7F
"""The largest data byte (velocity, controller value, pitch)."""
MIDI_CHANNELS = 16
MIDI_PITCHES = 128
SEMITONES_PER_OCTAVE = 12

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Pitch-class names, index = pitch class (0 = C): the one table deepjam names notes and keys by."""


def pitch_name(pitch: int) -> str:
    """A MIDI pitch's name with its octave, middle C being C4: 60 -> 'C4', 63 -> 'Eb4'."""
    return f"{NOTE_NAMES[pitch % SEMITONES_PER_OCTAVE]}{pitch // SEMITONES_PER_OCTAVE - 1}"


def key_name(tonic_pc: int, minor: bool) -> str:
    """'Eb major', 'A minor'."""
    return f"{NOTE_NAMES[tonic_pc % SEMITONES_PER_OCTAVE]} {'minor' if minor else 'major'}"
