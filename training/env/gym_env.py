"""A Gymnasium view of one melody episode, for off-the-shelf agents (SB3, CleanRL).

Observation: ``Box(-8, 8, (spec.state_dim,), float32)`` (window and context features are 0..1; the call summary's register and contour features are signed), the same states as ``MelodyEnv`` (the
one encoder). Action: ``Discrete(spec.n_actions)``. Episodes terminate after the agent's turn
(never truncated); ``info`` carries the per-term rewards of the step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from exports.spec import Spec
from training.data.corpus_data import Corpus
from training.env.environment import EnvConfig, MelodyEnv
from training.env.reward import RewardWeights, StyleLogProbs

CALL_FEATURE_BOUND = 8.0
"""Bound of every state feature: the call summary's register features are pitch offsets / 12."""


class MelodyGymEnv(gym.Env[np.ndarray, np.int64]):
    """One episode at a time over ``MelodyEnv`` (n_envs=1, no auto-reset)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        spec: Spec,
        corpus: Corpus,
        config: EnvConfig | None = None,
        reward_weights: RewardWeights | None = None,
        style_log_probs: StyleLogProbs | None = None,
    ) -> None:
        super().__init__()
        self._config = replace(config or EnvConfig(), n_envs=1, auto_reset=False)
        self._env = MelodyEnv(spec, corpus, self._config, reward_weights, style_log_probs)
        self.spec_ = spec
        self.observation_space = gym.spaces.Box(
            -CALL_FEATURE_BOUND, CALL_FEATURE_BOUND, (spec.state_dim,), np.float32
        )
        self.action_space = gym.spaces.Discrete(spec.n_actions)

    @property
    def melody_env(self) -> MelodyEnv:
        return self._env

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._env.rng = np.random.default_rng(seed)
        states = self._env.reset()
        info = {"answering": bool(self._env.answering[0]), "tonic": int(self._env.tonic[0])}
        return states[0], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        result = self._env.step(np.array([int(action)], dtype=np.int64))
        info = {name: float(value[0]) for name, value in result.terms.items()}
        return result.states[0], float(result.rewards[0]), bool(result.dones[0]), False, info
