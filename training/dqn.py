"""The DQN learner (Mnih et al. 2015), read top to bottom as in CleanRL's ``dqn.py``.

Parts: a preallocated numpy replay buffer with named-tuple batches, n-step returns folded in as
transitions arrive, batched epsilon-greedy action selection (greedy part through the one
``exports.selection.choose_actions``), and ``dqn_update``: one gradient step on the TD error,
with the target network synced every K updates (or by Polyak averaging).

Deviations from the paper (as CleanRL lists its own):

* many parallel episodes (a vectorized env): one *vector* step adds ``n_envs`` transitions, and
  the learner trains once every ``train_frequency`` vector steps, so the update, the costly part,
  runs once per hundreds of transitions;
* Double DQN target by default (van Hasselt et al. 2016); Huber loss; gradient-norm clipping;
* episode ends by time limit are treated as terminal (the state shows the progress through the
  turn, so the value of the last step is well defined);
* states are stored as float16 (the encoder's features are 0/1 and a 0..1 progress);
* the replay buffer is not checkpointed (it is hundreds of MB): after a resume it refills for
  ``learning_starts`` transitions before updates start again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from exports.selection import choose_actions
from training.config import LearnerConfig


class VectorEnv(Protocol):
    """What the learner needs from an environment: batched reset and step."""

    def reset(self) -> np.ndarray:  # (N, D) float32
        ...

    def step(self, actions: np.ndarray) -> Any:  # .states (N, D), .rewards (N,), .dones (N,)
        ...


class ReplayBufferSamples(NamedTuple):
    states: torch.Tensor  # (B, D) float32
    actions: torch.Tensor  # (B,) int64
    returns: torch.Tensor  # (B,) float32: n-step discounted reward sum
    next_states: torch.Tensor  # (B, D) float32: state n steps later
    discounts: torch.Tensor  # (B,) float32: gamma^k, 0 if the episode ended within the n steps


class ReplayBuffer:
    """A preallocated ring of transitions; ``add`` takes a batch from the vectorized env."""

    def __init__(self, capacity: int, state_dim: int, device: torch.device | str = "cpu") -> None:
        self.capacity = capacity
        self.device = torch.device(device)
        self.states = np.zeros((capacity, state_dim), dtype=np.float16)
        self.next_states = np.zeros((capacity, state_dim), dtype=np.float16)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.returns = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0

    def add(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        returns: np.ndarray,
        next_states: np.ndarray,
        discounts: np.ndarray,
    ) -> None:
        n = len(actions)
        idx = (self.pos + np.arange(n)) % self.capacity
        self.states[idx] = states
        self.next_states[idx] = next_states
        self.actions[idx] = actions
        self.returns[idx] = returns
        self.discounts[idx] = discounts
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplayBufferSamples:
        idx = rng.integers(0, self.size, size=batch_size)

        def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(a[idx]).to(self.device, dtype)

        return ReplayBufferSamples(
            states=t(self.states, torch.float32),
            actions=t(self.actions, torch.int64),
            returns=t(self.returns, torch.float32),
            next_states=t(self.next_states, torch.float32),
            discounts=t(self.discounts, torch.float32),
        )


class NStepFolder:
    """Turns per-step vector transitions into n-step ones (per env, truncated at episode end).

    ``push`` takes one vector step and returns the transitions that are complete: those that
    started n steps ago (with n = 1 it returns the step itself).
    """

    def __init__(self, n_step: int, gamma: float) -> None:
        self.n_step = n_step
        self.gamma = gamma
        self.pending: list[tuple[np.ndarray, ...]] = []

    def push(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_states: np.ndarray,
        dones: np.ndarray,
    ) -> tuple[np.ndarray, ...] | None:
        """Returns (states, actions, returns, next_states, discounts) or None while filling."""
        self.pending.append((states, actions, rewards.astype(np.float32), next_states, dones))
        if len(self.pending) < self.n_step:
            return None
        first_states, first_actions = self.pending[0][0], self.pending[0][1]
        n_envs = len(first_actions)
        returns = np.zeros(n_envs, dtype=np.float32)
        discount = np.ones(n_envs, dtype=np.float32)
        alive = np.ones(n_envs, dtype=bool)  # the episode has not ended within the window
        for _, _, r, _, d in self.pending:
            returns += np.where(alive, discount * r, 0.0).astype(np.float32)
            discount = np.where(alive, discount * self.gamma, discount).astype(np.float32)
            alive &= ~d.astype(bool)
        # CRUCIAL: no bootstrap past an episode end; next_states is only used where alive.
        discounts = np.where(alive, discount, 0.0).astype(np.float32)
        last_next_states = self.pending[-1][3]
        self.pending.pop(0)
        return first_states, first_actions, returns, last_next_states, discounts

    def reset(self) -> None:
        self.pending.clear()


def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    """``start`` at t = 0, linearly to ``end`` at t = duration, then ``end``."""
    slope = (end - start) / max(duration, 1)
    return max(slope * t + start, end) if end <= start else min(slope * t + start, end)


@torch.no_grad()
def select_actions(
    q_network: nn.Module,
    states: np.ndarray,
    epsilon: float,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Batched epsilon-greedy: (N, D) states -> (N,) int64 actions."""
    q_values = q_network(torch.as_tensor(states, device=device)).cpu().numpy()  # (N, A)
    actions = choose_actions(q_values, 0.0, rng)  # greedy: the one action selection
    explore = rng.random(len(actions)) < epsilon
    actions[explore] = rng.integers(0, q_values.shape[1], size=int(explore.sum()))
    return actions


class UpdateStats(NamedTuple):
    loss: float
    q_mean: float


def dqn_update(
    q_network: nn.Module,
    target_network: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: ReplayBufferSamples,
    double_dqn: bool,
    loss_kind: str = "huber",
    max_grad_norm: float = 10.0,
) -> UpdateStats:
    """One gradient step on the TD error of a replay batch."""
    with torch.no_grad():
        target_q = target_network(data.next_states)  # (B, A)
        if double_dqn:
            # Double DQN: the online network picks a', the target network values it.
            next_actions = q_network(data.next_states).argmax(dim=1, keepdim=True)  # (B, 1)
            target_max = target_q.gather(1, next_actions).squeeze(1)  # (B,)
        else:
            target_max = target_q.max(dim=1).values  # (B,)
        # n-step: returns = sum_k gamma^k r_k; discounts = gamma^n, 0 when the episode ended.
        td_target = data.returns + data.discounts * target_max  # (B,)
    old_val = q_network(data.states).gather(1, data.actions.unsqueeze(1)).squeeze(1)  # (B,)
    if loss_kind == "huber":
        loss = F.smooth_l1_loss(old_val, td_target)
    else:
        loss = F.mse_loss(old_val, td_target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        nn.utils.clip_grad_norm_(q_network.parameters(), max_grad_norm)
    optimizer.step()
    return UpdateStats(loss=float(loss.detach()), q_mean=float(old_val.detach().mean()))


@torch.no_grad()
def sync_target(q_network: nn.Module, target_network: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target (tau = 1: a hard copy)."""
    for target_param, param in zip(
        target_network.parameters(), q_network.parameters(), strict=True
    ):
        target_param.data.copy_(tau * param.data + (1.0 - tau) * target_param.data)


@dataclass
class TrainProgress:
    """What the learner reports to its callback every vector step."""

    global_step: int
    """Transitions collected so far (summed over the parallel envs)."""
    updates: int
    epsilon: float
    mean_reward: float
    """Mean reward of the last vector step."""
    loss: float | None
    q_mean: float | None
    episode_returns: list[float] = field(default_factory=list)
    """Returns of the episodes that ended during this vector step."""
    terms: dict[str, float] = field(default_factory=dict)
    """Mean of each reward term over the last vector step (when the env reports them)."""


class DqnLearner:
    """Holds the networks, the optimizer, the replay buffer and the counters of one run.

    ``learn`` runs the DQN loop on a vectorized env until a step or time budget is met; it can
    be called again (after a resume) and continues the counters and the epsilon schedule.
    """

    def __init__(
        self,
        q_network: nn.Module,
        target_network: nn.Module,
        config: LearnerConfig,
        state_dim: int,
        total_env_steps: int,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.q_network = q_network.to(self.device)
        self.target_network = target_network.to(self.device)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=config.learning_rate)
        self.buffer = ReplayBuffer(config.buffer_size, state_dim, self.device)
        self.folder = NStepFolder(config.n_step, config.gamma)
        self.total_env_steps = total_env_steps
        self.rng = np.random.default_rng(seed)
        self.global_step = 0
        self.updates = 0

    def epsilon(self) -> float:
        c = self.config
        decay_steps = int(c.exploration_fraction * self.total_env_steps)
        return linear_schedule(c.start_epsilon, c.end_epsilon, decay_steps, self.global_step)

    def learn(
        self,
        env: VectorEnv,
        until_step: int,
        deadline_s: float | None = None,
        callback: Callable[[TrainProgress], bool | None] | None = None,
    ) -> None:
        """Collect and learn until ``global_step >= until_step`` or ``time.monotonic()`` passes
        ``deadline_s``, or the callback returns True (stop)."""
        c = self.config
        q_network, target_network = self.q_network, self.target_network
        self.folder.reset()
        states = env.reset()  # (N, D)
        n_envs = len(states)
        returns_so_far = np.zeros(n_envs, dtype=np.float64)
        vector_step = 0
        # After a resume the buffer is empty again: wait for it to refill.
        learning_starts = min(max(c.learning_starts, c.batch_size), c.buffer_size)
        while self.global_step < until_step:
            if deadline_s is not None and time.monotonic() >= deadline_s:
                break
            epsilon = self.epsilon()
            actions = select_actions(q_network, states, epsilon, self.rng, self.device)
            result = env.step(actions)
            next_states, rewards, dones = result.states, result.rewards, result.dones
            folded = self.folder.push(states, actions, rewards, next_states, dones)
            if folded is not None:
                self.buffer.add(*folded)
            states = next_states
            self.global_step += n_envs
            vector_step += 1

            returns_so_far += rewards
            ended = np.flatnonzero(dones)
            episode_returns = returns_so_far[ended].tolist()
            returns_so_far[ended] = 0.0

            loss = q_mean = None
            if self.buffer.size >= learning_starts and vector_step % c.train_frequency == 0:
                for _ in range(c.updates_per_step):
                    data = self.buffer.sample(c.batch_size, self.rng)
                    stats = dqn_update(
                        q_network,
                        target_network,
                        self.optimizer,
                        data,
                        c.double_dqn,
                        c.loss,
                        c.max_grad_norm,
                    )
                    self.updates += 1
                    loss, q_mean = stats.loss, stats.q_mean
                    if c.tau < 1.0:
                        sync_target(q_network, target_network, c.tau)
                    elif self.updates % c.target_update_interval == 0:
                        sync_target(q_network, target_network, 1.0)

            if callback is not None:
                terms = getattr(result, "terms", None) or {}
                progress = TrainProgress(
                    global_step=self.global_step,
                    updates=self.updates,
                    epsilon=epsilon,
                    mean_reward=float(np.mean(rewards)),
                    loss=loss,
                    q_mean=q_mean,
                    episode_returns=episode_returns,
                    terms={k: float(np.mean(v)) for k, v in terms.items()},
                )
                if callback(progress):
                    break

    def state_dict(self) -> dict[str, Any]:
        """Counters and RNG states for a checkpoint (the networks and optimizer go separately)."""
        return {
            "global_step": self.global_step,
            "updates": self.updates,
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.global_step = int(state["global_step"])
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
