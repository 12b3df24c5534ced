"""Listening to the player: tempo lock, phrase ends, velocity following, the duet's hold bound."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from exports.spec import DEFAULT_SPEC, HOLD, REST
from live_agent.clock import FakeClock, InternalGrid, PlayerGrid
from live_agent.controls import ControlMap
from live_agent.dynamics import VelocityFollower
from live_agent.engine import Session
from live_agent.modes import DuetMode, bound_hold
from live_agent.options import JamOptions
from live_agent.phrase import PhraseTracker
from live_agent.tempo import TempoTracker
from tests.fakes import MS, RecordingNoteSink, ScriptedPolicy, inbox_of

# A two-bar call rhythm in 16ths (quarters, 8ths, a dotted figure, a long last note), twice.
RHYTHM_STEPS = [4, 2, 2, 4, 4, 2, 2, 2, 2, 8, 4, 4, 2, 2, 4, 3, 1, 4, 8]


def call_onsets_ns(bpm: float, jitter_ms: float, seed: int = 0) -> tuple[list[int], float]:
    rng = np.random.default_rng(seed)
    step_ns = 60e9 / bpm / 4
    onsets, position = [], 0
    for length in RHYTHM_STEPS * 2:
        onsets.append(int(1e9 + position * step_ns + rng.normal(0, jitter_ms * 1e6)))
        position += length
    return onsets, step_ns


@pytest.mark.parametrize("bpm", [90.0, 132.0])
def test_tempo_locks_on_the_players_grid(bpm: float) -> None:
    onsets, step_ns = call_onsets_ns(bpm, jitter_ms=6)
    stray = onsets[-6] + int(0.45 * step_ns)  # one wrong note between two grid steps
    tracker = TempoTracker()
    for t in sorted([*onsets, stray]):
        tracker.observe_onset(t)
    estimate = tracker.estimate
    assert estimate is not None and estimate.locked, estimate
    assert estimate.bpm == pytest.approx(bpm, rel=0.01)
    assert estimate.strays >= 1
    # The grid continued forward lands on the call's own 16ths (within 5 ms), downbeat included.
    grid = PlayerGrid(InternalGrid(120.0, 0), tracker)
    after = onsets[-1] + int(8 * step_ns)
    step, boundary = grid.next_boundary(after)
    true_index = (boundary - 1e9) / step_ns
    assert abs(true_index - round(true_index)) * step_ns < 5 * MS
    assert (round(true_index) - step) % 16 == 0  # bar position agrees with the call's bars
    assert "bpm" in grid.describe() and grid.source == "player"


def test_tempo_follows_slow_drift() -> None:
    tracker = TempoTracker()
    t, step_ns = 1e9, 60e9 / 100 / 4
    for _ in range(12):  # 100 bpm to about 106 bpm over 12 bars of quarter/8th figures
        for length in (4, 2, 2, 4, 4):
            tracker.observe_onset(int(t))
            t += length * step_ns
        step_ns *= 0.995
    assert tracker.estimate is not None and tracker.estimate.locked
    assert tracker.estimate.bpm == pytest.approx(60e9 / step_ns / 4, rel=0.02)


def feed(tracker: PhraseTracker, notes: list[tuple[int, int]], until: int) -> list[int]:
    """(start, length) notes in steps; returns the downbeats (asked before each, as the answer
    mode does) on which the call was over."""
    sounding = {s for start, length in notes for s in range(start, start + length)}
    onsets = {start for start, _ in notes}
    over = []
    for step in range(until):
        if step % 16 == 0:
            tracker.expect(step)
            if tracker.over_at(step):
                over.append(step)
        tracker.observe(step, step in onsets, step in sounding)
    return over


def test_a_long_final_note_at_the_bar_end_closes_the_call_on_that_downbeat() -> None:
    tracker = PhraseTracker(16)
    notes = [(0, 2), (2, 2), (4, 2), (6, 2), (8, 8)]  # a bar: four 8ths and a half note
    # Decided before step 16, while the half note still sounds: the answer starts on it.
    assert feed(tracker, notes, 17) == [16]
    assert tracker.call_steps() == 16


def test_a_rest_of_two_beats_inside_a_call_is_not_answered_into() -> None:
    tracker = PhraseTracker(16)
    # 8ths for two beats, a half rest up to the bar line, and the call goes on in bar 2.
    notes = [(0, 2), (2, 2), (4, 2), (6, 2), (16, 2), (18, 2), (20, 2), (22, 2), (24, 8)]
    assert feed(tracker, notes, 33) == [32]  # not 16: the rest was a pause; 32 closes it


def test_a_call_that_stops_short_is_answered_after_more_than_a_pause() -> None:
    tracker = PhraseTracker(16)
    notes = [(0, 2), (2, 2), (4, 2), (6, 2), (8, 2), (10, 2), (12, 2), (14, 2), (16, 2)]
    # It stops on a short note on the downbeat of bar 2: 14 silent steps by step 32.
    assert feed(tracker, notes, 33) == [32]
    short = PhraseTracker(16)
    # Short notes to beat 3 of bar 2, a 2-beat silence to the bar line: a pause, then over.
    notes = [(0, 4), (4, 4), (8, 4), (12, 4), (16, 2), (18, 2), (20, 2), (22, 2)]
    assert feed(short, notes, 49) == [48]


def test_a_grid_that_numbers_afresh_mid_phrase_moves_the_phrase_with_it() -> None:
    # The bar of test_a_long_final_note_at_the_bar_end_closes_the_call_on_that_downbeat, but
    # from step 5 on the grid counts from 117 (a new grid took over: 7 bars further on).
    notes = [(0, 2), (2, 2), (4, 2), (6, 2), (8, 8)]
    sounding = {s for start, length in notes for s in range(start, start + length)}
    onsets = {start for start, _ in notes}
    tracker = PhraseTracker(16)
    for t in range(16):
        step = t if t < 5 else t + 112
        tracker.observe(step, t in onsets, t in sounding)
    assert tracker.renumbered == 1
    tracker.expect(128)
    assert tracker.call_steps() == 16  # the time it lasted, not a difference of numberings
    assert tracker.start_step == 112 and tracker.note_start == 120
    assert tracker.over_at(128)  # the half note on beat 3 reaches the new grid's bar line


def test_velocity_follows_the_players_level_with_a_small_accent() -> None:
    soft, loud = VelocityFollower(), VelocityFollower()
    for _ in range(8):
        soft.observe(40)
        loud.observe(120)
    assert soft.velocity(1) < 45 < 110 < loud.velocity(1)
    assert soft.velocity(0) > soft.velocity(4) > soft.velocity(1)  # downbeat > beat > off-beat
    assert VelocityFollower(fixed=77).velocity(0) == 77
    steady = VelocityFollower()
    steady.observe(100)
    steady.observe(40)  # one soft note moves the level only part of the way
    assert 40 < steady.velocity(4) < 100


def test_session_answers_as_loud_as_the_call() -> None:
    step = 125 * MS
    levels = []
    for velocity in (40, 120):
        call = [(0, (0x90, 60, velocity)), (2 * step, (0x80, 60, 0))]
        clock = FakeClock()
        sink = RecordingNoteSink(clock)
        options = JamOptions(mode="answer", clock="internal", temperature=0.0, answer_bars=1)
        session = Session(
            ScriptedPolicy([DEFAULT_SPEC.action_for_pitch(60), HOLD]),
            options,
            sink,
            clock,
            inbox_of(call, close=False),
            controls=ControlMap(),
        )
        session.run(threading.Event(), until_step=26, start_ns=0)
        levels.append([e[4] for e in sink.events if e[1] == "on"])
    assert all(abs(v - 40) <= 8 for v in levels[0]) and all(abs(v - 120) <= 8 for v in levels[1])


def test_hold_bound_turns_hold_into_rest() -> None:
    assert bound_hold(HOLD, 31, 32) == HOLD
    assert bound_hold(HOLD, 32, 32) == REST
    assert bound_hold(DEFAULT_SPEC.action_for_pitch(60), 40, 32) == DEFAULT_SPEC.action_for_pitch(
        60
    )


def test_duet_never_holds_past_the_bound_whatever_the_network_says() -> None:
    # A network that only ever says HOLD after its first note: the note ends after 2 bars.
    step = 125 * MS
    player = []
    for i in range(40):  # the player plays a quarter-note line throughout
        player += [(i * 4 * step, (0x90, 67, 80)), (i * 4 * step + 2 * step, (0x80, 67, 0))]
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    options = JamOptions(mode="duet", clock="internal", temperature=0.0, max_hold_bars=2)
    session = Session(
        ScriptedPolicy([DEFAULT_SPEC.action_for_pitch(60)] + [HOLD] * 200),
        options,
        sink,
        clock,
        inbox_of(player, close=False),
        controls=ControlMap(),
    )
    session.run(threading.Event(), until_step=120, start_ns=0)
    agent = [e for e in sink.events if e[1] in ("on", "off") and e[2] == 0]
    ons = [e for e in agent if e[1] == "on"]
    offs = [e for e in agent if e[1] == "off"]
    assert ons and offs
    assert ons[0][0] >= 12 * step  # it waited for the player's 4 notes (a beat each)
    # Released at the 2-bar bound at the latest (the duet's room rule may end it sooner).
    assert 0 < offs[0][0] - ons[0][0] <= 32 * step


def test_duet_falls_silent_after_the_player_stops_and_comes_back() -> None:
    mode = DuetMode(phrase_steps=64, max_hold_steps=32, steps_per_bar=16, wait_notes=4)
    played = []
    for step in range(120):
        active = step < 32 or step >= 80  # the player plays, stops for 3 bars, comes back
        if active and step % 4 == 0:
            mode.player_onset()
        mode.observe_player_step(step, active and step % 4 == 0, active)
        played.append(mode.plays(step + 1))
    assert any(played[:32])
    assert not any(played[32 + 16 : 80])  # silent within a bar of the player stopping
    assert any(played[80:])  # back once the player has played again


def answer_to(call_bars: int, script: list[int], **options: object) -> list[tuple]:
    """The agent's note events answering a call of quarter notes ending in a half note."""
    step = 125 * MS
    call, position = [], 0
    for i in range(call_bars * 4 - 2):
        call += [(i * 4 * step, (0x90, 62, 90)), (i * 4 * step + 3 * step, (0x80, 62, 0))]
        position = (i + 1) * 4
    call += [(position * step, (0x90, 60, 90)), ((position + 8) * step, (0x80, 60, 0))]
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    values: dict[str, object] = {"mode": "answer", "clock": "internal", "temperature": 0.0}
    session = Session(
        ScriptedPolicy(script),
        JamOptions(**{**values, **options}),  # type: ignore[arg-type]
        sink,
        clock,
        inbox_of(call, close=False),
        controls=ControlMap(),
    )
    session.run(threading.Event(), until_step=call_bars * 16 * 2 + 24, start_ns=0)
    return [(e[0] // step, e[1]) for e in sink.events if e[1] in ("on", "off")]


@pytest.mark.parametrize("bars", [1, 2, 4])
def test_answer_lasts_as_many_bars_as_the_call(bars: int) -> None:
    notes = answer_to(bars, [DEFAULT_SPEC.action_for_pitch(60), HOLD, HOLD, HOLD])
    ons = [t for t, kind in notes if kind == "on"]
    offs = [t for t, kind in notes if kind == "off"]
    # The call ends on its bar line with a long note: the answer starts on that downbeat.
    assert ons[0] == bars * 16
    assert len(ons) == 4 * bars
    assert offs[-1] - ons[0] == 16 * bars


def test_answer_length_fixed_and_bounded() -> None:
    quarter = [DEFAULT_SPEC.action_for_pitch(60), HOLD, HOLD, HOLD]
    fixed = [t for t, kind in answer_to(4, quarter, answer_bars=1) if kind == "on"]
    assert len(fixed) == 4
    bounded = [t for t, kind in answer_to(4, quarter, answer_bars_max=2) if kind == "on"]
    assert len(bounded) == 8


def test_answers_last_note_is_not_cut_short() -> None:
    # A network that starts a new note on every step: the one on the answer's last step rings
    # on for a beat instead of being cut after one 16th.
    # (three pitches in turn: two would be a trill, which the see-saw rule cuts short)
    notes = answer_to(1, [DEFAULT_SPEC.action_for_pitch(p) for p in (60, 62, 64)])
    ons = [t for t, kind in notes if kind == "on"]
    offs = [t for t, kind in notes if kind == "off"]
    assert len(ons) == 16
    assert offs[-1] - ons[-1] == 4


def _call_events(start_ns: int, step_ns: int, bars: int) -> list[tuple[int, tuple[int, int, int]]]:
    """A call of ``bars`` bars from ``start_ns``: 8ths, the last bar's second half one note."""
    events: list[tuple[int, tuple[int, int, int]]] = []
    pitches = [60, 62, 64, 65, 67, 65, 64, 62]
    for i in range(bars * 8 - 4):
        at = start_ns + i * 2 * step_ns
        events += [(at, (0x90, pitches[i % 8], 90)), (at + 2 * step_ns - 2 * MS, (0x80, 0, 0))]
        events[-1] = (events[-1][0], (0x80, pitches[i % 8], 0))
    last = start_ns + (bars * 8 - 4) * 2 * step_ns
    events += [(last, (0x90, 60, 90)), (last + 8 * step_ns - 2 * MS, (0x80, 60, 0))]
    return events


@pytest.mark.parametrize("late_s", [0.3, 7.3, 20.3])
def test_answer_to_a_call_heard_on_the_players_own_grid(late_s: float) -> None:
    """clock auto: the player's tempo locks mid-call, and the grid's step numbers start again
    from the player's downbeat. The phrase must still be measured in the time that passed: the
    answer lasts as many bars as the call, whenever in the jam the call came."""
    bpm, bars = 112.0, 2
    step_ns = round(60e9 / bpm / 4)
    start_ns = round(late_s * 1e9)
    call = _call_events(start_ns, step_ns, bars)
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    options = JamOptions(mode="answer", clock="auto", bpm=120.0, temperature=0.0)
    session = Session(
        ScriptedPolicy([DEFAULT_SPEC.action_for_pitch(60), HOLD, HOLD, HOLD]),
        options,
        sink,
        clock,
        inbox_of(call, close=False),
        controls=ControlMap(),
    )
    call_end_ns = call[-1][0]
    until = int((call_end_ns + 8 * bars * 4 * step_ns) / (60e9 / 120.0 / 4))
    session.run(threading.Event(), until_step=until, start_ns=0)
    estimate = session.tempo
    assert estimate is not None and estimate.locked and estimate.bpm == pytest.approx(bpm, 0.02)
    ons = [e[0] for e in sink.events if e[1] == "on"]
    offs = [e[0] for e in sink.events if e[1] == "off"]
    assert ons, "no answer"
    # Within a beat of the call's end (it ends on its bar line with a long note) ...
    assert 0 <= ons[0] - call_end_ns <= 4 * step_ns + 5 * MS, (ons[0] - call_end_ns) / step_ns
    # ... and as long as the call: `bars` bars of quarter notes.
    assert len(ons) == 4 * bars, [(t - call_end_ns) / step_ns for t in ons]
    assert offs[-1] - ons[0] == pytest.approx(16 * bars * step_ns, abs=2 * step_ns)


def test_an_answer_opens_with_a_note_even_when_the_network_would_wait() -> None:
    # A network that would rest for ever: the answer's first step is still a note (the best
    # note it allows), on the downbeat after the call; then the network has its way (rests).
    notes = answer_to(2, [REST])
    ons = [t for t, kind in notes if kind == "on"]
    assert ons == [2 * 16], notes
    # The density draw still rules: at density 0 no note may start, not even the first.
    assert [t for t, kind in answer_to(2, [REST], density=0.0) if kind == "on"] == []


def play_call(
    notes: list[tuple[int, int]], bpm: float, downbeat_ns: int, clock: str = "auto"
) -> tuple[Session, list[int]]:
    """A Session (``--bpm 120``) hearing ``notes`` ((step, length) on the player's grid, step 0
    the call's downbeat at ``downbeat_ns``, played at ``bpm`` with accents on the downbeats);
    returns it and its note-on times."""
    step_ns = 60e9 / bpm / 4
    events = []
    for i, (start, length) in enumerate(notes):
        velocity = 100 if start % 16 == 0 else (88 if start % 4 == 0 else 72)
        pitch = (60, 62, 64, 65, 67)[i % 5]
        on = round(downbeat_ns + start * step_ns)
        events += [
            (on, (0x90, pitch, velocity)),
            (round(on + 0.9 * length * step_ns), (0x80, pitch, 0)),
        ]
    clock_ = FakeClock()
    sink = RecordingNoteSink(clock_)
    session = Session(
        ScriptedPolicy([DEFAULT_SPEC.action_for_pitch(60), HOLD]),
        JamOptions(mode="answer", clock=clock, bpm=120.0, temperature=0.0),  # type: ignore[arg-type]
        sink,
        clock_,
        inbox_of(sorted(events), close=False),
        controls=ControlMap(),
    )
    end_ns = downbeat_ns + (notes[-1][0] + 48) * step_ns
    session.run(threading.Event(), until_step=int(end_ns / 125e6), start_ns=0)
    return session, [e[0] for e in sink.events if e[1] == "on"]


@pytest.mark.parametrize("bpm", [90.0, 112.0, 140.0])
@pytest.mark.parametrize("pickup", [[(-2, 2)], [(-4, 4)], [(-2, 1), (-1, 1)]])
def test_a_call_with_a_pickup_is_answered_on_its_downbeat(
    bpm: float, pickup: list[tuple[int, int]]
) -> None:
    # A pickup, then two bars closing on a half note on beat 3: the downbeat is after the
    # pickup, and the answer enters on the bar line after the two bars (not an 8th or a beat
    # off it, as when the bar was taken from the call's first note).
    body = [(0, 4), (4, 2), (6, 2), (8, 4), (12, 4), (16, 2), (18, 2), (20, 4), (24, 8)]
    step_ns = 60e9 / bpm / 4
    downbeat_ns = round(1.7e9)
    session, ons = play_call(pickup + body, bpm, downbeat_ns)
    assert session.tempo is not None and session.tempo.bpm == pytest.approx(bpm, rel=0.01)
    assert ons, "no answer"
    entry = (ons[0] - downbeat_ns) / step_ns
    assert abs(entry - 32) * step_ns < 5 * MS, entry


def test_a_call_that_pauses_is_not_answered_into() -> None:
    # Bar 1: 8ths for two beats, then a half rest; bar 2 goes on and closes on a half note.
    notes = [(0, 2), (2, 2), (4, 2), (6, 2), (16, 2), (18, 2), (20, 2), (22, 2), (24, 8)]
    session, ons = play_call(notes, 120.0, 0, clock="internal")
    assert ons and min(ons) == 32 * 125 * MS  # nothing during the call: on the bar line after
    assert session.stats.interruptions == 0


@pytest.mark.parametrize(
    "notes",
    [
        [(0, 4), (4, 4), (8, 8)],
        [(0, 2), (2, 2), (4, 4), (8, 8)],
        [(0, 4), (4, 2), (6, 2), (8, 4), (12, 4)],
    ],
)
def test_a_short_call_is_answered_on_the_players_tempo(notes: list[tuple[int, int]]) -> None:
    # 3-5 onsets at 100 bpm against --bpm 120: the answer plays on the player's 16ths.
    step_ns = 60e9 / 100.0 / 4
    downbeat_ns = round(1.3e9)
    session, ons = play_call(notes, 100.0, downbeat_ns)
    assert session.tempo is not None and session.tempo.bpm == pytest.approx(100.0, rel=0.01)
    assert ons
    for t in ons:
        x = (t - downbeat_ns) / step_ns
        assert abs(x - round(x)) * step_ns < 5 * MS, x
    assert round((ons[0] - downbeat_ns) / step_ns) % 16 == 0  # on a downbeat


def test_a_new_phrase_keeps_the_bar_unless_the_player_clearly_moves_it() -> None:
    step_ns = 60e9 / 100.0 / 4
    bar = [(0, 4), (4, 2), (6, 2), (8, 4), (12, 4)]  # accents on the downbeats
    tracker = TempoTracker()

    def play(start_step: int, notes: list[tuple[int, int]], accent_at: int) -> None:
        for s, _ in notes:
            step = start_step + s
            velocity = 100 if (step - accent_at) % 16 == 0 else 80
            tracker.observe_onset(round(1e9 + step * step_ns), velocity)

    def downbeat_step() -> float:
        e = tracker.estimate
        assert e is not None and e.locked
        return ((1e9 - e.origin_ns) / e.step_ns) % 16

    play(0, [*bar, *[(16 + s, n) for s, n in bar], (32, 8)], accent_at=0)
    assert downbeat_step() == pytest.approx(0, abs=0.1) or downbeat_step() > 15.9
    # A second phrase that starts on beat 3, 3 beats after the first ended: the bar stays.
    play(56, [(0, 2), (2, 2), (4, 2), (6, 2), (8, 8)], accent_at=0)
    assert min(downbeat_step(), 16 - downbeat_step()) < 0.1 and tracker.bar_moves == 0
    # A phrase whose long notes and accents all say "the bar begins a beat later": it moves.
    moved = [(s + 4, n) for s, n in [*bar, *[(16 + s, n) for s, n in bar], (32, 8)]]
    play(80, moved, accent_at=84)
    assert abs(downbeat_step() - 12) < 0.1 and tracker.bar_moves == 1  # old step 0 is now 12
