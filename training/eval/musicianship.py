"""What a musician hears in an answer: leaps, repeats, trills, scale runs, and whether a listener
could tell the answers from the tunes' own next bars.

All figures work on grid melodies (``HOLD_EVENT``, ``REST_EVENT`` or a MIDI pitch per 16th step)
and count note onsets only (holds and rests skipped):

* **leaps / repeated notes**: the share of melodic intervals wider than a fifth (> 7 semitones)
  and of intervals of 0 (the same pitch struck again);
* **two-note oscillation**: the longest stretch of onsets alternating between two pitches
  (``F G F G F G`` is 6 notes); an answer "oscillates" when that is ``OSCILLATION_NOTES`` or more;
* **stepwise run**: the longest stretch of onsets each a step (1 or 2 semitones) from the last in
  the same direction (a scale run: ``C D E F G A B`` is 7 notes); counted at ``RUN_NOTES`` or more;
* **degenerate patterns**: the longest same-pitch run (onsets), and the most frequent pitch's share
  of an answer's notes.

``classifier_auc`` trains a logistic regression (numpy, no sklearn) on per-phrase histograms and
shares to tell answers from real continuations; its cross-validated AUC is 0.5 when it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exports.spec import PITCH_CLASSES

LEAP_SEMITONES = 7
"""A leap is wider than this (wider than a fifth)."""
STEP_SEMITONES = 2
"""A step is 1 or 2 semitones."""
OSCILLATION_NOTES = 6
"""A two-note oscillation this long or longer is heard as a trill, not a phrase."""
RUN_NOTES = 7
"""A stepwise run this long or longer is heard as a scale exercise."""

DEGENERATE_SAME_PITCH_RUN = 4
"""A style is degenerate when the median answer strikes one pitch more than this many times in a
row. Measured on the default corpus' held-out continuations (the 2 bars after 1,698 2-bar calls
from 471 tunes): the longest same-pitch run has median 2, 95th and 99th percentile 4, so a
*median* above 4 is a style stuck on one note (a style trained 3 minutes on 52 files answered
``G4`` x 8: median 7)."""
DEGENERATE_OSCILLATION_SHARE = 0.05
"""... or when more than this share of answers hold a two-note oscillation of
``OSCILLATION_NOTES`` notes or more: 0.9% of those real continuations do, so 5% is a habit."""
DEGENERATE_TOP_PITCH_SHARE = 0.40
"""... or when the most frequent pitch is more than this share of an answer's notes, median over
answers: in those real continuations the median is 0.28 and the 90th percentile 0.42, so a
median answer above 0.40 circles one note as only the top tenth of real phrases do."""


def onset_pitches(events: np.ndarray) -> np.ndarray:
    """The onset pitches of a 1-D grid melody, in order."""
    e = np.asarray(events)
    return e[e >= 0].astype(np.int64)


def intervals(events: np.ndarray) -> np.ndarray:
    """Semitones between successive onsets (signed)."""
    return np.diff(onset_pitches(events))


def longest_same_pitch_run(events: np.ndarray) -> int:
    """Most successive onsets on one pitch (1 for a melody without repeats, 0 without notes)."""
    p = onset_pitches(events)
    if len(p) == 0:
        return 0
    best = run = 1
    for a, b in zip(p[:-1], p[1:], strict=True):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


def longest_oscillation(events: np.ndarray) -> int:
    """Most successive onsets alternating between two different pitches (a b a b ...); 0 when
    there is no alternation (a two-note stretch a b counts only once a third note returns)."""
    p = onset_pitches(events)
    best = run = 0
    for i in range(2, len(p)):
        if p[i] == p[i - 2] and p[i] != p[i - 1]:
            run = run + 1 if run else 3
            best = max(best, run)
        else:
            run = 0
    return best


def longest_stepwise_run(events: np.ndarray) -> int:
    """Most successive onsets each a step (1..``STEP_SEMITONES``) from the last in one direction;
    1 for a melody of one note, 0 without notes."""
    p = onset_pitches(events)
    if len(p) == 0:
        return 0
    best = run = 1
    direction = 0
    for step in np.diff(p):
        d = int(np.sign(step))
        if 1 <= abs(int(step)) <= STEP_SEMITONES and (run == 1 or d == direction):
            run += 1
        elif 1 <= abs(int(step)) <= STEP_SEMITONES:
            run = 2
        else:
            run = 1
        direction = d
        best = max(best, run)
    return best


def top_pitch_share(events: np.ndarray) -> float:
    """The most frequent pitch's share of the onsets (nan without notes)."""
    p = onset_pitches(events)
    if len(p) == 0:
        return float("nan")
    return float(np.bincount(p - p.min()).max() / len(p))


@dataclass
class PhraseFigures:
    """What a musician hears over a set of phrases (answers, or the tunes' continuations)."""

    phrases: int
    notes: int
    leap_share: float
    """Share of intervals wider than a fifth."""
    repeat_share: float
    """Share of intervals of 0 (a note struck again)."""
    oscillation_share: float
    """Share of phrases with a two-note oscillation of ``OSCILLATION_NOTES`` notes or more."""
    run_share: float
    """Share of phrases with a stepwise run of ``RUN_NOTES`` notes or more."""
    median_same_pitch_run: float
    max_same_pitch_run: int
    median_top_pitch_share: float
    """The most frequent pitch's share of a phrase's notes, median over phrases with notes."""

    def summary(self) -> str:
        """The figures ``degenerate`` judges, in plain words (one clause each)."""
        return (
            f"longest same-pitch run: median {self.median_same_pitch_run:g}, longest "
            f"{self.max_same_pitch_run}; {self.oscillation_share:.0%} of answers trill; the most "
            f"frequent pitch: {self.median_top_pitch_share:.0%} of the median answer's notes"
        )

    def degenerate(self) -> list[str]:
        """Plain-words reasons this set of phrases is degenerate (empty when it is not): see
        ``DEGENERATE_SAME_PITCH_RUN``, ``DEGENERATE_OSCILLATION_SHARE`` and
        ``DEGENERATE_TOP_PITCH_SHARE`` for the thresholds and why."""
        reasons = []
        if self.median_same_pitch_run > DEGENERATE_SAME_PITCH_RUN:
            reasons.append(
                f"it repeats one note: the median answer strikes the same pitch "
                f"{self.median_same_pitch_run:g} times in a row (longest {self.max_same_pitch_run};"
                f" real continuations: median 2)"
            )
        if self.oscillation_share > DEGENERATE_OSCILLATION_SHARE:
            reasons.append(
                f"it trills: {self.oscillation_share:.0%} of answers alternate two notes for "
                f"{OSCILLATION_NOTES}+ notes (real continuations: under 1%)"
            )
        if self.median_top_pitch_share > DEGENERATE_TOP_PITCH_SHARE:
            reasons.append(
                f"it circles one note: the most frequent pitch is {self.median_top_pitch_share:.0%}"
                f" of the median answer's notes (real continuations: 28%)"
            )
        return reasons


def phrase_figures(phrases: Sequence[np.ndarray]) -> PhraseFigures:
    """``PhraseFigures`` over grid melodies (absolute or key-relative pitches alike)."""
    steps = [intervals(p) for p in phrases]
    all_steps = np.concatenate(steps) if steps else np.zeros(0, np.int64)
    n = len(all_steps)
    same = np.array([longest_same_pitch_run(p) for p in phrases], dtype=np.int64)
    with_notes = same[same > 0]
    tops = np.array([top_pitch_share(p) for p in phrases], dtype=np.float64)
    nan = float("nan")
    return PhraseFigures(
        phrases=len(phrases),
        notes=int(sum(len(onset_pitches(p)) for p in phrases)),
        leap_share=float(np.mean(np.abs(all_steps) > LEAP_SEMITONES)) if n else nan,
        repeat_share=float(np.mean(all_steps == 0)) if n else nan,
        oscillation_share=float(
            np.mean([longest_oscillation(p) >= OSCILLATION_NOTES for p in phrases])
        )
        if len(phrases)
        else nan,
        run_share=float(np.mean([longest_stepwise_run(p) >= RUN_NOTES for p in phrases]))
        if len(phrases)
        else nan,
        median_same_pitch_run=float(np.median(with_notes)) if len(with_notes) else nan,
        max_same_pitch_run=int(same.max()) if len(same) else 0,
        median_top_pitch_share=float(np.nanmedian(tops)) if np.isfinite(tops).any() else nan,
    )


# ------------------------------------------------------------------ the classifier

CV_FOLDS = 5
L2_PENALTY = 1.0
"""Ridge penalty on the standardized weights (the intercept is free)."""


def phrase_vector(events: np.ndarray, tonic: int) -> np.ndarray:
    """One phrase's classifier features: interval histogram (27 bins, as
    ``evaluate.interval_histogram``), inter-onset-interval histogram (17), pitch-class histogram
    relative to ``tonic`` (12), each normalized to shares; then the repeat share, the leap share
    and the longest two-note oscillation (notes / 8, capped at 1)."""
    from training.eval.evaluate import interval_histogram, ioi_histogram

    def shares(counts: np.ndarray) -> np.ndarray:
        total = counts.sum()
        return counts / total if total > 0 else counts

    p = onset_pitches(events)
    pcs = np.bincount((p - tonic) % PITCH_CLASSES, minlength=PITCH_CLASSES).astype(np.float64)
    steps = np.diff(p)
    n = len(steps)
    return np.concatenate(
        [
            shares(interval_histogram([events])),
            shares(ioi_histogram([events])),
            shares(pcs),
            [
                float(np.mean(steps == 0)) if n else 0.0,
                float(np.mean(np.abs(steps) > LEAP_SEMITONES)) if n else 0.0,
                min(1.0, longest_oscillation(events) / 8.0),
            ],
        ]
    )


def _fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 25) -> np.ndarray:
    """Weights (D + 1,) of an L2-penalised logistic regression, Newton's method (IRLS); the last
    weight is the intercept."""
    xb = np.hstack([x, np.ones((len(x), 1))])  # (N, D + 1)
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], L2_PENALTY)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        gradient = xb.T @ (p - y) + penalty * w
        hessian = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count half); nan without both classes."""
    from training.eval.listening import _ranks

    labels = np.asarray(labels, dtype=bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = _ranks(np.asarray(scores, dtype=np.float64)) + 1  # 1-based, ties averaged
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def classifier_auc(
    answers: Sequence[np.ndarray],
    answer_tonics: Sequence[int],
    continuations: Sequence[np.ndarray],
    continuation_tonics: Sequence[int],
    seed: int = 0,
    folds: int = CV_FOLDS,
) -> float:
    """Cross-validated AUC of a logistic regression telling answers (label 1) from real
    continuations (label 0), from ``phrase_vector`` features; both classes are cut to the same
    size. 0.5: indistinguishable; 1: always told apart. nan with fewer than ``2 * folds`` of
    either."""
    n = min(len(answers), len(continuations))
    if n < 2 * folds:
        return float("nan")
    rng = np.random.default_rng(seed)
    a = rng.permutation(len(answers))[:n]
    c = rng.permutation(len(continuations))[:n]
    x = np.stack(
        [phrase_vector(answers[i], int(answer_tonics[i])) for i in a]
        + [phrase_vector(continuations[i], int(continuation_tonics[i])) for i in c]
    )  # (2n, D)
    y = np.concatenate([np.ones(n), np.zeros(n)])
    fold = rng.permutation(2 * n) % folds
    scores = np.zeros(2 * n)
    for k in range(folds):
        train, test = fold != k, fold == k
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0) + 1e-6
        w = _fit_logistic((x[train] - mean) / std, y[train])
        scores[test] = np.hstack([(x[test] - mean) / std, np.ones((int(test.sum()), 1))]) @ w
    return auc(scores, y)


# ------------------------------------------------------------------ the check after train / export

CHECK_CALLS = 200
"""Held-out calls answered by ``check_style`` (a few seconds on one core)."""


def check_style(
    spec: Any, q_values: Any, corpus: Any, calls: int = CHECK_CALLS, seed: int = 0
) -> PhraseFigures:
    """``PhraseFigures`` of a policy's answers to ``calls`` held-out 2-bar calls of ``corpus``,
    played as live (``training.eval.evaluate.answer_as_live`` at live's default temperature):
    what ``deepjam train`` and ``deepjam export`` check for degenerate patterns. ``q_values``:
    states (B, D) -> Q (B, A)."""
    from exports.selection import DEFAULT_TEMPERATURE
    from training.eval.evaluate import answer_as_live, held_out_calls

    rng = np.random.default_rng(seed)
    held = held_out_calls(corpus, spec, 2, 2, calls, rng)
    answers = answer_as_live(spec, held.events, q_values, DEFAULT_TEMPERATURE, rng)
    return phrase_figures(answers.events)


def degenerate_warning(reasons: list[str], what: str) -> str:
    """One plain line for a degenerate style (``PhraseFigures.degenerate``'s reasons), the words
    eval, train and export print."""
    return (
        f"warning: {what} is degenerate: " + "; ".join(reasons) + ". Its answers will sound "
        "stuck; train it longer, on more tunes, or start from the shipped default"
    )


def style_check_line(figures: PhraseFigures, what: str) -> tuple[str, bool]:
    """What ``deepjam train`` and ``deepjam export`` print after ``check_style``: the warning
    (``degenerate_warning``) and True for a degenerate style, else the figures the rule looked at
    and False."""
    reasons = figures.degenerate()
    if reasons:
        return degenerate_warning(reasons, what), True
    return (
        f"{what}: no degenerate pattern in {figures.phrases} answers to held-out calls played as "
        f"live plays them ({figures.summary()})",
        False,
    )
