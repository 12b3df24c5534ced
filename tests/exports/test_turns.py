import pytest

from exports.turns import answer_bars, answer_steps


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
