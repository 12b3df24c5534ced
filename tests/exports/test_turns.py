import numpy as np
import pytest

from exports.spec import HOLD_EVENT, REST_EVENT
from exports.turns import (
    answer_bars,
    answer_start_step,
    answer_steps,
    call_notes,
    call_over_at,
)

GRID = {"steps_per_bar": 16, "steps_per_beat": 4}


@pytest.mark.parametrize(
    ("call_steps", "bars"),
    [(0, 1), (5, 1), (16, 1), (23, 1), (24, 2), (32, 2), (40, 3), (64, 4), (200, 4)],
)
def test_answer_lasts_as_many_bars_as_the_call(call_steps: int, bars: int) -> None:
    assert answer_bars(call_steps, 16, answer_bars_max=4) == bars
    assert answer_steps(call_steps, 16, answer_bars_max=4) == 16 * bars


def test_bound_and_fixed_length() -> None:
    assert answer_bars(64, 16, answer_bars_max=2) == 2
    assert answer_bars(64, 16, answer_bars_max=8, fixed_bars=2) == 2
    assert answer_bars(8, 16, answer_bars_max=3, fixed_bars=5) == 3


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="answer_bars_max"):
        answer_bars(16, 16, answer_bars_max=0)


H, R = HOLD_EVENT, REST_EVENT


def test_a_held_close_that_reaches_the_bar_line_starts_the_answer_there() -> None:
    # Quarters, then a half note on beat 3 held to the bar line (still sounding when decided).
    assert call_over_at(16, first_onset=0, last_onset=8, last_end=None, median_note_steps=4, **GRID)
    assert call_over_at(16, first_onset=0, last_onset=8, last_end=15, median_note_steps=4, **GRID)
    # The same half note released a beat early is not a close: the call may go on.
    assert not call_over_at(
        16, first_onset=0, last_onset=4, last_end=12, median_note_steps=4, **GRID
    )
    # A short last note (an 8th on the "and" of 4) closes nothing either.
    assert not call_over_at(
        16, first_onset=0, last_onset=14, last_end=16, median_note_steps=2, **GRID
    )


def test_a_pause_of_two_beats_is_not_an_end_a_longer_silence_is() -> None:
    assert not call_over_at(
        16, first_onset=0, last_onset=6, last_end=8, median_note_steps=2, **GRID
    )
    assert call_over_at(16, first_onset=0, last_onset=5, last_end=7, median_note_steps=2, **GRID)
    # A player who leaves longer rests inside phrases gets a longer pause (up to a bar).
    assert not call_over_at(
        16, first_onset=0, last_onset=5, last_end=7, median_note_steps=2, usual_gap_steps=12, **GRID
    )


def test_answer_start_step_on_grid_events() -> None:
    call = np.array([60, H, H, R, 62, H, H, R, 64, H, H, H, H, H, H, H])
    assert call_notes(call) == [(0, 3), (4, 7), (8, 16)]
    assert answer_start_step(call, 16) == 16  # a held close on the bar line
    two_bars = np.array([60, H, 62, H, 64, H, 65, H, R, H, H, H, H, H, H, H] * 2)
    # 8ths and a half rest, twice: 2 beats of silence by step 32 may still be a pause (as
    # after bar 1); by 48 it is not.
    assert answer_start_step(two_bars, 16) == 48
    short_end = np.array([60, H, H, H, 62, H, H, H, 64, H, 65, H, 67, H, 69, H])
    assert answer_start_step(short_end, 16) == 32  # an 8th into the bar line: wait a bar
    assert answer_start_step(np.full(20, H), 16) == 32  # no note: the bar line after it
