"""When the agent plays: call and response (``AnswerMode``) or along (``DuetMode``).

The session asks ``plays(step)`` once per step, at decision time, after the player's previous
step has been folded in with ``observe_player_step``; a player's key going down reaches
``player_onset`` at once, so an answer stops the moment the player resumes. ``step`` is the grid
step (its bar position is ``step % steps_per_bar``); the modes count their turns themselves, so
a grid that moves (the player's beat) does not stretch or cut a turn.

Answer timing: ``phrase.PhraseTracker`` decides when the phrase has ended (from the phrase, not a
fixed silence) and on which beat to answer; the answer lasts ``answer_length(call_steps)`` steps
and its last note is not cut short: a note younger than a beat at the end rings on to a beat.

An answer opens with a note (``opens_turn``: the decision on its first step is among the notes
the register allows). Whatever the mode, ``restrict`` applies the hard hold bound: no agent note is held longer than
``max_hold_steps`` (the network's HOLD becomes REST).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from exports.errors import ConfigError
from exports.spec import FIRST_NOTE_ACTION, HOLD, REST
from live_agent.phrase import STEPS_PER_BEAT, PhraseTracker

DUET_SILENCE_BARS = 1
"""duet: the agent falls silent after the player has been silent this many bars."""


class Mode(Protocol):
    name: str

    def observe_player_step(self, step: int, onset: bool, sounding: bool) -> None:
        """The player's grid ``step`` has closed: a key went down in it, a note sounded in it."""
        ...

    def player_onset(self) -> bool:
        """The player pressed a key now; True when the agent must fall silent at once."""
        ...

    def plays(self, step: int) -> bool:
        """Whether the agent plays grid ``step`` (called once per step, in order)."""
        ...

    def context(self, step: int) -> tuple[bool, float]:
        """(answering, progress 0..1 through the agent's turn) for the encoder."""
        ...

    def opens_turn(self) -> bool:
        """Whether the step ``plays`` just granted is the first of an answer, which starts
        with a note (see ``AnswerMode.opens_turn``)."""
        ...

    def frame_may_move(self, next_step: int) -> bool:
        """Whether the key frame may follow the key estimate before ``next_step`` (only between
        turns: in training a turn keeps the key it started in)."""
        ...

    def restrict(self, action: int, held_steps: int) -> int:
        """The action to play instead of the network's ``action``, given that the agent's note
        has sounded ``held_steps`` steps (0: silent)."""
        ...


def bound_hold(action: int, held_steps: int, max_hold_steps: int) -> int:
    """REST instead of HOLD once the agent's note has sounded ``max_hold_steps`` steps."""
    if action == HOLD and held_steps >= max_hold_steps:
        return REST
    return action


class DuetMode:
    """Play along once the player has been heard, in phrases of ``phrase_steps`` (training's duet
    turns): progress runs 0..1 over each phrase and the key frame may move only at a phrase
    start. Silent after a bar without the player; back with the player's next note."""

    name = "duet"

    def __init__(
        self, phrase_steps: int, max_hold_steps: int, steps_per_bar: int = 16, wait_notes: int = 4
    ) -> None:
        self.phrase_steps = phrase_steps
        self.wait_notes = wait_notes
        self.max_hold_steps = max_hold_steps
        self.silence_limit_steps = DUET_SILENCE_BARS * steps_per_bar
        self.heard_onsets = 0
        self.heard_any = False
        self.player_silent_steps = 0
        self.playing = False
        self.turn_step = 0
        """Steps played in the current phrase (0 at its start)."""

    def observe_player_step(self, step: int, onset: bool, sounding: bool) -> None:
        if onset:
            self.heard_onsets += 1
            self.heard_any = True
        if onset or sounding:
            self.player_silent_steps = 0
        else:
            self.player_silent_steps += 1

    def player_onset(self) -> bool:
        self.player_silent_steps = 0
        return False

    def plays(self, step: int) -> bool:
        if self.heard_any and self.player_silent_steps >= self.silence_limit_steps:
            self.playing = False
            self.heard_onsets = 0  # come back only once the player has played again
            return False
        if not self.playing:
            if self.heard_onsets < self.wait_notes or (self.wait_notes and step % STEPS_PER_BEAT):
                return False
            self.playing = True
            self.turn_step = 0
        else:
            self.turn_step += 1
        return True

    def context(self, step: int) -> tuple[bool, float]:
        return False, self.turn_step % self.phrase_steps / self.phrase_steps

    def opens_turn(self) -> bool:
        return False  # playing along: the network may come in when it likes

    def frame_may_move(self, next_step: int) -> bool:
        return not self.playing or (self.turn_step + 1) % self.phrase_steps == 0

    def restrict(self, action: int, held_steps: int) -> int:
        return bound_hold(action, held_steps, self.max_hold_steps)


class AnswerMode:
    """Wait for the player's phrase to end, answer for about as long, yield when they resume."""

    name = "answer"

    def __init__(
        self,
        answer_length: Callable[[int], int],
        max_hold_steps: int,
        steps_per_bar: int = 16,
    ) -> None:
        self.answer_length = answer_length
        """Call length (steps) -> answer length (steps)."""
        self.max_hold_steps = max_hold_steps
        self.phrase = PhraseTracker(steps_per_bar)
        self.answer_steps = 0
        self.turn_step = -1
        """Steps into the current answer; -1 when not answering."""
        self.tail = False
        """The answer's time is up but its last note rings on to a beat."""
        self.answers = 0
        self.interrupted = 0

    @property
    def answering(self) -> bool:
        return self.turn_step >= 0

    def observe_player_step(self, step: int, onset: bool, sounding: bool) -> None:
        self.phrase.observe(step, onset, sounding)

    def player_onset(self) -> bool:
        if self.answering:
            self._finish()
            self.interrupted += 1
            return True
        return False

    def _finish(self) -> None:
        self.turn_step = -1
        self.tail = False
        self.phrase.reset()

    def plays(self, step: int) -> bool:
        if self.answering:
            self.turn_step += 1
            if self.turn_step < self.answer_steps:
                return True
            if self.tail:
                return True
            self._finish()  # the answer is complete: wait for a new phrase
            return False
        self.phrase.expect(step)
        if self.phrase.ended and self.phrase.answer_step(step):
            self.answer_steps = max(1, self.answer_length(self.phrase.call_steps()))
            self.turn_step = 0
            self.answers += 1
            return True
        return False

    def context(self, step: int) -> tuple[bool, float]:
        if not self.answering:
            return True, 0.0
        return True, min(self.turn_step, self.answer_steps - 1) / self.answer_steps

    def opens_turn(self) -> bool:
        """The answer's first step is a note. The styles are trained with answers on the bar
        line after the call, and there they always start at once. Live, the answer starts
        where the phrase's end was heard (``PhraseTracker.answer_step``), off the bar line, and
        there a network that has not started tends to keep waiting: over 400 held-out calls of
        the default corpus, with the answer 8 steps after the call's last sound, 29% of the
        shipped default's answers began half a bar late or more and 6% stayed silent
        (temperature 0.5). With the first note required: none, and 15.0 notes an answer (16.2
        on the bar line)."""
        return self.answering and self.turn_step == 0

    def frame_may_move(self, next_step: int) -> bool:
        return not self.answering

    def restrict(self, action: int, held_steps: int) -> int:
        if self.answering and self.turn_step >= self.answer_steps - 1:
            # The answer's last step, or past it: its last note is not cut short. A note that
            # starts on the last step, or one younger than a beat, rings on to a beat; then
            # the answer ends.
            if self.turn_step == self.answer_steps - 1 and action >= FIRST_NOTE_ACTION:
                self.tail = True
                return action
            self.tail = 0 < held_steps < STEPS_PER_BEAT
            if self.tail:
                return HOLD
            if self.turn_step >= self.answer_steps:
                return REST
        return bound_hold(action, held_steps, self.max_hold_steps)


def make_mode(
    name: str,
    answer_length: Callable[[int], int],
    steps_per_bar: int,
    duet_bars: int = 4,
    max_hold_steps: int = 32,
    duet_wait_notes: int = 4,
) -> Mode:
    """The mode called ``name`` ("answer" or "duet"); ConfigError for any other name."""
    if name == "duet":
        return DuetMode(duet_bars * steps_per_bar, max_hold_steps, steps_per_bar, duet_wait_notes)
    if name == "answer":
        return AnswerMode(answer_length, max_hold_steps, steps_per_bar)
    raise ConfigError(f"mode must be 'answer' or 'duet', got {name!r}; pick one of those")
