"""Following MIDI clock: 24 ppqn ticks -> 16th steps, Start / Stop / Continue / Song Position."""

from __future__ import annotations

import threading

from exports.spec import DEFAULT_SPEC, HOLD
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from tests.fakes import MS, RecordingNoteSink, ScriptedPolicy, inbox_of

CLOCK, START, CONTINUE, STOP, SPP = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
NOTE_C4 = DEFAULT_SPEC.action_for_pitch(60)
NOTE_E4 = DEFAULT_SPEC.action_for_pitch(64)
TICK = 20 * MS  # 125 bpm: a 16th is 6 ticks = 120 ms
BAR_ONE_HOT = 2 * DEFAULT_SPEC.window_steps * DEFAULT_SPEC.features_per_part_step


def ticks(first_ns: int, count: int) -> list[tuple[int, tuple[int, ...]]]:
    return [(first_ns + i * TICK, (CLOCK,)) for i in range(count)]


def run(events: list[tuple[int, tuple[int, ...]]], script: list[int]):
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    policy = ScriptedPolicy(script)
    options = JamOptions(
        mode="duet", clock="midi", temperature=0.0, seed=0, velocity=90, duet_wait_notes=0
    )
    session = Session(policy, options, sink, clock, inbox_of(events), controls=ControlMap())
    session.run(threading.Event())
    return session, sink, policy


def bar_positions(policy: ScriptedPolicy) -> list[int]:
    return [int(s[0, BAR_ONE_HOT : BAR_ONE_HOT + 16].argmax()) for s in policy.states]


def test_steps_follow_every_sixth_tick_and_stop_continue() -> None:
    events = [(0, (START,)), *ticks(10 * MS, 20), (400 * MS, (STOP,))]
    events += [(500 * MS, (CONTINUE,)), *ticks(510 * MS, 8)]
    session, sink, policy = run(events, [NOTE_C4, HOLD, HOLD, HOLD, NOTE_E4, HOLD])
    assert sink.events == [
        (10 * MS, "on", 0, 60, 90),  # tick 0 after Start: step 0
        (400 * MS, "off", 0, 60),  # Stop: the agent falls silent at once
        (590 * MS, "on", 0, 64, 90),  # Continue: ticks 20..23 go by, tick 24 is step 4
        (650 * MS, "off", 0, 64),  # the input ended (sentinel): every note closed
        (650 * MS, "cc", 0, 123, 0),
        (650 * MS, "cc", 0, 120, 0),
    ]
    assert bar_positions(policy) == [0, 1, 2, 3, 4]  # step 5's tick never comes
    assert session.stats.steps == 5
    assert session.stats.late_steps == 0


def test_decisions_come_just_before_the_predicted_tick() -> None:
    events = [(0, (START,)), *ticks(10 * MS, 13)]
    session, sink, policy = run(events, [NOTE_C4, NOTE_E4, NOTE_C4])
    assert [e[0] for e in sink.events if e[1] == "on"] == [10 * MS, 130 * MS, 250 * MS]
    assert session.stats.timing.margin_ns == 1 * MS  # nothing measured on a fake clock: the floor
    assert session.stats.late_steps == 0
    assert policy.calls == 3


def test_start_again_goes_back_to_step_zero_and_song_position_moves_it() -> None:
    events = [(0, (START,)), *ticks(10 * MS, 13), (300 * MS, (STOP,))]
    # Song Position Pointer (in 16ths) while stopped: 5 = bar 1, 16th 5; Continue from there.
    events += [(310 * MS, (SPP, 5, 0)), (320 * MS, (CONTINUE,)), *ticks(330 * MS, 7)]
    events += [(500 * MS, (STOP,)), (510 * MS, (START,)), *ticks(520 * MS, 1)]
    _, _, policy = run(events, [HOLD])
    assert bar_positions(policy) == [0, 1, 2, 5, 6, 0]


def test_clock_while_stopped_plays_nothing() -> None:
    _, sink, policy = run(ticks(0, 48), [NOTE_C4])
    assert policy.calls == 0
    assert [e for e in sink.events if e[1] == "on"] == []


def test_ticks_quantized_by_a_jack_period_are_not_late_steps() -> None:
    """Ticks that arrive on JACK period boundaries (5.3 ms at 256 frames) come up to a period
    before or after the tick the smoothed tempo predicts, some before the decision made ahead of
    it. The note still leaves on the tick: no step is late (only a note that left more than
    LATE_NS after its tick is)."""
    period = 5_333_333
    times = [((10 * MS + i * TICK) // period + 1) * period for i in range(24 * 8)]
    events = [(0, (START,)), *[(t, (CLOCK,)) for t in times]]
    session, sink, _ = run(events, [NOTE_C4, NOTE_E4, NOTE_C4 + 7])  # C E G: no trill
    assert session.stats.steps == 32
    assert session.stats.late_steps == 0
    ons = [e[0] for e in sink.events if e[1] == "on"]
    assert ons == [times[6 * k] for k in range(32)]
