"""The agent's decision: both parts' recent steps -> state -> Q-values -> action.

``Decider`` keeps the last W steps of each part in a ring buffer of absolute pitches
(``PartHistory``), judges the call's key with ``exports.tonality.estimate_call_key`` over the
player's last ``call_window_steps`` only (as training does; a fixed key, ``--key``, replaces the
estimate), and decides with the contract's own functions only: per decision,
each part's window is moved into the model's key-relative frame (``PartWindow.in_frame``) and
``exports.encoding.encode_states`` makes the state; the Policy gives Q;
``exports.selection.choose_actions`` (temperature, and an ``allowed`` mask for the register
limits and the density gate) picks the action; ``decode_action`` gives its MIDI. There is no
other encoder: what the network sees live is what training's environment
builds from the same windows.

The agent's part is kept without the live register shift (what the model chose, not where it was
moved), so moving the register does not push its own history out of the range it was trained on.

A model swap is prepared off the scheduler thread (``ReadyPolicy.prepare``: warmed session, the
new spec's first state encoded) and adopted by the scheduler in microseconds (``Decider.adopt``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from exports.encoding import (
    NoteChange,
    PartWindow,
    StepContext,
    decode_action,
    encode_states,
    summarize_call,
)
from exports.selection import SeeSaw, choose_actions, opening_mask
from exports.spec import FIRST_NOTE_ACTION, HOLD, PITCH_CLASSES, REST, Spec
from exports.tonality import estimate_call_key, key_shift
from live_agent.protocols import Policy

_BITS = 1 << np.arange(PITCH_CLASSES)
CHROMA_OF_BITS = (np.arange(1 << PITCH_CLASSES)[:, None] & _BITS) > 0
"""(4096, 12) bool: the pitch classes of each 12-bit chroma."""
WARM_UP_CALLS = 20
"""Inferences run on a new model before it is handed to the scheduler (the first ones are slow)."""


class StepKey(NamedTuple):
    """One part during one step, absolute: onset, sounding pitch classes as bits, top pitch."""

    onset: bool
    chroma_bits: int
    top: int


SILENT_STEP = StepKey(False, 0, -1)


def chroma_bits(chroma: np.ndarray) -> int:
    """(12,) bool or weights -> 12-bit int, bit c set when pitch class c sounds."""
    return int(_BITS[np.asarray(chroma) > 0].sum())


class PartHistory:
    """The last ``window_steps`` steps of one part, absolute pitches, oldest first.

    A doubled ring: step k is written at ``k mod W`` and ``k mod W + W``, so the window is always
    one contiguous slice (no copy, no roll)."""

    def __init__(self, window_steps: int) -> None:
        w = self.window_steps = window_steps
        self.onset = np.zeros((1, 2 * w), dtype=bool)  # (1, 2W)
        self.chroma = np.zeros((1, 2 * w, PITCH_CLASSES), dtype=bool)  # (1, 2W, 12)
        self.top = np.full((1, 2 * w), -1, dtype=np.int64)  # (1, 2W), -1 silent
        self._next = 0  # where the next step goes; the window starts there

    def push(self, step: StepKey) -> None:
        """Append one finished step (the oldest falls out)."""
        i, w = self._next, self.window_steps
        chroma = CHROMA_OF_BITS[step.chroma_bits]
        for j in (i, i + w):
            self.onset[0, j] = step.onset
            self.chroma[0, j] = chroma
            self.top[0, j] = step.top
        self._next = (i + 1) % w

    def window(self) -> PartWindow:
        """(1, W) views of the window, absolute pitches; valid until the next ``push``."""
        s, e = self._next, self._next + self.window_steps
        return PartWindow(self.onset[:, s:e], self.chroma[:, s:e], self.top[:, s:e])

    def oldest_sounds(self) -> bool:
        """Whether the window's oldest step (the one the next ``push`` drops) had a sound."""
        return bool(self.chroma[0, self._next].any())

    def last(self) -> StepKey:
        """The step pushed last."""
        j = self._next + self.window_steps - 1
        return StepKey(bool(self.onset[0, j]), chroma_bits(self.chroma[0, j]), int(self.top[0, j]))

    def resized(self, window_steps: int) -> PartHistory:
        """A history of another window length holding the same latest steps."""
        new = PartHistory(window_steps)
        keep = min(window_steps, self.window_steps)
        window = self.window()
        for k in range(self.window_steps - keep, self.window_steps):
            new.push(
                StepKey(
                    bool(window.onset[0, k]),
                    chroma_bits(window.chroma[0, k]),
                    int(window.top[0, k]),
                )
            )
        return new


class ReadyPolicy(NamedTuple):
    """A model made ready for the scheduler: its session warmed and its first state encoded."""

    policy: Policy
    spec: Spec

    @classmethod
    def prepare(cls, policy: Policy, warm_up_calls: int = WARM_UP_CALLS) -> ReadyPolicy:
        """Run on the thread that loaded ``policy`` (never the scheduler's): encodes a state of
        the model's spec and runs ``warm_up_calls`` inferences on it, so that the first live
        decision with it costs what every other one does."""
        spec = policy.spec
        silent = PartHistory(spec.window_steps).window()
        context = StepContext(
            np.zeros(1, np.int64), np.zeros(1, bool), np.zeros(1, bool), np.zeros(1)
        )
        state = encode_states(spec, silent, silent, context)  # (1, state_dim)
        for _ in range(warm_up_calls):
            policy.q_values(state)
        return cls(policy, spec)


class Decider:
    """Everything one decision needs, kept between steps. Owned by the scheduler thread."""

    def __init__(
        self,
        policy: Policy,
        rng: np.random.Generator,
        fixed_key: tuple[int, bool] | None = None,
    ) -> None:
        self.rng = rng
        self.policy = policy
        self.spec: Spec = policy.spec
        w = self.spec.window_steps
        self.agent = PartHistory(w)
        self.player = PartHistory(w)
        self.heard = PartHistory(self.spec.call_window_steps)
        """The player's last ``call_window_steps``: what the call summary and the key read."""
        self.tonic, self.minor = 0, False
        """The key heard: ``estimate_call_key`` of the player's last ``call_window_steps``
        (changes as notes are heard)."""
        self.key_histogram = np.zeros(PITCH_CLASSES)
        """(12,) the call's pitch-class weights behind ``tonic``/``minor`` (the view's sureness)."""
        self._key_stale = False
        """A sound entered or left the call window since the key was last judged."""
        self.fixed_key = fixed_key
        """(tonic pitch class, minor) that the frame takes instead of the estimate (``--key``, the
        panel); None: the estimate. Set it with ``fix_key``."""
        self.frame_tonic, self.frame_minor = fixed_key if fixed_key is not None else (0, False)
        """The key the state and the actions are relative to (changes only at turn starts)."""
        self.played_key = (self.frame_tonic, self.frame_minor)
        """(tonic pitch class, minor): the frame of the last decision, i.e. the key the agent
        last played in (the frame itself may have moved on since, between turns)."""
        self.frame_tonic_semitones = int(key_shift(self.frame_tonic))
        """The frame's tonic in semitones above C, -6..+5 (``key_shift(frame_tonic)``): what
        takes the model's key-relative pitches to absolute ones. An int: numpy on scalars costs
        us."""
        self._masks: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._pitches: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._state = np.zeros((1, self.spec.state_dim), dtype=np.float32)
        self._bound = self._bind(policy)
        self._no_onsets = np.zeros(self.spec.n_actions, dtype=bool)
        self._no_onsets[[HOLD, REST]] = True
        self.see_saw = SeeSaw(1)
        """The agent's last notes: no two-note see-saw of ``SEE_SAW_NOTES`` (as evaluation)."""
        # The context of the decided step, as arrays of one, rewritten per decision; the call
        # summary only when the frame may move (``update_key``), as training fixes it per turn.
        self._context = StepContext(
            np.zeros(1, np.int64),
            np.zeros(1, bool),
            np.zeros(1, bool),
            np.zeros(1),
            np.zeros((1, self.spec.call_features), np.float32),
        )

    def _bind(self, policy: Policy) -> Any:
        bound = getattr(policy, "bound", None)
        return bound(self._state) if bound is not None else None

    # --- the state ---------------------------------------------------------------------------

    def state(self, step: int, answering: bool, progress: float) -> np.ndarray:
        """(1, state_dim) float32: ``encode_states`` of both windows in the current frame and
        the context of grid ``step``. One array, rewritten by the next call (and bound to the
        model's input: no allocation on the decision path)."""
        context = self._context
        context.bar_position[0] = step % self.spec.steps_per_bar
        context.minor[0] = self.frame_minor
        context.answering[0] = answering
        context.progress[0] = progress
        tonic = self.frame_tonic_semitones
        return encode_states(
            self.spec,
            self.agent.window().in_frame(tonic),
            self.player.window().in_frame(tonic),
            context,
            out=self._state,
        )

    # --- stepping ----------------------------------------------------------------------------

    def adopt(self, ready: ReadyPolicy) -> None:
        """Use a prepared model from the next decision on; keeps the history and the key
        estimate. Cheap (no inference, no encoding): on the scheduler thread."""
        spec = ready.spec
        if spec.window_steps != self.spec.window_steps:
            self.agent = self.agent.resized(spec.window_steps)
            self.player = self.player.resized(spec.window_steps)
        if spec.call_window_steps != self.spec.call_window_steps:
            self.heard = self.heard.resized(spec.call_window_steps)
        self.policy, self.spec = ready.policy, spec
        self._key_stale = True  # another window or half-life may judge the call otherwise
        if self._state.shape[1] != spec.state_dim:
            self._state = np.zeros((1, spec.state_dim), dtype=np.float32)
        self._bound = self._bind(ready.policy)
        self._masks.clear()
        self._pitches.clear()
        if self._no_onsets.shape[0] != spec.n_actions:
            self._no_onsets = np.zeros(spec.n_actions, dtype=bool)
            self._no_onsets[[HOLD, REST]] = True

    def observe_step(
        self,
        agent_chroma: np.ndarray,
        agent_top: int,
        agent_onset: bool,
        player_chroma: np.ndarray,
        player_top: int,
        player_onset: bool,
        move_frame: bool = True,
    ) -> None:
        """Fold one finished step of both parts (absolute pitches; agent without register shift):
        ``push_step`` then ``update_key(move_frame)``."""
        self.push_step(
            StepKey(bool(agent_onset), chroma_bits(agent_chroma), int(agent_top)),
            StepKey(bool(player_onset), chroma_bits(player_chroma), int(player_top)),
        )
        self.update_key(move_frame)

    def push_step(self, agent: StepKey, player: StepKey) -> None:
        """Append one finished step of both parts to the windows (cheap: on the decision path).
        The key estimate follows in ``update_key``."""
        self.agent.push(agent)
        self.player.push(player)
        # The call's key changes only when a sound enters or leaves its window (silence only
        # scales the window's weights): ``update_key`` judges it again only then.
        self._key_stale |= bool(player.chroma_bits) or self.heard.oldest_sounds()
        self.heard.push(player)

    def fix_key(self, key: tuple[int, bool] | None) -> None:
        """Fix the frame's key ((tonic pitch class, minor)), or hand it back to the estimate
        (None). Any thread may call it (one reference is replaced); the frame takes it where it
        may next move, at a turn's start, never inside one."""
        self.fixed_key = key

    def update_key(self, move_frame: bool = True) -> None:
        """Judge the key of what the player played (``estimate_call_key`` over the last
        ``call_window_steps``); with ``move_frame``, adopt it (or the fixed key) as the frame.
        The session calls it after sending, or before a decision where a turn may start: the
        frame moves only between the agent's turns (as in training, where a turn keeps the key
        it started in)."""
        # Only the player's notes feed the key, as in training (the environment judges each
        # turn's key from the player's part alone): the agent must follow, not lead itself astray.
        fixed = self.fixed_key
        if self._key_stale and ((move_frame and fixed is None) or self.player.last().chroma_bits):
            # Between the frame's moves only a sounding step refreshes the estimate (the view's
            # "key heard"): that keeps the work off the steps of a silent player, and off the
            # silence before an answer's first decision.
            self._key_stale = False
            heard = self.heard.window()
            tonic, minor, histogram = estimate_call_key(
                heard.onset, heard.chroma, heard.top, self.spec.key_decay_per_step
            )
            self.tonic, self.minor = int(tonic[0]), bool(minor[0])
            self.key_histogram = histogram[0]
        if move_frame:
            frame = fixed if fixed is not None else (self.tonic, self.minor)
            self.frame_minor = frame[1]
            if frame[0] != self.frame_tonic:
                self.frame_tonic = frame[0]
                self.frame_tonic_semitones = int(key_shift(self.frame_tonic))
                self.see_saw.clear()  # the same note action is another pitch now
            # The call summary moves with the frame: what the player played up to now.
            assert self._context.call is not None
            self._context.call[:] = summarize_call(
                self.spec, self.heard.window().in_frame(self.frame_tonic_semitones)
            )

    # --- deciding ----------------------------------------------------------------------------

    def allowed_mask(self, register_shift: int, low: int, high: int) -> np.ndarray:
        """(n_actions,) bool: HOLD, REST, and the NOTE_ONs that land within low..high."""
        key = (self.frame_tonic_semitones, register_shift, low, high)
        mask = self._masks.get(key)
        if mask is None:
            spec = self.spec
            pitches = np.arange(spec.pitch_low, spec.pitch_high + 1) + key[0] + register_shift
            mask = np.ones(spec.n_actions, dtype=bool)
            mask[FIRST_NOTE_ACTION:] = (pitches >= low) & (pitches <= high)
            self._masks[key] = mask
        return mask

    def note_pitches(self, register_shift: int) -> np.ndarray:
        """(n_actions - FIRST_NOTE_ACTION,) int: the MIDI pitch each note action sounds now
        (frame and register shift included). Cached per frame and shift: do not write to it."""
        key = (self.frame_tonic_semitones, register_shift, -1, -1)
        pitches = self._pitches.get(key)
        if pitches is None:
            spec = self.spec
            pitches = np.arange(spec.pitch_low, spec.pitch_high + 1) + key[0] + register_shift
            self._pitches[key] = pitches
        return pitches

    def decide(
        self,
        step: int,
        answering: bool,
        progress: float,
        temperature: float,
        density: float,
        register_shift: int,
        low: int,
        high: int,
        note_required: bool = False,
        gate: np.ndarray | None = None,
    ) -> int:
        """The action for grid ``step`` (an index into the model's vocabulary). With
        ``note_required`` (an answer's first step) it is a note, unless the density draw
        forbids notes on this step or the register allows none. ``gate`` (n_actions,) bool:
        the actions a mode allows on this step (a duet's room), REST among them."""
        state = self.state(step, answering, progress)
        self.played_key = (self.frame_tonic, self.frame_minor)
        q = self._bound() if self._bound is not None else self.policy.q_values(state)  # (1, A)
        allowed = self.allowed_mask(register_shift, low, high)
        if gate is not None:
            allowed = allowed & gate
        if density < 1.0 and self.rng.random() >= density:
            allowed = allowed & self._no_onsets
        elif note_required:
            notes = opening_mask(allowed)
            if notes.any():
                allowed = notes
        action = choose_actions(q, temperature, self.rng, self.see_saw.mask(allowed))
        self.see_saw.played(action)
        return int(action[0])

    def note_change(self, action: int, sounding: int | None, register_shift: int) -> NoteChange:
        """The MIDI effect of ``action`` (absolute pitches, register shift included)."""
        return decode_action(
            self.spec, action, sounding, self.frame_tonic_semitones + register_shift
        )
