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
   (an isolated wrong note does not move the grid). The bar's downbeat is the beat on which the
   phrase that first locked the grid began; it is kept across refits.

The confidence (0..1) is the share of onsets that fit times how tightly they fit; the grid is
locked while it stays above ``LOCK_CONFIDENCE``. All times are ``perf_counter_ns`` nanoseconds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from exports.spec import GRID_STEPS_PER_BEAT

CHORD_NS = 35_000_000
"""Onsets this close together are one onset (a chord, or a flam)."""
WINDOW_NS = 8_000_000_000
"""Only onsets from the last 8 s are fitted (about 3-4 bars at usual tempi)."""
MAX_ONSETS = 48
MIN_ONSETS = 6
"""Onsets needed before a grid is searched for."""
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


class TempoTracker:
    """Onsets in, ``estimate`` out. Not thread-safe: the scheduler thread owns it."""

    def __init__(self) -> None:
        self.onsets_ns: deque[int] = deque(maxlen=MAX_ONSETS)
        self.estimate: TempoEstimate | None = None
        self.relocks = 0
        """How many times the grid was searched for afresh after having been locked."""
        self._phrase_start_ns: int | None = None

    @property
    def locked(self) -> bool:
        return self.estimate is not None and self.estimate.locked

    def observe_onset(self, time_ns: int) -> TempoEstimate | None:
        """Add one key-down; returns the estimate after it (None until one is found)."""
        last = self.onsets_ns[-1] if self.onsets_ns else None
        if last is not None and time_ns - last < CHORD_NS:
            return self.estimate  # the same chord
        beat_ns = 60e9 / (self.estimate.bpm if self.estimate else PRIOR_BPM)
        if last is None or time_ns - last > PHRASE_GAP_BEATS * beat_ns:
            self._phrase_start_ns = time_ns
        self.onsets_ns.append(time_ns)
        while self.onsets_ns and time_ns - self.onsets_ns[0] > WINDOW_NS:
            self.onsets_ns.popleft()
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
            self.estimate = fitted
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
        # Phase: the grid through the onsets (circular mean), with the downbeat on the beat
        # nearest the phrase's first onset.
        phase = np.angle(np.exp(2j * np.pi * rel_s / grid_s).mean()) / (2 * np.pi) * grid_s
        anchor_ns = float(times[0]) + phase * 1e9
        start = self._phrase_start_ns if self._phrase_start_ns is not None else int(times[0])
        beat_ns = step_ns * STEPS_PER_BEAT
        origin_ns = anchor_ns + round((start - anchor_ns) / beat_ns) * beat_ns
        # Beats and the grid may differ (k = 1/2: the grid has two beats per period).
        origin_ns = anchor_ns + round((origin_ns - anchor_ns) / step_ns) * step_ns
        return self._fit(times, step_ns, origin_ns)

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
