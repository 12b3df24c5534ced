"""Exact event lists of the live session, on a fake clock that jumps, with a scripted policy."""

from __future__ import annotations

import queue
import threading

import pytest

from exports.spec import DEFAULT_SPEC, HOLD, REST
from live_agent.agent import WARM_UP_CALLS
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from tests.fakes import MS, RecordingNoteSink, ScriptedPolicy, inbox_of

STEP = 125 * MS  # a 16th at 120 bpm
C4 = 60
NOTE_C4 = DEFAULT_SPEC.action_for_pitch(60)
NOTE_E4 = DEFAULT_SPEC.action_for_pitch(64)


def run_session(
    script: list[int],
    events: list[tuple[int, tuple[int, ...]]],
    steps: int,
    **options: object,
) -> tuple[Session, RecordingNoteSink, ScriptedPolicy]:
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    policy = ScriptedPolicy(script)
    values = {
        "bpm": 120.0,
        "temperature": 0.0,
        "seed": 0,
        "velocity": 90,
        "duet_wait_notes": 0,
        **options,
    }
    session = Session(
        policy,
        JamOptions(**values),
        sink,
        clock,
        inbox_of(events, close=False),  # type: ignore[arg-type]
        controls=ControlMap(),
    )
    session.run(threading.Event(), until_step=steps, start_ns=0)
    return session, sink, policy


def test_duet_plays_on_the_grid_and_closes_every_note() -> None:
    session, sink, _ = run_session([NOTE_C4, HOLD, NOTE_E4, REST], [], steps=8, mode="duet")
    assert sink.events == [
        (0 * STEP, "on", 0, 60, 90),
        (2 * STEP, "off", 0, 60),
        (2 * STEP, "on", 0, 64, 90),
        (3 * STEP, "off", 0, 64),
        (4 * STEP, "on", 0, 60, 90),
        (6 * STEP, "off", 0, 60),
        (6 * STEP, "on", 0, 64, 90),
        (7 * STEP, "off", 0, 64),
        (7 * STEP, "cc", 0, 123, 0),
        (7 * STEP, "cc", 0, 120, 0),
    ]
    assert session.stats.decisions == 8
    assert session.stats.late_steps == 0
    assert sink.sounding() == set()


def test_stop_closes_the_sounding_note_then_all_notes_off() -> None:
    _, sink, _ = run_session([NOTE_C4, HOLD, HOLD], [], steps=3, mode="duet", channel=4)
    assert sink.events == [
        (0, "on", 4, 60, 90),
        (2 * STEP, "off", 4, 60),  # still held at the end: the ledger releases it
        (2 * STEP, "cc", 4, 123, 0),
        (2 * STEP, "cc", 4, 120, 0),
    ]


def test_answer_starts_on_the_downbeat_after_the_phrase_end() -> None:
    # The player holds C4 during steps 0 and 1 (released on boundary 2): a short note, so the
    # end needs more than 2 beats of silence (steps 2..10); the answer starts on the next
    # downbeat, step 16, and lasts one bar; its last note (from step 28) rings to a beat.
    call = [(0, (0x90, C4, 100)), (2 * STEP, (0x80, C4, 0))]
    session, sink, policy = run_session(
        [NOTE_C4, HOLD, HOLD, HOLD], call, steps=34, mode="answer", answer_bars=1
    )
    ons = [e for e in sink.events if e[1] == "on"]
    assert ons[0] == (16 * STEP, "on", 0, 60, 90)
    assert [e[0] // STEP for e in ons] == [16, 20, 24, 28]
    # The answer's 16 steps end at 32: its note (4 steps old) is released there, nothing after.
    assert (32 * STEP, "off", 0, 60) in sink.events
    assert all(e[0] <= 32 * STEP for e in sink.events if e[1] in ("on", "off"))
    assert policy.calls == 17
    assert session.stats.answers == 1
    # The states said "answering" with progress 0 .. 15/16 (context: bar one-hot, minor, answering, progress)
    s_call = policy.spec.call_features  # the call summary follows the context
    progress = [s[0, -1 - s_call] for s in policy.states]
    assert progress[0] == 0.0 and progress[-1] == pytest.approx(15 / 16)
    assert all(s[0, -2 - s_call] == 1.0 for s in policy.states)
    assert sink.sounding() == set()


def test_answer_waits_while_the_sustain_pedal_holds_the_phrase() -> None:
    # Key up at boundary 2, but the pedal (CC 64) holds C4 until boundary 10: the last sounding
    # step is 9, 6 silent steps before the bar line 16 may be a pause, so the answer starts on
    # the downbeat 32, not on 16 (where a call released on boundary 2 is answered).
    call = [
        (0, (0x90, C4, 100)),
        (STEP // 2, (0xB0, 64, 127)),
        (2 * STEP, (0x80, C4, 0)),
        (10 * STEP, (0xB0, 64, 0)),
    ]
    session, sink, _ = run_session(
        [NOTE_C4, HOLD, HOLD, HOLD], call, steps=36, mode="answer", answer_bars=1
    )
    ons = [e for e in sink.events if e[1] == "on"]
    assert ons[0][0] == 32 * STEP, ons
    assert session.stats.answers == 1


def test_answer_stops_at_once_when_the_player_resumes() -> None:
    resume_ns = 19 * STEP + 30 * MS  # inside step 19, during the answer (from step 16)
    call = [
        (0, (0x90, C4, 100)),
        (2 * STEP, (0x80, C4, 0)),
        (resume_ns, (0x90, 62, 100)),
        (resume_ns + 200 * MS, (0x80, 62, 0)),
    ]
    session, sink, _ = run_session([NOTE_E4, HOLD], call, steps=22, mode="answer", answer_bars=2)
    agent = [e for e in sink.events if e[1] in ("on", "off")]
    assert agent == [
        (16 * STEP, "on", 0, 64, 90),
        (18 * STEP, "off", 0, 64),
        (18 * STEP, "on", 0, 64, 90),
        (resume_ns, "off", 0, 64),  # the moment the player's key went down
    ]
    assert session.stats.interruptions == 1


def test_velocity_zero_note_on_is_a_note_off() -> None:
    call = [(0, (0x90, C4, 100)), (2 * STEP, (0x90, C4, 0))]
    _, sink, _ = run_session([NOTE_E4], call, steps=18, mode="answer")
    assert [e for e in sink.events if e[1] == "on"][0][0] == 16 * STEP


def test_mode_change_by_cc_held_for_a_beat_releases_the_agent_note_and_switches() -> None:
    # Duet; CC 77 < 64 asks for answer mode, twice (a knob turned past the middle). It takes
    # effect once it has stood for a beat (4 steps) from the first message: at the decision of
    # step 7, the sounding note is released and, with nothing to answer, the agent stays silent.
    events = [(3 * STEP + 10 * MS, (0xB0, 77, 10)), (3 * STEP + 20 * MS, (0xB0, 77, 0))]
    script = [NOTE_C4] + [HOLD] * 9
    session, sink, _ = run_session(script, events, steps=10, mode="duet")
    assert sink.events == [
        (0, "on", 0, 60, 90),
        (7 * STEP - MS, "off", 0, 60),  # the decision of step 7 (the margin before it)
        (9 * STEP, "cc", 0, 123, 0),
        (9 * STEP, "cc", 0, 120, 0),
    ]
    assert session.mode.name == "answer"


def test_stray_mode_ccs_change_nothing() -> None:
    """Random input: a single mode CC held for bars, a mode CC that flips back within a beat,
    and ones on another channel (even the channel the player plays on, 3, when the controls'
    channel is 1), leave the mode alone."""
    events = [
        (10 * MS, (0x92, 40, 60)),
        (STEP, (0x82, 40, 0)),
        (2 * STEP, (0xB0, 77, 0)),
        (3 * STEP, (0xB0, 77, 127)),
        (3 * STEP + MS, (0xB0, 77, 127)),
        (4 * STEP, (0xB0, 77, 0)),
        (5 * STEP, (0xB5, 77, 0)),
        (5 * STEP + MS, (0xB5, 77, 0)),
        (6 * STEP, (0xB2, 77, 0)),
        (6 * STEP + MS, (0xB2, 77, 0)),
    ]
    session, _, _ = run_session([HOLD], events, steps=32, mode="duet")
    assert session.mode.name == "duet"


def test_random_controls_and_program_changes_on_other_channels_change_nothing() -> None:
    """2,000 random CCs (every controller, mode and panic included, each sent twice in a row)
    and program changes on channels 2..16, amid a player's notes on channel 2: the agent plays
    exactly what it plays without them, and no control or style changed."""
    import numpy as np

    rng = np.random.default_rng(11)
    notes = []
    for k in range(0, 64, 4):
        notes += [
            (k * STEP + 5 * MS, (0x91, 60 + k % 12, 90)),
            ((k + 2) * STEP, (0x81, 60 + k % 12, 0)),
        ]
    noise = []
    for t in np.sort(rng.integers(0, 64 * STEP, 2_000)):
        channel = int(rng.integers(1, 16))
        if rng.random() < 0.8:
            data = (0xB0 | channel, int(rng.integers(0, 128)), int(rng.integers(0, 128)))
            noise += [(int(t), data), (int(t) + 1, data)]
        else:
            noise.append((int(t), (0xC0 | channel, int(rng.integers(0, 128)))))
    script = [NOTE_C4, HOLD, NOTE_E4, REST, HOLD]
    # The sustain pedal and All Notes Off are the player's own (they end its notes, and a duet
    # leaves room around the notes that sound): the plain run has them too.
    pedal = [(t, d) for t, d in noise if d[0] & 0xF0 == 0xB0 and d[1] in (64, 120, 123)]
    _, plain, _ = run_session(script, sorted(notes + pedal), steps=64, mode="duet")
    programs: list[int] = []
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    session = Session(
        ScriptedPolicy(script),
        JamOptions(bpm=120.0, temperature=0.0, seed=0, velocity=90, duet_wait_notes=0, mode="duet"),
        sink,
        clock,
        inbox_of(sorted(notes + noise), close=False),
        controls=ControlMap(),
    )
    session.program_handler = programs.append
    session.run(threading.Event(), until_step=64, start_ns=0)
    assert sink.events == plain.events
    assert programs == []
    assert session.mode.name == "duet" and session.notes.panics == 1  # the one at the end
    assert (session.temperature, session.density, session.register_shift) == (0.0, 1.0, 0)
    assert session.stats.ignored["program_change"] > 300


def test_cc_changes_temperature_density_and_register() -> None:
    events = [(10 * MS, (0xB0, 74, 127)), (20 * MS, (0xB0, 71, 0)), (30 * MS, (0xB0, 76, 127))]
    session, sink, _ = run_session([NOTE_C4], events, steps=4, mode="duet")
    assert session.temperature == pytest.approx(1.5)
    assert session.density == 0.0
    assert session.register_shift == 24
    # density 0: the agent may not start a note after the CC (step 0 was sent before it).
    assert [e for e in sink.events if e[1] == "on"] == [(0, "on", 0, 60, 90)]


def test_register_shift_moves_notes_and_limits_mask_them() -> None:
    _, sink, _ = run_session([NOTE_C4], [], steps=1, mode="duet", register_shift=12)
    assert sink.events[0] == (0, "on", 0, 72, 90)
    # C4 + 12 is above the limit: the only allowed actions are HOLD and REST; greedy on a
    # scripted Q of zeros elsewhere picks HOLD (index 0): nothing is played.
    _, sink, _ = run_session(
        [NOTE_C4], [], steps=2, mode="duet", register_shift=12, register_high=71
    )
    assert [e for e in sink.events if e[1] == "on"] == []


def test_panic_cc_releases_everything_including_thru() -> None:
    # The player plays on channel 2; the panic comes on the controls' channel (1).
    events = [(10 * MS, (0x91, 50, 80)), (STEP + 10 * MS, (0xB0, 119, 127))]
    _, sink, _ = run_session([NOTE_C4, HOLD], events, steps=3, mode="duet", thru=True)
    assert sink.events[:8] == [
        (0, "on", 0, 60, 90),
        (10 * MS, "send", (0x91, 50, 80)),
        # One panic: every open note (the agent's and the thru'd), then CC 123 / 120 once
        # on each channel used.
        (STEP + 10 * MS, "off", 0, 60),
        (STEP + 10 * MS, "off", 1, 50),
        (STEP + 10 * MS, "cc", 0, 123, 0),
        (STEP + 10 * MS, "cc", 0, 120, 0),
        (STEP + 10 * MS, "cc", 1, 123, 0),
        (STEP + 10 * MS, "cc", 1, 120, 0),
    ]
    assert sink.sounding() == set()


def test_model_swap_at_a_step_boundary_releases_the_old_note_and_misses_no_step() -> None:
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    old = ScriptedPolicy([NOTE_C4, HOLD, HOLD, HOLD, HOLD, HOLD])
    new = ScriptedPolicy([HOLD])
    session = Session(
        old,
        JamOptions(mode="duet", temperature=0.0, velocity=90, duet_wait_notes=0),
        sink,
        clock,
        queue.SimpleQueue(),
        controls=ControlMap(),
    )

    stop = threading.Event()
    original_send = session.send

    def send(step: int) -> None:
        original_send(step)
        if step == 2:
            threading.Thread(target=session.swap_policy, args=(new,)).start()
            import time

            time.sleep(0.05)  # let the thread hand it over before the next decision

    session.send = send  # type: ignore[method-assign]
    session.run(stop, until_step=6, start_ns=0)
    assert sink.events == [
        (0, "on", 0, 60, 90),
        (3 * STEP, "off", 0, 60),  # new model says HOLD, but the old model's note ends here
        (5 * STEP, "cc", 0, 123, 0),
        (5 * STEP, "cc", 0, 120, 0),
    ]
    # The new model was warmed up off the scheduler thread (WARM_UP_CALLS), then played 3 steps.
    assert old.calls == 3 and new.calls == WARM_UP_CALLS + 3
    assert session.stats.model_swaps == 1
    assert session.stats.steps == 6


def test_other_input_channel_is_ignored_and_counted() -> None:
    call = [(0, (0x93, C4, 100)), (2 * STEP, (0x83, C4, 0))]
    session, sink, _ = run_session([NOTE_E4], call, steps=10, mode="answer", input_channel=0)
    assert [e for e in sink.events if e[1] == "on"] == []
    assert session.stats.ignored["other_channel"] == 2


def test_make_mode_refuses_an_unknown_name() -> None:
    from exports.errors import ConfigError
    from live_agent.modes import AnswerMode, DuetMode, make_mode

    assert isinstance(make_mode("duet", lambda bars: bars, 16), DuetMode)
    assert isinstance(make_mode("answer", lambda bars: bars, 16), AnswerMode)
    with pytest.raises(ConfigError, match="mode must be 'answer' or 'duet', got 'solo'"):
        make_mode("solo", lambda bars: bars, 16)
