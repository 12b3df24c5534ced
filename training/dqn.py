"""The DQN learner (Mnih et al. 2015), read top to bottom as in CleanRL's ``dqn.py``.

Parts: a preallocated numpy replay buffer of vector steps with named-tuple batches and n-step
returns summed at sample time, batched epsilon-greedy action selection (greedy part through the one
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

from exports.errors import ConfigError
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
    discounts: torch.Tensor  # (B,) float32: gamma^n, 0 if the episode ended within the n steps


class ReplayBuffer:
    """A preallocated ring of vector steps: slot k holds (s_k, a_k, r_k, done_k) of every env.

    The next state of a transition is the state stored in the following slot, so each state is
    stored once. With auto-reset, the slot after a ``done`` holds the first state of the next
    episode: harmless, since ``done`` zeroes the bootstrap. n-step returns are summed at sample
    time (Sutton & Barto 7.1), stopping at the first ``done``. Call ``clear`` whenever the
    stream of vector steps is broken (a fresh ``env.reset()``).

    ``n_streams`` > 1 holds that many independent streams (one per Ape-X actor,
    ``training.scale.apex``), each its own ring of ``capacity // n_streams`` transitions, added
    with ``add(..., stream=i)``; ``sample`` draws from all of them in one go, in proportion to
    what each holds, and a transition's next state is always the next state of its own stream.
    """

    def __init__(
        self,
        capacity: int,
        n_envs: int,
        state_dim: int,
        n_step: int = 1,
        gamma: float = 0.99,
        device: torch.device | str = "cpu",
        n_streams: int = 1,
    ) -> None:
        self.n_envs = n_envs
        self.n_streams = n_streams
        self.slots = max(capacity // (n_envs * n_streams), n_step + 2)
        self.n_step = n_step
        self.gamma = gamma
        self.device = torch.device(device)
        shape = (n_streams, self.slots, n_envs)
        self.states = np.zeros((*shape, state_dim), dtype=np.float16)
        self.actions = np.zeros(shape, dtype=np.int64)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.dones = np.zeros(shape, dtype=bool)
        self.written = np.zeros(n_streams, dtype=np.int64)
        """Vector steps stored in each stream since the last clear."""

    def _usable_slots(self) -> np.ndarray:
        """(n_streams,) slots of each stream whose n-th next state is stored."""
        return np.maximum(np.minimum(self.written, self.slots) - self.n_step, 0)

    @property
    def size(self) -> int:
        """Transitions that can be sampled now (their n-th next state is stored)."""
        return int(self._usable_slots().sum()) * self.n_envs

    @property
    def capacity(self) -> int:
        """Transitions the buffer holds when full."""
        return self.n_streams * self.slots * self.n_envs

    def clear(self) -> None:
        self.written[:] = 0

    def add(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        stream: int = 0,
    ) -> None:
        """Store one vector step: (N, D) states and the (N,) actions, rewards, dones from them."""
        k = self.written[stream] % self.slots
        self.states[stream, k] = states
        self.actions[stream, k] = actions
        self.rewards[stream, k] = rewards
        self.dones[stream, k] = dones
        self.written[stream] += 1

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplayBufferSamples:
        usable_slots = self._usable_slots()  # (S,)
        oldest = self.written - np.minimum(self.written, self.slots)  # (S,)
        if self.n_streams == 1:
            stream = np.zeros(batch_size, dtype=np.int64)
            offset = rng.integers(0, usable_slots[0], size=batch_size)
        else:
            share = usable_slots / usable_slots.sum()
            stream = rng.choice(self.n_streams, size=batch_size, p=share)  # (B,)
            offset = rng.integers(0, usable_slots[stream])
        slot = (oldest[stream] + offset) % self.slots  # (B,)
        env = rng.integers(0, self.n_envs, size=batch_size)  # (B,)
        returns = np.zeros(batch_size, dtype=np.float32)
        discount = np.ones(batch_size, dtype=np.float32)
        alive = np.ones(batch_size, dtype=bool)
        for j in range(self.n_step):
            k = (slot + j) % self.slots
            returns += np.where(alive, discount * self.rewards[stream, k, env], 0.0).astype(
                np.float32
            )
            discount *= np.float32(self.gamma)
            alive &= ~self.dones[stream, k, env]
        # CRUCIAL: no bootstrap past an episode end (the next slot then holds a new episode).
        discounts = np.where(alive, discount, 0.0).astype(np.float32)
        next_slot = (slot + self.n_step) % self.slots

        def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(a).to(self.device, dtype)

        return ReplayBufferSamples(
            states=t(self.states[stream, slot, env], torch.float32),
            actions=t(self.actions[stream, slot, env], torch.int64),
            returns=t(returns, torch.float32),
            next_states=t(self.states[stream, next_slot, env], torch.float32),
            discounts=t(discounts, torch.float32),
        )


class Sampler(Protocol):
    """What the learner's update samples from: a ``ReplayBuffer`` or anything shaped like one."""

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplayBufferSamples: ...


def linear_schedule(start: float, end: float, duration: float, t: float) -> float:
    """``start`` at t = 0, linearly to ``end`` at t = duration, then ``end``."""
    if duration <= 0 or t >= duration:
        return end
    return start + (end - start) * t / duration


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
    kl_control: str = "none",
    kl_temperature: float = 1.0,
) -> UpdateStats:
    """One gradient step on the TD error of a replay batch.

    ``kl_control="psi"``: RL Tuner's Psi-learning target, the soft value
    ``T * logsumexp(Q_target(s') / T)`` in place of the max (the KL term toward the style model
    is the reward's ``w_style * log p_style``)."""
    with torch.no_grad():
        target_q = target_network(data.next_states)  # (B, A)
        if kl_control == "psi":
            # CRUCIAL: the soft backup is what makes it KL-control; with the max it is Q-learning.
            target_max = kl_temperature * torch.logsumexp(target_q / kl_temperature, dim=1)
        elif double_dqn:
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
        nn.utils.clip_grad_norm_(q_network.parameters(), max_grad_norm, foreach=True)
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
        if config.kl_control not in ("none", "psi"):
            raise ConfigError(
                f"learner.kl_control must be 'none' or 'psi', got {config.kl_control!r}"
            )
        if config.kl_temperature <= 0:
            raise ConfigError(f"learner.kl_temperature must be > 0, got {config.kl_temperature}")
        self.config = config
        self.device = torch.device(device)
        self.q_network = q_network.to(self.device)
        self.target_network = target_network.to(self.device)
        self.target_network.load_state_dict(self.q_network.state_dict())
        # fused Adam: one kernel for all parameters, ~1 ms of the ~7 ms update on one CPU thread.
        self.optimizer = torch.optim.Adam(
            self.q_network.parameters(), lr=config.learning_rate, fused=True
        )
        self.state_dim = state_dim
        self.buffer: ReplayBuffer | None = None  # made in learn(), when n_envs is known
        self.total_env_steps = total_env_steps
        self.rng = np.random.default_rng(seed)
        self.global_step = 0
        self.updates = 0
        self.time_fraction: Callable[[], float] | None = None
        """Optional: the share of a wall-time budget spent, so epsilon decays in time too."""

    def budget_fraction(self) -> float:
        """How much of the budget is spent, 0..1: env steps, or wall time if that binds first."""
        fraction = self.global_step / max(self.total_env_steps, 1)
        if self.time_fraction is not None:
            fraction = max(fraction, self.time_fraction())
        return min(fraction, 1.0)

    def epsilon(self) -> float:
        c = self.config
        return linear_schedule(
            c.start_epsilon, c.end_epsilon, c.exploration_fraction, self.budget_fraction()
        )

    def update(self, buffer: Sampler) -> UpdateStats:
        """The learner's update: ``updates_per_step`` gradient steps on batches sampled from
        ``buffer``, each followed by the target sync. The single-process loop (``learn``) and
        the Ray learner (``training.scale.apex``) both call this. Returns the last step's stats."""
        c = self.config
        stats = UpdateStats(loss=float("nan"), q_mean=float("nan"))
        for _ in range(c.updates_per_step):
            data = buffer.sample(c.batch_size, self.rng)
            stats = dqn_update(
                self.q_network,
                self.target_network,
                self.optimizer,
                data,
                c.double_dqn,
                c.loss,
                c.max_grad_norm,
                c.kl_control,
                c.kl_temperature,
            )
            self.updates += 1
            if c.tau < 1.0:
                sync_target(self.q_network, self.target_network, c.tau)
            elif self.updates % c.target_update_interval == 0:
                sync_target(self.q_network, self.target_network, 1.0)
        return stats

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
        q_network = self.q_network
        states = env.reset()  # (N, D)
        n_envs = len(states)
        if self.buffer is None or self.buffer.n_envs != n_envs:
            self.buffer = ReplayBuffer(
                c.buffer_size, n_envs, self.state_dim, c.n_step, c.gamma, self.device
            )
        buffer = self.buffer
        buffer.clear()  # a fresh reset breaks the stream of vector steps
        returns_so_far = np.zeros(n_envs, dtype=np.float64)
        vector_step = 0
        # After a resume the buffer is empty again: wait for it to refill.
        learning_starts = min(max(c.learning_starts, c.batch_size), buffer.slots * n_envs // 2)
        while self.global_step < until_step:
            if deadline_s is not None and time.monotonic() >= deadline_s:
                break
            epsilon = self.epsilon()
            actions = select_actions(q_network, states, epsilon, self.rng, self.device)
            result = env.step(actions)
            next_states, rewards, dones = result.states, result.rewards, result.dones
            buffer.add(states, actions, rewards, dones)
            states = next_states
            self.global_step += n_envs
            vector_step += 1

            returns_so_far += rewards
            ended = np.flatnonzero(dones)
            episode_returns = returns_so_far[ended].tolist()
            returns_so_far[ended] = 0.0

            loss = q_mean = None
            if buffer.size >= learning_starts and vector_step % c.train_frequency == 0:
                loss, q_mean = self.update(buffer)

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


def evaluate_policy(
    env: VectorEnv, act: Callable[[np.ndarray], np.ndarray], vector_steps: int
) -> dict[str, float]:
    """Run a policy (states (N, D) -> actions (N,)) for ``vector_steps`` steps of a fresh env.

    Returns ``return`` (mean return of the episodes that ended), ``reward`` (mean reward per
    step), ``episodes`` (how many ended) and the mean per step of each reward term the env
    reports (``term/<name>``).
    """
    states = env.reset()
    running = np.zeros(len(states))
    returns: list[float] = []
    reward_sum = 0.0
    terms_sum: dict[str, float] = {}
    for _ in range(vector_steps):
        result = env.step(act(states))
        running += result.rewards
        reward_sum += float(np.mean(result.rewards))
        for name, value in (getattr(result, "terms", None) or {}).items():
            terms_sum[name] = terms_sum.get(name, 0.0) + float(np.mean(value))
        ended = np.flatnonzero(result.dones)
        returns.extend(running[ended].tolist())
        running[ended] = 0.0
        states = result.states
    out = {
        "return": float(np.mean(returns)) if returns else float("nan"),
        "reward": reward_sum / max(vector_steps, 1),
        "episodes": float(len(returns)),
    }
    out.update({f"term/{k}": v / max(vector_steps, 1) for k, v in terms_sum.items()})
    return out
