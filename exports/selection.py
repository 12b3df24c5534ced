"""Choosing an action from Q-values: the one implementation, for live play and evaluation.

Greedy (temperature 0) or sampled from softmax(Q / temperature), over the actions a mask allows.
``opening_mask`` is the mask of an answer's first step, which opens with a note. A duet leaves
room with ``consonant_mask`` (no 2nd, tritone or 7th against the player's sounding notes),
``register_side_mask`` (below a melody, above a bass line) and ``oscillation_pitch`` (no
two-note see-saw of 6 notes); each maps note pitches to a bool mask. ``SeeSaw`` keeps every
part's two-note see-saws (F G F G F G) under ``SEE_SAW_NOTES`` notes in every mode, live and in
evaluation alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from exports.spec import FIRST_NOTE_ACTION, HOLD, REST

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


# --- a duet that leaves room: masks over the note actions, shared by live play and evaluation ---

DISSONANT_INTERVAL_CLASSES = (1, 2, 6, 10, 11)
"""2nds, the tritone and 7ths: the intervals a duet's onset avoids against a sounding note."""
_CLASSES = np.arange(12)
_CHROMA = (np.arange(1 << 12)[:, None] >> _CLASSES & 1).astype(np.int64)  # (4096, 12)
_DISSONANT = np.isin((_CLASSES[None, :] - _CLASSES[:, None]) % 12, DISSONANT_INTERVAL_CLASSES)
CONSONANT_WITH = (_CHROMA @ _DISSONANT.astype(np.int64)) == 0  # (4096, 12): [chroma, class]
"""(4096, 12) bool: [chroma bits, pitch class] True when the pitch class forms no 2nd, tritone
or 7th with any pitch class of the chroma (bit c: class c)."""


def consonant_mask(pitches: np.ndarray, chroma_bits: int) -> np.ndarray:
    """(N,) MIDI pitches -> (N,) bool: True where the pitch forms no 2nd, tritone or 7th with
    any pitch class in ``chroma_bits`` (the other part's sounding notes; 0: all True)."""
    return CONSONANT_WITH[chroma_bits & 0xFFF, np.mod(pitches, 12)]


def register_side_mask(
    pitches: np.ndarray, other_low: int, other_high: int, gap: int, split: int
) -> np.ndarray:
    """(N,) MIDI pitches -> (N,) bool: the register apart from another part heard within
    ``other_low..other_high``. A part centred at or above ``split`` is a melody: the pitches at
    least ``gap`` below its lowest note; else a bass line: at least ``gap`` above its highest.
    When that side has no pitch, the other side."""
    below = pitches <= other_low - gap
    above = pitches >= other_high + gap
    first, second = (below, above) if other_low + other_high >= 2 * split else (above, below)
    return first if first.any() else second


def oscillation_pitch(onsets: Sequence[int], run_notes: int = 6) -> int | None:
    """The pitch whose onset next would make the last onsets (oldest first) a two-note
    oscillation (A-B-A-B-...) of ``run_notes`` notes; None when no pitch would. Masking it keeps
    every see-saw shorter than ``run_notes``."""
    need = run_notes - 1
    if len(onsets) < need:
        return None
    last = list(onsets)[-need:]
    a, b = last[-1], last[-2]
    if a == b or any(p != (a if i % 2 == 0 else b) for i, p in enumerate(reversed(last))):
        return None
    return b


SEE_SAW_NOTES = 6
"""A two-note oscillation (A-B-A-B-A-B) of this many notes is a trill, not a phrase: real
continuations of the corpus's tunes hold one in under 1% of answers, the trained styles' in up to
5% (``training.eval.musicianship``). ``SeeSaw`` masks the note that would complete one."""


class SeeSaw:
    """The last notes each of ``rows`` parts played (note actions, key-relative), and the mask
    that keeps them from completing a two-note see-saw of ``SEE_SAW_NOTES`` notes. The live
    ``Decider`` keeps one row; evaluation one per call, so both choose alike."""

    def __init__(self, rows: int, run_notes: int = SEE_SAW_NOTES) -> None:
        self.recent = np.full((rows, run_notes - 1), -1, dtype=np.int64)
        """(rows, run_notes - 1) the last note actions played, oldest first; -1: none yet."""

    def mask(self, allowed: np.ndarray) -> np.ndarray:
        """``allowed`` (A,) or (rows, A) bool, less each row's see-saw completing note where that
        leaves the row some action. Returns a (rows, A) array (``allowed`` itself is kept)."""
        r = self.recent
        a, b = r[:, -1], r[:, -2]
        see_saw = (b >= 0) & (a != b)
        for i in range(r.shape[1]):
            see_saw &= r[:, -1 - i] == (a if i % 2 == 0 else b)
        out = np.array(np.broadcast_to(allowed, (r.shape[0], np.shape(allowed)[-1])), dtype=bool)
        rows = np.flatnonzero(see_saw)
        if len(rows):
            blocked = out.copy()
            blocked[rows, b[rows]] = False
            keep = blocked.any(axis=1)
            out[keep] = blocked[keep]
        return out

    def played(self, actions: np.ndarray) -> None:
        """Note the actions just chosen, (rows,): a note shifts into each row's history; HOLD
        and REST leave it as it is (a see-saw across a rest still sounds as one)."""
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        notes = actions >= FIRST_NOTE_ACTION
        if notes.any():
            self.recent[notes] = np.concatenate(
                [self.recent[notes, 1:], actions[notes, None]], axis=1
            )

    def clear(self) -> None:
        """Forget every row's notes (a new key frame: the same action is another pitch)."""
        self.recent.fill(-1)
