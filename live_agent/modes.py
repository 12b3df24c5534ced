"""When the agent plays: call and response (``AnswerMode``) or along (``DuetMode``).

The session asks ``plays(step)`` once per step, at decision time, after the player's previous
step has been folded in with ``observe_player_step``; a player's key going down reaches
``player_onset`` at once, so an answer stops the moment the player resumes.

Answer timing: if the player's last sounding step is j, steps j+1 .. j+silence_steps are the
phrase-end silence, and the answer starts on step j+silence_steps+1 for ``answer_steps`` steps.
"""

from __future__ import annotations

from typing import Protocol


class Mode(Protocol):
    name: str

    def observe_player_step(self, step: int, active: bool) -> None:
        """The player's ``step`` has closed; ``active``: a note sounded or started in it."""
        ...

    def player_onset(self) -> bool:
        """The player pressed a key now; True when the agent must fall silent at once."""
        ...

    def plays(self, step: int) -> bool:
        """Whether the agent plays ``step`` (called once per step, in order)."""
        ...

    def context(self, step: int) -> tuple[bool, float]:
        """(answering, progress 0..1 through the agent's turn) for the encoder."""
        ...

    def frame_may_move(self, next_step: int) -> bool:
        """Whether the key frame may follow the key estimate before ``next_step`` (only between
        turns: in training a turn keeps the key it started in)."""
        ...


class DuetMode:
    """Play along on every step, in phrases of ``phrase_steps`` (training's duet turns): progress
    runs 0..1 over each phrase and the key frame may move only at a phrase start."""

    name = "duet"

    def __init__(self, phrase_steps: int) -> None:
        self.phrase_steps = phrase_steps

    def observe_player_step(self, step: int, active: bool) -> None:
        pass

    def player_onset(self) -> bool:
        return False

    def plays(self, step: int) -> bool:
        return True

    def context(self, step: int) -> tuple[bool, float]:
        return False, (step - 1) % self.phrase_steps / self.phrase_steps

    def frame_may_move(self, next_step: int) -> bool:
        return (next_step - 1) % self.phrase_steps == 0


class AnswerMode:
    """Wait for the player's phrase to end, answer for a bounded length, yield when they resume."""

    name = "answer"

    def __init__(self, silence_steps: int, answer_steps: int) -> None:
        self.silence_steps = silence_steps
        self.answer_steps = answer_steps
        self.heard_phrase = False
        """The player has played since the last answer (there is something to answer)."""
        self.silent_steps = 0
        self.answer_start: int | None = None
        self.answers = 0
        self.interrupted = 0

    @property
    def answering(self) -> bool:
        return self.answer_start is not None

    def observe_player_step(self, step: int, active: bool) -> None:
        if active:
            self.heard_phrase = True
            self.silent_steps = 0
        else:
            self.silent_steps += 1

    def player_onset(self) -> bool:
        self.heard_phrase = True
        self.silent_steps = 0
        if self.answer_start is not None:
            self.answer_start = None
            self.interrupted += 1
            return True
        return False

    def plays(self, step: int) -> bool:
        if self.answer_start is not None:
            if step < self.answer_start + self.answer_steps:
                return True
            self.answer_start = None  # the answer is complete: wait for a new phrase
            self.heard_phrase = False
            return False
        if self.heard_phrase and self.silent_steps >= self.silence_steps:
            self.answer_start = step
            self.answers += 1
            return True
        return False

    def context(self, step: int) -> tuple[bool, float]:
        if self.answer_start is None:
            return True, 0.0
        return True, (step - self.answer_start) / self.answer_steps

    def frame_may_move(self, next_step: int) -> bool:
        return self.answer_start is None


def make_mode(
    name: str, silence_steps: int, answer_bars: int, steps_per_bar: int, duet_bars: int = 4
) -> Mode:
    """The mode called ``name`` ("answer" or "duet")."""
    if name == "duet":
        return DuetMode(duet_bars * steps_per_bar)
    return AnswerMode(silence_steps, answer_bars * steps_per_bar)
