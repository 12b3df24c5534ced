"""Choosing an action from Q-values: the one implementation, for live play and evaluation.

Greedy (temperature 0) or sampled from softmax(Q / temperature), over the actions a mask allows.
``opening_mask`` is the mask of an answer's first step, which opens with a note.
"""

from __future__ import annotations

import numpy as np

from exports.spec import HOLD, REST

DEFAULT_TEMPERATURE = 0.5
"""The softmax temperature a musician hears with no options: ``deepjam jam`` and ``deepjam
answer`` (``live_agent.options.JamOptions.temperature``) and ``deepjam eval`` read it here."""


def opening_mask(allowed: np.ndarray) -> np.ndarray:
    """``allowed`` (A,) without HOLD and REST: the notes an answer may open with (live's
    ``AnswerMode.opens_turn``, and ``answer_calls(opening_note=True)`` in evaluation)."""
    mask = np.array(allowed, dtype=bool)
    mask[[HOLD, REST]] = False
    return mask


def choose_actions(
    q_values: np.ndarray,
    temperature: float,
    rng: np.random.Generator,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """(B, A) Q-values -> (B,) int64 actions.

    ``temperature`` <= 0 is greedy (argmax). ``allowed`` (B, A) or (A,) bool masks actions out
    (e.g. pitches outside the register limits); every row must allow at least one action.
    """
    q = np.asarray(q_values, dtype=np.float64)
    if allowed is not None:
        q = np.where(allowed, q, -np.inf)
    if temperature <= 0:
        return np.argmax(q, axis=1).astype(np.int64)
    logits = q / temperature
    logits -= logits.max(axis=1, keepdims=True)
    # Unnormalized CDF; masked entries add exp(-inf) = 0. One uniform per row, scaled to the
    # row's total instead of normalizing the probabilities (fewer array passes on the hot path).
    cdf = np.cumsum(np.exp(logits), axis=1)
    u = rng.random(q.shape[0]) * cdf[:, -1]
    actions = (cdf <= u[:, None]).sum(axis=1)
    return np.minimum(actions, q.shape[1] - 1).astype(np.int64)
