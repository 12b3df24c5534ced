"""Issue 2's check: notes pass through real python-rtmidi ports on a real JACK server, through
deepjam's own MidiInput (callback -> Inbox) and MidiOutput (NoteSink)."""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest

from exports.midi import ALL_NOTES_OFF, ALL_SOUND_OFF
from live_agent.io.midi_io import MidiInput, MidiOutput
from live_agent.io.ports import resolve_api
from live_agent.ledger import NoteLedger
from live_agent.protocols import InputEvent
from tests.support.jack_probe import inbox_events

pytestmark = pytest.mark.jack


def test_notes_pass_from_a_sender_port_to_a_receiver_port(jack_server: object) -> None:
    api = resolve_api("jack")
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    receiver = MidiInput(inbox, api, None, virtual=True, client_name="test-receiver")
    sender = MidiOutput(api, "test-receiver", client_name="test-sender")
    try:
        time.sleep(0.05)
        before_ns = time.perf_counter_ns()
        for pitch in range(60, 72):
            sender.note_on(2, pitch, 90)
            time.sleep(0.002)
            sender.note_off(2, pitch)
        events = inbox_events(inbox, 24)
        assert [e.data for e in events] == [
            m for p in range(60, 72) for m in ((0x92, p, 90), (0x82, p, 0))
        ]
        times = [e.time_ns for e in events]
        assert times == sorted(times) and times[0] >= before_ns
        assert receiver.received == 24 and receiver.callback_errors == 0
        assert sender.send_errors == 0
    finally:
        sender.close()
        receiver.close()


def test_panic_ends_held_notes_and_clock_passes(jack_server: object) -> None:
    api = resolve_api("jack")
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    receiver = MidiInput(inbox, api, None, virtual=True, client_name="test-synth")
    sender = MidiOutput(api, "test-synth", client_name="test-player")
    notes = NoteLedger(sender)
    try:
        time.sleep(0.05)
        sender.send((0xF8,))  # MIDI clock must not be filtered (--clock midi)
        notes.note_on(0, 64, 100)
        notes.note_on(0, 67, 100)
        sender.send((0xFE,))  # Active Sensing: a liveness probe, never enqueued
        notes.panic()
        events = inbox_events(inbox, 7)
        assert [e.data for e in events] == [
            (0xF8,),
            (0x90, 64, 100),
            (0x90, 67, 100),
            (0x80, 64, 0),
            (0x80, 67, 0),
            (0xB0, ALL_NOTES_OFF, 0),
            (0xB0, ALL_SOUND_OFF, 0),
        ]
        assert not notes.open_notes and notes.panics == 1
    finally:
        sender.close()
        receiver.close()


def test_one_client_backend_places_notes_to_the_frame(jack_server: object) -> None:
    """Messages sent 10 ms apart arrive about 480 frames apart (48 kHz), placed inside the
    period, where python-rtmidi snaps every message to a period start (gaps of k * 256 frames);
    input from a peer lands on the Inbox."""
    from live_agent.clock import RealClock
    from live_agent.io.midi_io import JackClientIO
    from tests.support.jack_probe import jack_recorder

    clock = RealClock()
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    with jack_recorder("frame-listener") as recorder:
        io = JackClientIO(inbox, recorder.out_name, "frame-listener:in", client_name="dj-frames")
        try:
            assert io.input_name == recorder.out_name and io.name == "dj-frames:deepjam out"
            time.sleep(0.05)
            notes = NoteLedger(io)
            deadline_ns = clock.now_ns() + 5_000_000
            for pitch in range(60, 84):
                clock.sleep_until(deadline_ns)
                notes.note_on(0, pitch, 100)
                deadline_ns += 10_000_000
            notes.panic()
            recorder.send((0x91, 40, 70))
            assert io.flush(1.0)
            time.sleep(0.05)
            got = inbox_events(inbox, 1)
        finally:
            io.close()
        frames = [e.frame for e in recorder.note_ons()]
    assert [e.data for e in got] == [(0x91, 40, 70)] and io.received == 1
    assert len(frames) == 24, recorder.events
    gaps = np.diff(frames)
    assert abs(float(np.median(gaps)) - 480) <= 48, gaps  # the median gap is 10 ms +- 1 ms
    assert np.mean(gaps % 256 != 0) > 0.5, gaps  # placed inside periods, not at their start
    assert io.send_errors == 0 and io.callback_errors == 0


def test_input_callback_counts_bad_input_and_never_raises(jack_server: object) -> None:
    api = resolve_api("jack")
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    midi_in = MidiInput(inbox, api, None, virtual=True, client_name="test-bad-input")
    try:
        midi_in._on_message(([], 0.0))  # what no backend should ever hand us
        midi_in._on_message(None)  # type: ignore[arg-type]
        assert midi_in.callback_errors == 2 and midi_in.received == 0 and inbox.empty()
        sender = MidiOutput(api, "test-bad-input", client_name="test-bad-sender")
        try:
            time.sleep(0.05)
            sender.send((0x40, 0x41))  # no status byte: passed on raw, the listener judges it
            sender.send((0x90, 61, 90))
            assert [e.data for e in inbox_events(inbox, 2)] == [(0x40, 0x41), (0x90, 61, 90)]
        finally:
            sender.close()
    finally:
        midi_in.close()
