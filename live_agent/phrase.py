"""When the player's phrase has ended, judged from the phrase itself.

``PhraseTracker`` follows the player step by step on the grid (the player's own beat when it is
locked) and decides the end from three cues, not a fixed count of silent steps:

* **a bar end**: the phrase, counted from the downbeat of the bar it began in, has run to within
  ``BAR_END_TOLERANCE_STEPS`` of a bar line (phrases are mostly whole bars);
* **a long final note**: the last note lasted at least a beat and twice the phrase's median
  note (a held note closes a phrase; a run of short notes before a rest usually goes on);
* **the player's usual gaps**: the 90th percentile of the rests this player leaves *inside*
  phrases; the end needs a silence longer than those.

With a bar end or a long final note, ``SHORT_END_STEPS`` of silence (an 8th) end the phrase;
otherwise more than a beat (``LONG_END_STEPS``), so that a one-beat rest inside a phrase does not
end it. ``answer_step`` then puts the answer on the next strong beat (beat 1 or 3), or the next
beat when that strong beat has already passed.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from exports.spec import GRID_STEPS_PER_BEAT

STEPS_PER_BEAT = GRID_STEPS_PER_BEAT
BAR_END_TOLERANCE_STEPS = 2
SHORT_END_STEPS = 2
LONG_END_STEPS = 5
MAX_END_STEPS = 8
LONG_NOTE_BEATS = 1
GAP_HISTORY = 32
MIN_GAPS_FOR_HABIT = 3


class PhraseTracker:
    """Player steps in (grid step, onset, sounding); ``ended`` says when the phrase is over."""

    def __init__(self, steps_per_bar: int = 16) -> None:
        self.steps_per_bar = steps_per_bar
        self.inner_gaps: deque[int] = deque(maxlen=GAP_HISTORY)
        """Rests (steps) the player left inside phrases, most recent last."""
        self.last_step: int | None = None
        """The grid step observed last (kept across phrases: the numbering is the grid's)."""
        self.renumbered = 0
        """Times the grid's step numbers jumped (a new grid took over) inside a phrase."""
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
        """Length of the phrase, from its first onset to the end of its last note, in steps (as
        ``exports.turns`` counts a call)."""
        return max(1, self.end_step - self.start_step)

    def at_bar_end(self) -> bool:
        """Whether the phrase, counted from the downbeat of the bar it began in, ends within
        ``BAR_END_TOLERANCE_STEPS`` of a bar line."""
        bar_start = self.start_step - self.start_step % self.steps_per_bar
        span = self.end_step - bar_start
        offset = span % self.steps_per_bar
        near = min(offset, self.steps_per_bar - offset) <= BAR_END_TOLERANCE_STEPS
        return near and span >= self.steps_per_bar - BAR_END_TOLERANCE_STEPS

    def long_final_note(self) -> bool:
        if not self.note_lengths:
            return False
        last = self.note_lengths[-1]
        median = float(np.median(self.note_lengths))
        return last >= LONG_NOTE_BEATS * STEPS_PER_BEAT and last >= 2 * median

    def end_silence_steps(self) -> int:
        """Silent steps after the last note that end this phrase (from the cues above)."""
        usual = self.usual_gap_steps
        if self.at_bar_end() or self.long_final_note():
            return max(SHORT_END_STEPS, min(STEPS_PER_BEAT, usual + 1))
        return min(MAX_END_STEPS, max(LONG_END_STEPS, usual + 2))

    @property
    def ended(self) -> bool:
        """Whether the current phrase is over (there is one, and its end is clear)."""
        return self.in_phrase and self.silence_steps >= self.end_silence_steps()

    def answer_step(self, step: int) -> bool:
        """Whether an answer to the ended phrase may start on grid ``step``: the first strong
        beat after the phrase's end, or (if that has passed before the end was clear) the next
        beat."""
        half_bar = self.steps_per_bar // 2
        strong = self.end_step + (-self.end_step) % half_bar
        if step <= strong:
            return step == strong
        return step % STEPS_PER_BEAT == 0
