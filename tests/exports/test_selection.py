"""The one action selection: greedy, softmax with temperature, masks."""

from __future__ import annotations

import numpy as np

from exports.selection import SeeSaw, choose_actions
from exports.spec import FIRST_NOTE_ACTION, HOLD


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


def test_see_saw_masks_the_note_that_completes_a_six_note_trill() -> None:
    """F G F G F: the next G would make a six-note see-saw (a trill, not a phrase), so G is
    masked for that row only; a row that only repeats or moves on is left alone, HOLD and REST
    do not break a see-saw, and a row whose only allowed action is the masked note keeps it."""
    f, g, a = FIRST_NOTE_ACTION + 5, FIRST_NOTE_ACTION + 7, FIRST_NOTE_ACTION + 9
    see_saw = SeeSaw(3)
    for row0, row1, row2 in [(f, f, f), (g, g, g), (f, f, f), (HOLD, HOLD, HOLD), (g, f, a)]:
        see_saw.played(np.array([row0, row1, row2]))
    see_saw.played(np.array([f, f, g]))
    mask = see_saw.mask(np.ones(FIRST_NOTE_ACTION + 12, bool))
    assert mask.shape == (3, FIRST_NOTE_ACTION + 12)
    assert not mask[0, g] and mask[0].sum() == FIRST_NOTE_ACTION + 11
    assert mask[1].all() and mask[2].all()
    only_g = np.zeros(FIRST_NOTE_ACTION + 12, bool)
    only_g[g] = True
    assert see_saw.mask(only_g)[0, g]
    see_saw.clear()
    assert see_saw.mask(np.ones(FIRST_NOTE_ACTION + 12, bool)).all()


def test_a_policy_that_only_trills_is_kept_under_six_notes_of_see_saw() -> None:
    """Q-values that always prefer the other of two notes (a trill) are sampled under the mask:
    no window of six notes alternates between two pitches."""
    f, g = FIRST_NOTE_ACTION + 5, FIRST_NOTE_ACTION + 7
    rng = np.random.default_rng(0)
    see_saw = SeeSaw(1)
    played: list[int] = []
    for _ in range(60):
        q = np.zeros((1, FIRST_NOTE_ACTION + 12))
        q[0, g if played and played[-1] == f else f] = 10.0
        action = int(choose_actions(q, 0.5, rng, see_saw.mask(np.ones(q.shape[1], bool)))[0])
        see_saw.played(np.array([action]))
        played.append(action)
    for i in range(len(played) - 5):
        run = played[i : i + 6]
        assert not (len(set(run)) == 2 and run[0::2] == [run[0]] * 3 and run[1::2] == [run[1]] * 3)
