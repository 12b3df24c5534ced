"""When the agent plays: call and response (``AnswerMode``) or along (``DuetMode``).

The session asks ``plays(step)`` once per step, at decision time, after the player's previous
step has been folded in with ``observe_player_step``; a player's key going down reaches
``player_onset`` at once, so an answer stops the moment the player resumes. ``step`` is the grid
step (its bar position is ``step % steps_per_bar``); the modes count their turns themselves, so
a grid that moves (the player's beat) does not stretch or cut a turn.

Answer timing: before each downbeat, ``phrase.PhraseTracker.over_at`` decides whether the call is
over there (from the phrase and the silence so far: ``exports.turns.call_over_at``, the one start
rule that evaluation follows too); if so the answer starts on that downbeat. It lasts
``answer_length(call_steps)`` steps and its last note is not cut short: a note younger than a beat
at the end rings on to a beat.

An answer opens with a note (``opens_turn``: the decision on its first step is among the notes
the register allows). Whatever the mode, ``restrict`` applies the hard hold bound: no agent note is held longer than
``max_hold_steps`` (the network's HOLD becomes REST).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from exports.errors import ConfigError
from exports.selection import consonant_mask, oscillation_pitch, register_side_mask
from exports.spec import FIRST_NOTE_ACTION, HOLD, REST
from live_agent.listener import pitch_class_bits
from live_agent.phrase import STEPS_PER_BEAT, PhraseTracker

DUET_SILENCE_BARS = 1
"""duet: the agent falls silent after the player has been silent this many bars."""
DUET_QUIET_STEPS = STEPS_PER_BEAT - 1
"""duet: the agent plays no step after the player has been silent this many (its note ends at
that step's boundary: within a beat of the player's last note-off)."""
DUET_ROOM_SHARE = 0.4
"""duet: the most of the player's sounding time the agent sounds in, at density 1 (the share
scales with ``--density``)."""
DUET_ROOM_WINDOW_STEPS = 32
"""duet: the share is kept over the player's last this many sounding steps (2 bars)."""
DUET_STRUCK_ONSET_CHANCE = 0.2
"""duet: the chance of an onset allowed on the step after the player struck a note."""
DUET_CROWDED_BARS = (1, 2, 4)
"""duet: a step is the player's (no agent onset) when the player struck at the same bar
position this many bars back, any of them: a player's rhythm repeats by the bar, the 2 and the
4 bars."""
DUET_FILL_CHANCE = 0.35
"""duet: the chance (x density) that a step in the player's rest or long note, with the agent
silent or on a note a beat old, starts an agent note."""
DUET_REGISTER_STEPS = 32
"""duet: the player's register is read over its last this many sounding steps."""
DUET_REGISTER_GAP = 3
"""duet: the agent's notes stay at least this many semitones past the player's register."""
DUET_REGISTER_SPLIT = 60
"""duet: a player centred at or above this pitch (middle C) is a melody: the agent goes below."""
DUET_OSCILLATION_NOTES = 5
"""duet: the longest two-note see-saw (A-B-A-B-A) the agent may play."""


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
    start. Quiet within a beat of the player stopping; silent after a bar without the player;
    back with the player's next note.

    It leaves the player room (``room``, a mask over the actions for each decision):

    - it sounds in at most ``DUET_ROOM_SHARE`` x density of the player's sounding time (kept
      over the player's last ``DUET_ROOM_WINDOW_STEPS`` sounding steps: over it, REST);
    - its onsets go to the player's rests and long notes: none on a bar position where the
      player struck 1, 2 or 4 bars back (``DUET_CROWDED_BARS``), one with chance
      ``DUET_STRUCK_ONSET_CHANCE`` on the step after the player struck a note; in a rest or a
      long note, with the agent silent or a beat into its note, a note is asked for with
      chance ``DUET_FILL_CHANCE``;
    - its own register: below a melody, above a bass line (``register_side_mask``, at least
      ``DUET_REGISTER_GAP`` semitones past the player's last two bars);
    - no onset forms a 2nd, tritone or 7th with a sounding player note (``consonant_mask``),
      and none continues a two-note see-saw to 6 notes (``oscillation_pitch``).

    Measured from outside (``benchmarks/duet_room.py --duration-s 60``, the shipped default at
    100 bpm against a looping 4-bar melody, then a chorale's lower voices as chords), before
    these rules and with them: sounding in 91% -> 33% of the player's sounding time (chords:
    88% -> 31%); median distance to the player's nearest note 3 -> 8 semitones (4 -> 8); a 2nd,
    tritone or 7th at 25% -> 0% of its onsets over the player (60% -> 0%); onsets within 10 ms
    of the player's 78% -> 10% (99% -> 0%); 3.6 -> 1.3 notes a bar; silent 4 -> 0.8 beats
    after the player stopped; longest note 2 -> 0.8 bars."""

    name = "duet"

    def __init__(
        self, phrase_steps: int, max_hold_steps: int, steps_per_bar: int = 16, wait_notes: int = 4
    ) -> None:
        self.phrase_steps = phrase_steps
        self.wait_notes = wait_notes
        self.max_hold_steps = max_hold_steps
        self.silence_limit_steps = DUET_SILENCE_BARS * steps_per_bar
        self.steps_per_bar = steps_per_bar
        self.heard_onsets = 0
        self.heard_any = False
        self.player_silent_steps = 0
        self.playing = False
        self.turn_step = 0
        """Steps played in the current phrase (0 at its start)."""
        self.player_struck = False
        """A key went down in the player's last closed step."""
        self.struck = np.zeros(max(DUET_CROWDED_BARS) * steps_per_bar, dtype=bool)
        """The player's onsets of the last bars, by grid step (a ring: step k at k mod size)."""
        self._crowded_lags = [bars * steps_per_bar for bars in DUET_CROWDED_BARS]
        self.player_range: deque[tuple[int, int]] = deque(maxlen=DUET_REGISTER_STEPS)
        """(lowest, highest) pitch of the player's recent sounding steps."""
        self.shared: deque[bool] = deque(maxlen=DUET_ROOM_WINDOW_STEPS)
        """Over the player's recent sounding steps: whether the agent sounded too."""
        self.onsets: deque[int] = deque(maxlen=DUET_OSCILLATION_NOTES)
        """The agent's last onset pitches (as ``room`` was given them), oldest first."""
        self._agent_sounds = False
        self._agent_steps = 0
        """Steps the agent's note has sounded, counting the step decided last (0: silent)."""
        self._pitches: np.ndarray | None = None

    def observe_player_step(self, step: int, onset: bool, sounding: bool) -> None:
        if onset:
            self.heard_onsets += 1
            self.heard_any = True
        if onset or sounding:
            self.player_silent_steps = 0
            self.shared.append(self._agent_sounds)
        else:
            self.player_silent_steps += 1
        self.player_struck = onset
        self.struck[step % len(self.struck)] = onset

    def hear_pitches(self, sounding_mask: int) -> None:
        """The pitches the player sounded in the step just closed (bit p: pitch p), before
        ``observe_player_step``."""
        if sounding_mask:
            low = (sounding_mask & -sounding_mask).bit_length() - 1
            self.player_range.append((low, sounding_mask.bit_length() - 1))

    def player_onset(self) -> bool:
        self.player_silent_steps = 0
        return False

    def plays(self, step: int) -> bool:
        self._agent_sounds = False
        if self._plays(step):
            return True
        self._agent_steps = 0
        return False

    def _plays(self, step: int) -> bool:
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
        # The player has stopped (or rests a beat): quiet before the beat is out.
        return not self.heard_any or self.player_silent_steps < DUET_QUIET_STEPS

    def room(
        self,
        step: int,
        pitches: np.ndarray,
        player_held: int,
        density: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """(n_actions,) bool: the actions that leave the player room on grid ``step``, given the
        MIDI pitch of each note action (``pitches``, in action order) and the keys the player
        holds now (``player_held``, bit p: pitch p). Draws one uniform from ``rng`` once the
        player has been heard."""
        self._pitches = pitches
        mask = np.ones(FIRST_NOTE_ACTION + len(pitches), dtype=bool)
        if not self.heard_any:
            return mask  # no player yet (``wait_notes`` 0): nobody to leave room for
        notes = mask[FIRST_NOTE_ACTION:]
        if self.player_range:
            lows, highs = zip(*self.player_range, strict=True)
            notes &= register_side_mask(
                pitches, min(lows), max(highs), DUET_REGISTER_GAP, DUET_REGISTER_SPLIT
            )
        if player_held:
            notes &= consonant_mask(pitches, pitch_class_bits(player_held))
        see_saw = oscillation_pitch(self.onsets, DUET_OSCILLATION_NOTES + 1)
        if see_saw is not None:
            notes &= pitches != see_saw
        draw = rng.random()
        size = len(self.struck)
        if any(self.struck[(step - lag) % size] for lag in self._crowded_lags):
            # The player strikes here: an onset would land on theirs, and could clash with a
            # note (a chord) not yet heard.
            notes[:] = False
        elif player_held and self.player_struck:
            # The player just struck: let the note be heard first.
            if draw >= DUET_STRUCK_ONSET_CHANCE:
                notes[:] = False
        elif (
            (self._agent_steps == 0 or self._agent_steps >= STEPS_PER_BEAT)
            and draw < DUET_FILL_CHANCE * density
            and notes.any()
        ):
            # The player rests or holds a note, and the agent is silent or its note is a beat
            # old: its turn to move, often (when the register and the harmony allow a note).
            mask[[HOLD, REST]] = False
        # Over a full window: a window not yet full counts the steps before it as silent.
        if player_held and sum(self.shared) >= DUET_ROOM_SHARE * density * DUET_ROOM_WINDOW_STEPS:
            mask[:] = False
            mask[REST] = True
        return mask

    def context(self, step: int) -> tuple[bool, float]:
        return False, self.turn_step % self.phrase_steps / self.phrase_steps

    def opens_turn(self) -> bool:
        return False  # playing along: the network may come in when it likes

    def frame_may_move(self, next_step: int) -> bool:
        return not self.playing or (self.turn_step + 1) % self.phrase_steps == 0

    def restrict(self, action: int, held_steps: int) -> int:
        action = bound_hold(action, held_steps, self.max_hold_steps)
        self._agent_sounds = action >= FIRST_NOTE_ACTION or (action == HOLD and held_steps > 0)
        self._agent_steps = 1 if action >= FIRST_NOTE_ACTION else held_steps + self._agent_sounds
        if action >= FIRST_NOTE_ACTION and self._pitches is not None:
            self.onsets.append(int(self._pitches[action - FIRST_NOTE_ACTION]))
        return action


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
        if step % self.phrase.steps_per_bar == 0 and self.phrase.over_at(step):
            self.phrase.answered()
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
        line after the call, and there they always start at once; live answers start on a
        downbeat too, but a bar later when the call's close was not clear, and off the bar
        line a network that has not started tends to keep waiting: over 400 held-out calls of
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
