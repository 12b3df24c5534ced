"""The agent's decision: rolling windows of both parts -> state -> Q-values -> action.

``Decider`` keeps the last W steps of each part in preallocated arrays (absolute pitches, rolled
in place each step), tracks the tonic with ``exports.tonality.KeyTracker`` over what both parts
play, and decides with the contract's own functions: ``exports.encoding.encode_states`` for the
state, the Policy for Q, ``exports.selection.choose_actions`` (temperature, an ``allowed`` mask
for the register limits and the density gate) for the action, ``decode_action`` for its MIDI.

The agent's part is stored in the model's frame without the live register shift (what the model
chose, not where it was moved), so shifting the register does not push its own history out of the
range it was trained on.
"""

from __future__ import annotations

import numpy as np

from exports.encoding import NoteChange, PartWindow, StepContext, decode_action, encode_states
from exports.selection import choose_actions
from exports.spec import FIRST_NOTE_ACTION, HOLD, PITCH_CLASSES, REST, Spec
from exports.tonality import KeyTracker, key_shift
from live_agent.protocols import Policy


class RollingPart:
    """One part over the last W steps, absolute pitches, oldest step first."""

    def __init__(self, window_steps: int) -> None:
        self.onset = np.zeros((1, window_steps), dtype=bool)
        self.chroma = np.zeros((1, window_steps, PITCH_CLASSES), dtype=bool)
        self.top = np.full((1, window_steps), -1, dtype=np.int64)

    def push(self, onset: bool, chroma: np.ndarray, top: int) -> None:
        """Append one step, dropping the oldest (in place: no allocation)."""
        self.onset[0, :-1] = self.onset[0, 1:]
        self.chroma[0, :-1] = self.chroma[0, 1:]
        self.top[0, :-1] = self.top[0, 1:]
        self.onset[0, -1] = onset
        self.chroma[0, -1] = chroma
        self.top[0, -1] = top

    def copy_history(self, other: RollingPart) -> None:
        """Take the most recent steps of ``other`` (windows of different lengths allowed)."""
        n = min(self.top.shape[1], other.top.shape[1])
        self.onset[0, -n:] = other.onset[0, -n:]
        self.chroma[0, -n:] = other.chroma[0, -n:]
        self.top[0, -n:] = other.top[0, -n:]


class RelativeView:
    """Preallocated key-relative copies of a RollingPart, refreshed before each decision."""

    def __init__(self, window_steps: int) -> None:
        self.onset = np.zeros((1, window_steps), dtype=bool)
        self.chroma = np.zeros((1, window_steps, PITCH_CLASSES), dtype=bool)
        self.top = np.full((1, window_steps), -1, dtype=np.int64)
        self.window = PartWindow(self.onset, self.chroma, self.top)

    def refresh(self, part: RollingPart, shift: int, roll_index: np.ndarray) -> PartWindow:
        # relative = absolute - shift, so relative pitch class r is absolute (r + shift) mod 12.
        np.copyto(self.onset, part.onset)
        np.take(part.chroma, roll_index, axis=2, out=self.chroma)
        np.subtract(part.top, shift, out=self.top)
        np.copyto(self.top, -1, where=part.top < 0)
        return self.window


# roll_index[s] lists, for each relative pitch class, its absolute pitch class under shift s.
ROLL_INDEX = np.array(
    [[(r + s) % PITCH_CLASSES for r in range(PITCH_CLASSES)] for s in range(PITCH_CLASSES)]
)
SILENT_CHROMA = np.zeros(PITCH_CLASSES, dtype=bool)


class Decider:
    """Everything one decision needs, kept between steps. Owned by the scheduler thread."""

    def __init__(self, policy: Policy, rng: np.random.Generator) -> None:
        self.rng = rng
        self.policy = policy
        self.spec: Spec = policy.spec
        w = self.spec.window_steps
        self.agent = RollingPart(w)
        self.player = RollingPart(w)
        self.key = KeyTracker(self.spec)
        self.tonic, self.minor = 0, False
        self._agent_view = RelativeView(w)
        self._player_view = RelativeView(w)
        self._bar_position = np.zeros(1, dtype=np.int64)
        self._minor = np.zeros(1, dtype=bool)
        self._answering = np.zeros(1, dtype=bool)
        self._progress = np.zeros(1, dtype=np.float64)
        self._context = StepContext(
            self._bar_position, self._minor, self._answering, self._progress
        )
        self._masks: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._no_onsets = np.zeros(self.spec.n_actions, dtype=bool)
        self._no_onsets[[HOLD, REST]] = True
        self._step_chroma = np.zeros(PITCH_CLASSES, dtype=np.float64)

    def adopt(self, policy: Policy) -> None:
        """Use ``policy`` from the next decision on; keeps the history when the window differs."""
        old_agent, old_player = self.agent, self.player
        histogram = self.key.histogram.copy()
        self.__init__(policy, self.rng)  # type: ignore[misc]
        self.agent.copy_history(old_agent)
        self.player.copy_history(old_player)
        self.key.histogram[:] = histogram
        self.tonic, self.minor = self.key.key()

    def observe_step(
        self,
        agent_chroma: np.ndarray,
        agent_top: int,
        agent_onset: bool,
        player_chroma: np.ndarray,
        player_top: int,
        player_onset: bool,
    ) -> None:
        """Fold one finished step of both parts (absolute pitches; agent without register shift)."""
        self.agent.push(agent_onset, agent_chroma, agent_top)
        self.player.push(player_onset, player_chroma, player_top)
        np.add(agent_chroma, player_chroma, out=self._step_chroma)
        self.key.observe_step(self._step_chroma)
        self.tonic, self.minor = self.key.key()

    @property
    def shift(self) -> int:
        """Semitones from the model's key-relative frame to absolute pitch."""
        return int(key_shift(self.tonic))

    def allowed_mask(self, register_shift: int, low: int, high: int) -> np.ndarray:
        """(n_actions,) bool: HOLD, REST, and the NOTE_ONs that land within low..high."""
        key = (self.shift, register_shift, low, high)
        mask = self._masks.get(key)
        if mask is None:
            spec = self.spec
            pitches = np.arange(spec.pitch_low, spec.pitch_high + 1) + self.shift + register_shift
            mask = np.ones(spec.n_actions, dtype=bool)
            mask[FIRST_NOTE_ACTION:] = (pitches >= low) & (pitches <= high)
            self._masks[key] = mask
        return mask

    def state(self, step: int, answering: bool, progress: float) -> np.ndarray:
        """(1, state_dim) float32: the state deciding ``step``."""
        shift = self.shift
        roll = ROLL_INDEX[shift % PITCH_CLASSES]
        agent = self._agent_view.refresh(self.agent, shift, roll)
        player = self._player_view.refresh(self.player, shift, roll)
        self._bar_position[0] = step % self.spec.steps_per_bar
        self._minor[0] = self.minor
        self._answering[0] = answering
        self._progress[0] = progress
        return encode_states(self.spec, agent, player, self._context)

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
        """The action for ``step`` (an index into the model's vocabulary)."""
        state = self.state(step, answering, progress)
        q = self.policy.q_values(state)  # (1, n_actions)
        allowed = self.allowed_mask(register_shift, low, high)
        if density < 1.0 and self.rng.random() >= density:
            allowed = allowed & self._no_onsets
        return int(choose_actions(q, temperature, self.rng, allowed)[0])

    def note_change(self, action: int, sounding: int | None, register_shift: int) -> NoteChange:
        """The MIDI effect of ``action`` (absolute pitches, register shift included)."""
        return decode_action(self.spec, action, sounding, self.shift + register_shift)
