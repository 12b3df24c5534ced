"""How long the agent's answer is: the one rule, used by training episodes and the live agent.

Issue 9 item 3: an answer lasts as many bars as the call, rounded to whole bars (at least one),
bounded by ``answer_bars_max``; ``fixed_bars`` keeps the old fixed length as an option.
"""

from __future__ import annotations

DEFAULT_ANSWER_BARS_MAX = 4
"""Live's ``--answer-bars-max`` default and training's bound on an answer's length."""


def answer_bars(
    call_steps: int,
    steps_per_bar: int,
    answer_bars_max: int = DEFAULT_ANSWER_BARS_MAX,
    fixed_bars: int | None = None,
) -> int:
    """Bars of the answer to a call of ``call_steps`` grid steps (first onset to the end of its
    last note): ``round(call_steps / steps_per_bar)``, half a bar rounding up, clipped to
    ``1..answer_bars_max``; ``fixed_bars`` (when given) wins, clipped the same way.

    Raises ValueError for a non-positive ``steps_per_bar`` or ``answer_bars_max``.
    """
    if steps_per_bar < 1 or answer_bars_max < 1:
        raise ValueError(
            f"steps_per_bar and answer_bars_max must be >= 1, got {steps_per_bar} and "
            f"{answer_bars_max}"
        )
    if fixed_bars is not None:
        bars = fixed_bars
    else:
        # Half a bar or more rounds up: a call of 1.5 bars gets 2 (integer arithmetic, exact).
        bars = (2 * max(call_steps, 0) + steps_per_bar) // (2 * steps_per_bar)
    return max(1, min(answer_bars_max, bars))


def answer_steps(
    call_steps: int,
    steps_per_bar: int,
    answer_bars_max: int = DEFAULT_ANSWER_BARS_MAX,
    fixed_bars: int | None = None,
) -> int:
    """``answer_bars(...) * steps_per_bar``: the answer's length in grid steps."""
    return answer_bars(call_steps, steps_per_bar, answer_bars_max, fixed_bars) * steps_per_bar
