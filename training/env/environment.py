"""The vectorized melody environment: N episodes at once, in numpy.

The player's part comes from the corpus. Two kinds of episode, matching the live modes:

* **answer** (call-and-response): ``call_bars`` of a corpus tune are the call; the agent then
  plays for ``answer_bars`` while the player is silent.
* **duet**: the agent plays along with ``duet_bars`` of a corpus line, after ``duet_lead_bars``
  of that line sounded alone.

Each episode's key is what the live agent judges when the agent's turn starts:
``exports.tonality.estimate_call_key`` over the player's last ``spec.call_window_steps`` of the
lead-in (the call in answer episodes), the window the call summary reads. Everything after that
is in the key-relative frame (``exports.tonality.key_shift``), and states come from the one encoder,
``exports.encoding.encode_states``, exactly as the live agent builds them: player part =
``monophonic_window`` of the corpus line, agent part = its own actions.

Episodes have a fixed length and end with ``done=True``. With ``auto_reset`` (the default) a
finished row starts a new episode at once and the state returned for it is that episode's first
state (the learner masks bootstrapping with ``done``). Turns start on a bar line unless
``answer_gap_steps`` > 0 (below).

What a state at turn step t holds (the live agent must build the same): the W steps before t of
both parts (agent: its own actions, silent before its turn; player: the call / the line), and the
context of step t: ``bar_position = t % steps_per_bar`` (see ``answer_gap_steps`` below), the key's ``minor``, ``answering``, and
``progress = t / turn_steps`` (0 when deciding the turn's first step). A duet turn is a phrase of
``duet_bars``; played live continuously, progress would run over each such phrase.

With ``answer_gap_steps`` > 0 (the shipped styles' presets use 0: answers on the bar line), an answer
turn starts that many silent steps after the call's last sounding step, as the live answer mode
does, so it starts at any bar position: ``bar_position = (phase + t) % steps_per_bar`` where
``phase`` is the musical bar position of the turn's first step. The reward rules still count
"bars" of the turn from its first step.

Not modelled: the player never resumes during an answer (live, the agent yields then), so the
``silent_while_player_plays`` rule stays at 0 in corpus episodes; corpus lines are monophonic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from exports.encoding import (
    PartWindow,
    StepContext,
    action_events,
    encode_states,
    event_actions,
    monophonic_window,
    summarize_call,
)
from exports.errors import ConfigError, CorpusError
from exports.grid import sounding_pitches, validate_events
from exports.selection import SeeSaw, choose_actions, opening_mask
from exports.spec import HOLD_EVENT, MIDI_PITCHES, REST_EVENT, Spec
from exports.tonality import estimate_call_key, key_shift
from exports.turns import DEFAULT_ANSWER_BARS_MAX, answer_steps
from training.data.corpus_data import Corpus
from training.env.reward import (
    HISTORY_ONSETS,
    RewardInputs,
    RewardWeights,
    StyleLogProbs,
    compute_reward,
)


@dataclass(frozen=True)
class EnvConfig:
    """How episodes are cut from the corpus."""

    n_envs: int = 256
    """Episodes run at once (rows of every batch)."""
    answer_fraction: float = 0.5
    """Share of new episodes that are answer episodes; the rest are duets."""
    call_bars: int = 2
    """Length of the call the agent answers."""
    answer_bars: int = 2
    """Length of the agent's answer turn with ``answer_length = "fixed"``."""
    answer_length: str = "fixed"
    """"call": the answer lasts as many bars as the call (``exports.turns.answer_steps``, as
    live), bounded by ``answer_bars_max``; "fixed": ``answer_bars``."""
    answer_bars_max: int = DEFAULT_ANSWER_BARS_MAX
    """Bound on an answer's bars with ``answer_length = "call"`` (live's ``--answer-bars-max``)."""
    call_bars_choices: list[int] = field(default_factory=list)
    """Answer episodes: the call's length in bars, drawn from these (empty: ``call_bars``).
    Needs ``answer_gap_steps`` = 0."""
    stretch_fraction: float = 0.0
    """Augmentation: share of answer episodes whose call and continuation are played at half
    speed (every step doubled: 16ths become 8ths), so that a slower call goes with a slower
    continuation; only for an even ``call_bars`` choice."""
    octave_shift_fraction: float = 0.0
    """Augmentation: share of episodes moved a whole octave up or down (call and continuation
    together), on top of ``transpose_semitones``."""
    duet_bars: int = 4
    """Length of the agent's turn in a duet episode."""
    duet_lead_bars: int = 2
    """Bars of the corpus line heard before the agent joins in (key estimate, first window)."""
    transpose_semitones: int = 6
    """Augmentation: each episode's tune is transposed by a random amount within +-this."""
    min_call_notes: int = 3
    """A call (or a duet line) needs at least this many notes to be used."""
    answer_gap_steps: int = 0
    """Answer episodes: silent steps between the call's last sounding step and the answer, as
    live (``silence_steps``, default 8), so the answer starts at any bar position. 0 = the
    answer starts on the bar line after the call's ``call_bars`` whole bars."""
    auto_reset: bool = True
    """Start a new episode in each row that finished (the usual vectorized-env contract)."""
    seed: int | None = None


class StepResult(NamedTuple):
    states: np.ndarray  # (N, state_dim) float32: next states (first state of a new episode if done)
    rewards: np.ndarray  # (N,) float32
    dones: np.ndarray  # (N,) bool: the step ended its episode
    terms: dict[str, np.ndarray]  # (N,) per reward term, see training.env.reward.compute_reward


class Episodes(NamedTuple):
    """The player's side of some episodes, absolute pitches, before transposition."""

    segments: np.ndarray  # (n, lead + T) grid events: lead-in then the turn
    answering: np.ndarray  # (n,) bool
    turn_steps: np.ndarray  # (n,) int
    phase: np.ndarray | None = None
    """(n,) int: bar position of the turn's first step (None: 0, the turn starts on a bar line)."""
    continuation: np.ndarray | None = None
    """(n, max_turn_steps) absolute grid events the tune itself played in the turn (answer rows;
    HOLD elsewhere): the target for teaching the style model on real (call, answer) pairs."""


class EpisodeSource(Protocol):
    """Where episodes come from: the corpus (training) or given calls (evaluation)."""

    lead_steps: int
    """Steps of the player's part before each turn (whole bars, at least a window)."""
    max_turn_steps: int

    def sample(self, n: int, rng: np.random.Generator) -> Episodes: ...


class CorpusEpisodes:
    """Samples answer and duet segments from a corpus, bar-aligned, without Python loops."""

    def __init__(self, spec: Spec, corpus: Corpus, config: EnvConfig) -> None:
        spb = spec.steps_per_bar
        self.call_steps = config.call_bars * spb
        self.answer_steps = config.answer_bars * spb
        self.duet_steps = config.duet_bars * spb
        self.duet_lead_steps = config.duet_lead_bars * spb
        # One lead-in for both kinds, whole bars, at least a window, so every first state has a
        # full window of history (silent where the tune gives none).
        self.gap_steps = config.answer_gap_steps
        self.steps_per_bar = spb
        self.call_bars_choices = np.array(config.call_bars_choices or [config.call_bars])
        if self.gap_steps > 0 and len(config.call_bars_choices) > 0:
            raise ConfigError("call_bars_choices needs answer_gap_steps = 0 (calls on bar lines)")
        if (self.call_bars_choices < 1).any():
            raise ConfigError(f"call_bars_choices must be >= 1, got {config.call_bars_choices}")
        if config.answer_length not in ("fixed", "call"):
            raise ConfigError(
                f"answer_length must be 'fixed' or 'call', got {config.answer_length!r}"
            )
        self.answer_length = config.answer_length
        self.answer_bars_max = config.answer_bars_max
        self.stretch_fraction = config.stretch_fraction
        max_call_steps = int(self.call_bars_choices.max()) * spb
        if self.answer_length == "call":
            self.answer_steps = min(config.answer_bars_max, int(self.call_bars_choices.max())) * spb
        call_span = max(self.call_steps, max_call_steps) + (spb if self.gap_steps > 0 else 0)
        lead = max(
            call_span + self.gap_steps,
            self.duet_lead_steps,
            spec.window_steps,
            spec.call_window_steps,
        )
        self.lead_steps = -(-lead // spb) * spb
        self.max_turn_steps = max(self.answer_steps, self.duet_steps)
        self.min_call_steps = int(self.call_bars_choices.min()) * spb
        longest = self.lead_steps + self.max_turn_steps
        # Flat events: each tune followed by silence, so any start within a tune can be sliced.
        parts, seconds, starts_answer, starts_duet = [], [], [], []
        base = 0
        for i in range(corpus.n_tunes):
            tune = np.asarray(corpus.tune(i), dtype=np.int64)
            if len(tune) == 0:
                continue
            padded = np.concatenate([tune, [REST_EVENT], np.full(longest, HOLD_EVENT)])
            second = corpus.second_voice(i)
            if second is not None:
                seconds.append(np.concatenate([second, [REST_EVENT], np.full(longest, HOLD_EVENT)]))
            onset_count = np.concatenate([[0], np.cumsum(padded >= 0)])
            bar_starts = np.arange(0, len(tune), spb)
            first_call = self.call_steps if self.gap_steps > 0 else self.min_call_steps
            calls = onset_count[np.minimum(bar_starts + first_call, len(padded))]
            calls = calls - onset_count[bar_starts]
            ok = (bar_starts + first_call <= len(tune)) & (calls >= config.min_call_notes)
            starts_answer.append(base + bar_starts[ok])
            duet_from = bar_starts + self.duet_lead_steps
            lines = onset_count[np.minimum(duet_from + self.duet_steps, len(padded))]
            lines = lines - onset_count[np.minimum(duet_from, len(padded))]
            ok = (duet_from < len(tune)) & (lines >= config.min_call_notes)
            starts_duet.append(base + bar_starts[ok])
            parts.append(padded)
            base += len(padded)
        self.flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        self.flat_second: np.ndarray | None = None
        """A two-voice corpus: the second voice beside ``flat`` (the duet rows' continuation)."""
        self.second_sounding: np.ndarray | None = None
        if seconds:
            self.flat_second = np.concatenate(seconds).astype(np.int64)
            self.second_sounding = sounding_pitches(self.flat_second)
        # The same at half speed: step i of a tune is step 2i, the new odd steps hold.
        self.flat_slow = np.full(2 * len(self.flat), HOLD_EVENT, np.int64)
        self.flat_slow[::2] = self.flat
        self.answer_starts = np.concatenate(starts_answer) if parts else np.zeros(0, np.int64)
        self.duet_starts = np.concatenate(starts_duet) if parts else np.zeros(0, np.int64)
        self.answer_fraction = config.answer_fraction
        if config.answer_fraction > 0 and len(self.answer_starts) == 0:
            raise CorpusError(
                f"corpus {corpus.name!r} has no {config.call_bars}-bar call with at least "
                f"{config.min_call_notes} notes; use a larger corpus or lower min_call_notes"
            )
        if config.answer_fraction < 1 and len(self.duet_starts) == 0:
            raise CorpusError(
                f"corpus {corpus.name!r} has no duet line of {config.duet_bars} bars after "
                f"{config.duet_lead_bars} lead bars; use a larger corpus or answer_fraction=1"
            )

    def sample(self, n: int, rng: np.random.Generator) -> Episodes:
        answering = rng.random(n) < self.answer_fraction
        lead, width = self.lead_steps, self.lead_steps + self.max_turn_steps
        cols = np.arange(width)
        segments = np.full((n, width), HOLD_EVENT, dtype=np.int64)
        continuation = np.full((n, self.max_turn_steps), HOLD_EVENT, dtype=np.int64)
        turn_steps = np.where(answering, self.answer_steps, self.duet_steps)
        phase = np.zeros(n, np.int64)
        a = np.flatnonzero(answering)
        if len(a) and self.gap_steps > 0:
            start = self.answer_starts[rng.integers(len(self.answer_starts), size=len(a))]
            # The call: call_bars from a bar line, its last note released after a random 1 to
            # steps_per_bar steps (a player ends a phrase when they like), so the turn, gap
            # steps later, starts at any bar position.
            spb = self.steps_per_bar
            span = self.call_steps + spb
            call = self.flat[start[:, None] + np.arange(span)]
            onsets = call[:, : self.call_steps] >= 0
            last_onset = self.call_steps - 1 - np.argmax(onsets[:, ::-1], axis=1)
            last = last_onset + rng.integers(0, spb, size=len(a))  # last sounding step
            after = np.arange(span)[None, :] > last_onset[:, None]
            call = np.where(after, HOLD_EVENT, call)
            # Place the call so that its last sounding step is gap + 1 steps before the turn.
            shift = lead - self.gap_steps - 1 - last  # column of the call's first step
            idx = cols[None, :] - shift[:, None]
            inside = (idx >= 0) & (idx <= last[:, None])
            picked = call[np.arange(len(a))[:, None], np.clip(idx, 0, span - 1)]
            seg = np.where(inside, picked, HOLD_EVENT)
            seg[np.arange(len(a)), shift + last + 1] = REST_EVENT  # the player lets go
            segments[a] = seg
            phase[a] = (lead - shift) % self.steps_per_bar
        elif len(a):
            self._calls_on_bar_lines(a, segments, continuation, turn_steps, rng)
        d = np.flatnonzero(~answering)
        if len(d):
            start = self.duet_starts[rng.integers(len(self.duet_starts), size=len(d))]
            offset = cols - (lead - self.duet_lead_steps)
            idx = start[:, None] + np.maximum(offset, 0)
            line = np.where(offset >= 0, self.flat[idx], HOLD_EVENT)
            segments[d] = line
            if self.flat_second is not None and self.second_sounding is not None:
                # The tune's own second voice during the turn: the target in teacher forcing.
                # A note it holds into the turn is attacked on the turn's first step (the agent
                # is silent before its turn).
                turn = start + self.duet_lead_steps
                follow = turn[:, None] + np.arange(self.max_turn_steps)
                cont = self.flat_second[np.minimum(follow, len(self.flat_second) - 1)]
                held = self.second_sounding[np.minimum(turn, len(self.flat_second) - 1)]
                cont[:, 0] = np.where((cont[:, 0] == HOLD_EVENT) & (held >= 0), held, cont[:, 0])
                cont[:, self.duet_steps :] = HOLD_EVENT
                continuation[d] = cont
        return Episodes(segments, answering, turn_steps, phase, continuation)

    def _calls_on_bar_lines(
        self,
        a: np.ndarray,
        segments: np.ndarray,
        continuation: np.ndarray,
        turn_steps: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Answer rows ``a``: a call of a drawn length ending on the bar line where the turn
        starts (silence before it and during the turn), the tune's own continuation beside it,
        and the turn's length from ``exports.turns`` (or fixed)."""
        spb, lead = self.steps_per_bar, self.lead_steps
        width = segments.shape[1]
        cols = np.arange(width)
        bars = self.call_bars_choices[rng.integers(len(self.call_bars_choices), size=len(a))]
        slow = (rng.random(len(a)) < self.stretch_fraction) & (bars % 2 == 0)
        start = self.answer_starts[rng.integers(len(self.answer_starts), size=len(a))]
        source_start = np.where(slow, 2 * start, start)
        call_steps = bars * spb
        offset = cols[None, :] - (lead - call_steps[:, None])
        idx = source_start[:, None] + np.maximum(offset, 0)
        inside = (offset >= 0) & (cols[None, :] < lead)
        picked = np.where(
            slow[:, None],
            self.flat_slow[np.minimum(idx, len(self.flat_slow) - 1)],
            self.flat[np.minimum(idx, len(self.flat) - 1)],
        )
        call = np.where(inside, picked, HOLD_EVENT)
        call[:, lead] = REST_EVENT  # the player stops when the answer starts
        segments[a] = call
        # The tune's continuation: what it played next (the agent's target in teacher forcing).
        follow = source_start[:, None] + call_steps[:, None] + np.arange(self.max_turn_steps)
        continuation[a] = np.where(
            slow[:, None],
            self.flat_slow[np.minimum(follow, len(self.flat_slow) - 1)],
            self.flat[np.minimum(follow, len(self.flat) - 1)],
        )
        if self.answer_length == "call":
            heard = call[:, :lead] >= 0
            first = np.where(heard.any(axis=1), np.argmax(heard, axis=1), lead - call_steps)
            span = lead - first  # the call's last note sounds up to the bar line
            turn_steps[a] = [answer_steps(int(c), spb, self.answer_bars_max) for c in span]


class MelodyEnv:
    """N melody episodes stepped at once; see the module docstring.

    ``style_log_probs`` (optional) maps states (N, state_dim) to log p_style (N, n_actions);
    without it the style term is 0.
    """

    def __init__(
        self,
        spec: Spec,
        corpus: Corpus | None,
        config: EnvConfig | None = None,
        reward_weights: RewardWeights | None = None,
        style_log_probs: StyleLogProbs | None = None,
        *,
        episodes: EpisodeSource | None = None,
    ) -> None:
        self.spec = spec
        self.config = config or EnvConfig()
        if self.config.n_envs < 1:
            raise ConfigError(f"n_envs must be >= 1, got {self.config.n_envs}")
        for name in ("call_bars", "answer_bars", "duet_bars", "duet_lead_bars"):
            if getattr(self.config, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self.config, name)}")
        if self.config.transpose_semitones < 0:
            raise ConfigError(
                f"transpose_semitones must be >= 0 (0 = off), got {self.config.transpose_semitones}"
            )
        if not 0.0 <= self.config.answer_fraction <= 1.0:
            raise ConfigError(
                f"answer_fraction must be within 0..1, got {self.config.answer_fraction}"
            )
        self.reward_weights = reward_weights or RewardWeights()
        self.style_log_probs = style_log_probs
        self.rng = np.random.default_rng(self.config.seed)
        if episodes is None:
            if corpus is None:
                raise ConfigError("MelodyEnv needs a corpus (or episodes=...)")
            episodes = CorpusEpisodes(spec, corpus, self.config)
        self.episodes: EpisodeSource = episodes
        self.n_envs = self.config.n_envs
        self.state_dim = spec.state_dim
        self.n_actions = spec.n_actions
        self.lead_steps = episodes.lead_steps
        self.max_turn_steps = episodes.max_turn_steps
        n, w, t_max = self.n_envs, spec.window_steps, self.max_turn_steps
        self._w = w
        # Per-row episode arrays; the window/history arrays have W steps before the turn.
        self.answering = np.zeros(n, bool)
        self.turn_steps = np.full(n, t_max, np.int64)
        self.tonic = np.zeros(n, np.int64)
        self.minor = np.zeros(n, bool)
        self.transpose = np.zeros(n, np.int64)
        self.t = np.zeros(n, np.int64)
        self.phase = np.zeros(n, np.int64)
        self.player_sounding = np.full((n, w + t_max), -1, np.int64)
        self.player_onset = np.zeros((n, w + t_max), bool)
        self.agent_sounding = np.full((n, w + t_max), -1, np.int64)
        self.agent_onset = np.zeros((n, w + t_max), bool)
        self.agent_events = np.full((n, t_max), HOLD_EVENT, np.int64)
        self.call_events = np.full((n, self.lead_steps), HOLD_EVENT, np.int64)
        # Steps of the agent's last onsets in the turn, latest first (-1: none): kept as the
        # turn goes so that the reward rules need not search the turn each step.
        self.recent_onsets = np.full((n, HISTORY_ONSETS), -1, np.int64)
        self.call_summary = np.zeros((n, spec.call_features), np.float32)
        self.continuation_actions = np.zeros((n, t_max), np.int64)
        """(N, T) the actions that play the tune's own continuation (teacher forcing)."""
        self.done = np.ones(n, bool)
        self._states = np.zeros((n, self.state_dim), np.float32)

    # --- episodes ---------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        """Start a new episode in every row; (N, state_dim) float32 first states."""
        self._start(np.arange(self.n_envs), self.episodes.sample(self.n_envs, self.rng))
        self._states = self._encode()
        return self._states.copy()

    def _start(self, rows: np.ndarray, ep: Episodes, transpose: np.ndarray | None = None) -> None:
        """Load episodes (absolute segments) into rows: transpose, estimate the key, go relative."""
        n = len(rows)
        if transpose is None:
            k = self.config.transpose_semitones
            transpose = self.rng.integers(-k, k + 1, size=n) if k > 0 else np.zeros(n, np.int64)
            octave = self.rng.random(n) < self.config.octave_shift_fraction
            transpose = transpose + np.where(octave, 12 * self.rng.choice([-1, 1], size=n), 0)
        seg = np.where(ep.segments >= 0, ep.segments + transpose[:, None], ep.segments)
        seg = np.where((seg >= MIDI_PITCHES) | ((seg < 0) & (ep.segments >= 0)), REST_EVENT, seg)
        lead, w = self.lead_steps, self._w
        sounding = sounding_pitches(seg)  # (n, lead + T) absolute, -1 silence
        # The key the live agent judges at the end of the lead-in (the call), on the same window
        # of the player's part that the call summary reads, absolute pitches.
        cw = self.spec.call_window_steps
        call = monophonic_window(sounding[:, lead - cw : lead], (seg >= 0)[:, lead - cw : lead])
        tonic, minor, _ = estimate_call_key(
            call.onset, call.chroma, call.top, self.spec.key_decay_per_step
        )
        shift = key_shift(tonic)[:, None]
        rel_sounding = np.where(sounding >= 0, sounding - shift, -1)
        rel_events = np.where(seg >= 0, seg - shift, seg)
        t_max = self.max_turn_steps
        self.answering[rows] = ep.answering
        self.turn_steps[rows] = ep.turn_steps
        self.tonic[rows] = tonic
        self.minor[rows] = minor
        self.transpose[rows] = transpose
        self.t[rows] = 0
        self.phase[rows] = 0 if ep.phase is None else ep.phase
        self.player_sounding[rows] = rel_sounding[:, lead - w : lead + t_max]
        self.player_onset[rows] = (seg >= 0)[:, lead - w : lead + t_max]
        self.agent_sounding[rows] = -1
        self.agent_onset[rows] = False
        self.agent_events[rows] = HOLD_EVENT
        self.recent_onsets[rows] = -1
        self.call_events[rows] = np.where(ep.answering[:, None], rel_events[:, :lead], HOLD_EVENT)
        # The call summary, fixed for the turn (live: made when the key frame may move).
        heard = monophonic_window(
            rel_sounding[:, lead - cw : lead], (seg >= 0)[:, lead - cw : lead]
        )
        self.call_summary[rows] = summarize_call(self.spec, heard)
        if ep.continuation is not None:
            cont = ep.continuation + np.where(ep.continuation >= 0, transpose[:, None], 0)
            cont = np.where(
                (cont >= MIDI_PITCHES) | ((cont < 0) & (ep.continuation >= 0)), REST_EVENT, cont
            )
            rel_cont = np.where(cont >= 0, cont - shift, cont)
            self.continuation_actions[rows] = event_actions(self.spec, rel_cont)
        self.done[rows] = False

    # --- stepping ---------------------------------------------------------------------------
    def _windows(self) -> tuple[PartWindow, PartWindow]:
        idx = self.t[:, None] + np.arange(self._w)  # (N, W): the W steps before step t
        agent = monophonic_window(
            np.take_along_axis(self.agent_sounding, idx, axis=1),
            np.take_along_axis(self.agent_onset, idx, axis=1),
        )
        player = monophonic_window(
            np.take_along_axis(self.player_sounding, idx, axis=1),
            np.take_along_axis(self.player_onset, idx, axis=1),
        )
        return agent, player

    def _context(self) -> StepContext:
        t = np.minimum(self.t, self.turn_steps)
        return StepContext(
            bar_position=(self.phase + t) % self.spec.steps_per_bar,
            minor=self.minor.copy(),
            answering=self.answering.copy(),
            progress=t / self.turn_steps,
            call=self.call_summary,
        )

    def _encode(self) -> np.ndarray:
        agent, player = self._windows()
        return encode_states(self.spec, agent, player, self._context())

    def states(self) -> np.ndarray:
        """(N, state_dim) float32: the current states (what the last reset/step returned)."""
        return self._states.copy()

    def reward_inputs(self) -> RewardInputs:
        """What the reward rules see for the step each row is about to take (after writing it)."""
        w = self._w
        return RewardInputs(
            agent_events=self.agent_events,
            agent_sounding=self.agent_sounding[:, w:],
            player_sounding=self.player_sounding[:, w:],
            player_onset=self.player_onset[:, w:],
            call_events=self.call_events,
            t=self.t,
            turn_steps=self.turn_steps,
            minor=self.minor,
            answering=self.answering,
            steps_per_bar=self.spec.steps_per_bar,
            previous_onsets=self.recent_onsets,
            call_summary=self.call_summary,
        )

    def step(self, actions: np.ndarray) -> StepResult:
        """Play one action per row; (next states, rewards, dones, per-term rewards)."""
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape != (self.n_envs,):
            raise ValueError(f"expected actions of shape ({self.n_envs},), got {actions.shape}")
        if np.any(self.done):
            raise RuntimeError("step() on a finished episode: call reset() first (auto_reset off)")
        style = None
        if self.style_log_probs is not None:
            log_probs = self.style_log_probs(self._states)  # (N, n_actions)
            style = log_probs[np.arange(self.n_envs), actions]
        events = action_events(self.spec, actions)
        rows = np.arange(self.n_envs)
        col = self.t + self._w
        before = self.agent_sounding[rows, col - 1]
        now = np.where(events == HOLD_EVENT, before, np.where(events == REST_EVENT, -1, events))
        self.agent_events[rows, self.t] = events
        self.agent_sounding[rows, col] = now
        self.agent_onset[rows, col] = events >= 0
        rewards, terms = compute_reward(self.reward_inputs(), self.reward_weights, style)
        onset = events >= 0
        self.recent_onsets[onset] = np.concatenate(
            [self.t[onset, None], self.recent_onsets[onset, :-1]], axis=1
        )
        self.t += 1
        dones = self.t >= self.turn_steps
        self.done = dones.copy()
        if self.config.auto_reset and dones.any():
            finished = np.flatnonzero(dones)
            self._start(finished, self.episodes.sample(len(finished), self.rng))
        self._states = self._encode()
        return StepResult(self._states.copy(), rewards.astype(np.float32), dones, terms)

    def turn_events(self) -> np.ndarray:
        """(N, max_turn_steps) the agent's key-relative events so far (HOLD after its turn)."""
        return self.agent_events.copy()

    def absolute_turn_events(self) -> np.ndarray:
        """(N, max_turn_steps) the agent's events in absolute MIDI pitches (the key shift undone,
        the transposition augmentation kept)."""
        shift = key_shift(self.tonic)[:, None]
        ev = self.agent_events
        return np.where(ev >= 0, np.clip(ev + shift, 0, MIDI_PITCHES - 1), ev)


# --- answering given calls (evaluation) ----------------------------------------------------------
class CallEpisodes:
    """Answer episodes for given calls, in order (used by ``answer_calls``)."""

    def __init__(
        self, spec: Spec, calls: Sequence[np.ndarray], answer_steps: int, gap_steps: int = 0
    ) -> None:
        spb = spec.steps_per_bar
        if not calls:
            raise ValueError("expected at least one call, got none")
        for call in calls:
            validate_events(np.asarray(call))
        self.max_turn_steps = answer_steps
        self.answer_steps = answer_steps
        self.phase: np.ndarray | None = None
        if gap_steps > 0:
            self._with_gap(spec, calls, gap_steps)
            return
        bars = [max(1, -(-len(c) // spb)) for c in calls]
        # The lead-in holds the key's window too (call_window_steps may exceed the call).
        context = max(spec.window_steps, spec.call_window_steps)
        self.lead_steps = max(max(bars) * spb, -(-context // spb) * spb)
        segments = np.full((len(calls), self.lead_steps + answer_steps), HOLD_EVENT, np.int64)
        for i, (call, n_bars) in enumerate(zip(calls, bars, strict=True)):
            start = self.lead_steps - n_bars * spb  # the call starts on a bar line
            segments[i, start : start + len(call)] = np.asarray(call, dtype=np.int64)
            segments[i, start + len(call)] = REST_EVENT  # the player lets go when the call ends
        segments[:, self.lead_steps] = REST_EVENT
        self.segments = segments

    def _with_gap(self, spec: Spec, calls: Sequence[np.ndarray], gap_steps: int) -> None:
        """As live: each call (starting on a bar line) ends at its last sounding step, then
        ``gap_steps`` silent steps, then the answer, at whatever bar position that is."""
        spb = spec.steps_per_bar
        last = []
        for call in calls:
            sounding = np.flatnonzero(sounding_pitches(np.asarray(call, dtype=np.int64)) >= 0)
            last.append(int(sounding[-1]) if len(sounding) else len(call) - 1)
        need = max(max(last) + 1 + gap_steps, spec.window_steps, spec.call_window_steps)
        self.lead_steps = -(-need // spb) * spb
        width = self.lead_steps + self.answer_steps
        segments = np.full((len(calls), width), HOLD_EVENT, np.int64)
        phase = np.zeros(len(calls), np.int64)
        for i, (call, j) in enumerate(zip(calls, last, strict=True)):
            start = self.lead_steps - gap_steps - 1 - j  # column of the call's first step
            segments[i, start : start + j + 1] = np.asarray(call, dtype=np.int64)[: j + 1]
            segments[i, start + j + 1] = REST_EVENT  # the player lets go
            phase[i] = (self.lead_steps - start) % spb
        self.segments = segments
        self.phase = phase

    def sample(self, n: int, rng: np.random.Generator) -> Episodes:
        if n != len(self.segments):
            raise ValueError(f"expected {len(self.segments)} rows, got {n}")
        return Episodes(self.segments, np.ones(n, bool), np.full(n, self.answer_steps), self.phase)


class Answers(NamedTuple):
    events: np.ndarray  # (B, answer_steps) int: the answers, absolute MIDI grid events
    relative_events: np.ndarray  # (B, answer_steps) int: the same, key-relative
    tonic: np.ndarray  # (B,) int: pitch class of each call's estimated key
    minor: np.ndarray  # (B,) bool
    rewards: np.ndarray  # (B, answer_steps) float32: the reward of each step
    terms: dict[str, np.ndarray]  # (B, answer_steps) per reward term


def answer_calls(
    spec: Spec,
    calls: Sequence[np.ndarray],
    policy_q: Callable[[np.ndarray], np.ndarray],
    temperature: float,
    rng: np.random.Generator,
    *,
    answer_bars: int = 2,
    reward_weights: RewardWeights | None = None,
    style_log_probs: StyleLogProbs | None = None,
    allowed: np.ndarray | None = None,
    answer_gap_steps: int = 0,
    opening_note: bool = False,
) -> Answers:
    """Answer each call (absolute grid events, starting on a bar line) with a policy.

    The call is padded with silence to whole bars and the answer starts on the next bar line
    (by default);
    the key is estimated from the call as the live agent does. ``policy_q`` maps states
    (B, state_dim) to Q-values (B, n_actions); actions are chosen with
    ``exports.selection.choose_actions`` (``temperature`` 0 = greedy, ``allowed`` masks; no
    two-note see-saw of ``SEE_SAW_NOTES``, ``exports.selection.SeeSaw``, as live). No
    transposition. Returns the answers in absolute pitches plus per-step rewards. With
    ``answer_gap_steps`` > 0 the answer starts that many silent steps after the call's last
    sounding step instead (as live, and as training with ``EnvConfig.answer_gap_steps``).
    With ``opening_note`` the first step's action is among the notes (``allowed`` ones), as the
    live answer mode's (``live_agent.modes.AnswerMode.opens_turn``).
    """
    answer_steps = answer_bars * spec.steps_per_bar
    episodes = CallEpisodes(spec, calls, answer_steps, answer_gap_steps)
    config = EnvConfig(
        n_envs=len(calls), answer_fraction=1.0, transpose_semitones=0, auto_reset=False
    )
    env = MelodyEnv(spec, None, config, reward_weights, style_log_probs, episodes=episodes)
    env._start(
        np.arange(env.n_envs), episodes.sample(env.n_envs, rng), np.zeros(env.n_envs, np.int64)
    )
    env._states = env._encode()
    states = env.states()
    rewards, terms_per_step = [], []
    see_saw = SeeSaw(len(calls))  # as the live Decider: no two-note see-saw of 6 notes
    for t in range(answer_steps):
        mask = np.ones(spec.n_actions, bool) if allowed is None else allowed
        if opening_note and t == 0:
            mask = opening_mask(mask)
        actions = choose_actions(policy_q(states), temperature, rng, see_saw.mask(mask))
        see_saw.played(actions)
        result = env.step(actions)
        states = result.states
        rewards.append(result.rewards)
        terms_per_step.append(result.terms)
    terms = {k: np.stack([s[k] for s in terms_per_step], axis=1) for k in terms_per_step[0]}
    return Answers(
        events=env.absolute_turn_events()[:, :answer_steps],
        relative_events=env.turn_events()[:, :answer_steps],
        tonic=env.tonic.copy(),
        minor=env.minor.copy(),
        rewards=np.stack(rewards, axis=1),
        terms=terms,
    )
