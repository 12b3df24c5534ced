"""Tonic estimate (Krumhansl–Schmuckler) and the key-relative frame."""

from __future__ import annotations

import numpy as np
import pytest

from exports import DEFAULT_SPEC, KeyTracker, estimate_key, key_shift, to_absolute, to_relative
from exports.midi import NOTE_NAMES
from exports.tonality import decayed_histogram, fold_into_range

NAMES = list(NOTE_NAMES)
MAJOR = [0, 2, 4, 5, 7, 9, 11, 12]
HARMONIC_MINOR = [0, 2, 3, 5, 7, 8, 11, 12]


def _histogram(pitches: list[int], durations: list[int] | None = None) -> np.ndarray:
    h = np.zeros(12)
    for i, p in enumerate(pitches):
        h[p % 12] += 1 if durations is None else durations[i]
    return h


@pytest.mark.parametrize("tonic", range(12))
@pytest.mark.parametrize("minor", [False, True])
def test_scale_up_one_octave_gives_its_key(tonic: int, minor: bool) -> None:
    degrees = HARMONIC_MINOR if minor else MAJOR
    found_tonic, found_minor = estimate_key(_histogram([60 + tonic + d for d in degrees]))
    assert (NAMES[int(found_tonic)], bool(found_minor)) == (NAMES[tonic], minor)


# Known tunes (pitch, duration in 16ths), the key they are in.
TWINKLE_C = (
    [60, 60, 67, 67, 69, 69, 67, 65, 65, 64, 64, 62, 62, 60],
    [4, 4, 4, 4, 4, 4, 8, 4, 4, 4, 4, 4, 4, 8],
)
ODE_TO_JOY_D = (
    [66, 66, 67, 69, 69, 67, 66, 64, 62, 62, 64, 66, 64, 62, 62],
    [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 6, 2, 8],
)
GOD_REST_YE_E_MINOR = (
    [64, 64, 71, 71, 69, 67, 66, 64, 62, 64, 66, 67, 69, 71],
    [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8],
)
GREENSLEEVES_A_MINOR = (
    [69, 72, 74, 76, 77, 76, 74, 71, 67, 69, 71, 72, 69, 69, 68, 69, 71, 68, 64],
    [4, 8, 4, 6, 2, 4, 8, 4, 6, 2, 4, 8, 4, 6, 2, 4, 8, 4, 8],
)


@pytest.mark.parametrize(
    ("tune", "tonic", "minor"),
    [
        (TWINKLE_C, 0, False),
        (ODE_TO_JOY_D, 2, False),
        (GOD_REST_YE_E_MINOR, 4, True),
        (GREENSLEEVES_A_MINOR, 9, True),
    ],
)
def test_known_tunes_give_their_key(tune: tuple, tonic: int, minor: bool) -> None:
    found_tonic, found_minor = estimate_key(_histogram(*tune))
    assert (int(found_tonic), bool(found_minor)) == (tonic, minor)


def test_empty_histogram_is_c_major_and_batches_work() -> None:
    tonic, minor = estimate_key(np.zeros((3, 12)))
    assert tonic.tolist() == [0, 0, 0] and minor.tolist() == [False] * 3


def test_key_tracker_matches_decayed_histogram_and_follows_a_modulation() -> None:
    spec = DEFAULT_SPEC
    tracker = KeyTracker(spec)
    steps = []
    for degree in MAJOR * 8:  # C major, then the same scale on E-flat
        chroma = np.zeros(12)
        chroma[degree % 12] = 1
        steps.append(chroma)
    for degree in MAJOR * 32:  # four half-lives: C has faded
        chroma = np.zeros(12)
        chroma[(degree + 3) % 12] = 1
        steps.append(chroma)
    for i, chroma in enumerate(steps):
        tracker.observe_step(chroma)
        if i == 63:
            assert tracker.key() == (0, False)
    assert tracker.key() == (3, False)
    expected = decayed_histogram(np.array(steps), spec.key_decay_per_step)
    np.testing.assert_allclose(tracker.histogram, expected)


def test_relative_frame_moves_at_most_a_tritone_and_round_trips() -> None:
    shifts = [int(key_shift(t)) for t in range(12)]
    assert shifts == [0, 1, 2, 3, 4, 5, -6, -5, -4, -3, -2, -1]
    pitches = np.arange(40, 90)
    for tonic in range(12):
        rel = to_relative(pitches, tonic)
        assert np.all(np.abs(rel - pitches) <= 6)
        np.testing.assert_array_equal(to_absolute(rel, tonic), pitches)
    assert int(to_relative(-1, 5)) == -1  # silence stays silence


def test_fold_into_range_keeps_pitch_class() -> None:
    p = np.array([10, 47, 48, 84, 85, 127, -1])
    folded = fold_into_range(p, 48, 84)
    assert folded.tolist() == [58, 59, 48, 84, 73, 79, -1]
