"""RL Tuner's Table 1 metrics on hand-made compositions whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exports.spec import HOLD_EVENT as H
from exports.spec import REST_EVENT as R
from training.eval.rl_tuner_metrics import (
    PAPER_NOTE_RNN,
    PAPER_Q,
    TABLE1_ROWS,
    LeapTracker,
    autocorrelate,
    composition_stats,
    format_table1_value,
    is_excessively_repeated,
    is_repeated_motif,
    last_motif,
    rl_tuner_tokens,
    table1,
)

# A one-bar (8-step) motif of three pitches, played four times: 32 steps.
MOTIF = [60, 62, 64, H, H, H, H, H]
MOTIF_x4 = MOTIF * 4


def leap_outcomes(events: list[int]) -> list[int]:
    tracker = LeapTracker()
    return [tracker.step(events[:t], e) for t, e in enumerate(events)]


def test_tokens_are_the_note_rnn_indices():
    # Magenta's melody one-hot: index 0 = no event (hold), 1 = note off, 2 = MIDI 48.
    assert rl_tuner_tokens(np.array([H, R, 48, 60, 83])).tolist() == [0, 1, 2, 14, 37]


def test_excessive_repetition_thresholds():
    assert not is_excessively_repeated([60] * 4, 60)
    assert is_excessively_repeated([60] * 5, 60)  # a fifth repeat is excessive
    # With holds or rests among them, more than 6 repeats are needed.
    assert not is_excessively_repeated([60, H, 60, 60, 60, 60, 60], 60)
    assert is_excessively_repeated([60, H, 60, 60, 60, 60, 60, 60], 60)
    # Another pitch ends the run.
    assert not is_excessively_repeated([60] * 5 + [62], 60)


def test_rest_special_case_applies_to_rests_not_holds():
    # A rest after more than one earlier rest (holds may lie between) is excessive.
    assert is_excessively_repeated([60, R, H, R], R)
    assert not is_excessively_repeated([60, H, R], R)
    # A note held for three steps is not excessive repetition...
    assert not is_excessively_repeated([60, H, H], H)
    # ...but it is under Magenta's swapped constants (the encoding bug), which fire on holds.
    assert is_excessively_repeated([60, H, H], H, encoding_bug=True)
    assert not is_excessively_repeated([60, R, H, R], R, encoding_bug=True)


def test_holding_a_note_more_than_five_further_steps_counts_as_repetition():
    # Their rule has no special case for the hold token itself: it is repeated like a pitch.
    assert not is_excessively_repeated([60, H, H, H, H], H)
    assert is_excessively_repeated([60, H, H, H, H, H], H)


def test_autocorrelation_matches_hand_computation():
    # x = [-.5, .5, -.5, .5], var = .25: lag 1 -> -.75 / 4 / .25, lag 2 -> .5 / 4 / .25.
    assert autocorrelate(np.array([0, 1, 0, 1]), 1) == pytest.approx(-0.75)
    assert autocorrelate(np.array([0, 1, 0, 1]), 2) == pytest.approx(0.5)
    assert math.isnan(autocorrelate(np.array([5, 5, 5]), 1))


def test_leap_resolved_gradually():
    # Leap up a fifth from 60, then step back down to 60: resolved.
    assert leap_outcomes([60, 67, 65, 64, 62, 60]) == [0, 0, 0, 0, 0, LeapTracker.RESOLVED]


def test_leap_doubled():
    assert leap_outcomes([60, 67, 74]) == [0, 0, LeapTracker.DOUBLED]


def test_leap_back_resolves_only_after_more_than_six_steps():
    early = [60, 67] + [H] * 6 + [60]
    late = [60, 67] + [H] * 7 + [60]
    assert leap_outcomes(early)[-1] == 0  # cleared without counting
    assert leap_outcomes(late)[-1] == LeapTracker.RESOLVED


def test_leap_ignores_holds_and_rests_between_notes():
    # The interval is measured from the last *note*: 60 .. rest .. 72 is an octave leap.
    tracker = LeapTracker()
    events = [60, R, H, 72, 71, 69, 67, 65, 64, 62, 60]
    outcomes = [tracker.step(events[:t], e) for t, e in enumerate(events)]
    assert outcomes == [0] * 10 + [LeapTracker.RESOLVED]
    # Jumping straight back (71 -> 60, an 11th down within 6 steps) clears it uncounted.
    assert leap_outcomes([60, R, H, 72, 71, 60]) == [0] * 6


def test_motif_needs_three_distinct_pitches_in_eight_steps():
    assert last_motif([60, 62, 64, H, H, H, H, H]) is not None
    assert last_motif([60, 62, 60, H, R, H, 62, 60]) is None  # two distinct pitches
    assert last_motif([60, 62, 64, H, H, H, H]) is None  # only 7 steps


def test_repeated_motif_must_occur_before_the_motif_starts():
    # The second copy's window is steps 8..15; the first copy (steps 0..7) lies before it.
    assert is_repeated_motif(MOTIF + MOTIF[:7], MOTIF[7])
    # One step earlier the window (7..14) is [H, 60, 62, 64, H, H, H, H]: not seen before step 7.
    assert not is_repeated_motif(MOTIF + MOTIF[:6], MOTIF[6])
    # A single copy does not repeat itself.
    assert not is_repeated_motif(MOTIF[:7], MOTIF[7])


def test_table1_on_a_motif_played_four_times():
    stats = composition_stats(np.array([MOTIF_x4]))
    # Every 8-step window from step 7 on holds 60, 62, 64: steps 7..31.
    assert stats.notes_in_motif == 25
    # Window starting at s repeats the one at s - 8 when s >= 8: steps 15..31.
    assert stats.notes_in_repeated_motif == 17
    assert stats.num_repeated_notes == 0  # at most 4 holds follow one another
    assert stats.notes_not_in_key == 0
    assert stats.num_starting_tonic == 1
    assert stats.num_high_unique == 0 and stats.num_low_unique == 0
    assert stats.num_resolved_leaps == 0 and stats.num_leap_twice == 0
    row = stats.table1()
    assert row["notes_in_motif"] == pytest.approx(25 / 32)
    assert row["notes_in_repeated_motif"] == pytest.approx(17 / 32)
    assert math.isnan(row["leaps_resolved"])  # no leap at all
    tokens = rl_tuner_tokens(np.array(MOTIF_x4)).astype(float)
    x = tokens - tokens.mean()
    expected_lag1 = (x[1:] * x[:-1]).sum() / 32 / tokens.var()
    assert row["autocorrelation_lag1"] == pytest.approx(expected_lag1)


def test_table1_on_three_compositions_with_known_answers():
    # 1: starts on the tonic, a non-key note (61), a sixth 65 in a row, a resolved leap.
    first = [60, 61] + [65] * 6 + [72, 71, 69, 67, 65, R] + [H] * 18
    # 2: starts off the tonic, a doubled leap 67 -> 55 -> 48, a unique max and min.
    second = [67, 55, 48, 50, 52, 52, R] + [H] * 25
    # 3: one rest, then silence: no note at all.
    third = [R] + [H] * 31
    stats = composition_stats(np.array([first, second, third]))
    assert stats.num_compositions == 3 and stats.total_notes == 96
    assert stats.num_starting_tonic == 1
    assert stats.notes_not_in_key == 1  # 61; holds and rests count as in key
    # The sixth 65 repeats five: excessive. Holds after a rest need more than 6 earlier holds:
    # the 8th hold on, i.e. 11 of 18, 18 of 25 and 24 of 31.
    assert stats.num_repeated_notes == 1 + 11 + 18 + 24
    # 65 -> 72 leaps up from 65; 71, 69, 67 step down; 65 <= 65 resolves it.
    # 67 -> 55 leaps down, 55 -> 48 leaps down again: doubled; 50, 52 never get back to 67.
    assert stats.num_resolved_leaps == 1
    assert stats.num_leap_twice == 1
    # Unique max: 72 once in 1, 67 once in 2; composition 3's "max" is its single rest token.
    assert stats.num_high_unique == 3
    # Unique min: 60 once in 1, 48 once in 2, no note in 3.
    assert stats.num_low_unique == 2
    row = stats.table1()
    assert row["starting_with_tonic"] == pytest.approx(1 / 3)
    assert row["notes_not_in_key"] == pytest.approx(1 / 96)
    assert row["leaps_resolved"] == pytest.approx(0.5)
    assert row["unique_max_note"] == pytest.approx(1.0)
    assert row["unique_min_note"] == pytest.approx(2 / 3)
    assert row["notes_excessively_repeated"] == pytest.approx(54 / 96)


def test_encoding_bug_flag_reproduces_the_inflated_repetition():
    # A motif with four holds: fine by the fixed rule, every 3rd+ hold flagged by the buggy one.
    fixed = table1(np.array([MOTIF_x4]))
    buggy = table1(np.array([MOTIF_x4]), encoding_bug=True)
    assert fixed["notes_excessively_repeated"] == 0.0
    # Per bar, holds 3, 4, 5 follow two or more holds: 3 per bar, 12 in all.
    assert buggy["notes_excessively_repeated"] == pytest.approx(12 / 32)


def test_table_rows_and_paper_columns_agree():
    keys = [k for k, _, _ in TABLE1_ROWS]
    assert set(keys) == set(PAPER_NOTE_RNN) == set(PAPER_Q)
    assert set(table1(np.array([MOTIF_x4]))) == set(keys)
    assert PAPER_NOTE_RNN["notes_excessively_repeated"] == 0.633
    assert PAPER_Q["leaps_resolved"] == 0.911


def test_formatting():
    assert format_table1_value("fraction", 0.633) == "63.3%"
    assert format_table1_value("fraction", 0.00007) == "0.007%"
    assert format_table1_value("value", -0.16) == "-0.16"
    assert format_table1_value("fraction", float("nan")) == "n/a"


def test_rejects_a_flat_composition():
    with pytest.raises(ValueError, match="expected compositions of shape"):
        composition_stats(np.array(MOTIF))
