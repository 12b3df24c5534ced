"""The DQN learner: its parts, and the proof that it learns (a toy chain task, in seconds)."""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import numpy as np
import pytest
import torch

from training.config import LearnerConfig
from training.dqn import DqnLearner, ReplayBuffer, linear_schedule, select_actions
from training.networks import build_q_network

torch.set_num_threads(1)


class ToyStep(NamedTuple):
    states: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    terms: dict[str, np.ndarray]


class ChainEnv:
    """Press the right key at each of ``length`` positions: +1 for each, a wrong key ends it.

    State: one-hot position. The right key at position p is ``KEYS[p]``. Maximum return =
    ``length``; a random policy gets about 1 / (n_actions - 1).
    """

    KEYS = np.array([2, 0, 3, 1, 2, 3])

    def __init__(self, n_envs: int, n_actions: int = 4) -> None:
        self.n_envs = n_envs
        self.n_actions = n_actions
        self.length = len(self.KEYS)
        self.position = np.zeros(n_envs, dtype=np.int64)

    def _states(self) -> np.ndarray:
        return np.eye(self.length, dtype=np.float32)[self.position]

    def reset(self) -> np.ndarray:
        self.position[:] = 0
        return self._states()

    def step(self, actions: np.ndarray) -> ToyStep:
        right = actions == self.KEYS[self.position]
        rewards = right.astype(np.float32)
        self.position += 1
        dones = ~right | (self.position >= self.length)
        self.position[dones] = 0  # auto-reset, as the melody env does
        return ToyStep(self._states(), rewards, dones, {"right": right.astype(np.float32)})


def greedy_return(q_network: torch.nn.Module, env: ChainEnv) -> float:
    """Mean return of the greedy policy over one episode of each parallel env."""
    states = env.reset()
    total = np.zeros(env.n_envs)
    alive = np.ones(env.n_envs, dtype=bool)
    rng = np.random.default_rng(0)
    for _ in range(env.length):
        result = env.step(select_actions(q_network, states, 0.0, rng))
        total += np.where(alive, result.rewards, 0.0)
        alive &= ~result.dones
        states = result.states
    return float(total.mean())


def toy_learner(config: LearnerConfig, total_steps: int) -> DqnLearner:
    args = {"kind": "mlp", "state_dim": 6, "n_actions": 4, "hidden": [64]}
    return DqnLearner(build_q_network(args), build_q_network(args), config, 6, total_steps, seed=0)


TOY_CONFIG = LearnerConfig(
    learning_rate=1e-3,
    gamma=0.9,
    batch_size=64,
    buffer_size=20_000,
    learning_starts=500,
    target_update_interval=50,
    exploration_fraction=0.5,
)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"double_dqn": False, "loss": "mse"},
        {"n_step": 3, "tau": 0.05},
    ],
    ids=["double-huber", "plain-mse", "nstep-polyak"],
)
def test_dqn_learns_the_chain_task_in_seconds(changes: dict) -> None:
    torch.manual_seed(0)
    env = ChainEnv(32)
    total_steps = 24_000
    learner = toy_learner(dataclasses.replace(TOY_CONFIG, **changes), total_steps)
    before = greedy_return(learner.q_network, ChainEnv(64))
    learner.learn(env, until_step=total_steps)  # seconds: benchmarks/train_throughput.py times it
    after = greedy_return(learner.q_network, ChainEnv(64))
    assert after >= 5.9, f"greedy return {after:.2f} of 6 after training (was {before:.2f})"
    assert learner.global_step >= total_steps
    assert learner.updates > 500
    # Bootstrapping: Q(start, right key) -> sum of gamma^k over the 6 rewards to come (4.69); a
    # learner that does not bootstrap would stay near the immediate reward, 1.
    with torch.no_grad():
        q_start = float(learner.q_network(torch.eye(6)[:1])[0, ChainEnv.KEYS[0]])
    assert 3.5 < q_start < 5.3, f"Q(start, right key) = {q_start:.2f}, expected about 4.69"


def test_dueling_network_learns_the_chain_task() -> None:
    torch.manual_seed(0)
    args = {"kind": "mlp", "state_dim": 6, "n_actions": 4, "hidden": [64], "dueling": True}
    learner = DqnLearner(build_q_network(args), build_q_network(args), TOY_CONFIG, 6, 24_000)
    learner.learn(ChainEnv(32), until_step=24_000)
    assert greedy_return(learner.q_network, ChainEnv(64)) >= 5.9


def test_learn_stops_at_the_deadline_and_resumes_counters() -> None:
    learner = toy_learner(TOY_CONFIG, 10_000)
    learner.learn(ChainEnv(32), until_step=10**9, deadline_s=time.monotonic() + 0.3)
    assert 0 < learner.global_step < 10**9
    saved = learner.state_dict()
    again = toy_learner(TOY_CONFIG, 10_000)
    again.load_state_dict(saved)
    assert again.global_step == learner.global_step
    assert again.epsilon() == pytest.approx(learner.epsilon())


def test_n_step_returns_stop_at_episode_end() -> None:
    buffer = ReplayBuffer(capacity=20, n_envs=2, state_dim=1, n_step=3, gamma=0.5)
    # env 0 ends at the second step; env 1 goes on. States are the step number.
    rewards = [[1.0, 1.0], [2.0, 2.0], [4.0, 4.0], [8.0, 8.0]]
    dones = [[False, False], [True, False], [False, False], [False, False]]
    for k in range(4):
        buffer.add(
            np.full((2, 1), k, np.float32), np.zeros(2), np.array(rewards[k]), np.array(dones[k])
        )
    assert buffer.size == 2  # only step 0 has its 3rd next state stored
    batch = buffer.sample(64, np.random.default_rng(0))
    assert torch.all(batch.states == 0) and torch.all(batch.next_states == 3)
    returns = {
        round(float(r), 4): float(d) for r, d in zip(batch.returns, batch.discounts, strict=True)
    }
    assert returns == {1 + 0.5 * 2: 0.0, 1 + 0.5 * 2 + 0.25 * 4: 0.125}


def test_replay_buffer_wraps_and_pairs_each_state_with_the_next() -> None:
    buffer = ReplayBuffer(capacity=8, n_envs=2, state_dim=2)  # 4 slots of 2 envs
    for k in range(7):
        states = np.full((2, 2), k, dtype=np.float32)
        buffer.add(states, np.array([k, k]), np.array([k, k]), np.zeros(2, dtype=bool))
    assert buffer.size == 6  # slots 3, 4, 5 (6 has no next state yet); 0..2 overwritten
    batch = buffer.sample(256, np.random.default_rng(0))
    assert batch.states.shape == (256, 2) and batch.states.dtype == torch.float32
    assert set(batch.actions.tolist()) == {3, 4, 5}
    np.testing.assert_allclose(batch.next_states.numpy(), batch.states.numpy() + 1)
    assert torch.equal(batch.returns, batch.actions.float())
    buffer.clear()
    assert buffer.size == 0


def test_replay_streams_keep_each_stream_apart() -> None:
    """Ape-X: one stream per actor; a transition's next state is the next of its own stream."""
    n_envs = 2
    buffer = ReplayBuffer(capacity=64, n_envs=n_envs, state_dim=3, n_step=1, n_streams=2)
    for stream, base, steps in ((0, 0.0, 8), (1, 1000.0, 5)):
        for k in range(steps):
            states = np.full((n_envs, 3), base + k, np.float32)
            buffer.add(states, np.zeros(n_envs), np.ones(n_envs), np.zeros(n_envs, bool), stream)
    assert buffer.size == (7 + 4) * n_envs and buffer.capacity == 64
    batch = buffer.sample(2000, np.random.default_rng(0))
    s, s_next = batch.states[:, 0], batch.next_states[:, 0]
    assert torch.equal(s_next - s, torch.ones_like(s))  # never across streams
    share = float((s >= 1000).float().mean())
    assert share == pytest.approx(4 / 11, abs=0.05)  # in proportion to what each holds
    assert float(s.max()) == 1003 and float(s[s < 1000].max()) == 6


def test_epsilon_decays_linearly_then_stays() -> None:
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 1000) == pytest.approx(0.1)
