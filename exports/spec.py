"""The contract's constants: time grid, agent range and the action vocabulary.

One step is one 16th note; a bar of 4/4 is 16 steps. The agent's actions are

    HOLD      keep sounding the current note, or keep silent
    REST      release the current note
    NOTE_ON p start key-relative pitch p (re-articulates if p already sounds)

and the vocabulary is ``[HOLD, REST, NOTE_ON pitch_low, ..., NOTE_ON pitch_high]``. Pitches are
in the key-relative frame (see ``exports.tonality``): a model picks "the tonic an octave above
middle C", never "E-flat".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from exports.midi import MIDI_PITCHES as MIDI_PITCHES  # kept importable from here

# Bump whenever the meaning of a state or an action changes; a model made for another version is
# refused at load time (exports.model_file).
SPEC_VERSION = 3
# Version 3 is written up below and takes effect when SPEC_VERSION says 3, with models retrained
# for it (a 128-step window, network kind "hybrid").
SPEC_CHANGES = {
    2: "the call summary entered the state",
    3: "the shipped styles hear the whole phrase, a 128-step window, and a model names its "
    "action vocabulary",
}
"""What each version changed, for the line that refuses an older model (exports.metadata)."""

MELODIC = "melodic"
"""Actions HOLD, REST and one NOTE_ON per key-relative pitch of the range (see above)."""
ACTION_VOCABULARIES = (MELODIC,)
"""The action vocabularies this build can play; a model of another is refused at load. A comping
style adds ``"chord"`` (a root in the key frame x a quality, voiced below the player)."""

HOLD = 0
REST = 1
FIRST_NOTE_ACTION = 2

PITCH_CLASSES = 12

GRID_STEPS_PER_BEAT = 4
"""The one grid deepjam is built for: 16th notes. The tempo follower, the MIDI clock (6 ticks
of 24 ppqn a step), phrase and dynamics rules and MIDI file quantization all count in 16ths, so
a ``Spec`` with another ``steps_per_beat`` is refused rather than silently played in 16ths."""

# heard (1) + IOI histogram (7) + mean log2 IOI (1) + register mean/low/high (3) + octave shares
# (4) + density (1) + contour (5) + length (1); see exports.encoding.summarize_call.
CALL_SUMMARY_FEATURES = 23

# Grid melody events (absolute or key-relative pitch per step): a pitch 0..127 is an onset.
HOLD_EVENT = -1
REST_EVENT = -2


@dataclass(frozen=True)
class Spec:
    """The shape of the MDP a model was trained on; travels inside every model file."""

    steps_per_beat: int = GRID_STEPS_PER_BEAT
    """Grid resolution: 4 steps per quarter note (16th notes); no other value is accepted."""
    beats_per_bar: int = 4
    """Bars of 4/4."""
    window_steps: int = 32
    """How many past steps of each part the state shows (two bars)."""
    pitch_low: int = 48
    """Lowest key-relative MIDI pitch the agent may start (48 = C3 in C)."""
    pitch_high: int = 84
    """Highest key-relative MIDI pitch the agent may start, inclusive (84 = C6 in C)."""
    key_half_life_steps: float = 64.0
    """Recency weight inside the call window (4 bars): the key is judged over the whole
    ``call_window_steps`` window by ``exports.tonality.estimate_call_key``, and a step of it
    counts half as much as one this many steps later, so an earlier phrase in the window counts
    less than the call just heard. Nothing outside the window counts."""
    call_window_steps: int = 96
    """Steps of the player's part before the agent's turn that the call summary reads (6 bars:
    a 4-bar call and its final rest)."""
    action_vocabulary: str = MELODIC
    """What an action is: one of ``ACTION_VOCABULARIES``. A model whose spec lacks the field was
    made before chords, and is melodic."""

    def __post_init__(self) -> None:
        if (
            self.steps_per_beat < 1
            or self.beats_per_bar < 1
            or self.window_steps < 1
            or self.call_window_steps < 1
        ):
            raise ValueError(f"spec grid values must be positive, got {self}")
        if self.steps_per_beat != GRID_STEPS_PER_BEAT:
            raise ValueError(
                f"steps_per_beat must be {GRID_STEPS_PER_BEAT} (16th notes: the grid deepjam's "
                f"clock, tempo follower and MIDI files use), got {self.steps_per_beat}; "
                f"train with steps_per_beat = {GRID_STEPS_PER_BEAT}"
            )
        if not 0 <= self.pitch_low <= self.pitch_high <= 127:
            raise ValueError(
                f"spec pitch range must satisfy 0 <= low <= high <= 127, "
                f"got {self.pitch_low}..{self.pitch_high}"
            )
        if self.key_half_life_steps <= 0:
            raise ValueError(f"key_half_life_steps must be > 0, got {self.key_half_life_steps}")
        if self.action_vocabulary not in ACTION_VOCABULARIES:
            raise ValueError(
                f"action_vocabulary {self.action_vocabulary!r} is not one this deepjam plays; "
                f"known: {list(ACTION_VOCABULARIES)}"
            )

    @property
    def steps_per_bar(self) -> int:
        return self.steps_per_beat * self.beats_per_bar

    @property
    def n_pitches(self) -> int:
        return self.pitch_high - self.pitch_low + 1

    @property
    def n_actions(self) -> int:
        return FIRST_NOTE_ACTION + self.n_pitches

    @property
    def n_octaves(self) -> int:
        """Octave bins of the register feature: ceil(n_pitches / 12)."""
        return -(-self.n_pitches // PITCH_CLASSES)

    @property
    def features_per_part_step(self) -> int:
        """onset + 12 chroma + octave one-hot of the top sounding note."""
        return 1 + PITCH_CLASSES + self.n_octaves

    @property
    def context_features(self) -> int:
        """bar-position one-hot + minor + answering + progress."""
        return self.steps_per_bar + 3

    @property
    def call_features(self) -> int:
        """The call summary: see ``exports.encoding.summarize_call``."""
        return CALL_SUMMARY_FEATURES

    @property
    def state_dim(self) -> int:
        return (
            2 * self.window_steps * self.features_per_part_step
            + self.context_features
            + self.call_features
        )

    @property
    def key_decay_per_step(self) -> float:
        return float(0.5 ** (1.0 / self.key_half_life_steps))

    def vocabulary(self) -> tuple[str, ...]:
        """Names of the actions, index = action id."""
        notes = tuple(f"NOTE_ON:{p}" for p in range(self.pitch_low, self.pitch_high + 1))
        return ("HOLD", "REST", *notes)

    def action_for_pitch(self, relative_pitch: int) -> int:
        """The NOTE_ON action for a key-relative pitch; raises ValueError outside the range."""
        if not self.pitch_low <= relative_pitch <= self.pitch_high:
            raise ValueError(
                f"pitch {relative_pitch} is outside the agent range "
                f"{self.pitch_low}..{self.pitch_high}"
            )
        return FIRST_NOTE_ACTION + relative_pitch - self.pitch_low

    def pitch_of_action(self, action: int) -> int | None:
        """The key-relative pitch a NOTE_ON action starts, or None for HOLD / REST."""
        if action < FIRST_NOTE_ACTION:
            return None
        return self.pitch_low + action - FIRST_NOTE_ACTION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Spec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown spec fields {unknown}; known: {sorted(known)}")
        return cls(**values)


DEFAULT_SPEC = Spec()
