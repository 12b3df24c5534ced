"""Validation of incoming MIDI, the player's per-step state, and a fuzz run of a whole session."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np

from exports.spec import DEFAULT_SPEC
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.listener import Kind, Message, PlayerListener, classify
from live_agent.options import JamOptions
from tests.fakes import MS, RecordingNoteSink, ScriptedPolicy, inbox_of


def test_classify_accepts_valid_messages() -> None:
    dropped: Counter[str] = Counter()
    assert classify((0x93, 60, 100), dropped) == Message(Kind.NOTE_ON, 3, 60, 100)
    assert classify((0x90, 60, 0), dropped) == Message(Kind.NOTE_OFF, 0, 60, 0)
    assert classify((0x8F, 61, 64), dropped) == Message(Kind.NOTE_OFF, 15, 61, 64)
    assert classify((0xB0, 74, 127), dropped) == Message(Kind.CONTROL, 0, 74, 127)
    assert classify((0xC2, 5), dropped) == Message(Kind.PROGRAM, 2, 5, 0)
    assert classify((0xF8,), dropped).kind is Kind.CLOCK  # type: ignore[union-attr]
    assert classify((0xF2, 5, 1), dropped) == Message(Kind.SONG_POSITION, 0, 5, 1)
    assert classify((0xE0, 0, 64), dropped).kind is Kind.OTHER  # type: ignore[union-attr]
    assert classify((0xFE,), dropped).kind is Kind.OTHER  # type: ignore[union-attr]
    assert not dropped


def test_classify_drops_and_counts_malformed_input() -> None:
    dropped: Counter[str] = Counter()
    bad = [
        (),
        (60, 100),
        (0xF0, 0x7E, 0xF7),
        (0xF4,),
        (0xF7,),
        (0x90, 60),
        (0x90, 60, 100, 5),
        (0xC0, 1, 2),
        (0x90, 128, 1),
        (0x90, 60, 0x90),
        (0xF8, 0),
        (300, 1, 2),
    ]
    for data in bad:
        assert classify(data, dropped) is None
    assert dropped == Counter(
        {
            "empty": 1,
            "no_status": 1,
            "sysex": 1,
            "undefined_status": 2,
            "bad_length": 4,
            "data_out_of_range": 2,
            "not_bytes": 1,
        }
    )


def test_listener_chroma_onset_top_and_short_notes() -> None:
    listener = PlayerListener(held_timeout_steps=100)
    listener.note_on(60, 0)
    listener.note_on(64, 0)
    listener.note_on(67, 0)
    listener.note_off(67)  # short: still sounded during the step
    step = listener.close_step(0)
    assert step.onset and step.top == 67
    assert np.flatnonzero(step.chroma).tolist() == [0, 4, 7]
    step = listener.close_step(1)  # C and E still held, no new key
    assert not step.onset and step.top == 64
    assert np.flatnonzero(step.chroma).tolist() == [0, 4]
    listener.note_off(60, before_step=True)
    listener.note_off(64)
    step = listener.close_step(2)
    assert step.top == 64 and np.flatnonzero(step.chroma).tolist() == [4]
    assert listener.close_step(3).top == -1


def test_listener_times_out_a_note_whose_off_was_lost() -> None:
    listener = PlayerListener(held_timeout_steps=4)
    listener.note_on(60, 0)
    for step in range(5):
        listener.close_step(step)
    assert not listener.sounding
    assert listener.timed_out == 1


def random_messages(rng: np.random.Generator, n: int) -> list[tuple[int, ...]]:
    """Random byte strings of 0..4 bytes, biased towards real statuses so many are valid."""
    statuses = np.array([0x80, 0x90, 0xB0, 0xC0, 0xE0, 0xF0, 0xF2, 0xF8, 0xFA, 0xFB, 0xFC, 0xF4])
    messages = []
    lengths = rng.integers(0, 5, n)
    raw = rng.integers(0, 256, (n, 4))
    pick = rng.integers(0, len(statuses), n)
    channel = rng.integers(0, 16, n)
    for i in range(n):
        data = raw[i, : lengths[i]].tolist()
        if data and rng.random() < 0.7:
            status = int(statuses[pick[i]])
            data[0] = status | int(channel[i]) if status < 0xF0 else status
            if rng.random() < 0.8:
                data[1:] = [b & 0x7F for b in data[1:]]
        messages.append(tuple(data))
    return messages


def test_100k_random_messages_never_raise_are_counted_and_leave_no_stuck_note() -> None:
    rng = np.random.default_rng(1234)
    n = 100_000
    messages = random_messages(rng, n)
    # 100k messages over 60 s of play at 120 bpm (480 steps): MIDI clock and transport bytes
    # are ignored in internal-clock mode, program changes have no handler.
    times = np.sort(rng.integers(0, 60_000 * MS, n))
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    policy = ScriptedPolicy(list(range(DEFAULT_SPEC.n_actions)))
    options = JamOptions(mode="duet", temperature=0.7, thru=True, seed=3, held_timeout_steps=64)
    session = Session(
        policy,
        options,
        sink,
        clock,
        inbox_of(list(zip(times.tolist(), messages, strict=True))),
        controls=ControlMap(),
    )
    stats = session.run(threading.Event(), until_step=500, start_ns=0)
    dropped = sum(stats.dropped.values())
    assert dropped > 10_000
    assert set(stats.dropped) <= {
        "empty",
        "no_status",
        "sysex",
        "undefined_status",
        "bad_length",
        "data_out_of_range",
    }
    expected_dropped = sum(1 for m in messages if classify(m, Counter()) is None)
    assert dropped == expected_dropped
    assert stats.steps > 400
    assert sink.sounding() == set()
    # The noise's notes went out through thru (and every one of them ended). The duet itself may
    # stay silent: the noise holds keys of every pitch class, so no onset of its would be consonant.
    forwarded = [
        e for e in sink.events if e[1] == "send" and e[2][0] & 0xF0 == 0x90 and e[2][2] > 0
    ]
    assert len(forwarded) > 1_000


def test_sustain_pedal_holds_released_keys_until_it_comes_up() -> None:
    listener = PlayerListener(held_timeout_steps=1000)
    listener.note_on(60, step=0)
    listener.sustain_pedal(True)
    listener.note_off(60)
    assert listener.sounding, "the pedal should hold the released key"
    assert listener.close_step(0).top == 60
    assert listener.close_step(1).top == 60  # still sounding a step later
    listener.note_on(64, step=2)
    listener.sustain_pedal(False)  # 60 (key up) ends; 64 (key down) goes on
    assert listener.held == 1 << 64
    listener.note_off(64)
    assert not listener.sounding
    # Without the pedal a release is a release.
    listener.note_on(62, step=3)
    listener.note_off(62)
    assert not listener.sounding
