"""The one state encoder: layout, and a batch of one equals the row of a batch."""

from __future__ import annotations

import numpy as np

from exports import DEFAULT_SPEC, PartWindow, Spec, StepContext, encode_states, monophonic_window
from exports.encoding import summarize_call


def _random_parts(rng: np.random.Generator, spec: Spec, batch: int) -> tuple:
    w = spec.window_steps
    agent = monophonic_window(rng.integers(-1, 90, (batch, w)), rng.random((batch, w)) < 0.3)
    chroma = rng.random((batch, w, 12)) < 0.2  # a keyboard: several held notes
    top = np.where(chroma.any(axis=2), rng.integers(40, 90, (batch, w)), -1)
    player = PartWindow(onset=rng.random((batch, w)) < 0.3, chroma=chroma, top=top)
    context = StepContext(
        bar_position=rng.integers(0, spec.steps_per_bar, batch),
        minor=rng.random(batch) < 0.5,
        answering=rng.random(batch) < 0.5,
        progress=rng.random(batch),
        call=rng.random((batch, spec.call_features)).astype(np.float32),
    )
    return agent, player, context


def _row(parts: tuple, i: int) -> tuple:
    return tuple(type(p)(*(np.asarray(f)[i : i + 1] for f in p)) for p in parts)


def test_one_state_encodes_exactly_as_the_same_state_inside_a_batch() -> None:
    rng = np.random.default_rng(7)
    spec = DEFAULT_SPEC
    agent, player, context = _random_parts(rng, spec, batch=16)
    batch = encode_states(spec, agent, player, context)
    assert batch.shape == (16, spec.state_dim) and batch.dtype == np.float32
    for i in range(16):
        one = encode_states(spec, *_row((agent, player, context), i))
        np.testing.assert_array_equal(one[0], batch[i])


def test_layout_of_one_hand_made_state() -> None:
    spec = Spec(window_steps=2)
    f = spec.features_per_part_step
    agent = monophonic_window(np.array([[-1, 62]]), np.array([[False, True]]))
    player = monophonic_window(np.array([[60, 60]]), np.array([[True, False]]))
    context = StepContext(np.array([5]), np.array([True]), np.array([False]), np.array([0.25]))
    state = encode_states(spec, agent, player, context)[0]
    agent_steps = state[: 2 * f].reshape(2, f)
    player_steps = state[2 * f : 4 * f].reshape(2, f)
    assert not agent_steps[0].any()  # silent, no onset
    assert agent_steps[1, 0] == 1 and agent_steps[1, 1 + 2] == 1  # onset, pitch class D
    assert agent_steps[1, 1 + 12 + (62 - spec.pitch_low) // 12] == 1  # octave bin
    assert player_steps[0, 0] == 1 and player_steps[1, 0] == 0  # held, not re-struck
    assert player_steps[1, 1 + 0] == 1  # C sounding at both steps
    ctx = state[4 * f : 4 * f + spec.context_features]
    assert ctx[5] == 1 and ctx[:16].sum() == 1
    assert ctx[16:].tolist() == [1.0, 0.0, 0.25]
    assert not state[4 * f + spec.context_features :].any()  # no call given: all zeros


def test_encoder_refuses_windows_of_the_wrong_length() -> None:
    spec = DEFAULT_SPEC
    rng = np.random.default_rng(0)
    agent, player, context = _random_parts(rng, Spec(window_steps=8), batch=2)
    try:
        encode_states(spec, agent, player, context)
    except ValueError as err:
        assert f"(B, {spec.window_steps})" in str(err)
    else:
        raise AssertionError("a window of the wrong length was accepted")


def _line(pitches: list[int], ioi_steps: int, spec: Spec) -> PartWindow:
    """A monophonic call of ``pitches`` every ``ioi_steps``, ending with a rest, in the call
    window (right-aligned)."""
    cw = spec.call_window_steps
    events = np.full(cw, -1)
    start = cw - 1 - ioi_steps * len(pitches)
    events[start : start + ioi_steps * len(pitches) : ioi_steps] = pitches
    events[start + ioi_steps * len(pitches)] = -2  # REST_EVENT
    from exports.grid import onsets, sounding_pitches

    return monophonic_window(sounding_pitches(events)[None], onsets(events)[None])


def test_call_summary_hears_rhythm_register_and_contour() -> None:
    spec = DEFAULT_SPEC
    line = [60, 62, 64, 65, 67, 65, 64, 62]
    fast = summarize_call(spec, _line(line, 1, spec))[0]
    slow = summarize_call(spec, _line(line, 4, spec))[0]
    high = summarize_call(spec, _line([p + 12 for p in line], 4, spec))[0]
    assert fast[0] == slow[0] == 1.0  # heard
    assert fast[1] == 1.0 and slow[4] == 1.0  # all IOIs are 16ths / quarters
    assert slow[8] == 0.5 and fast[8] == 0.0  # mean log2 IOI / 4
    assert slow[16] < fast[16]  # density
    assert high[9] - slow[9] == 1.0  # an octave up: register +1
    assert slow[17] == 2 / 7 / 12  # rising by 2 semitones overall over 7 intervals
    silent = PartWindow(
        np.zeros((1, spec.call_window_steps), bool),
        np.zeros((1, spec.call_window_steps, 12), bool),
        np.full((1, spec.call_window_steps), -1),
    )
    assert not summarize_call(spec, silent).any()
