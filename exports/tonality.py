"""Tonic estimate (Krumhansl–Schmuckler) and the key-relative frame.

The network sees and chooses pitches relative to the tonic: ``relative = absolute - key_shift``
where ``key_shift`` is the tonic's pitch class moved into -6..+5, so transposing into the frame
never moves a line by more than a tritone. A style learned in C answers in E-flat.

The key of a call is judged over the whole call (``estimate_call_key``), by the live agent and
the training environment alike, on the same window of the player's part; a player may fix it
instead (``parse_key``: ``deepjam jam --key "A minor"``).
"""

from __future__ import annotations

import re

import numpy as np

from exports.errors import ConfigError
from exports.midi import key_name
from exports.spec import PITCH_CLASSES

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


def _scale_table() -> np.ndarray:
    """(24, 12) float: row = key (as ``KEY_TEMPLATES``), 1 on the absolute pitch classes of its
    scale (``scale_mask``: the minor keys' raised 6th and 7th included)."""
    rows = [np.roll(scale_mask(minor), t) for minor in (False, True) for t in range(PITCH_CLASSES)]
    return np.stack(rows).astype(np.float64)


def _tonic_chord_table() -> np.ndarray:
    """(24, 12) float: row = key (as ``KEY_TEMPLATES``), 1 on its tonic chord's pitch classes."""
    table = np.zeros((2 * PITCH_CLASSES, PITCH_CLASSES))
    for row in range(2 * PITCH_CLASSES):
        tonic, minor = row % PITCH_CLASSES, row >= PITCH_CLASSES
        table[row, [(tonic + d) % PITCH_CLASSES for d in (0, 3 if minor else 4, 7)]] = 1.0
    return table


# The call's key (``estimate_call_key``): every note counts by its onset and at most an 8th
# note of its length, so a held last note does not outweigh the phrase; a key whose scale the
# call breaks loses by the share it breaks; a key whose tonic chord the call outlines gains by
# the share on it; the phrase's first and last notes are evidence of its tonic. Weights chosen on generated calls in all 24 keys (benchmarks/key_holding.py) and
# on bar-cut excerpts of folk tunes and chorale melodies against the whole tune's key, where
# they were right more often than the decaying histogram (2 bars: folk 58% against 49%,
# chorale sopranos 44% against 30%; excerpts cut on bar lines are often in a passing key).
NOTE_CAP_STEPS = 2
"""A note's sounding steps count up to this many (an 8th note): a held note weighs no more
than a struck one."""
ONSET_WEIGHT = 1.0
"""What being struck adds to a note, in sounding steps: a run of 16ths counts as it is heard."""
IN_SCALE_WEIGHT = 4.0
"""Added to a key's correlation times the share of the call's weight on its scale's notes
(``scale_mask``): a short call's few notes may correlate with a key whose scale they break
(E-heavy C D E F G with E minor), but never fit it."""
TONIC_CHORD_WEIGHT = 2.0
"""Added to a key's correlation times the share of the call's weight on its tonic chord (tonic,
third, fifth): a phrase outlines its key's tonic chord (C B A B C D E E, no G: A minor, whose
chord A C E it spells, not E minor, whose E G B it does not)."""
FIRST_NOTE_WEIGHT = 0.05
LAST_NOTE_WEIGHT = 0.05
"""Added to a key's correlation (Pearson r, -1..1) times how stable the call's first / last
note is in that key (``OPENING_STABILITY`` / ``CLOSING_STABILITY``)."""
OPENING_STABILITY = {0: 1.0, 7: 0.5, 3: 0.25, 4: 0.25}
"""Semitones above the tonic -> how stable a degree is to open a phrase on (the major key's
third is 4, the minor key's 3; each key counts its own third only)."""
CLOSING_STABILITY = {0: 1.0, 7: 1.0, 3: 0.25, 4: 0.25}
"""As ``OPENING_STABILITY``, to close one: a call closes on its 5th (a half cadence, a question)
as readily as on its tonic, so the last note alone never moves the key a fifth."""


def _degree_table(stability: dict[int, float]) -> np.ndarray:
    """(12, 24): absolute pitch class -> each key's (as ``KEY_TEMPLATES``) stability of it."""
    table = np.zeros((2 * PITCH_CLASSES, PITCH_CLASSES))
    for row in range(2 * PITCH_CLASSES):
        tonic, minor = row % PITCH_CLASSES, row >= PITCH_CLASSES
        for degree, value in stability.items():
            if degree in (3, 4) and degree != (3 if minor else 4):
                continue
            table[row, (tonic + degree) % PITCH_CLASSES] = value
    return table.T


OPENING_TABLE = _degree_table(OPENING_STABILITY)
CLOSING_TABLE = _degree_table(CLOSING_STABILITY)
SHARE_TABLE = (IN_SCALE_WEIGHT * _scale_table() + TONIC_CHORD_WEIGHT * _tonic_chord_table()).T
"""(12, 24): histogram @ SHARE_TABLE / its total = each key's scale and tonic-chord shares,
weighted."""


def call_histogram(onset: np.ndarray, chroma: np.ndarray, decay: float) -> np.ndarray:
    """(..., T) onsets and (..., T, 12) sounding pitch classes of the player's part -> (..., 12)
    pitch-class weights of the call: each sounding step counts while its note is at most
    ``NOTE_CAP_STEPS`` old (steps since the part's last onset; a note held into the window from
    before it is past the cap), an onset adds ``ONSET_WEIGHT``, and step t is scaled by
    ``decay ** (T - 1 - t)`` (the spec's key half-life: earlier phrases count less)."""
    onset = np.asarray(onset, dtype=bool)
    c = np.asarray(chroma, dtype=np.float64)
    t = onset.shape[-1]
    steps = np.arange(t)
    # Steps since the part's last onset; before any onset, as if struck long before the window.
    last_onset = np.maximum.accumulate(np.where(onset, steps, -NOTE_CAP_STEPS - t), axis=-1)
    weight = (steps - last_onset < NOTE_CAP_STEPS) + ONSET_WEIGHT * onset  # (..., T)
    weight = weight * decay ** np.arange(t - 1, -1, -1, dtype=np.float64)
    return np.einsum("...t,...tc->...c", weight, c)


def estimate_call_key(
    onset: np.ndarray, chroma: np.ndarray, top: np.ndarray, decay: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The key of a call: (tonic pitch class (...) int64, minor (...) bool, histogram (..., 12)).

    ``onset`` (..., T) bool, ``chroma`` (..., T, 12) bool and ``top`` (..., T) absolute pitch
    (-1 silent) are the player's part over the call window, oldest first, absolute pitches.
    Each key's score is the Krumhansl–Schmuckler correlation of ``call_histogram`` with its
    profile, plus ``IN_SCALE_WEIGHT`` times the share of the histogram on its scale and
    ``TONIC_CHORD_WEIGHT`` times the share on its tonic chord, plus the tonic evidence of the phrase's first and last notes (``FIRST_NOTE_WEIGHT``,
    ``LAST_NOTE_WEIGHT``): an A-minor call ending on a held E stays in A minor. Nothing heard gives C major. The live agent and the
    training environment both call this, on the same window: the key frame is the same in both.
    """
    onset = np.asarray(onset, dtype=bool)
    top = np.asarray(top)
    h = call_histogram(onset, chroma, decay)  # (..., 12)
    centered = h - h.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(centered, axis=-1, keepdims=True)
    scores = (centered / np.where(norm > 0, norm, 1.0)) @ KEY_TEMPLATES.T  # (..., 24) Pearson r
    heard = np.asarray(onset.any(axis=-1))  # (...)
    t = onset.shape[-1]
    first = np.argmax(onset, axis=-1)
    last = t - 1 - np.argmax(onset[..., ::-1], axis=-1)
    first_pc = np.take_along_axis(top, first[..., None], axis=-1)[..., 0] % PITCH_CLASSES
    last_pc = np.take_along_axis(top, last[..., None], axis=-1)[..., 0] % PITCH_CLASSES
    total = h.sum(axis=-1, keepdims=True)
    shares = (h @ SHARE_TABLE) / np.where(total > 0, total, 1.0)  # (..., 24)
    scores = scores + shares
    scores = scores + np.where(
        heard[..., None],
        FIRST_NOTE_WEIGHT * OPENING_TABLE[first_pc] + LAST_NOTE_WEIGHT * CLOSING_TABLE[last_pc],
        0.0,
    )
    best = np.argmax(scores, axis=-1)
    empty = h.sum(axis=-1) <= 0
    tonic = np.where(empty, 0, best % PITCH_CLASSES).astype(np.int64)
    minor = np.where(empty, False, best >= PITCH_CLASSES)
    return tonic, minor, h


KEY_AUTO = "auto"
"""The key choice that leaves the key to the estimate."""
KEY_NAMES = tuple(key_name(t, minor) for minor in (False, True) for t in range(PITCH_CLASSES))
"""The 24 keys by name ('C major' .. 'B minor'), as ``parse_key`` reads them back."""
_LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCIDENTALS = {"": 0, "#": 1, "\u266f": 1, "b": -1, "\u266d": -1}
_KEY_PATTERN = re.compile(r"([a-g])(#|b|\u266f|\u266d)?\s*(major|maj|minor|min|m)?", re.IGNORECASE)


def parse_key(text: str) -> tuple[int, bool] | None:
    """A key as a player writes it -> (tonic pitch class, minor); ``'auto'`` -> None.

    Accepts a tonic letter, an optional sharp or flat (``#``/``b``, or the signs), then
    ``major``/``maj`` (the default) or ``minor``/``min``/``m``: 'A minor', 'Am', 'Eb',
    'F# minor', 'Bbm'. Raises ConfigError (one line, naming what is accepted) for anything else.
    """
    words = " ".join(str(text).split())
    if words.lower() == KEY_AUTO:
        return None
    match = _KEY_PATTERN.fullmatch(words)
    if match is None:
        raise ConfigError(
            f"key must be {KEY_AUTO!r} or a tonic with an optional #/b and major/minor, such as "
            f"'A minor', 'Am', 'Eb', 'F# minor'; got {text!r}"
        )
    letter, accidental, mode = match.groups()
    tonic = (_LETTERS[letter.lower()] + _ACCIDENTALS[accidental or ""]) % PITCH_CLASSES
    return tonic, mode is not None and mode.lower() in ("minor", "min", "m")


def describe_key(key: tuple[int, bool] | None) -> str:
    """'A minor' for a fixed key, ``'auto'`` for None: what ``parse_key`` reads back."""
    return KEY_AUTO if key is None else key_name(*key)
