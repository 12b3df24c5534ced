"""Tonic estimate (Krumhansl–Schmuckler) and the key-relative frame."""

from __future__ import annotations

import numpy as np
import pytest

from exports import (
    DEFAULT_SPEC,
    estimate_call_key,
    estimate_key,
    key_shift,
    to_absolute,
    to_relative,
)
from exports.errors import ConfigError
from exports.midi import NOTE_NAMES
from exports.tonality import KEY_NAMES, fold_into_range, parse_key

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


def _call_window(
    notes: list[tuple[int, int]], window_steps: int = DEFAULT_SPEC.call_window_steps, rest: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(onset, chroma, top) of a monophonic call of (pitch, 16ths) notes, then ``rest`` silent
    steps, at the end of a window of ``window_steps`` (as the live agent's call window)."""
    top = np.full(window_steps, -1)
    onset = np.zeros(window_steps, dtype=bool)
    step = window_steps - rest - sum(length for _, length in notes)
    for pitch, length in notes:
        top[step : step + length] = pitch
        onset[step] = True
        step += length
    chroma = np.zeros((window_steps, 12), dtype=bool)
    chroma[top >= 0, top[top >= 0] % 12] = True
    return onset, chroma, top


def _call_key(notes: list[tuple[int, int]]) -> tuple[str, bool]:
    onset, chroma, top = _call_window(notes)
    tonic, minor, _ = estimate_call_key(onset, chroma, top, DEFAULT_SPEC.key_decay_per_step)
    return NAMES[int(tonic)], bool(minor)


# Calls as degrees above the tonic (natural minor / major) and 16ths, each ending on a long note.
MINOR_CALLS_ENDING_ON_THE_FIFTH = [
    [(0, 2), (2, 2), (3, 2), (5, 2), (7, 2), (5, 2), (3, 2), (2, 2), (0, 4), (7, 12)],
    [(0, 4), (3, 4), (7, 4), (12, 4), (10, 2), (8, 2), (7, 12)],
    [(12, 2), (10, 2), (8, 2), (7, 2), (5, 2), (3, 2), (2, 2), (0, 2), (-2, 2), (0, 2), (7, 8)],
    [(0, 4), (3, 4), (5, 4), (7, 16)],
    [(7, 2), (8, 2), (7, 2), (5, 2), (3, 2), (2, 2), (3, 2), (0, 2), (-5, 16)],
]
MAJOR_CALLS = [
    [(0, 2), (2, 2), (4, 2), (5, 2), (7, 4), (9, 2), (7, 2), (4, 4), (0, 12)],
    [(7, 4), (4, 4), (0, 4), (2, 2), (4, 2), (5, 4), (4, 2), (2, 2), (7, 12)],
    [(0, 2), (4, 2), (7, 2), (12, 2), (11, 2), (9, 2), (7, 4), (5, 2), (4, 2), (2, 4), (4, 12)],
]


@pytest.mark.parametrize("tonic", range(12))
def test_a_minor_call_ending_on_its_held_fifth_stays_minor_in_every_key(tonic: int) -> None:
    for call in MINOR_CALLS_ENDING_ON_THE_FIFTH:
        notes = [(57 + tonic + degree, length) for degree, length in call]
        assert _call_key(notes) == (NAMES[(9 + tonic) % 12], True), call


MINOR_CALLS = [
    [(0, 2), (3, 2), (7, 2), (8, 2), (7, 4), (5, 2), (3, 2), (2, 2), (-1, 2), (0, 12)],
    [(7, 4), (3, 4), (5, 2), (3, 2), (2, 2), (0, 2), (3, 4), (2, 4), (3, 12)],
]


@pytest.mark.parametrize("tonic", range(12))
def test_minor_calls_ending_on_the_tonic_or_third_give_their_key_in_every_key(tonic: int) -> None:
    for call in MINOR_CALLS:
        notes = [(57 + tonic + degree, length) for degree, length in call]
        assert _call_key(notes) == (NAMES[(9 + tonic) % 12], True), call


@pytest.mark.parametrize("tonic", range(12))
def test_major_calls_give_their_key_in_every_key(tonic: int) -> None:
    for call in MAJOR_CALLS:
        notes = [(60 + tonic + degree, length) for degree, length in call]
        assert _call_key(notes) == (NAMES[tonic], False), call


def test_the_decaying_histogram_would_have_heard_e_major_the_call_key_hears_a_minor() -> None:
    """The case that made the estimate judge the whole call: A-minor ending on a held E."""
    a_minor = [(57, 2), (59, 2), (60, 2), (62, 2), (64, 2), (62, 2), (60, 2), (59, 2)]
    a_minor += [(57, 4), (64, 32)]  # the 5th held two bars
    onset, chroma, top = _call_window(a_minor, rest=0)
    decayed = chroma.T @ DEFAULT_SPEC.key_decay_per_step ** np.arange(95, -1, -1.0)
    assert (NAMES[int(estimate_key(decayed)[0])], bool(estimate_key(decayed)[1])) != ("A", True)
    assert _call_key(a_minor) == ("A", True)


def test_the_call_key_batches_and_nothing_heard_is_c_major() -> None:
    rows = [_call_window([(69, 4), (72, 4), (76, 16)]), _call_window([])]
    onset, chroma, top = (np.stack([r[i] for r in rows]) for i in range(3))
    tonic, minor, histogram = estimate_call_key(onset, chroma, top, 0.99)
    assert tonic.tolist() == [9, 0] and minor.tolist() == [True, False]
    assert histogram.shape == (2, 12) and histogram[1].sum() == 0
    # A held note counts as struck plus an 8th, whatever its length.
    assert histogram[0][4] < histogram[0][9] + histogram[0][0]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("A minor", (9, True)),
        ("Am", (9, True)),
        ("Eb", (3, False)),
        ("E\u266d major", (3, False)),
        ("F# minor", (6, True)),
        ("bbm", (10, True)),
        ("  c   MAJOR ", (0, False)),
        ("auto", None),
    ],
)
def test_parse_key_reads_what_a_player_writes(text: str, key: tuple[int, bool] | None) -> None:
    assert parse_key(text) == key


def test_parse_key_reads_back_every_key_name_and_refuses_others_in_one_line() -> None:
    assert [parse_key(name) for name in KEY_NAMES] == [
        (t, minor) for minor in (False, True) for t in range(12)
    ]
    for bad in ("H", "A dorian", "", "A##"):
        with pytest.raises(ConfigError, match="'A minor', 'Am', 'Eb'") as err:
            parse_key(bad)
        assert "\n" not in str(err.value)


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
