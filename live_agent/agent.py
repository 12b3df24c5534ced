"""The agent's decision: both parts' recent steps -> state -> Q-values -> action.

``Decider`` keeps the last W steps of each part (absolute pitches), tracks the tonic with
``exports.tonality.KeyTracker`` over what both parts play, and decides with the contract's own
functions: ``exports.encoding.encode_states`` for the state, the Policy for Q,
``exports.selection.choose_actions`` (temperature, and an ``allowed`` mask for the register limits
and the density gate) for the action, ``decode_action`` for its MIDI.

Cheap per step (the decision has ~100 us): a state is blocks of ``features_per_part_step`` floats
per part and step, plus the context. Each block depends only on its own step, so the Decider keeps
the state vector itself and, per step, shifts each part's blocks by one and writes the new ones.
Every block and every context it writes was made by ``encode_states`` (cached by what it
encodes: the key-relative onset, chroma and top of one step; the context values), so the state is
exactly ``encode_states`` of the windows (``reference_state`` rebuilds it that way; the tests
compare the two). When the tonic moves, the whole frame changes and the blocks are rewritten.

The agent's part is kept in the model's frame without the live register shift (what the model
chose, not where it was moved), so moving the register does not push its own history out of the
range it was trained on.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

from exports.encoding import NoteChange, PartWindow, StepContext, decode_action, encode_states
from exports.selection import choose_actions
from exports.spec import FIRST_NOTE_ACTION, HOLD, PITCH_CLASSES, REST, Spec
from exports.tonality import KeyTracker, key_shift
from live_agent.protocols import Policy

ALL_CLASSES = (1 << PITCH_CLASSES) - 1
MAX_CACHED = 50_000
SILENT_CHROMA = np.zeros(PITCH_CLASSES, dtype=bool)
_BITS = 1 << np.arange(PITCH_CLASSES)
CHROMA_OF_BITS = ((np.arange(1 << PITCH_CLASSES)[:, None] & _BITS) > 0).astype(np.float64)
"""(4096, 12): pitch-class weights of each 12-bit chroma."""


class StepKey(NamedTuple):
    """One part during one step, absolute: onset, sounding pitch classes as bits, top pitch."""

    onset: bool
    chroma_bits: int
    top: int


SILENT_STEP = StepKey(False, 0, -1)


def chroma_bits(chroma: np.ndarray) -> int:
    """(12,) bool or weights -> 12-bit int, bit c set when pitch class c sounds."""
    return int(_BITS[np.asarray(chroma) > 0].sum())


def relative_bits(bits: int, shift: int) -> int:
    """Absolute pitch-class bits -> key-relative ones (relative class r is absolute r + shift)."""
    s = shift % PITCH_CLASSES
    return ((bits >> s) | (bits << (PITCH_CLASSES - s))) & ALL_CLASSES


class Decider:
    """Everything one decision needs, kept between steps. Owned by the scheduler thread."""

    def __init__(self, policy: Policy, rng: np.random.Generator) -> None:
        self.rng = rng
        self.policy = policy
        self.spec: Spec = policy.spec
        spec = self.spec
        w = spec.window_steps
        self.agent: deque[StepKey] = deque([SILENT_STEP] * w, maxlen=w)
        self.player: deque[StepKey] = deque([SILENT_STEP] * w, maxlen=w)
        self.key = KeyTracker(spec)
        self.tonic, self.minor = 0, False
        """The live key estimate (changes as notes are heard)."""
        self.frame_tonic, self.frame_minor = 0, False
        """The key the state and the actions are relative to (changes only at turn starts)."""
        self._shift = 0  # key_shift(frame_tonic), kept as an int: numpy on scalars costs us
        self._block = spec.features_per_part_step
        self._part = w * self._block
        self._state = np.zeros((1, spec.state_dim), dtype=np.float32)  # (1, state_dim)
        self._blocks: dict[tuple[bool, int, int], np.ndarray] = {}
        self._contexts: dict[tuple[int, bool, bool, float], np.ndarray] = {}
        self._masks: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._no_onsets = np.zeros(spec.n_actions, dtype=bool)
        self._no_onsets[[HOLD, REST]] = True
        self._step_chroma = np.zeros(PITCH_CLASSES, dtype=np.float64)
        self._frame_shift = 0
        # Every one-note step (each pitch, with and without onset) in one batch: most of what
        # either part plays; chords are encoded when first heard (see ``prefetch``).
        self._encode_blocks(
            [(onset, 1 << (p % PITCH_CLASSES), p) for onset in (False, True) for p in range(128)]
            + [(False, 0, -1), (True, 0, -1)]
        )
        self._rebuild()

    # --- the state ---------------------------------------------------------------------------

    def _windows(self, steps: list[StepKey], shift: int) -> PartWindow:
        """A key-relative PartWindow (batch of one) of absolute step keys."""
        w = self.spec.window_steps
        onset = np.array([[s.onset for s in steps]], dtype=bool)  # (1, W)
        chroma = np.zeros((1, w, PITCH_CLASSES), dtype=bool)  # (1, W, 12)
        for i, s in enumerate(steps):
            chroma[0, i] = (relative_bits(s.chroma_bits, shift) & _BITS) > 0
        top = np.array([[s.top - shift if s.top >= 0 else -1 for s in steps]], dtype=np.int64)
        return PartWindow(onset, chroma, top)

    def _encode_contexts(self, keys: list[tuple[int, bool, bool, float]]) -> None:
        """Cache the context features of each (bar position, minor, answering, progress) key,
        with one batched ``encode_states`` call."""
        keys = [k for k in dict.fromkeys(keys) if k not in self._contexts]
        if not keys:
            return
        n, w = len(keys), self.spec.window_steps
        silent = PartWindow(
            np.zeros((n, w), dtype=bool),
            np.zeros((n, w, PITCH_CLASSES), dtype=bool),
            np.full((n, w), -1, dtype=np.int64),
        )
        context = StepContext(
            np.array([k[0] for k in keys]),
            np.array([k[1] for k in keys]),
            np.array([k[2] for k in keys]),
            np.array([k[3] for k in keys], dtype=np.float64),
        )
        states = encode_states(self.spec, silent, silent, context)  # (n, state_dim)
        if len(self._contexts) + n > MAX_CACHED:
            self._contexts.clear()
        for key, row in zip(keys, states[:, 2 * self._part :], strict=True):
            self._contexts[key] = row.copy()

    def precompute_contexts(self, answering: bool, progress_values: list[float]) -> None:
        """Encode ahead every context a mode will ask for (all bar positions, both modes of the
        key), so that no decision waits for a new one."""
        self._encode_contexts(
            [
                (position, minor, answering, progress)
                for position in range(self.spec.steps_per_bar)
                for minor in (False, True)
                for progress in progress_values
            ]
        )

    def _context(self, bar_position: int, answering: bool, progress: float) -> np.ndarray:
        key = (bar_position, self.frame_minor, answering, progress)
        block = self._contexts.get(key)
        if block is None:
            self._encode_contexts([key])
            block = self._contexts[key]
        return block

    def _relative_key(self, step: StepKey, shift: int) -> tuple[bool, int, int]:
        top = step.top - shift if step.top >= 0 else -1
        return (step.onset, relative_bits(step.chroma_bits, shift), top)

    def _encode_blocks(self, keys: list[tuple[bool, int, int]]) -> None:
        """Cache the features of each key-relative (onset, chroma bits, top) step, with one
        batched ``encode_states`` call (the step last in the agent's window, the rest silent)."""
        keys = [k for k in dict.fromkeys(keys) if k not in self._blocks]
        if not keys:
            return
        n, w = len(keys), self.spec.window_steps
        onset = np.zeros((n, w), dtype=bool)
        chroma = np.zeros((n, w, PITCH_CLASSES), dtype=bool)
        tops = np.full((n, w), -1, dtype=np.int64)
        onset[:, -1] = [k[0] for k in keys]
        chroma[:, -1] = (np.array([k[1] for k in keys])[:, None] & _BITS) > 0
        tops[:, -1] = [k[2] for k in keys]
        silent = PartWindow(
            np.zeros((n, w), dtype=bool),
            np.zeros((n, w, PITCH_CLASSES), dtype=bool),
            np.full((n, w), -1, dtype=np.int64),
        )
        context = StepContext(
            np.zeros(n, dtype=np.int64),
            np.zeros(n, dtype=bool),
            np.zeros(n, dtype=bool),
            np.zeros(n),
        )
        states = encode_states(self.spec, PartWindow(onset, chroma, tops), silent, context)
        if len(self._blocks) + n > MAX_CACHED:
            self._blocks.clear()
        for key, row in zip(keys, states[:, self._part - self._block : self._part], strict=True):
            self._blocks[key] = row.copy()

    def prefetch(self, steps: list[StepKey]) -> None:
        """Encode ahead the blocks of steps that may come next (e.g. the chord the player is
        holding), off the decision path; cheap when they are cached already."""
        shift = self._frame_shift
        keys = [self._relative_key(step, shift) for step in steps]
        if any(k not in self._blocks for k in keys):
            self._encode_blocks(keys)

    def _step_block(self, step: StepKey, shift: int) -> np.ndarray:
        key = self._relative_key(step, shift)
        block = self._blocks.get(key)
        if block is None:
            self._encode_blocks([key])
            block = self._blocks[key]
        return block

    def _rebuild(self) -> None:
        """Rewrite every block in the current key's frame (the tonic moved, or a new model)."""
        shift = self.shift
        b = self._block
        self._encode_blocks(
            [self._relative_key(step, shift) for part in (self.agent, self.player) for step in part]
        )
        for offset, part in ((0, self.agent), (self._part, self.player)):
            for i, step in enumerate(part):
                self._state[0, offset + i * b : offset + (i + 1) * b] = self._step_block(
                    step, shift
                )
        self._frame_shift = shift

    def reference_state(self, step: int, answering: bool, progress: float) -> np.ndarray:
        """(1, state_dim): ``encode_states`` of the full windows, built from scratch (for tests)."""
        shift = self.shift
        context = StepContext(
            np.array([step % self.spec.steps_per_bar]),
            np.array([self.frame_minor]),
            np.array([answering]),
            np.array([progress]),
        )
        return encode_states(
            self.spec,
            self._windows(list(self.agent), shift),
            self._windows(list(self.player), shift),
            context,
        )

    def state(self, step: int, answering: bool, progress: float) -> np.ndarray:
        """(1, state_dim) float32: the state deciding grid ``step``. A view of the Decider's own
        buffer: valid until the next ``observe_step``."""
        self._state[0, 2 * self._part :] = self._context(
            step % self.spec.steps_per_bar, answering, progress
        )
        return self._state

    # --- stepping ----------------------------------------------------------------------------

    def adopt(self, policy: Policy) -> None:
        """Use ``policy`` from the next decision on; keeps the history and the key estimate."""
        agent, player = list(self.agent), list(self.player)
        histogram = self.key.histogram.copy()
        self.__init__(policy, self.rng)  # type: ignore[misc]
        self.agent.extend(agent)
        self.player.extend(player)
        self.key.histogram[:] = histogram
        self.tonic, self.minor = self.key.key()
        self.frame_tonic, self.frame_minor = self.tonic, self.minor
        self._shift = int(key_shift(self.frame_tonic))
        self._rebuild()

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
        """Append one finished step of both parts to the windows and the state (cheap: on the
        decision path). The key estimate follows in ``update_key``."""
        self.agent.append(agent)
        self.player.append(player)
        b, p, s = self._block, self._part, self._state[0]
        shift = self._frame_shift
        s[: p - b] = s[b:p]
        s[p - b : p] = self._step_block(agent, shift)
        s[p : 2 * p - b] = s[p + b : 2 * p]
        s[2 * p - b : 2 * p] = self._step_block(player, shift)

    def update_key(self, move_frame: bool = True) -> None:
        """Fold the last pushed step into the tonic estimate; with ``move_frame``, adopt the
        estimate as the frame (rewriting the state if the tonic moved). Off the decision path:
        the session calls it after sending, moving the frame only between the agent's turns (as
        in training, where a turn keeps the key it started in)."""
        agent, player = self.agent[-1], self.player[-1]
        np.add(
            CHROMA_OF_BITS[agent.chroma_bits],
            CHROMA_OF_BITS[player.chroma_bits],
            out=self._step_chroma,
        )
        self.key.observe_step(self._step_chroma)
        if agent.chroma_bits or player.chroma_bits:
            # A silent step only scales the histogram, which cannot change the estimate.
            self.tonic, self.minor = self.key.key()
        if move_frame:
            self.frame_minor = self.minor
            if self.tonic != self.frame_tonic:
                self.frame_tonic = self.tonic
                self._shift = int(key_shift(self.frame_tonic))
                if self._shift != self._frame_shift:
                    self._rebuild()

    @property
    def shift(self) -> int:
        """Semitones from the model's key-relative frame to absolute pitch."""
        return self._shift

    # --- deciding ----------------------------------------------------------------------------

    def allowed_mask(self, register_shift: int, low: int, high: int) -> np.ndarray:
        """(n_actions,) bool: HOLD, REST, and the NOTE_ONs that land within low..high."""
        key = (self._shift, register_shift, low, high)
        mask = self._masks.get(key)
        if mask is None:
            spec = self.spec
            pitches = np.arange(spec.pitch_low, spec.pitch_high + 1) + self.shift + register_shift
            mask = np.ones(spec.n_actions, dtype=bool)
            mask[FIRST_NOTE_ACTION:] = (pitches >= low) & (pitches <= high)
            self._masks[key] = mask
        return mask

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
    ) -> int:
        """The action for grid ``step`` (an index into the model's vocabulary)."""
        state = self.state(step, answering, progress)
        q = self.policy.q_values(state)  # (1, n_actions)
        allowed = self.allowed_mask(register_shift, low, high)
        if density < 1.0 and self.rng.random() >= density:
            allowed = allowed & self._no_onsets
        return int(choose_actions(q, temperature, self.rng, allowed)[0])

    def note_change(self, action: int, sounding: int | None, register_shift: int) -> NoteChange:
        """The MIDI effect of ``action`` (absolute pitches, register shift included)."""
        return decode_action(self.spec, action, sounding, self.shift + register_shift)
