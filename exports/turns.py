"""An answer's turn: how long it lasts and where it starts, one rule each for training
episodes, evaluation and the live agent.

* Length: as many bars as the call, rounded to whole bars (at least one), bounded by
  ``answer_bars_max``; ``fixed_bars`` keeps a fixed length as an option (``answer_bars``).
* Start: on a downbeat, the first one on which the call is over (``call_over_at``): live it is
  decided before that downbeat from what has been heard; offline (``answer_start_step``) the
  same rule runs on a whole call. Pure functions: no live_agent, no torch.
"""

from __future__ import annotations

import numpy as np

from exports.spec import GRID_STEPS_PER_BEAT, HOLD_EVENT

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


# --- when the answer starts: the one rule for live play, `deepjam answer` and evaluation -------

PAUSE_BEATS = 2
"""A silence of up to this many beats inside a call is a pause: the call goes on after it."""
ONSET_SLACK_STEPS = 1
"""A note heard a 16th before or after a beat (a player's timing, a step's edge) began on it."""
CADENCE_REACH_STEPS = 2
"""A cadential last note that ends at most this many steps (an 8th) before a downbeat, or still
sounds there, closes the call on that downbeat."""


def call_over_at(
    downbeat: int,
    first_onset: int,
    last_onset: int,
    last_end: int | None,
    median_note_steps: float,
    steps_per_bar: int,
    steps_per_beat: int,
    usual_gap_steps: int = 0,
    usual_call_bars: int = 1,
) -> bool:
    """Whether a call is over on grid step ``downbeat`` (a bar line), so that the answer starts
    there. Decided before the downbeat, from what has been heard by then: the call's last note
    began on step ``last_onset`` and ended on ``last_end`` (its first silent step; None while it
    still sounds), its first note began on ``first_onset``, its notes last
    ``median_note_steps`` (median), and this player's rests inside phrases reach
    ``usual_gap_steps`` (0: not known), and its calls last ``usual_call_bars`` (1: not known).

    The call is over when

    * the silence before the downbeat is longer than a pause (``PAUSE_BEATS``, or the player's
      usual rest inside a phrase when that is longer, up to a bar): a call that only paused is
      not answered into; or
    * the call has filled its bars, at least as many as this player's calls usually last (it
      began at most a beat after their first bar line, or earlier: a pickup), and its last note is cadential and reaches the bar line (ends at most
      ``CADENCE_REACH_STEPS`` before it, or still sounds): it lasts a beat or more and began
      on a beat, either a strong one (beat 1 or 3), or lasting two beats and twice the call's
      median note.
      Calls are whole bars: one that fills its bars with a held close is done. (A held note at
      the end of bar 1 of a player's 2-bar calls is not taken for a close, one after their 1-bar
      calls is.)

    The styles were trained with the answer starting on the bar line right after the call
    (``answer_gap_steps = 0``); this rule starts it there whenever the call's close is clear.
    """
    end = downbeat if last_end is None else min(last_end, downbeat)
    silence = downbeat - end
    pause_steps = min(steps_per_bar, max(PAUSE_BEATS * steps_per_beat, usual_gap_steps))
    if silence > pause_steps:
        return True
    if silence > CADENCE_REACH_STEPS:
        return False
    length = end - last_onset
    position = (last_onset - downbeat) % steps_per_bar
    filled = downbeat - first_onset >= usual_call_bars * steps_per_bar - steps_per_beat
    if not filled or length < steps_per_beat - ONSET_SLACK_STEPS:
        return False
    # The beat the last note began on; a player's note a 16th early or late is still on it.
    beat = round(position / steps_per_beat) * steps_per_beat
    if abs(position - beat) > ONSET_SLACK_STEPS:
        return False  # a long note off the beat is a syncopation, not a close
    if beat % (steps_per_bar // 2) == 0:
        return True
    # On beat 2 or 4 only a note of two beats or more closes (a quarter there is a step on).
    return length >= max(2 * median_note_steps, 2 * steps_per_beat - ONSET_SLACK_STEPS)


def answer_start_from_notes(
    notes: list[tuple[int, int]],
    steps_per_bar: int,
    steps_per_beat: int,
    usual_gap_steps: int = 0,
) -> int:
    """The grid step (a bar line, counted from the call's downbeat at step 0) on which the answer
    to a finished call starts: the first bar line after the call's last onset on which
    ``call_over_at`` holds, the player silent after the call. ``notes`` are (onset, end) steps
    in order of onset (end: first silent step). The offline twin of the live answer mode's
    start (``live_agent.modes.AnswerMode``); ValueError for no notes."""
    if not notes:
        raise ValueError("expected a call with at least one note, got none")
    lengths = [max(1, end - onset) for onset, end in notes]
    median = float(sorted(lengths)[len(lengths) // 2])
    last_onset, last_end = notes[-1]
    last_end = max(last_end, max(end for _, end in notes))
    downbeat = (last_onset // steps_per_bar + 1) * steps_per_bar
    while True:
        sounding = None if last_end >= downbeat else last_end
        if call_over_at(
            downbeat,
            notes[0][0],
            last_onset,
            sounding,
            median,
            steps_per_bar,
            steps_per_beat,
            usual_gap_steps,
        ):
            return downbeat
        downbeat += steps_per_bar


def call_notes(events: np.ndarray) -> list[tuple[int, int]]:
    """(onset, end) steps of each note of a call in grid events (end: its first silent step, or
    the next onset; ``len(events)`` for a note held to the end)."""
    events = np.asarray(events)
    changes = np.flatnonzero(events != HOLD_EVENT)  # onsets and RESTs
    notes = []
    for i, at in enumerate(changes):
        if events[at] >= 0:
            end = int(changes[i + 1]) if i + 1 < len(changes) else len(events)
            notes.append((int(at), end))
    return notes


def answer_start_step(
    call: np.ndarray,
    steps_per_bar: int,
    steps_per_beat: int = GRID_STEPS_PER_BEAT,
    usual_gap_steps: int = 0,
) -> int:
    """The grid step, counted from the call's first step (a bar line), on which the answer to
    ``call`` (grid events) heard alone starts: ``answer_start_from_notes`` of its notes, the
    rule ``deepjam jam`` and ``deepjam answer`` follow live. A call without a note: the bar line
    after it."""
    events = np.asarray(call, dtype=np.int64)
    notes = call_notes(events)
    if not notes:
        return max(1, -(-len(events) // steps_per_bar)) * steps_per_bar
    return answer_start_from_notes(notes, steps_per_bar, steps_per_beat, usual_gap_steps)
