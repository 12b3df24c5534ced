"""The player's tempo and beat, estimated from their note onsets (no clock needed).

``TempoTracker`` keeps the onsets of the last bars (a chord's notes within ``CHORD_NS`` count
once) and, on each new onset, fits a grid to them:

1. **Search** (not locked yet, or the fit went bad): for every candidate grid period G from
   60 ms to 1.5 s (0.15 % apart) the phase coherence c(G) = |mean(exp(2 pi i t / G))| says how
   well all onsets sit on one grid of period G (1 = exactly). The largest G whose coherence is
   near the best is the coarsest grid that explains every onset (the player's 16ths, 8ths or
   quarters). The beat is k * G for k in 1/2, 1, 2, 4, whichever lies nearest 110 bpm on a log
   scale (the usual tempo-octave prior of beat trackers); the live step is a quarter of it.
2. **Fit**: each onset gets its grid index; a least-squares line (time against index) gives the
   period and the phase exactly, and follows slow drift because only the recent window is fitted.
   Onsets further than ``STRAY_FRACTION`` of a step off the line are strays: dropped from the fit
   (an isolated wrong note does not move the grid).
3. **Bar**: which 16th is the downbeat is the phrase's to say (``downbeat_scores``): where its
   long notes and accents (velocity) fall on the metrical grid, and its first onset or the one
   after a pickup of up to a beat. Not the first onset alone: a call with a pickup has its
   downbeat after it. The downbeat follows the phrase that placed it; a later phrase keeps it
   unless its long notes and accents alone clearly move it. Refits keep the bar line.

The confidence (0..1) is the share of onsets that fit times how tightly they fit; the grid is
locked while it stays above ``LOCK_CONFIDENCE``. All times are ``perf_counter_ns`` nanoseconds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from exports.spec import GRID_STEPS_PER_BEAT

CHORD_NS = 35_000_000
"""Onsets this close together are one onset (a chord, or a flam)."""
WINDOW_NS = 8_000_000_000
"""Only onsets from the last 8 s are fitted (about 3-4 bars at usual tempi)."""
MAX_ONSETS = 48
MIN_ONSETS = 3
"""Onsets needed before a grid is searched for: a short call (3-5 onsets spanning a beat or
more) gets a tempo from what it has, not the --bpm fallback."""
MIN_GRID_S = 0.06
MAX_GRID_S = 1.5
GRID_STEP_RATIO = 1.0015
NEAR_BEST = 0.08
"""Grid periods whose coherence is within this of the best count as explaining the onsets."""
MIN_COHERENCE = 0.75
PRIOR_BPM = 110.0
MIN_BPM = 40.0
MAX_BPM = 240.0
BEAT_MULTIPLES = (0.5, 1.0, 2.0, 4.0)
STEPS_PER_BEAT = GRID_STEPS_PER_BEAT
STRAY_FRACTION = 0.25
"""An onset further than this share of a live step from the fitted grid is a stray."""
TIGHT_FRACTION = 0.25
"""RMS residual (share of a step) at which the confidence's tightness term reaches zero."""
LOCK_CONFIDENCE = 0.6
PHRASE_GAP_BEATS = 2.0
"""A silence this long (in beats) before an onset makes it a phrase start (for the downbeat)."""
STEPS_PER_BAR = 4 * STEPS_PER_BEAT
METRIC_WEIGHT = np.array([1.0, 0, 0.2, 0, 0.5, 0, 0.2, 0, 0.75, 0, 0.2, 0, 0.5, 0, 0.2, 0])
"""How strong each 16th of a 4/4 bar is (beat 1, 3, 2 and 4, the 8ths, the 16ths): an onset
that is long or accented weighs more where it falls (Lerdahl and Jackendoff's metrical grid)."""
START_BONUS = 0.5
"""Score of a downbeat on the phrase's first onset; one on an onset within the phrase's first
beat (the phrase began with a pickup) scores ``PICKUP_SHARE`` of it."""
PICKUP_SHARE = 1.0
CLOSE_BONUS = 0.25
"""Score of a finished phrase's last note on beat 1 or 3 (phrases close on strong beats)."""
KEEP_MARGIN = 0.05
"""A downbeat chosen in this phrase moves only for one that scores this much better."""
MOVE_MARGIN = 0.12
"""A downbeat kept from an earlier phrase moves only for one that scores this much better, on
``MOVE_MIN_ONSETS`` onsets of the new phrase or more: the player clearly moved the bar."""
MOVE_MIN_ONSETS = 6
ACCENT_VELOCITY = 20.0
"""Velocity above the phrase's median that makes a full accent."""


@dataclass(frozen=True)
class TempoEstimate:
    """The grid the player plays on, as last fitted."""

    bpm: float
    """Beats (quarter notes) per minute."""
    step_ns: float
    """One 16th step, nanoseconds."""
    origin_ns: float
    """Time of a downbeat (grid step 0, bar position 0)."""
    confidence: float
    """0..1: share of recent onsets on the grid times how tightly they sit."""
    onsets: int
    """Onsets fitted."""
    strays: int
    """Recent onsets left out of the fit as strays."""

    @property
    def locked(self) -> bool:
        return self.confidence >= LOCK_CONFIDENCE

    def describe(self) -> str:
        """One line for the log: tempo, confidence, onsets."""
        return (
            f"player tempo {self.bpm:.1f} bpm, confidence {self.confidence:.2f} "
            f"({self.onsets} onsets, {self.strays} strays)"
        )


def grid_coherence(times_s: np.ndarray, periods_s: np.ndarray) -> np.ndarray:
    """(P,) phase coherence 0..1 of the onset times (N,) on grids of each period (P,)."""
    phase = np.exp(2j * np.pi * times_s[None, :] / periods_s[:, None])  # (P, N)
    return np.abs(phase.mean(axis=1))


_PERIODS_S = MIN_GRID_S * GRID_STEP_RATIO ** np.arange(
    int(math.log(MAX_GRID_S / MIN_GRID_S) / math.log(GRID_STEP_RATIO)) + 1
)


def coarsest_grid_s(times_s: np.ndarray) -> tuple[float, float] | None:
    """(period s, coherence) of the coarsest grid that explains the onsets, None when none does."""
    coherence = grid_coherence(times_s, _PERIODS_S)
    best = float(coherence.max())
    if best < MIN_COHERENCE:
        return None
    good = np.flatnonzero(coherence >= best - NEAR_BEST)
    # The largest good period; then the local peak around it (coherence is smooth near a peak).
    i = int(good[-1])
    while i > 0 and coherence[i - 1] > coherence[i]:
        i -= 1
    return float(_PERIODS_S[i]), float(coherence[i])


def beat_multiple(grid_s: float) -> float:
    """k such that the beat k * grid_s is nearest PRIOR_BPM (log scale), within MIN..MAX_BPM."""
    candidates = [k for k in BEAT_MULTIPLES if MIN_BPM <= 60.0 / (k * grid_s) <= MAX_BPM]
    if not candidates:
        candidates = list(BEAT_MULTIPLES)
    return min(candidates, key=lambda k: abs(math.log2(60.0 / (k * grid_s) / PRIOR_BPM)))


def downbeat_scores(
    index: np.ndarray,
    velocities: np.ndarray | None = None,
    closed: bool = False,
    started: bool = True,
) -> np.ndarray:
    """(STEPS_PER_BAR,) how well a downbeat on each bar position fits one phrase: score[j] is
    for a downbeat on grid index j (mod a bar). ``index`` (N,) are the phrase's onsets as grid
    indices (16ths, ascending), ``velocities`` (N,) their velocities (None: not known),
    ``closed``: the phrase is over (its last note is its close); ``started``: ``index[0]`` is
    the phrase's first onset (False: the phrase began before these onsets).

    Three cues, summed: where long notes (a long gap to the next onset) and accents fall on
    the metrical grid (``METRIC_WEIGHT``, weighted by each onset's length and accent);
    the phrase's start (``START_BONUS`` for a downbeat on its first onset, ``PICKUP_SHARE`` of
    it for one on an onset within its first beat: the notes before it are a pickup); and a
    closed phrase's last note on beat 1 or 3 (``CLOSE_BONUS``)."""
    index = np.asarray(index, dtype=np.int64)
    n = len(index)
    gaps = np.diff(index).astype(np.float64)  # (N-1,)
    typical = float(np.median(gaps)) if len(gaps) else 1.0
    lengths = np.append(gaps, 2 * typical if closed else typical)  # (N,)
    weight = 1.0 + np.clip(np.log2(np.maximum(lengths, 1.0) / max(typical, 1.0)), 0.0, 2.0)
    if started and n:
        weight[0] = 1.0  # a first note's length says little: a quarter pickup is long too
    if velocities is not None and n:
        v = np.asarray(velocities, dtype=np.float64)
        weight = weight + np.clip((v - np.median(v)) / ACCENT_VELOCITY, 0.0, 1.0)
    candidates = np.arange(STEPS_PER_BAR)  # (B,)
    position = (index[None, :] - candidates[:, None]) % STEPS_PER_BAR  # (B, N)
    scores = (METRIC_WEIGHT[position] * weight[None, :]).sum(axis=1) / max(weight.sum(), 1e-9)
    if n and started:
        first = index[0]
        for i in range(n):
            if index[i] - first > STEPS_PER_BEAT:
                break
            share = 1.0 if i == 0 else PICKUP_SHARE
            scores[index[i] % STEPS_PER_BAR] += START_BONUS * share
        if closed:
            strong = (index[-1] - candidates) % (STEPS_PER_BAR // 2) == 0  # (B,)
            scores += CLOSE_BONUS * strong
    return scores


class TempoTracker:
    """Onsets in, ``estimate`` out. Not thread-safe: the scheduler thread owns it."""

    def __init__(self) -> None:
        self.onsets_ns: deque[int] = deque(maxlen=MAX_ONSETS)
        self.velocities: deque[int] = deque(maxlen=MAX_ONSETS)
        self.estimate: TempoEstimate | None = None
        self.relocks = 0
        """How many times the grid was searched for afresh after having been locked."""
        self.bar_moves = 0
        """How many times the downbeat moved after a phrase had placed it."""
        self._phrase_start_ns: int | None = None
        self._bar_phrase_ns: int | None = None
        """Start of the phrase that placed the downbeat (None: not placed yet)."""

    @property
    def locked(self) -> bool:
        return self.estimate is not None and self.estimate.locked

    def observe_onset(self, time_ns: int, velocity: int | None = None) -> TempoEstimate | None:
        """Add one key-down (``velocity``: its MIDI velocity, when known: accents mark the
        downbeat); returns the estimate after it (None until one is found)."""
        last = self.onsets_ns[-1] if self.onsets_ns else None
        if last is not None and time_ns - last < CHORD_NS:
            return self.estimate  # the same chord
        beat_ns = 60e9 / (self.estimate.bpm if self.estimate else PRIOR_BPM)
        if last is None or time_ns - last > PHRASE_GAP_BEATS * beat_ns:
            self._phrase_start_ns = time_ns
        self.onsets_ns.append(time_ns)
        self.velocities.append(64 if velocity is None else velocity)
        while self.onsets_ns and time_ns - self.onsets_ns[0] > WINDOW_NS:
            self.onsets_ns.popleft()
            self.velocities.popleft()
        if len(self.onsets_ns) < MIN_ONSETS:
            return self.estimate
        times = np.array(self.onsets_ns, dtype=np.int64)  # (N,)
        fitted = None
        if self.estimate is not None:
            fitted = self._fit(times, self.estimate.step_ns, self.estimate.origin_ns)
            if fitted is not None and not fitted.locked:
                fitted = None
                self.relocks += 1
        if fitted is None:
            fitted = self._search(times)
            if fitted is not None:
                self._bar_phrase_ns = None  # a new grid: its bar is placed afresh
        if fitted is not None:
            self.estimate = self._place_bar(fitted, times)
        elif self.estimate is not None and self.estimate.locked:
            # Nothing fits any more (the player stopped keeping time): let go of the lock.
            self.estimate = TempoEstimate(
                self.estimate.bpm,
                self.estimate.step_ns,
                self.estimate.origin_ns,
                0.0,
                len(times),
                len(times),
            )
        return self.estimate

    def _search(self, times: np.ndarray) -> TempoEstimate | None:
        rel_s = (times - times[0]) / 1e9
        found = coarsest_grid_s(rel_s)
        if found is None:
            return None
        grid_s, _ = found
        k = beat_multiple(grid_s)
        step_ns = k * grid_s * 1e9 / STEPS_PER_BEAT
        # Phase: the grid through all the onsets (circular mean); which of its steps is the
        # downbeat is the phrase's to say (``_place_bar``), not the first onset's.
        phase = np.angle(np.exp(2j * np.pi * rel_s / grid_s).mean()) / (2 * np.pi) * grid_s
        origin_ns = float(times[0]) + phase * 1e9
        return self._fit(times, step_ns, origin_ns)

    def _place_bar(self, fitted: TempoEstimate, times: np.ndarray) -> TempoEstimate:
        """``fitted`` with its origin on the downbeat the current phrase points to
        (``downbeat_scores``). While the phrase that placed it goes on, the downbeat follows its
        evidence (by ``KEEP_MARGIN``), until its first onset has left the window; a later
        phrase keeps it unless its long notes and accents alone clearly move it
        (``MOVE_MARGIN``: the player moved the bar; where a phrase starts does not)."""
        start = self._phrase_start_ns
        if start is None:
            return fitted
        in_phrase = times >= start
        count = int(in_phrase.sum())
        if count < MIN_ONSETS:
            return fitted
        index = np.round((times[in_phrase] - fitted.origin_ns) / fitted.step_ns).astype(np.int64)
        velocities = np.array(self.velocities, dtype=np.int64)[in_phrase]  # beside times
        started = start >= times[0]
        if self._bar_phrase_ns is None:
            margin = -1.0  # nothing placed yet: take the best
            scores = downbeat_scores(index, velocities, started=started)
        elif self._bar_phrase_ns == start and started:
            margin = KEEP_MARGIN
            scores = downbeat_scores(index, velocities)
        elif self._bar_phrase_ns != start and count >= MOVE_MIN_ONSETS:
            margin = MOVE_MARGIN
            scores = downbeat_scores(index, velocities, started=False)
        else:
            return fitted
        placed_before = self._bar_phrase_ns
        if placed_before is None:
            self._bar_phrase_ns = start
        best = int(np.argmax(scores))
        if best == 0 or scores[best] - scores[0] <= margin:
            return fitted
        if placed_before is not None and placed_before != start:
            self.bar_moves += 1
        self._bar_phrase_ns = start
        shift = best - STEPS_PER_BAR if best > STEPS_PER_BAR // 2 else best  # the nearer way
        return replace(fitted, origin_ns=fitted.origin_ns + shift * fitted.step_ns)

    def _fit(self, times: np.ndarray, step_ns: float, origin_ns: float) -> TempoEstimate | None:
        """Least-squares grid through the onsets, indices taken from the given grid; the origin
        stays on the same bar line (refits keep the bar position)."""
        index = np.round((times - origin_ns) / step_ns)  # (N,)
        keep = np.ones(len(times), dtype=bool)
        slope, intercept = step_ns, origin_ns
        for _ in range(2):
            if keep.sum() < 3 or np.ptp(index[keep]) < STEPS_PER_BEAT:
                return None
            slope, intercept = np.polyfit(index[keep], times[keep].astype(np.float64), 1)
            if not 60e9 / MAX_BPM / STEPS_PER_BEAT <= slope <= 60e9 / MIN_BPM / STEPS_PER_BEAT:
                return None
            index = np.round((times - intercept) / slope)
            residual = np.abs(times - (intercept + index * slope))
            keep = residual <= STRAY_FRACTION * slope
        kept = int(keep.sum())
        if kept < 3:
            return None
        residual = times[keep] - (intercept + index[keep] * slope)
        rms = float(np.sqrt(np.mean(residual**2))) / slope
        tightness = max(0.0, 1.0 - rms / TIGHT_FRACTION)
        confidence = kept / len(times) * tightness
        return TempoEstimate(
            bpm=60e9 / (slope * STEPS_PER_BEAT),
            step_ns=float(slope),
            origin_ns=float(intercept),
            confidence=confidence,
            onsets=len(times),
            strays=len(times) - kept,
        )
