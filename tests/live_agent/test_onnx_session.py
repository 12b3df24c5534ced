"""The live path with real onnxruntime sessions (models written by exports.onnx_writer)."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from exports.encoding import PartWindow, StepContext, encode_states, summarize_call
from exports.model_file import load_model
from exports.spec import DEFAULT_SPEC, Spec
from live_agent.agent import Decider
from live_agent.clock import FakeClock, RealClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from live_agent.protocols import InputEvent
from tests.fakes import (
    MS,
    RecordingNoteSink,
    ScriptedPolicy,
    inbox_of,
    make_onnx_model,
)

STEP = 125 * MS


Played = tuple[np.ndarray, int, bool, np.ndarray, int, bool]


def _window_by_hand(recent: list[Played], part: int, shift: int) -> PartWindow:
    """One part's window (0 agent, 1 player) written out by hand: relative pitch p - shift,
    pitch classes rotated by the shift."""
    chroma = np.array([[np.roll(r[3 * part], -shift) for r in recent]])
    top = np.array([[r[3 * part + 1] - shift if r[3 * part + 1] >= 0 else -1 for r in recent]])
    return PartWindow(np.array([[r[3 * part + 2] for r in recent]]), chroma, top)


def test_the_live_state_is_encode_states_of_the_windows_in_the_frame() -> None:
    """The Decider's state is the one encoder's output for the windows it holds: the last W steps
    of each part, key-relative, the same as training's environment builds (chords included)."""
    rng = np.random.default_rng(7)
    spec = DEFAULT_SPEC
    decider = Decider(ScriptedPolicy([0]), rng)
    w = spec.window_steps
    played: list[Played] = []
    moved = 0
    silent_row: Played = (np.zeros(12, bool), -1, False, np.zeros(12, bool), -1, False)
    call = np.zeros((1, spec.call_features), np.float32)  # no call heard yet
    for step in range(300):
        # A line modulating every 40 steps, chords in the player part, silences now and then.
        tonic = (step // 40) * 5 % 12
        player = np.zeros(12, dtype=bool)
        top = -1
        if rng.random() < 0.8:
            pitches = (
                48 + tonic + rng.choice([0, 4, 7, 12, 16, 19, 24, 36], size=rng.integers(1, 4))
            )
            player[pitches % 12] = True
            top = int(pitches.max())
        agent = np.zeros(12, dtype=bool)
        agent_top = -1
        if rng.random() < 0.6:
            agent_top = int(60 + tonic + rng.choice([0, 2, 4, 5, 7, 9, 11]))
            agent[agent_top % 12] = True
        row = (agent, agent_top, bool(rng.random() < 0.5), player, top, bool(rng.random() < 0.5))
        played.append(row)
        before = decider.frame_tonic_semitones
        decider.observe_step(*row, move_frame=step % 3 == 0)
        shift = decider.frame_tonic_semitones
        moved += shift != before
        answering, progress = bool(step % 2), float(rng.random())
        # The windows written out by hand: relative pitch p - shift, classes rotated.
        recent = ([silent_row] * w + played)[-w:]
        if step % 3 == 0:  # the frame may move: the call summary is made again, in its frame
            heard = ([silent_row] * spec.call_window_steps + played)[-spec.call_window_steps :]
            call = summarize_call(spec, _window_by_hand(heard, 1, shift))

        context = StepContext(
            np.array([step % spec.steps_per_bar]),
            np.array([decider.frame_minor]),
            np.array([answering]),
            np.array([progress]),
            call,
        )
        expected = encode_states(
            spec, _window_by_hand(recent, 0, shift), _window_by_hand(recent, 1, shift), context
        )
        np.testing.assert_array_equal(
            decider.state(step, answering, progress), expected, err_msg=f"step {step}"
        )
    assert moved >= 3  # the frame really moved


def test_duet_with_a_real_onnx_model_stays_in_its_register_and_closes_every_note(
    onnx_model: Path,
) -> None:
    policy = load_model(onnx_model)
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    options = JamOptions(
        mode="duet", temperature=1.0, seed=5, register_low=55, register_high=70, duet_wait_notes=0
    )
    line = [(i * 2 * STEP, (0x90, 62 + i % 5, 90)) for i in range(32)]
    line += [(i * 2 * STEP + STEP, (0x80, 62 + i % 5, 0)) for i in range(32)]
    session = Session(
        policy, options, sink, clock, inbox_of(sorted(line), close=False), controls=ControlMap()
    )
    stats = session.run(threading.Event(), until_step=64, start_ns=0)
    ons = [e for e in sink.events if e[1] == "on"]
    assert stats.decisions == 64
    assert len(ons) > 5
    assert all(55 <= e[3] <= 70 for e in ons)
    assert all(e[0] % STEP == 0 for e in ons)  # on the grid
    assert sink.sounding() == set()


def test_answer_is_in_the_calls_key() -> None:
    # A call in E-flat major; the scripted model always plays key-relative 60 (the tonic): the
    # live frame must turn it into E-flat 4 (63).
    eb_major = [63, 65, 67, 68, 70, 72, 74, 75, 70, 67, 63, 58, 63]
    call = []
    for i, pitch in enumerate(eb_major):
        call += [(i * 2 * STEP, (0x90, pitch, 90)), (i * 2 * STEP + STEP, (0x80, pitch, 0))]
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    session = Session(
        ScriptedPolicy([DEFAULT_SPEC.action_for_pitch(60)]),
        JamOptions(mode="answer", temperature=0.0, answer_bars=1),
        sink,
        clock,
        inbox_of(call, close=False),
        controls=ControlMap(),
    )
    session.run(threading.Event(), until_step=56, start_ns=0)
    ons = [e for e in sink.events if e[1] == "on"]
    assert ons and {e[3] for e in ons} == {63}
    # The last call note sounds in step 24 (a short note mid-bar): 7 silent steps by the bar
    # line 32 may be a pause; the answer is on the next downbeat, 48.
    assert ons[0][0] == 48 * STEP


def test_real_time_duet_with_hot_swaps_between_real_models(
    tmp_path: Path, onnx_model: Path
) -> None:
    other = load_model(make_onnx_model(tmp_path / "other.onnx", Spec(window_steps=16), seed=3))
    first = load_model(onnx_model)
    sink = RecordingNoteSink(RealClock())
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    options = JamOptions(
        mode="duet", bpm=300.0, temperature=1.0, seed=1, duet_wait_notes=0
    )  # 50 ms steps
    session = Session(first, options, sink, RealClock(), inbox, controls=ControlMap())
    session.warm_up()
    stop = threading.Event()
    thread = threading.Thread(target=session.run, args=(stop,))
    thread.start()
    for i in range(6):
        time.sleep(0.12)
        inbox.put(InputEvent(time.perf_counter_ns(), (0x90, 60 + i, 80)))
        session.swap_policy(other if i % 2 == 0 else first)
    time.sleep(0.1)
    stop.set()
    thread.join(2.0)
    assert not thread.is_alive()
    stats = session.stats
    assert stats.model_swaps >= 4
    assert stats.steps >= 10
    assert stats.decisions >= 10
    assert sink.sounding() == set()
    assert sink.events[-1][1:] == ("cc", 0, 120, 0)


@pytest.mark.parametrize("mode", ["answer", "duet"])
def test_recording_has_both_parts_on_their_own_tracks(
    tmp_path: Path, onnx_model: Path, mode: str
) -> None:
    import mido

    out = tmp_path / "session.mid"
    call = [
        (0, (0x90, 60, 90)),
        (2 * STEP, (0x80, 60, 0)),
        (4 * STEP, (0x90, 64, 90)),
        (6 * STEP, (0x80, 64, 0)),
    ]
    clock = FakeClock()
    options = JamOptions(mode=mode, temperature=0.0, record=out, seed=0)
    session = Session(
        load_model(onnx_model),
        options,
        RecordingNoteSink(clock),
        clock,
        inbox_of(call, close=False),
        controls=ControlMap(),
    )
    session.run(threading.Event(), until_step=48, start_ns=0)
    assert session.recorder is not None
    session.recorder.write(out)
    midi = mido.MidiFile(str(out))
    names = [t.name for t in midi.tracks]
    assert names[1:] == ["player", "deepjam"]
    player_notes = [m.note for m in midi.tracks[1] if m.type == "note_on" and m.velocity > 0]
    assert player_notes == [60, 64]
