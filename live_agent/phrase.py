"""When the player's call is over, judged from the phrase itself, and decided before the downbeat
on which the answer starts.

``PhraseTracker`` follows the player step by step on the grid (the player's own beat when it is
locked; step 0 of each bar is a downbeat). Before each downbeat the answer mode asks ``over_at``:
the one start rule, ``exports.turns.call_over_at``, on what has been heard so far:

* **the silence so far**: longer than a pause (2 beats, or the player's usual rest inside a
  phrase when that is longer): the call is over. A call that only paused is not answered into;
* **a long or cadential last note that reaches the bar line**: a beat or more, begun on beat 1
  or 3 or twice the call's median note, ending at most an 8th before the downbeat or still
  sounding: the call has filled its bars and closes there, so the answer starts on that very
  downbeat, as the styles were trained (the answer on the bar line right after the call).

So the answer always starts on a downbeat, decided at that step's decision time (before its
boundary: its first note is on time). When the player goes on, the answer yields at once.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from exports.spec import GRID_STEPS_PER_BEAT
from exports.turns import answer_bars, call_over_at

STEPS_PER_BEAT = GRID_STEPS_PER_BEAT
GAP_HISTORY = 32
MIN_GAPS_FOR_HABIT = 3


class PhraseTracker:
    """Player steps in (grid step, onset, sounding); ``over_at`` says whether the call is over on a
    downbeat."""

    def __init__(self, steps_per_bar: int = 16) -> None:
        self.steps_per_bar = steps_per_bar
        self.inner_gaps: deque[int] = deque(maxlen=GAP_HISTORY)
        """Rests (steps) the player left inside phrases, most recent last."""
        self.last_step: int | None = None
        """The grid step observed last (kept across phrases: the numbering is the grid's)."""
        self.renumbered = 0
        """Times the grid's step numbers jumped (a new grid took over) inside a phrase."""
        self.usual_call_bars = 1
        """Bars of the player's last answered call (a held note at an earlier bar line of the
        next call is not taken for its close)."""
        self.reset()

    def reset(self) -> None:
        """Forget the current phrase (it has been answered); the player's habits are kept."""
        self.in_phrase = False
        self.start_step = 0
        """Grid step of the phrase's first onset."""
        self.end_step = 0
        """Grid step on which the current silence began (the last note ended before it)."""
        self.silence_steps = 0
        self.note_start = 0
        self.note_lengths: list[int] = []

    def expect(self, step: int) -> None:
        """Grid ``step`` comes next (it is about to be decided): if the grid numbered afresh
        since the last observed step, the phrase so far moves with it."""
        if self.last_step is not None and step != self.last_step + 1:
            shift = step - (self.last_step + 1)
            self.start_step += shift
            self.end_step += shift
            self.note_start += shift
            self.renumbered += self.in_phrase
        self.last_step = step - 1

    def observe(self, step: int, onset: bool, sounding: bool) -> None:
        """The player's grid ``step`` has closed: a key went down in it (``onset``), a note
        sounded in it (``sounding``)."""
        self.expect(step)
        self.last_step = step
        if onset:
            if not self.in_phrase:
                self.in_phrase = True
                self.start_step = step
                self.note_lengths = []
            elif self.silence_steps > 0:
                self.inner_gaps.append(self.silence_steps)
            if self.silence_steps == 0 and step > self.note_start:
                self.note_lengths.append(step - self.note_start)
            self.note_start = step
            self.silence_steps = 0
        elif sounding:
            self.silence_steps = 0
        elif self.in_phrase:
            if self.silence_steps == 0:
                self.end_step = step
                self.note_lengths.append(step - self.note_start)
            self.silence_steps += 1

    @property
    def usual_gap_steps(self) -> int:
        """The 90th percentile of the player's rests inside phrases (0 before enough are seen)."""
        if len(self.inner_gaps) < MIN_GAPS_FOR_HABIT:
            return 0
        return int(np.ceil(np.percentile(np.array(self.inner_gaps), 90)))

    def call_steps(self) -> int:
        """Length of the phrase, from its first onset to the end of its last note (or to now,
        while it sounds), in steps (as ``exports.turns`` counts a call)."""
        end = self.end_step if self.silence_steps > 0 else self.last_step_heard() + 1
        return max(1, end - self.start_step)

    def last_step_heard(self) -> int:
        return self.last_step if self.last_step is not None else self.start_step

    def over_at(self, downbeat: int) -> bool:
        """Whether the call is over on grid step ``downbeat`` (a bar line about to be decided;
        the player's steps before it have been observed): ``exports.turns.call_over_at``."""
        if not self.in_phrase:
            return False
        sounding = self.silence_steps == 0
        last_end = None if sounding else self.end_step
        lengths = self.note_lengths
        if sounding:
            lengths = [*lengths, max(1, downbeat - self.note_start)]
        median = float(np.median(lengths)) if lengths else 1.0
        return call_over_at(
            downbeat,
            self.start_step,
            self.note_start,
            last_end,
            median,
            self.steps_per_bar,
            STEPS_PER_BEAT,
            self.usual_gap_steps,
            self.usual_call_bars,
        )

    def answered(self) -> None:
        """The call is being answered: remember how many bars it lasted."""
        self.usual_call_bars = answer_bars(self.call_steps(), self.steps_per_bar)
