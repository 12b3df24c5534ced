"""``--clock auto`` and MIDI clock: the clock has the grid only while it runs, and hands it back.

Exact event lists on a fake clock with scripted MIDI: a lone clock byte changes nothing; a DAW's
Start, ticks and Stop take the grid over on the clock's own tick and give it back, numbered on,
without a lost step; a run of ticks without Start takes over once it is steady; a clock that
goes quiet hands back after about a beat."""

from __future__ import annotations

import threading

from exports.spec import DEFAULT_SPEC, HOLD
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from tests.fakes import MS, RecordingNoteSink, ScriptedPolicy, inbox_of

CLOCK, START, STOP, SPP, CONTINUE = 0xF8, 0xFA, 0xFC, 0xF2, 0xFB
STEP = 125 * MS  # a 16th at --bpm 120
TICK = 20 * MS  # the DAW at 125 bpm: a 16th is 6 ticks = 120 ms
CLOCK_STEP = 6 * TICK
C4 = 60
NOTE_C4 = DEFAULT_SPEC.action_for_pitch(60)
NOTE_E4 = DEFAULT_SPEC.action_for_pitch(64)
BAR_ONE_HOT = 2 * DEFAULT_SPEC.window_steps * DEFAULT_SPEC.features_per_part_step
Events = list[tuple[int, tuple[int, ...]]]


def run(
    events: Events, script: list[int], steps: int, **options: object
) -> tuple[Session, RecordingNoteSink, ScriptedPolicy]:
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    policy = ScriptedPolicy(script)
    values = {"bpm": 120.0, "temperature": 0.0, "seed": 0, "velocity": 90, **options}
    session = Session(
        policy,
        JamOptions(**values),  # type: ignore[arg-type]
        sink,
        clock,
        inbox_of(events, close=False),
        controls=ControlMap(),
    )
    session.run(threading.Event(), until_step=steps, start_ns=0)
    return session, sink, policy


def ticks(first_ns: int, count: int, tick_ns: int = TICK) -> Events:
    return [(first_ns + i * tick_ns, (CLOCK,)) for i in range(count)]


def bar_positions(policy: ScriptedPolicy) -> list[int]:
    return [int(s[0, BAR_ONE_HOT : BAR_ONE_HOT + 16].argmax()) for s in policy.states]


def onsets(sink: RecordingNoteSink) -> list[int]:
    return [e[0] for e in sink.events if e[1] == "on"]


CALL: Events = [(0, (0x90, C4, 100)), (2 * STEP, (0x80, C4, 0))]


def test_the_answer_to_a_call_is_the_same_after_a_lone_clock_byte_or_start() -> None:
    """A call is answered; a lone 0xF8, a lone 0xFA, or Start followed by nothing, before or
    inside it, changes nothing: the same answer, at the same times."""
    script = [NOTE_E4, HOLD]
    _, plain, _ = run(CALL, script, steps=26, mode="answer", answer_bars=1)
    assert onsets(plain) and onsets(plain)[0] >= 4 * STEP  # after the call
    strays: list[Events] = [
        [(STEP // 2, (CLOCK,))],
        [(STEP // 2, (START,))],
        [(3 * STEP, (START,))],
    ]
    for stray in strays:
        session, sink, _ = run(sorted(CALL + stray), script, steps=26, mode="answer", answer_bars=1)
        assert sink.events == plain.events, stray
        assert session.stats.answers == 1
        assert not session._midi_clock_heard


def test_start_ticks_stop_hand_the_grid_over_and_back_without_a_lost_step() -> None:
    """--bpm 120 plays steps 0..3; a DAW's Start at 300 ms and ticks from 310 ms (125 bpm): once
    a 16th of steady ticks has come, the clock takes over on its own step 1 (430 ms) and plays
    its 16ths; after Stop the grid goes on from the clock's last 16th (step 7 at 1150 ms) at its
    tempo, numbered on: step 8 at 1270 ms, and so on."""
    events = [(300 * MS, (START,)), *ticks(310 * MS, 48), (1260 * MS, (STOP,))]
    session, sink, policy = run(events, [NOTE_C4], steps=14, mode="duet", duet_wait_notes=0)
    internal = [0, STEP, 2 * STEP, 3 * STEP]
    followed = [310 * MS + k * CLOCK_STEP for k in range(1, 8)]
    handed_back = [1150 * MS + k * CLOCK_STEP for k in range(1, 4)]
    assert onsets(sink) == internal + followed + handed_back
    # Every 16th has one decision; the bar position runs 0..3 (--bpm), then the clock's own
    # 1..7, then on from there.
    assert bar_positions(policy) == [0, 1, 2, 3, *range(1, 8), 8, 9, 10]
    assert session.stats.steps == 14 and session.stats.timing.skipped_steps == 0
    assert session.stats.late_steps == 0
    assert not session._midi_clock_heard
    assert sink.sounding() == set()


def test_song_position_and_continue_count_from_that_16th() -> None:
    """Song Position Pointer 4, then Continue: the clock's first tick is its 16th 4; it takes
    the grid a 16th later, on 16th 5."""
    events = [(300 * MS, (SPP, 4, 0)), (305 * MS, (CONTINUE,)), *ticks(310 * MS, 19)]
    events += [(680 * MS, (STOP,))]
    _, sink, policy = run(events, [NOTE_C4], steps=7, mode="duet", duet_wait_notes=0)
    assert onsets(sink) == [0, STEP, 2 * STEP, 3 * STEP, 430 * MS, 550 * MS, 670 * MS]
    assert bar_positions(policy) == [0, 1, 2, 3, 5, 6, 7]


def test_a_steady_run_of_ticks_takes_over_and_a_quiet_clock_hands_back() -> None:
    """No Start: the 24th steady tick (a beat) is the clock's step 0. The clock then goes quiet
    (no Stop): after a beat with no tick the grid goes on from the clock's last 16th, numbered
    on; the 16ths that passed unheard are counted as skipped."""
    run_start = 60 * MS
    events = ticks(run_start, 24 + 12)
    last_tick = run_start + 35 * TICK  # 760 ms
    session, sink, policy = run(events, [NOTE_C4], steps=15, mode="duet", duet_wait_notes=0)
    takeover = run_start + 23 * TICK  # 520 ms
    internal = [k * STEP for k in range(5)]  # steps 0..4 up to 500 ms
    followed = [takeover, takeover + CLOCK_STEP, takeover + 2 * CLOCK_STEP]  # clock 0, 1, 2
    assert onsets(sink)[:8] == internal + followed
    # Quiet from 760 ms: a beat (24 ticks, 480 ms) later, at 1240 ms, the grid is back; the
    # clock's 16ths 3..6 (880 .. 1240 ms) passed unheard (the boundary at the hand-back is too
    # late to decide for); 16th 7 at 1360 ms is played, numbered on.
    assert last_tick + 24 * TICK == 1240 * MS
    back = [takeover + k * CLOCK_STEP for k in range(7, 10)]
    assert onsets(sink)[8:] == back
    # 16th 3 was decided ahead of its tick, which never came: that decision is not sent.
    assert bar_positions(policy)[5:] == [0, 1, 2, 3, 7, 8, 9]
    assert session.stats.timing.skipped_steps == 4
    assert session.stats.late_steps == 0
    assert not session._midi_clock_heard


def test_ticks_that_are_not_steady_change_nothing() -> None:
    """Random clock bytes (uneven gaps) never take the grid: the notes stay on --bpm."""
    import numpy as np

    rng = np.random.default_rng(3)
    times = np.cumsum(rng.integers(1, 120, size=60)) * MS
    events: Events = [(int(t), (CLOCK,)) for t in times]
    _, sink, _ = run(events, [NOTE_C4], steps=24, mode="duet", duet_wait_notes=0)
    assert onsets(sink) == [k * STEP for k in range(24)]


def test_after_random_clock_and_transport_bytes_the_next_call_is_answered_as_without() -> None:
    """Two seconds of random clock, Start, Stop, Continue and Song Position bytes, then a call
    at 3 s: the answer is the one a session without them plays, at the same times."""
    import numpy as np

    rng = np.random.default_rng(7)
    kinds: list[tuple[int, ...]] = [(CLOCK,)] * 6 + [(START,), (STOP,), (CONTINUE,), (SPP, 3, 0)]
    times = np.sort(rng.integers(0, 2_500 * MS, 400))
    noise: Events = [(int(t), kinds[int(rng.integers(len(kinds)))]) for t in times]
    call: Events = [(24 * STEP + t, data) for t, data in CALL]
    script = [NOTE_E4, HOLD]
    _, plain, _ = run(call, script, steps=50, mode="answer", answer_bars=1)
    session, sink, _ = run(noise + call, script, steps=50, mode="answer", answer_bars=1)
    assert onsets(plain) and onsets(plain)[0] >= 28 * STEP  # after the call
    assert sink.events == plain.events
    assert session.stats.answers == 1
