"""Does the answer follow the call? Listening figures for ``deepjam eval``.

* **Spearman over held-out calls**: for each call and its answer, four phrase features (mean
  inter-onset interval in steps, mean onset pitch, notes per bar, share of 16th-note IOIs); the
  rank correlation of call against answer over the calls, for the policy's answers and, beside
  them, for the tunes' own continuations (the human reference).
* **The probe**: each line (the first notes of a held-out call) is played as 16ths, 8ths and
  quarters, and in 8ths an octave low and an octave high; the share of lines where the answer
  moved the same way as the call (slower for quarters than for 16ths; higher for the octave up),
  and where it moved by the goal's margin (>= 2x the mean IOI; >= 9 semitones).

Answers come from ``training.env.environment.answer_calls`` (the one encoder, the one action
selection), seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from exports.spec import HOLD_EVENT, REST_EVENT, Spec

FEATURES = ("mean_ioi", "mean_pitch", "density", "sixteenth_share")
FEATURE_LABELS = {
    "mean_ioi": "mean inter-onset interval (rhythm)",
    "mean_pitch": "mean pitch (register)",
    "density": "notes per bar (density)",
    "sixteenth_share": "share of 16th-note onsets",
}
PROBE_NOTES = 8
"""Notes of each probe line (8 quarters = 2 bars)."""
PROBE_IOI_RATIO = 2.0
PROBE_OCTAVE_SEMITONES = 9.0


def phrase_features(events: np.ndarray, steps_per_bar: int) -> dict[str, float]:
    """The four features of one phrase (grid events, absolute or relative): mean IOI (steps,
    between successive onsets), mean onset pitch, onsets per bar (over the phrase's length),
    share of IOIs of one step. NaN where a phrase has too few notes."""
    e = np.asarray(events)
    steps = np.flatnonzero(e >= 0)
    ioi = np.diff(steps)
    return {
        "mean_ioi": float(ioi.mean()) if len(ioi) else float("nan"),
        "mean_pitch": float(e[steps].mean()) if len(steps) else float("nan"),
        "density": len(steps) / max(len(e) / steps_per_bar, 1e-9),
        "sixteenth_share": float((ioi == 1).mean()) if len(ioi) else float("nan"),
    }


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    # Ties share their mean rank.
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation over the pairs where both are finite (NaN if < 3)."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    ra, rb = _ranks(a[ok]), _ranks(b[ok])
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class Listening:
    """Spearman(call, answer) per feature, for a policy and for the real continuations."""

    policy: dict[str, float]
    continuation: dict[str, float]
    calls: dict[str, np.ndarray] = field(default_factory=dict)
    """feature -> (n,) call values (for the plot)."""
    answers: dict[str, np.ndarray] = field(default_factory=dict)
    continuations: dict[str, np.ndarray] = field(default_factory=dict)
    n_calls: int = 0


def _features(phrases: Sequence[np.ndarray], steps_per_bar: int) -> dict[str, np.ndarray]:
    rows = [phrase_features(p, steps_per_bar) for p in phrases]
    return {f: np.array([r[f] for r in rows]) for f in FEATURES}


def listening(
    spec: Spec,
    calls: Sequence[np.ndarray],
    answers: Sequence[np.ndarray],
    continuations: Sequence[np.ndarray],
) -> Listening:
    """Spearman(call feature, answer feature) over the calls, beside the same for the tunes'
    continuations (absolute pitches throughout; continuations shorter than the answer count
    over their own length)."""
    spb = spec.steps_per_bar
    c, a, h = _features(calls, spb), _features(answers, spb), _features(continuations, spb)
    return Listening(
        policy={f: spearman(c[f], a[f]) for f in FEATURES},
        continuation={f: spearman(c[f], h[f]) for f in FEATURES},
        calls=c,
        answers=a,
        continuations=h,
        n_calls=len(calls),
    )


def _line(pitches: Sequence[int], ioi_steps: int, shift: int = 0) -> np.ndarray:
    events = np.full(len(pitches) * ioi_steps, HOLD_EVENT, np.int64)
    events[::ioi_steps] = np.asarray(pitches, np.int64) + shift
    events[-1] = REST_EVENT if ioi_steps > 1 else events[-1]
    return events


@dataclass
class Probe:
    """Share of probe lines where the answer moved as the call did."""

    n_lines: int
    slower_share: float
    """Answer to the quarter-note line has a longer mean IOI than the answer to the 16ths."""
    ratio_share: float
    """... at least PROBE_IOI_RATIO times as long (the goal)."""
    higher_share: float
    """Answer to the line an octave up sits higher than the answer to the octave down."""
    octave_share: float
    """... by at least PROBE_OCTAVE_SEMITONES (the goal)."""
    mean_ioi: dict[str, float]
    """line version -> median over lines of the answer's mean IOI (steps)."""
    mean_pitch: dict[str, float]
    """line version -> median over lines of the answer's mean pitch (MIDI)."""


def probe_lines(calls: Sequence[np.ndarray], n: int) -> list[list[int]]:
    """The first PROBE_NOTES onset pitches of up to ``n`` calls that have that many."""
    lines = []
    for call in calls:
        pitches = [int(p) for p in np.asarray(call) if p >= 0]
        if len(pitches) >= PROBE_NOTES:
            lines.append(pitches[:PROBE_NOTES])
        if len(lines) >= n:
            break
    return lines


def probe(
    spec: Spec,
    answer: Callable[[list[np.ndarray]], Sequence[np.ndarray]],
    lines: Sequence[Sequence[int]],
) -> Probe:
    """Answer each line in five versions with ``answer`` (calls -> B absolute answers, grid
    events) and count the lines where the answer moved the same way as the call."""
    versions = {
        "16ths": [_line(p, 1) for p in lines],
        "8ths": [_line(p, 2) for p in lines],
        "quarters": [_line(p, 4) for p in lines],
        "octave down": [_line(p, 2, -12) for p in lines],
        "octave up": [_line(p, 2, 12) for p in lines],
    }
    spb = spec.steps_per_bar
    feats = {k: _features(list(answer(v)), spb) for k, v in versions.items()}
    fast, slow = feats["16ths"]["mean_ioi"], feats["quarters"]["mean_ioi"]
    low, high = feats["octave down"]["mean_pitch"], feats["octave up"]["mean_pitch"]
    n = len(lines)
    with np.errstate(invalid="ignore"):
        return Probe(
            n_lines=n,
            slower_share=float(np.mean(slow > fast)),
            ratio_share=float(np.mean(slow >= PROBE_IOI_RATIO * fast)),
            higher_share=float(np.mean(high > low)),
            octave_share=float(np.mean(high - low >= PROBE_OCTAVE_SEMITONES)),
            mean_ioi={k: float(np.nanmedian(f["mean_ioi"])) for k, f in feats.items()},
            mean_pitch={k: float(np.nanmedian(f["mean_pitch"])) for k, f in feats.items()},
        )


def motif_share(call: np.ndarray, answer: np.ndarray) -> float:
    """Share of the answer's (interval, IOI) 3-grams (three successive notes: two intervals,
    two IOIs) that also occur in the call; NaN for an answer with fewer than three notes."""

    def grams(events: np.ndarray) -> list[tuple[int, int, int, int]]:
        steps = np.flatnonzero(np.asarray(events) >= 0)
        p = np.asarray(events)[steps]
        return [
            (
                int(p[i + 1] - p[i]),
                int(p[i + 2] - p[i + 1]),
                int(steps[i + 1] - steps[i]),
                int(steps[i + 2] - steps[i + 1]),
            )
            for i in range(len(steps) - 2)
        ]

    a = grams(answer)
    if not a:
        return float("nan")
    c = set(grams(call))
    return float(np.mean([g in c for g in a]))
