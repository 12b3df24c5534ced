"""Shutdown on a boundary: once a signal has landed no note-on goes out and every note ends at
once, even when the signal lands on a step boundary before Python's handler has run."""

from __future__ import annotations

import os
import signal
import threading
import time

from exports.spec import DEFAULT_SPEC
from live_agent.cli.jam_command import SignalLatch
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from tests.fakes import MS, RecordingNoteSink, ScriptedPolicy, inbox_of

STEP = 125 * MS
NOTE_C4 = DEFAULT_SPEC.action_for_pitch(60)
NOTE_E4 = DEFAULT_SPEC.action_for_pitch(64)
NOTE_G4 = DEFAULT_SPEC.action_for_pitch(67)


def test_a_signal_landing_on_a_boundary_stops_that_boundary_s_note_on() -> None:
    """The latch turns at 3 steps exactly (the boundary), while the handler has not run: the
    note-on due then is not sent; the sounding note ends there, with CC 123 / 120, once."""
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    session = Session(
        ScriptedPolicy([NOTE_C4, NOTE_E4, NOTE_G4]),  # (two notes in turn would be a trill)
        JamOptions(mode="duet", temperature=0.0, velocity=90, duet_wait_notes=0, channel=2),
        sink,
        clock,
        inbox_of([], close=False),
        controls=ControlMap(),
    )
    session.notes.stop_asked = lambda: clock.now_ns() >= 3 * STEP
    session.run(threading.Event(), until_step=6, start_ns=0)
    # (The handler would stop the session a moment later; here it plays on, gated.)
    assert [e for e in sink.events if e[0] <= 3 * STEP] == [
        (0, "on", 2, 60, 90),
        (STEP, "off", 2, 60),
        (STEP, "on", 2, 64, 90),
        (2 * STEP, "off", 2, 64),
        (2 * STEP, "on", 2, 67, 90),
        (3 * STEP, "off", 2, 67),  # the boundary's note change: its note-off goes out ...
        (3 * STEP, "cc", 2, 123, 0),  # ... its note-on does not; the gate closes there
        (3 * STEP, "cc", 2, 120, 0),
    ]
    assert all(e[1] == "off" for e in sink.events if e[0] > 3 * STEP)
    assert session.notes.dropped_after_stop == 3  # the note-ons of steps 3, 4 and 5


def test_the_latch_knows_a_signal_before_the_handler_runs() -> None:
    """A real SIGTERM to this process: a thread polling the latch sees it, and the handler
    (main thread) runs too; another signal's byte does not count."""
    handled: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: handled.append(signum))
    previous_usr1 = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    latch = SignalLatch()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01)
        assert not latch()
        seen = threading.Event()

        def poll() -> None:
            deadline = time.monotonic() + 5
            while not latch() and time.monotonic() < deadline:
                time.sleep(0.0001)
            if latch():
                seen.set()

        thread = threading.Thread(target=poll)
        thread.start()
        os.kill(os.getpid(), signal.SIGTERM)
        thread.join(5)
        assert seen.is_set() and latch()
        time.sleep(0.01)
        assert handled == [signal.SIGTERM]
    finally:
        latch.close()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGUSR1, previous_usr1)
