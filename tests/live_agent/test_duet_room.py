"""A duet that leaves room: the live session with the shipped model, a scripted player on a fake
clock. It plays less while the player plays than in the player's rests, keeps below a melody,
starts no note a 2nd, tritone or 7th from a key the player holds, and falls quiet within a beat
of the player stopping."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from exports.model_file import load_model
from exports.selection import consonant_mask, oscillation_pitch, register_side_mask
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from tests.fakes import MS, RecordingNoteSink, inbox_of

SHIPPED = Path(__file__).resolve().parents[2] / "live_agent" / "models" / "default.onnx"
STEP_NS = 125 * MS  # 120 bpm
BEAT_NS = 4 * STEP_NS
# One bar of a D-minor melody: (first step, steps, pitch); rests of a 16th or two between.
BAR = [(0, 2, 62), (4, 2, 65), (8, 4, 69), (14, 2, 67)]
BARS = [[(s, n, p + shift) for s, n, p in BAR] for shift in (0, 2, -2, 0)]


def _player(bars: int) -> list[tuple[int, int, int]]:
    """(on ns, off ns, pitch) of ``bars`` bars of the looped melody from step 0."""
    notes = []
    for b in range(bars):
        for start, steps, pitch in BARS[b % len(BARS)]:
            on = (16 * b + start) * STEP_NS + 2 * MS
            notes.append((on, on + steps * STEP_NS - 5 * MS, pitch))
    return notes


def _duet(bars: int, tail_bars: int, seed: int) -> tuple[list[tuple[int, int, int]], list]:  # type: ignore[type-arg]
    player = _player(bars)
    midi = [(on, (0x90, p, 90)) for on, _, p in player] + [
        (off, (0x80, p, 0)) for _, off, p in player
    ]
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    options = JamOptions(mode="duet", temperature=0.5, seed=seed, bpm=120)
    session = Session(
        load_model(SHIPPED),
        options,
        sink,
        clock,
        inbox_of(sorted(midi), close=False),
        controls=ControlMap(),
    )
    session.run(threading.Event(), until_step=16 * (bars + tail_bars), start_ns=0)
    return player, sink.events


def _agent_notes(events: list) -> list[tuple[int, int, int]]:  # type: ignore[type-arg]
    """(on ns, off ns, pitch) of the agent's notes."""
    open_at: dict[int, int] = {}
    notes = []
    for event in events:
        if event[1] == "on":
            open_at[event[3]] = event[0]
        elif event[1] == "off" and event[3] in open_at:
            notes.append((open_at.pop(event[3]), event[0], event[3]))
    return notes


def test_duet_plays_fewer_onsets_while_the_player_plays_than_in_its_rests() -> None:
    player, events = _duet(bars=32, tail_bars=0, seed=1)
    agent = _agent_notes(events)
    end = max(off for _, off, _ in player)
    sounding_ns = sum(off - on for on, off, _ in player)
    resting_ns = end - sounding_ns

    def player_sounds(t: int) -> bool:
        return any(on <= t < off for on, off, _ in player)

    over = sum(player_sounds(on) for on, _, _ in agent if on < end)
    apart = sum(not player_sounds(on) for on, _, _ in agent if on < end)
    assert over + apart >= 20, f"the agent hardly played: {over + apart} notes in 32 bars"
    per_beat_over = over / (sounding_ns / BEAT_NS)
    per_beat_apart = apart / (resting_ns / BEAT_NS)
    assert per_beat_over < per_beat_apart, (per_beat_over, per_beat_apart)
    # Its own register: below the melody, whose lowest note is C4 (60).
    assert max(p for _, _, p in agent) < 60


def test_duet_starts_no_note_dissonant_with_a_held_player_note() -> None:
    player, events = _duet(bars=32, tail_bars=0, seed=2)
    judged = 0
    for on, _, pitch in _agent_notes(events):
        # The keys the agent could hear when it decided: down a step or more before its onset.
        held = [p for p_on, p_off, p in player if p_on <= on - STEP_NS // 2 and p_off > on]
        judged += bool(held)
        for p in held:
            assert (pitch - p) % 12 not in (1, 2, 6, 10, 11), (on / STEP_NS, pitch, p)
    assert judged >= 5, f"only {judged} agent notes over a held player note"


def test_duet_falls_quiet_within_a_beat_of_the_player_stopping() -> None:
    for seed in (3, 4, 5):
        player, events = _duet(bars=8, tail_bars=4, seed=seed)
        stop = max(off for _, off, _ in player)
        agent = _agent_notes(events)
        assert any(on < stop for on, _, _ in agent), "the agent never played"
        last_off = max(off for _, off, _ in agent)
        assert last_off <= stop + BEAT_NS, f"sounded {(last_off - stop) / BEAT_NS:.2f} beats on"
        # A note may start in what is a rest until the beat is out; none after.
        late = [e for e in events if e[1] == "on" and e[0] >= stop + BEAT_NS - STEP_NS]
        assert not late, f"notes a beat after the stop: {late}"


def test_masks_of_a_duet_that_leaves_room() -> None:
    pitches = np.arange(60, 72)
    c_major = 1 << 0 | 1 << 4 | 1 << 7
    # Against C-E-G only C, E and G form no 2nd, tritone or 7th with every note.
    assert list(pitches[consonant_mask(pitches, c_major)]) == [60, 64, 67]
    assert list(pitches[consonant_mask(pitches, 1 << 2)]) == [62, 65, 66, 67, 69, 70, 71]
    assert consonant_mask(pitches, 0).all()
    # Below a melody (centred on or above middle C), above a bass line; the other side when
    # one side has no pitch.
    wide = np.arange(40, 90)
    assert wide[register_side_mask(wide, 62, 74, 3, 60)].max() == 59
    assert wide[register_side_mask(wide, 40, 52, 3, 60)].min() == 55
    high = np.arange(58, 90)
    assert high[register_side_mask(high, 60, 74, 3, 60)].min() == 77
    # A-B-A-B-A: B would make six.
    assert oscillation_pitch([57, 62, 60, 62, 60, 62]) == 60
    assert oscillation_pitch([62, 60, 62, 60]) is None
    assert oscillation_pitch([62, 60, 62, 62, 62]) is None
