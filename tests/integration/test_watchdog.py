"""The watchdog on a real JACK server: a vanished output comes back without a hanging note; a
dead input is found by its probe and reopened with its connections."""

from __future__ import annotations

import queue
import time

import pytest

from exports.midi import ALL_NOTES_OFF, ALL_SOUND_OFF
from live_agent.io.midi_io import MidiInput, MidiOutput
from live_agent.io.ports import resolve_api
from live_agent.io.watchdog import PortWatchdog
from live_agent.ledger import NoteLedger
from live_agent.protocols import InputEvent
from tests.support.jack_probe import inbox_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.jack


def _drain(inbox: queue.SimpleQueue, count: int, timeout_s: float = 3.0) -> list[tuple[int, ...]]:  # type: ignore[type-arg]
    return [e.data for e in inbox_events(inbox, count, timeout_s)]


def test_vanished_output_gets_all_notes_off_when_it_returns(jack_server: object) -> None:
    api = resolve_api("jack")
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    synth = MidiInput(inbox, api, None, virtual=True, client_name="wd-synth")
    out = MidiOutput(api, "wd-synth", client_name="wd-deepjam")
    notes = NoteLedger(out)
    out.reopen_guard = notes.reopen_then_panic
    lines: list[str] = []
    watchdog = PortWatchdog(None, out, lines.append)
    try:
        time.sleep(0.05)
        notes.note_on(3, 62, 80)
        assert _drain(inbox, 1) == [(0x93, 62, 80)]
        synth.close()  # the synth quits with the note held
        time.sleep(0.05)
        watchdog.check()
        assert len(lines) == 1 and "vanished" in lines[0] and "wd-synth" in lines[0]
        notes.note_on(3, 64, 80)  # played into nothing: must also be ended later
        synth = MidiInput(inbox, api, None, virtual=True, client_name="wd-synth")
        time.sleep(0.05)
        watchdog.check()
        assert watchdog.output_reconnects == 1 and "is back" in lines[-1]
        got = _drain(inbox, 4)
        assert got == [
            (0x83, 62, 0),
            (0x83, 64, 0),
            (0xB3, ALL_NOTES_OFF, 0),
            (0xB3, ALL_SOUND_OFF, 0),
        ]
        assert not notes.open_notes
    finally:
        watchdog.stop()
        out.close()
        synth.close()


def test_probe_keeps_a_live_input_and_reopens_a_dead_one(jack_server: object) -> None:
    api = resolve_api("jack")
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    midi_in = MidiInput(inbox, api, None, virtual=True, client_name="wd-in")
    keyboard = MidiOutput(api, "wd-in:deepjam in", client_name="wd-keyboard")
    lines: list[str] = []
    watchdog = PortWatchdog(midi_in, None, lines.append, probe_after_s=0.1, dead_after_s=0.6)
    try:
        time.sleep(0.2)
        probed_ns = time.perf_counter_ns()
        watchdog.check()  # quiet for 0.2 s: a probe goes out and answers
        eventually(lambda: midi_in.last_message_ns >= probed_ns, timeout_s=2)
        assert midi_in.received == 0 and lines == []  # the probe is not a player message
        midi_in.port.handle.cancel_callback()  # the input goes deaf, as a stuck client does

        def reopened() -> bool:
            watchdog.check()
            return watchdog.input_reopens > 0

        eventually(reopened, timeout_s=3, interval_s=0.1)
        assert watchdog.input_reopens == 1, lines
        assert "reopening" in lines[0]
        keyboard.note_on(0, 60, 100)  # the keyboard's connection was restored
        assert _drain(inbox, 1) == [(0x90, 60, 100)]
    finally:
        watchdog.stop()
        keyboard.close()
        midi_in.close()


def test_one_client_backend_reconnects_its_output_and_revives(jack_server: object) -> None:
    from live_agent.io.midi_io import JackClientIO

    api = resolve_api("jack")
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    synth = MidiInput(inbox, api, None, virtual=True, client_name="wd2-synth")
    io = JackClientIO(queue.SimpleQueue(), None, "wd2-synth", client_name="wd2-deepjam")
    notes = NoteLedger(io)
    io.reopen_guard = notes.reopen_then_panic
    lines: list[str] = []
    watchdog = PortWatchdog(None, None, lines.append, dead_after_s=0.3, jack_io=io)
    try:
        time.sleep(0.05)
        notes.note_on(5, 70, 80)
        assert _drain(inbox, 1) == [(0x95, 70, 80)]
        synth.close()
        time.sleep(0.05)
        watchdog.check()
        assert len(lines) == 1 and "vanished" in lines[0]
        synth = MidiInput(inbox, api, None, virtual=True, client_name="wd2-synth")
        time.sleep(0.05)
        watchdog.check()
        assert "is back" in lines[-1]
        assert _drain(inbox, 3) == [
            (0x85, 70, 0),
            (0xB5, ALL_NOTES_OFF, 0),
            (0xB5, ALL_SOUND_OFF, 0),
        ]
        io.client.deactivate()  # JACK stops running the client: no more cycles
        time.sleep(0.05)
        watchdog.check()
        time.sleep(0.4)
        watchdog.check()
        assert any("no cycle" in line for line in lines), lines
        cycles = io.cycles
        time.sleep(0.1)
        assert io.cycles > cycles, "the reopened client gets cycles again"
        notes.note_on(5, 71, 80)  # and still reaches the synth
        assert _drain(inbox, 3) == [
            (0xB5, ALL_NOTES_OFF, 0),
            (0xB5, ALL_SOUND_OFF, 0),
            (0x95, 71, 80),
        ]
    finally:
        watchdog.stop()
        io.close()
        synth.close()


def test_an_input_the_probe_cannot_reach_is_never_reopened(jack_server: object) -> None:
    api = resolve_api("jack")
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    # A client name the watchdog does not expect (as when JACK renames a second instance).
    midi_in = MidiInput(inbox, api, None, virtual=True, client_name="wd-renamed")
    midi_in.client_name = "wd-renamed-01"
    lines: list[str] = []
    watchdog = PortWatchdog(midi_in, None, lines.append, probe_after_s=0.05, dead_after_s=0.2)
    try:
        for _ in range(6):
            watchdog.check()
            time.sleep(0.06)
        assert watchdog.input_reopens == 0
        assert len(lines) == 1 and "dead-input check paused" in lines[0], lines
    finally:
        watchdog.stop()
        midi_in.close()


def test_two_instances_on_one_server_each_probe_their_own_input(jack_server: object) -> None:
    """A second deepjam on the same JACK server gets its own client names, so its watchdog
    probes its own input (not the first one's) and never reopens a live input."""
    from live_agent.io.ports import instance_names, list_ports

    api = resolve_api("jack")
    first_names = instance_names(api)
    first = MidiInput(queue.SimpleQueue(), api, None, virtual=True, client_name=first_names.input)
    second_names = instance_names(api)
    second = MidiInput(queue.SimpleQueue(), api, None, virtual=True, client_name=second_names.input)
    # (Another test's jam may still hold "deepjam-in" on this server: compare, do not name.)
    assert second_names != first_names
    assert second_names.input.startswith("deepjam-") and second_names.input.endswith("-in")
    lines: list[str] = []
    watchdog = PortWatchdog(
        second,
        None,
        lines.append,
        probe_after_s=0.05,
        dead_after_s=0.3,
        probe_client_name=second_names.watchdog,
    )
    try:
        for _ in range(10):
            watchdog.check()
            time.sleep(0.06)
        assert watchdog.input_reopens == 0, lines
        assert lines == []
        assert time.perf_counter_ns() - second.last_message_ns < 0.2e9  # its probes arrive
        shown = list_ports(api)
        assert not [p for p in shown.inputs + shown.outputs if "deepjam" in p]  # none shown
    finally:
        watchdog.stop()
        second.close()
        first.close()


STEP_S_AT_120_BPM = 0.125
"""A 16th at 120 bpm: a note swallowed by a broken sysex must be heard within it."""


def test_an_unterminated_sysex_deafens_the_input_until_the_watchdog_ends_it(
    jack_server: object,
) -> None:
    """The fault is real: a sysex whose 0xF7 never comes, from an outside JACK client, makes
    rtmidi's input hear nothing after it. With the watchdog running, every note played after
    such a sysex is heard within a 16th, and each recovery is counted and logged once."""
    from exports.midi import SYSEX_START
    from tests.support.jack_probe import NOTE_OFF, NOTE_ON, jack_recorder

    api = resolve_api("jack")
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    midi_in = MidiInput(inbox, api, None, virtual=True, client_name="sx-in")
    lines: list[str] = []
    watchdog = PortWatchdog(midi_in, None, lines.append, probe_client_name="sx-watchdog")
    try:
        with jack_recorder("sx-keyboard") as keyboard:
            keyboard.connect_to("sx-in:deepjam in")
            time.sleep(0.05)
            keyboard.send([NOTE_ON, 59, 90])
            assert _drain(inbox, 1) == [(NOTE_ON, 59, 90)]
            keyboard.send([SYSEX_START, 0x7D, 0x01])  # its end never comes
            time.sleep(0.02)
            keyboard.send([NOTE_ON, 60, 100])
            assert _drain(inbox, 1, timeout_s=0.4) == [], "deaf: the note is glued to the sysex"
            watchdog.start()
            assert _drain(inbox, 1) == [(NOTE_ON, 60, 100)]  # handed back at the next 0xF7
            time.sleep(0.2)
            heard: list[InputEvent] = []
            for pitch in (62, 64, 65):  # a broken sysex before each note
                keyboard.send([SYSEX_START, 0x7D, pitch])
                time.sleep(0.01)  # a later cycle
                keyboard.send([NOTE_ON, pitch, 100])
                keyboard.send([NOTE_OFF, pitch, 0])
                heard += inbox_events(inbox, 2, timeout_s=1.0)
                time.sleep(0.1)
            sent = {bytes(e.data): e.time_ns for e in keyboard.sent if e.data[0] & 0xF0 == NOTE_ON}
    finally:
        watchdog.stop()
        midi_in.close()
    assert [e.data for e in heard] == [
        (NOTE_ON, 62, 100),
        (NOTE_OFF, 62, 0),
        (NOTE_ON, 64, 100),
        (NOTE_OFF, 64, 0),
        (NOTE_ON, 65, 100),
        (NOTE_OFF, 65, 0),
    ]
    late_s = [(e.time_ns - sent[bytes(e.data)]) / 1e9 for e in heard if e.data[0] == NOTE_ON]
    assert max(late_s) < STEP_S_AT_120_BPM, late_s
    # The first sysex swallowed a note for sure; a later one may meet the watchdog's 0xF7 in
    # the same cycle, before its note: then nothing was swallowed and nothing is counted.
    assert 1 <= midi_in.sysex_recoveries <= 4
    assert any("sysex without its end" in line for line in lines), lines
    assert watchdog.input_reopens == 0, lines  # recovered in place, not reopened


def test_an_input_reopens_under_a_steady_stream_without_crashing(jack_server: object) -> None:
    """Closing a JACK input while notes pour in (and the watchdog's 0xF7 with them) once
    crashed the process: rtmidi's callback was freed, or its JACK thread killed, mid-call
    (ports.OpenedPort.close). Reopened again and again under a stream, it must go on hearing."""
    import threading

    api = resolve_api("jack")
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    keyboard = MidiOutput(api, None, virtual=True, client_name="soak-keyboard")
    midi_in = MidiInput(inbox, api, "soak-keyboard", client_name="soak-in")
    watchdog = PortWatchdog(midi_in, None, [].append, probe_client_name="soak-watchdog")
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            keyboard.note_on(0, 60, 100)
            keyboard.note_off(0, 60)
            time.sleep(0.001)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        for _ in range(10):
            time.sleep(0.02)
            watchdog.end_sysex()
            midi_in.reopen()
        received = midi_in.received
        time.sleep(0.1)
        assert midi_in.received > received, "the reopened input hears the stream"
    finally:
        stop.set()
        streamer.join(1.0)
        watchdog.stop()
        midi_in.close()
        keyboard.close()
    assert midi_in.reopened == 10
