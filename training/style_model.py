"""The style model: a supervised next-action classifier on the corpus (RL Tuner's Note-RNN).

RL Tuner (Jaques et al. 2017) trains a note model on the corpus, uses its log-probability of the
agent's action as the style reward, and starts the Q-network from its weights. We do the same:
the style model is the Q-network's own network (``training.networks``, the config's
``[network] kind``) over the one encoded state (``exports.encoding.encode_states``), so the
weights carry over one to one.

Training data (teacher forcing): each corpus melody, moved into its key-relative frame (the
tune's Krumhansl–Schmuckler key) and folded into the agent's range, is the *agent's* part; the
target is the action that produced the next step. The player's part is silent, or (half of the
time in training) a window of another tune, so the model learns to predict the line whatever the
player does. ``answering`` and ``progress`` are random in training for the same reason.

Real pairs (``StyleModelConfig.pair_fraction`` > 0): most of each batch is teacher forcing
on answer episodes as ``training.env.environment.MelodyEnv`` cuts them from the corpus (the
``[env]`` call lengths, half-speed and octave augmentation): the phrase the tune played is the
player's call, and the phrase that follows in the same tune is the agent's target, so the
model learns to follow the call. ``pair_log_liks`` scores whole continuations given their own
call or another tune's call (moved into the same key frame): the gap is how much it listens.

Validation: the corpus validation split (whole tunes never seen in training), player silent;
``log_lik`` is the mean log-probability of the true next action in nats per step (higher is
better; uniform over the actions is ``-log(n_actions)``), ``accuracy`` the top-1 share.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from exports.encoding import (
    StepContext,
    action_events,
    encode_states,
    event_actions,
    monophonic_window,
    summarize_call,
)
from exports.errors import CorpusError
from exports.grid import sounding_pitches
from exports.spec import HOLD_EVENT, Spec
from exports.tonality import key_shift, to_relative
from training.config import StyleModelConfig
from training.data.corpus_data import Corpus
from training.env.environment import EnvConfig, Episodes, MelodyEnv
from training.networks import build_q_network, network_args_for

PAIR_VAL_EPISODES = 256
"""Held-out answer episodes scored with their own and with another call."""


@dataclass
class TeacherForcedCorpus:
    """The corpus as one padded track, ready to cut state windows out of.

    ``sounding``/``onset`` hold every tune key-relative and folded into the agent range, each
    preceded by ``window_steps`` silent steps; sample i predicts ``actions[i]`` from the window
    ``[starts[i], starts[i] + W)``.
    """

    spec: Spec
    sounding: np.ndarray  # (T_padded,) int64, -1 silent
    onset: np.ndarray  # (T_padded,) bool
    starts: np.ndarray  # (S,) int64 window start of each sample
    actions: np.ndarray  # (S,) int64 target action
    bar_position: np.ndarray  # (S,) int64 position in the bar of the predicted step
    minor: np.ndarray  # (S,) bool

    @property
    def n_samples(self) -> int:
        return len(self.actions)


def teacher_forced(spec: Spec, corpus: Corpus) -> TeacherForcedCorpus:
    """Cut ``corpus`` into (window, next action) samples; see the module docstring."""
    w = spec.window_steps
    sounding_parts, onset_parts = [], []
    starts, actions, bars, minors = [], [], [], []
    offset = 0
    for i in range(corpus.n_tunes):
        events = np.asarray(corpus.tune(i), dtype=np.int64)
        tune_actions = event_actions(spec, to_relative(events, int(corpus.tonic[i])))  # (L,)
        # The agent's own part as it would have played it: folded pitches, same HOLD/REST.
        played = action_events(spec, tune_actions)
        padded = np.concatenate([np.full(w, HOLD_EVENT, dtype=np.int64), played])
        sounding_parts.append(sounding_pitches(padded))
        onset_parts.append(padded >= 0)
        n = len(events)
        starts.append(offset + np.arange(n))
        actions.append(tune_actions)
        bars.append(np.arange(n) % spec.steps_per_bar)
        minors.append(np.full(n, bool(corpus.minor[i])))
        offset += len(padded)
    if not actions:
        raise CorpusError(f"corpus {corpus.name!r} has no tunes to train a style model on")
    return TeacherForcedCorpus(
        spec=spec,
        sounding=np.concatenate(sounding_parts),
        onset=np.concatenate(onset_parts),
        starts=np.concatenate(starts),
        actions=np.concatenate(actions),
        bar_position=np.concatenate(bars),
        minor=np.concatenate(minors),
    )


def encode_samples(
    data: TeacherForcedCorpus,
    rows: np.ndarray,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """States (len(rows), state_dim) for samples ``rows``; with ``rng``, training-time context
    (a random other window as the player's part half of the time, random answering/progress),
    without it a silent player in a duet at progress 0."""
    spec = data.spec
    w = spec.window_steps
    offsets = np.arange(w)
    idx = data.starts[rows][:, None] + offsets  # (B, W)
    agent = monophonic_window(data.sounding[idx], data.onset[idx])
    b = len(rows)
    if rng is None:
        player_sounding = np.full((b, w), -1, dtype=np.int64)
        player_onset = np.zeros((b, w), dtype=bool)
        answering = np.zeros(b, dtype=bool)
        progress = np.zeros(b, dtype=np.float32)
    else:
        other = data.starts[rng.integers(0, data.n_samples, size=b)][:, None] + offsets
        silent = rng.random(b) < 0.5
        player_sounding = np.where(silent[:, None], -1, data.sounding[other])
        player_onset = np.where(silent[:, None], False, data.onset[other])
        answering = rng.random(b) < 0.5
        progress = rng.random(b).astype(np.float32)
    player = monophonic_window(player_sounding, player_onset)
    # The call summary of what the player's window holds (silence before it): zeros when the
    # player is silent, as in the env.
    pad = max(spec.call_window_steps - w, 0)
    heard = monophonic_window(
        np.concatenate([np.full((b, pad), -1, np.int64), player_sounding], axis=1),
        np.concatenate([np.zeros((b, pad), bool), player_onset], axis=1),
    )
    context = StepContext(
        bar_position=data.bar_position[rows],
        minor=data.minor[rows],
        answering=answering,
        progress=progress,
        call=summarize_call(spec, heard),
    )
    return encode_states(spec, agent, player, context)


class StyleModel:
    """A trained next-action model; ``log_probs(states)`` is the style reward's source."""

    def __init__(
        self,
        network: nn.Module,
        network_args: dict[str, Any],
        metrics: dict[str, float] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.network_args = dict(network_args)
        self.metrics = dict(metrics or {})

    @torch.no_grad()
    def log_probs(self, states: np.ndarray) -> np.ndarray:
        """(N, state_dim) float32 states -> (N, n_actions) float32 log p_style(a | s), nats."""
        logits = self.network(torch.as_tensor(states, dtype=torch.float32, device=self.device))
        return F.log_softmax(logits, dim=1).cpu().numpy()

    __call__ = log_probs

    def to_dict(self) -> dict[str, Any]:
        """For the checkpoint: network args, CPU weights, metrics."""
        return {
            "network_args": self.network_args,
            "state_dict": {
                k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()
            },
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], device: torch.device | str = "cpu") -> StyleModel:
        network = build_q_network(values["network_args"])
        network.load_state_dict(values["state_dict"])
        return cls(network, values["network_args"], values.get("metrics"), device)


@torch.no_grad()
def evaluate_style_model(
    network: nn.Module, data: TeacherForcedCorpus, device: torch.device, batch_size: int = 2048
) -> dict[str, float]:
    """Mean log-likelihood (nats/step) and top-1 accuracy on ``data`` (player silent)."""
    network.eval()
    total_log_lik, correct = 0.0, 0
    for first in range(0, data.n_samples, batch_size):
        rows = np.arange(first, min(first + batch_size, data.n_samples))
        states = torch.as_tensor(encode_samples(data, rows), device=device)
        targets = torch.as_tensor(data.actions[rows], device=device)
        logits = network(states)
        total_log_lik -= float(F.cross_entropy(logits, targets, reduction="sum"))
        correct += int((logits.argmax(dim=1) == targets).sum())
    n = max(data.n_samples, 1)
    return {"log_lik": total_log_lik / n, "accuracy": correct / n}


class PairStream:
    """Shuffled teacher-forced samples from answer episodes: (states, the continuation's actions);
    from a two-voice corpus duet episodes too (the target: the second voice against the line).

    ``pool_steps`` vector steps of ``n_envs`` episodes are collected, shuffled and served in
    batches, then refilled, so that one batch mixes many episodes and turn steps.
    """

    def __init__(
        self,
        spec: Spec,
        corpus: Corpus,
        env_config: EnvConfig,
        seed: int,
        n_envs: int = 512,
        pool_steps: int = 24,
    ) -> None:
        # Duet rows have a target only in a two-voice corpus (the tune's second voice).
        answers = 1.0 if corpus.second is None else env_config.answer_fraction
        config = dataclasses.replace(
            env_config, n_envs=n_envs, answer_fraction=answers, auto_reset=True, seed=seed
        )
        self.env = MelodyEnv(spec, corpus, config)
        self.rng = np.random.default_rng(seed + 1)
        self.pool_steps = pool_steps
        self.states = self.env.reset()
        self._pool_states = np.zeros((0, spec.state_dim), np.float32)
        self._pool_actions = np.zeros(0, np.int64)

    def _refill(self) -> None:
        states, actions = [], []
        rows = np.arange(self.env.n_envs)
        for _ in range(self.pool_steps):
            a = self.env.continuation_actions[rows, self.env.t]
            states.append(self.states)
            actions.append(a)
            self.states = self.env.step(a).states
        order = self.rng.permutation(len(rows) * self.pool_steps)
        self._pool_states = np.concatenate(states)[order]
        self._pool_actions = np.concatenate(actions)[order]

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, state_dim) float32 states and (n,) int64 target actions."""
        if len(self._pool_actions) < n:
            self._refill()
        states, actions = self._pool_states[:n], self._pool_actions[:n]
        self._pool_states, self._pool_actions = self._pool_states[n:], self._pool_actions[n:]
        return states, actions


@torch.no_grad()
def pair_log_liks(
    log_probs: Callable[[np.ndarray], np.ndarray],
    spec: Spec,
    corpus: Corpus,
    env_config: EnvConfig,
    n: int,
    seed: int,
    other_call: bool = False,
) -> np.ndarray:
    """(n,) mean log p (nats/step) of each sampled continuation given its own call, or, with
    ``other_call``, given the call of another episode (the continuation moved into that call's
    key frame, so the key alone gives nothing away). Same episodes for both for one seed."""
    config = dataclasses.replace(
        env_config,
        n_envs=n,
        answer_fraction=1.0,
        auto_reset=False,
        transpose_semitones=0,
        octave_shift_fraction=0.0,
        seed=seed,
    )
    env = MelodyEnv(spec, corpus, config)
    rng = np.random.default_rng(seed)
    episodes = env.episodes.sample(n, rng)
    zero = np.zeros(n, np.int64)
    env._start(np.arange(n), episodes, zero)
    if other_call:
        assert episodes.continuation is not None
        donor = np.roll(np.arange(n), 1)
        moved = key_shift(env.tonic) - key_shift(env.tonic[donor])  # into this call's frame
        cont = episodes.continuation[donor]
        cont = np.where(cont >= 0, np.clip(cont + moved[:, None], 0, 127), cont)
        episodes = Episodes(
            episodes.segments, episodes.answering, episodes.turn_steps[donor], episodes.phase, cont
        )
        env._start(np.arange(n), episodes, zero)
    env._states = env._encode()
    states = env.states()
    total = np.zeros(n)
    steps = env.turn_steps.copy()
    rows = np.arange(n)
    for t in range(int(steps.max())):
        a = env.continuation_actions[rows, np.minimum(env.t, env.max_turn_steps - 1)]
        lp = log_probs(states)[rows, a]
        total += np.where(t < steps, lp, 0.0)
        if t + 1 < int(steps.max()):
            env.done[:] = False  # finished rows keep stepping; their terms are masked out
            env.t = np.minimum(env.t, env.max_turn_steps - 1)
            states = env.step(a).states
    return total / steps


def train_style_model(
    spec: Spec,
    corpus: Corpus,
    config: StyleModelConfig,
    hidden: list[int],
    seed: int = 0,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | None = None,
    env_config: EnvConfig | None = None,
    kind: str = "mlp",
    start: Callable[[nn.Module], None] | None = None,
) -> StyleModel:
    """Fit the next-action model (a ``kind`` network, ``training.networks``) on the training
    split; metrics on the validation split.

    Metrics (nats/step): ``style_val_log_lik``, ``style_val_accuracy``, ``style_uniform_log_lik``
    (the baseline), ``style_train_log_lik``; with no validation tunes the training split stands
    in (and ``style_val_is_train`` is 1). ``start``, when given, loads the fresh network's first
    weights (fine-tuning from a shipped style, ``training.finetune``).
    """
    device = torch.device(device)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    train = corpus.subset(validation=False)
    held_out = corpus.subset(validation=True)
    if train.n_tunes == 0:
        train = corpus
    val_is_train = held_out.n_tunes == 0
    train_data = teacher_forced(spec, train)
    val_data = teacher_forced(spec, train if val_is_train else held_out)
    args = network_args_for(spec, hidden, dueling=False, kind=kind)
    network = build_q_network(args).to(device)
    if start is not None:
        start(network)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    n = min(train_data.n_samples, config.max_states)
    pool = rng.permutation(train_data.n_samples)[:n]
    deadline = time.monotonic() + config.max_minutes * 60 if config.max_minutes > 0 else None
    pairs = None
    n_pairs = int(round(config.pair_fraction * config.batch_size))
    if n_pairs > 0:
        pairs = PairStream(spec, train, env_config or EnvConfig(), seed)
    steps = 0
    for epoch in range(config.epochs):
        network.train()
        order = rng.permutation(pool)
        epoch_loss, epoch_batches = 0.0, 0
        for first in range(0, n, config.batch_size):
            if pairs is not None:
                rows = order[first : first + config.batch_size - n_pairs]
                pair_states, pair_actions = pairs.batch(n_pairs)
                batch_states = np.concatenate([pair_states, encode_samples(train_data, rows, rng)])
                batch_actions = np.concatenate([pair_actions, train_data.actions[rows]])
            else:
                rows = order[first : first + config.batch_size]
                batch_states = encode_samples(train_data, rows, rng)
                batch_actions = train_data.actions[rows]
            states = torch.as_tensor(batch_states, device=device)
            targets = torch.as_tensor(batch_actions, device=device)
            loss = F.cross_entropy(network(states), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            epoch_loss += float(loss.detach())
            epoch_batches += 1
            steps += 1
            if deadline is not None and time.monotonic() >= deadline:
                break
        if log is not None:
            log(
                f"style model epoch {epoch + 1}: train loss {epoch_loss / max(epoch_batches, 1):.3f} nats/step"
            )
        if deadline is not None and time.monotonic() >= deadline:
            if log is not None:
                log(f"style model: time budget of {config.max_minutes:.2f} min reached")
            break
    val = evaluate_style_model(network, val_data, device)
    metrics = {
        "style_val_log_lik": val["log_lik"],
        "style_val_accuracy": val["accuracy"],
        "style_uniform_log_lik": -math.log(spec.n_actions),
        "style_train_samples": float(n),
        "style_updates": float(steps),
        "style_val_is_train": float(val_is_train),
    }
    model = StyleModel(network, args, metrics, device)
    if pairs is not None:
        held = train if val_is_train else held_out
        cfg = env_config or EnvConfig()
        true = pair_log_liks(model.log_probs, spec, held, cfg, PAIR_VAL_EPISODES, seed + 7)
        other = pair_log_liks(model.log_probs, spec, held, cfg, PAIR_VAL_EPISODES, seed + 7, True)
        metrics["style_pair_val_log_lik"] = float(true.mean())
        metrics["style_pair_val_log_lik_other_call"] = float(other.mean())
        metrics["style_pair_val_ranks_true"] = float((true > other).mean())
        if log is not None:
            log(
                f"style model on held-out pairs: {true.mean():.3f} nats/step with the true call, "
                f"{other.mean():.3f} with another tune's call; true ranks higher in "
                f"{(true > other).mean():.0%}"
            )
    model.metrics = metrics
    return model
