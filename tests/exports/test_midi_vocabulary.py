"""The one MIDI message-length table (exports.midi) and the sysex splitter, by the MIDI 1.0
specification's table of status bytes."""

from __future__ import annotations

from collections import Counter

from exports.midi import (
    MESSAGE_LENGTH,
    UNDEFINED_REAL_TIME,
    UNDEFINED_SYSTEM_COMMON,
    message_length,
    split_swallowed,
)
from live_agent.listener import classify

SPEC_LENGTHS = {0x8: 3, 0x9: 3, 0xA: 3, 0xB: 3, 0xC: 2, 0xD: 2, 0xE: 3}
"""MIDI 1.0, channel voice messages: high nibble -> bytes with the status."""
SPEC_SYSTEM = {0xF1: 2, 0xF2: 3, 0xF3: 2, 0xF6: 1, 0xF8: 1, 0xFA: 1, 0xFB: 1, 0xFC: 1}
SPEC_SYSTEM |= {0xFE: 1, 0xFF: 1}


def test_every_status_byte_has_the_specifications_length() -> None:
    for status in range(0x80, 0xF0):
        assert message_length(status) == SPEC_LENGTHS[status >> 4], hex(status)
    for status in range(0xF0, 0x100):
        assert message_length(status) == SPEC_SYSTEM.get(status), hex(status)
    for data in (0x00, 0x3C, 0x7F):
        assert message_length(data) is None
    assert len(MESSAGE_LENGTH) == len(SPEC_LENGTHS) + len(SPEC_SYSTEM)


def test_undefined_statuses_have_no_length_and_the_input_drops_them() -> None:
    dropped: Counter[str] = Counter()
    for status in (*UNDEFINED_SYSTEM_COMMON, *UNDEFINED_REAL_TIME):
        assert message_length(status) is None
        assert classify((status,), dropped) is None
    assert dropped == Counter(undefined_status=4)


def test_an_undefined_status_in_a_swallowing_sysex_drops_its_data_until_the_next_status() -> None:
    blob = [0xF0, 0x7D, 0x90, 60, 100, 0xF4, 61, 101, 0x80, 60, 0, 0xF9, 0xF7]
    assert split_swallowed(blob) == [(0x90, 60, 100), (0xF4,), (0x80, 60, 0), (0xF9,)]
    # running status does not survive an undefined system-common status
    assert split_swallowed([0xF0, 0x93, 60, 100, 0xF5, 61, 101, 0xF7]) == [(0x93, 60, 100), (0xF5,)]
    # a real-time byte (defined or not) keeps it
    blob = [0xF0, 0x93, 60, 100, 0xFD, 61, 101, 0xF7]
    assert split_swallowed(blob) == [(0x93, 60, 100), (0xFD,), (0x93, 61, 101)]
