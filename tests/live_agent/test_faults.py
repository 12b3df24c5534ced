"""Faults an outside client found, each reproduced: exact event lists on a fake clock."""

from __future__ import annotations

import threading

from exports.spec import HOLD
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from tests.fakes import MS, RecordingNoteSink, ScriptedPolicy, inbox_of

STEP = 125 * MS  # a 16th at 120 bpm


def _session(
    events: list[tuple[int, tuple[int, ...]]], **options: object
) -> tuple[Session, RecordingNoteSink]:
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    values = {"bpm": 120.0, "temperature": 0.0, "seed": 0, "velocity": 90, **options}
    session = Session(
        ScriptedPolicy([HOLD]),
        JamOptions(**values),  # type: ignore[arg-type]
        sink,
        clock,
        inbox_of(events, close=False),
        controls=ControlMap(),
    )
    return session, sink


def test_thru_note_whose_note_off_was_lost_ends_with_the_held_timeout() -> None:
    """--thru: the player's note-off never arrives (an unterminated sysex swallowed it). The
    held-note timeout forgets the key, and the forwarded note ends then, not at session end."""
    timeout_steps = 16
    session, sink = _session(
        [(10 * MS, (0x90, 62, 80))], mode="answer", thru=True, held_timeout_steps=timeout_steps
    )
    session.run(threading.Event(), until_step=64, start_ns=0)
    offs = [e for e in sink.events if e[1] == "off" and e[3] == 62]
    assert offs, sink.events
    assert offs[0][0] <= (timeout_steps + 2) * STEP, offs
    assert session.listener.timed_out == 1
    assert sink.sounding() == set()


def test_a_swallowing_sysex_gives_back_the_messages_inside_it() -> None:
    """What rtmidi hands over when a lone 0xF7 ends a sysex that lost its end (measured on
    real JACK: tests/integration/test_watchdog.py): the messages after the first status byte."""
    from live_agent.io.midi_io import split_swallowed

    blob = [0xF0, 0x7D, 0x01, 0x90, 60, 100, 0x80, 60, 0, 0xF7]
    assert split_swallowed(blob) == [(0x90, 60, 100), (0x80, 60, 0)]
    assert split_swallowed([0xF0, 0x7D, 0x01, 0x02, 0xF7]) == []  # a clean sysex
    # running status, a real-time byte inside, a two-byte message, a truncated tail
    blob = [0xF0, 0x7D, 0x93, 60, 100, 61, 101, 0xF8, 0xC3, 5, 0xB0, 64, 0xF7]
    assert split_swallowed(blob) == [(0x93, 60, 100), (0x93, 61, 101), (0xF8,), (0xC3, 5)]
    # a second sysex inside is dropped with its data; what follows it is kept
    blob = [0xF0, 0x01, 0xF0, 0x02, 0x03, 0x90, 62, 80, 0xF7]
    assert split_swallowed(blob) == [(0x90, 62, 80)]
    # system common messages take no running status
    assert split_swallowed([0xF0, 0xF3, 4, 5, 0xF2, 1, 2, 0xF7]) == [(0xF3, 4), (0xF2, 1, 2)]
