"""The one state encoder: layout, and a batch of one equals the row of a batch."""

from __future__ import annotations

import numpy as np

from exports import DEFAULT_SPEC, PartWindow, Spec, StepContext, encode_states, monophonic_window


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
    ctx = state[4 * f :]
    assert ctx[5] == 1 and ctx[:16].sum() == 1
    assert ctx[16:].tolist() == [1.0, 0.0, 0.25]


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
