"""The one action selection: greedy, softmax with temperature, masks."""

from __future__ import annotations

import numpy as np

from exports.selection import choose_actions


def test_greedy_takes_the_argmax_and_respects_the_mask() -> None:
    q = np.array([[0.0, 5.0, 1.0], [3.0, 2.0, 1.0]])
    rng = np.random.default_rng(0)
    assert choose_actions(q, 0.0, rng).tolist() == [1, 0]
    allowed = np.array([[True, False, True], [False, True, True]])
    assert choose_actions(q, 0.0, rng, allowed).tolist() == [2, 1]


def test_sampling_follows_softmax_of_q_over_temperature() -> None:
    q = np.log(np.array([[0.7, 0.2, 0.1]]))  # softmax(q / 1) = these probabilities
    rng = np.random.default_rng(1)
    draws = choose_actions(np.repeat(q, 20000, axis=0), 1.0, rng)
    freq = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.015)
    # A low temperature sharpens toward the argmax; masked actions are never drawn.
    cold = choose_actions(np.repeat(q, 5000, axis=0), 0.1, rng)
    assert (cold == 0).mean() > 0.99
    masked = choose_actions(np.repeat(q, 5000, axis=0), 1.0, rng, np.array([False, True, True]))
    assert 0 not in set(masked.tolist())
