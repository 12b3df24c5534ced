"""Tonic estimate (Krumhansl–Schmuckler) and the key-relative frame.

The network sees and chooses pitches relative to the tonic: ``relative = absolute - key_shift``
where ``key_shift`` is the tonic's pitch class moved into -6..+5, so transposing into the frame
never moves a line by more than a tritone. A style learned in C answers in E-flat.
"""

from __future__ import annotations

import numpy as np

from exports.spec import PITCH_CLASSES, Spec

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
# Natural minor plus the raised 6th and 7th (melodic/harmonic minor) count as in key.
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)


def _key_templates() -> np.ndarray:
    """(24, 12) z-scored profiles: rows 0..11 major on C..B, rows 12..23 minor on C..B."""
    rows = [np.roll(MAJOR_PROFILE, t) for t in range(PITCH_CLASSES)]
    rows += [np.roll(MINOR_PROFILE, t) for t in range(PITCH_CLASSES)]
    table = np.stack(rows)
    table = table - table.mean(axis=1, keepdims=True)
    return table / np.linalg.norm(table, axis=1, keepdims=True)


KEY_TEMPLATES = _key_templates()


def estimate_key(histogram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Krumhansl–Schmuckler key of pitch-class histograms.

    ``histogram`` is (..., 12), absolute pitch classes (C = 0), any non-negative weights.
    Returns (tonic pitch class (...) int64, minor (...) bool). An empty histogram gives C major.
    """
    h = np.asarray(histogram, dtype=np.float64)
    centered = h - h.mean(axis=-1, keepdims=True)
    scores = centered @ KEY_TEMPLATES.T  # (..., 24); the norm of h does not change the argmax
    best = np.argmax(scores, axis=-1)
    empty = h.sum(axis=-1) <= 0
    tonic = np.where(empty, 0, best % PITCH_CLASSES).astype(np.int64)
    minor = np.where(empty, False, best >= PITCH_CLASSES)
    return tonic, minor


def key_shift(tonic_pc: np.ndarray | int) -> np.ndarray:
    """Semitones from C to the tonic, in -6..+5 (e.g. E-flat -> 3, A -> -3)."""
    t = np.asarray(tonic_pc) % PITCH_CLASSES
    return np.where(t >= 6, t - PITCH_CLASSES, t)


def to_relative(pitch: np.ndarray | int, tonic_pc: np.ndarray | int) -> np.ndarray:
    """Absolute MIDI pitch -> key-relative pitch (negative inputs, i.e. silence, stay)."""
    p = np.asarray(pitch)
    return np.where(p >= 0, p - key_shift(tonic_pc), p)


def to_absolute(relative: np.ndarray | int, tonic_pc: np.ndarray | int) -> np.ndarray:
    """Key-relative pitch -> absolute MIDI pitch (negative inputs, i.e. silence, stay)."""
    r = np.asarray(relative)
    return np.where(r >= 0, r + key_shift(tonic_pc), r)


def fold_into_range(pitch: np.ndarray | int, low: int, high: int) -> np.ndarray:
    """Move pitches by whole octaves into low..high (needs high - low >= 11); -1 stays -1."""
    p = np.asarray(pitch)
    up = np.where(p < low, (low - p + PITCH_CLASSES - 1) // PITCH_CLASSES, 0)
    down = np.where(p > high, (p - high + PITCH_CLASSES - 1) // PITCH_CLASSES, 0)
    return np.where(p >= 0, p + PITCH_CLASSES * (up - down), p)


def scale_mask(minor: bool) -> np.ndarray:
    """(12,) bool: the key-relative pitch classes that are in key."""
    mask = np.zeros(PITCH_CLASSES, dtype=bool)
    mask[list(MINOR_SCALE if minor else MAJOR_SCALE)] = True
    return mask


def decayed_histogram(chroma: np.ndarray, decay: float) -> np.ndarray:
    """(..., T, 12) per-step sounding pitch classes -> (..., 12) histogram at the last step.

    Equals what ``KeyTracker`` holds after observing the same T steps: sum_t decay^(T-1-t) c_t.
    """
    c = np.asarray(chroma, dtype=np.float64)
    t = c.shape[-2]
    weights = decay ** np.arange(t - 1, -1, -1, dtype=np.float64)  # (T,)
    return np.einsum("...tc,t->...c", c, weights)


class KeyTracker:
    """Live tonic estimate over a decaying histogram of sounding pitch classes, one step at a time."""

    def __init__(self, spec: Spec) -> None:
        self._decay = spec.key_decay_per_step
        self.histogram = np.zeros(PITCH_CLASSES)

    def observe_step(self, chroma: np.ndarray) -> None:
        """Fold one step's sounding absolute pitch classes ((12,) bool or weights) in."""
        self.histogram *= self._decay
        self.histogram += chroma

    def key(self) -> tuple[int, bool]:
        """(tonic pitch class, minor) of what has been heard; C major before anything sounds."""
        tonic, minor = estimate_key(self.histogram)
        return int(tonic), bool(minor)

    def reset(self) -> None:
        self.histogram[:] = 0.0
