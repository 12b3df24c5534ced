"""The one note ledger: open notes, the output gate, one panic."""

from __future__ import annotations

import threading

from exports.midi import ALL_NOTES_OFF, ALL_SOUND_OFF
from live_agent.clock import FakeClock
from live_agent.ledger import NoteLedger
from tests.fakes import MS, RecordingNoteSink


def _ccs(sink: RecordingNoteSink) -> list[tuple]:
    return [e for e in sink.events if e[1] == "cc"]


def test_closing_the_gate_twice_sends_all_notes_off_once() -> None:
    """Ctrl-C: the signal handler closes the gate, then the session's finally closes it again."""
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    notes = NoteLedger(sink, clock)
    notes.note_on(0, 60, 90)
    notes.forward((0x92, 50, 70))
    clock.advance(100 * MS)
    assert notes.close_gate(extra_channels=(0,)) is True
    assert notes.close_gate(extra_channels=(0,)) is False
    assert _ccs(sink) == [
        (100 * MS, "cc", 0, ALL_NOTES_OFF, 0),
        (100 * MS, "cc", 0, ALL_SOUND_OFF, 0),
        (100 * MS, "cc", 2, ALL_NOTES_OFF, 0),
        (100 * MS, "cc", 2, ALL_SOUND_OFF, 0),
    ]
    assert sink.sounding() == set() and notes.panics == 1


def test_after_the_gate_no_note_starts_and_every_note_ends_at_once() -> None:
    """A signal that lands just after a step's note-on: that note ends at once (shutdown within
    3 ms, wherever the signal lands), and nothing (agent or thru) starts after the gate closed."""
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    notes = NoteLedger(sink, clock)
    notes.note_on(0, 64, 90)
    clock.advance(40_000)  # the signal arrives 40 us after the boundary's note-on
    notes.close_gate()
    notes.note_on(0, 67, 90)
    notes.forward((0x90, 69, 90))
    on = [e for e in sink.events if e[1] in ("on", "send")]
    off = [e for e in sink.events if e[1] == "off"]
    assert on == [(0, "on", 0, 64, 90)]
    assert off == [(40_000, "off", 0, 64)]
    assert notes.dropped_after_stop == 2


def test_a_signal_that_landed_before_its_handler_ran_stops_the_next_note_on() -> None:
    """``stop_asked`` turns True (the signal landed) while the handler has not run yet: the
    note-on due now is not sent, and the gate closes there, with every note ended."""
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    notes = NoteLedger(sink, clock)
    notes.panic_channels = (3,)
    landed = [False]
    notes.stop_asked = lambda: landed[0]
    notes.note_on(3, 60, 90)
    clock.advance(125 * MS)
    landed[0] = True
    notes.note_on(3, 62, 90)
    assert notes.closing and notes.dropped_after_stop == 1
    assert sink.events == [
        (0, "on", 3, 60, 90),
        (125 * MS, "off", 3, 60),
        (125 * MS, "cc", 3, ALL_NOTES_OFF, 0),
        (125 * MS, "cc", 3, ALL_SOUND_OFF, 0),
    ]
    assert notes.close_gate() is False  # the handler's own close, later: nothing twice


def test_a_forwarded_note_whose_note_off_was_lost_is_released() -> None:
    sink = RecordingNoteSink()
    notes = NoteLedger(sink)
    notes.forward((0x91, 62, 80))
    notes.note_on(1, 62, 90)  # the agent's own note of the same pitch and channel stays
    assert notes.release_forwarded(62) == 1
    assert sink.events[-1] == (0, "off", 1, 62)
    assert (1, 62) in notes.open_notes and not notes.forwarded


def test_the_gate_holds_against_a_thread_sending_notes() -> None:
    """The scheduler plays note after note while another thread closes the gate: afterwards
    nothing sounds and no note-on came after the panic's CCs."""
    sink = RecordingNoteSink()
    notes = NoteLedger(sink)
    stop = threading.Event()

    def play() -> None:
        pitch = 40
        while not stop.is_set():
            notes.note_on(0, pitch, 90)
            notes.note_off(0, pitch)
            notes.note_on(0, pitch + 1, 90)
            pitch = 40 + (pitch + 1) % 40

    player = threading.Thread(target=play)
    player.start()
    while notes.notes_sent < 200:
        pass
    notes.close_gate()
    stop.set()
    player.join(5.0)
    kinds = [e[1] for e in sink.events]
    last_cc = len(kinds) - 1 - kinds[::-1].index("cc")
    assert "on" not in kinds[last_cc:]
    assert sink.sounding() == set()
    assert notes.panics == 1
