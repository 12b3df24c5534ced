"""Training throughput: our DQN trainer against Stable-Baselines3's DQN, same env, same network.

    python3 benchmarks/train_throughput.py [--budget-s 30] [--corpus default|PATH] [--sb3-envs 16]
    python3 benchmarks/train_throughput.py --kind hybrid --window 128 --ours-only

``--kind`` / ``--window`` set our Q-network's kind (``training.networks``) and the spec's window
for our run and the style model in its env (SB3's policy is an MLP: with another kind, or with
``--ours-only``, only our run is made, and it is timed in two parts too: the env alone, and the
update alone on a full buffer).

Four runs, each for a fixed wall-time budget after setup, all on one torch thread:

1. ours: ``training.dqn.DqnLearner`` on ``training.env.environment.MelodyEnv`` (N parallel episodes
   in numpy, one update of batch 128 per vector step);
2. SB3 DQN on ``training.env.gym_env.MelodyGymEnv`` wrapped in a ``DummyVecEnv`` of one env, with
   SB3's default ``train_freq=4`` (one update per 4 transitions);
3. SB3 DQN on a ``DummyVecEnv`` of ``--sb3-envs`` copies, ``train_freq=1`` (one update per vector
   step of that many transitions): SB3 given parallel envs too;
4. the same with ``train_freq = n_envs / sb3_envs`` vector steps, i.e. as many transitions per
   update as ours (256): SB3's best case for env steps/s at our update ratio.

Same Q-network (MLP, hidden [256, 256], ReLU: SB3 ``policy_kwargs=dict(net_arch=[256, 256])``),
batch 128, Adam 2.5e-4, replay 100k, the same ``learning_starts``, the same reward (with an
untrained style model of the same shape in the env, so the style term costs what it costs in
training). Env steps/s counts transitions (summed over parallel envs); updates/s counts
gradient steps. Prints a table and the ratio of env steps/s, ours against the best SB3 run
(goal: >= 10x).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Runnable as a plain script from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exports.spec import DEFAULT_SPEC, HOLD_EVENT, Spec  # noqa: E402
from training.data.corpus_data import Corpus  # noqa: E402

HIDDEN = [256, 256]
BATCH_SIZE = 128
LEARNING_RATE = 2.5e-4
BUFFER_SIZE = 100_000
GAMMA = 0.9
TARGET_UPDATE_UPDATES = 250


@dataclass
class RunResult:
    name: str
    env_steps: int
    updates: int
    seconds: float
    transitions_per_update: str

    @property
    def env_steps_per_s(self) -> float:
        return self.env_steps / self.seconds

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.seconds


def synthetic_corpus(n_tunes: int = 200, seed: int = 0) -> Corpus:
    """Random diatonic tunes (8 bars, eighth notes) when no corpus is built."""
    rng = np.random.default_rng(seed)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    tunes, tonics = [], []
    for _ in range(n_tunes):
        tonic = int(rng.integers(12))
        events = np.full(128, HOLD_EVENT, dtype=np.int16)
        events[::2] = 60 + tonic + scale[rng.integers(0, 8, size=64)]
        tunes.append(events)
        tonics.append(tonic)
    return Corpus(
        name="synthetic",
        events=np.concatenate(tunes),
        offsets=np.arange(0, 128 * (n_tunes + 1), 128, dtype=np.int64),
        titles=[f"tune {i}" for i in range(n_tunes)],
        tonic=np.array(tonics, dtype=np.int64),
        minor=np.zeros(n_tunes, dtype=bool),
        validation=np.zeros(n_tunes, dtype=bool),
        source="synthetic",
    )


def load_corpus(arg: str) -> Corpus:
    from exports.errors import CorpusError
    from training.data.corpus import resolve_corpus

    try:
        return resolve_corpus(arg)
    except CorpusError as err:
        if arg != "default":
            raise
        print(f"({err}; using a synthetic corpus instead)", file=sys.stderr)
        return synthetic_corpus()


def style_log_probs_fn(spec: Spec, kind: str = "mlp") -> Any:
    """An untrained style model of the Q-network's shape: log-softmax of its logits."""
    from training.networks import build_q_network, network_args_for

    network = build_q_network(network_args_for(spec, HIDDEN, kind=kind)).eval()

    @torch.no_grad()
    def log_probs(states: np.ndarray) -> np.ndarray:
        logits = network(torch.as_tensor(states, dtype=torch.float32))
        return torch.log_softmax(logits, dim=1).numpy()

    return log_probs


def run_ours(
    spec: Spec,
    corpus: Corpus,
    n_envs: int,
    budget_s: float,
    learning_starts: int,
    seed: int,
    kind: str = "mlp",
) -> RunResult:
    from training.config import LearnerConfig
    from training.dqn import DqnLearner
    from training.env.environment import EnvConfig, MelodyEnv
    from training.networks import build_q_network, network_args_for

    env = MelodyEnv(
        spec,
        corpus,
        EnvConfig(n_envs=n_envs, seed=seed),
        style_log_probs=style_log_probs_fn(spec, kind),
    )
    args = network_args_for(spec, HIDDEN, kind=kind)
    config = LearnerConfig(
        learning_rate=LEARNING_RATE,
        gamma=GAMMA,
        batch_size=BATCH_SIZE,
        buffer_size=BUFFER_SIZE,
        learning_starts=learning_starts,
        train_frequency=1,
        updates_per_step=1,
        target_update_interval=TARGET_UPDATE_UPDATES,
        double_dqn=False,  # SB3's DQN is vanilla DQN: the same work per update
    )
    learner = DqnLearner(
        build_q_network(args), build_q_network(args), config, spec.state_dim, 10**9, seed=seed
    )
    start = time.monotonic()
    learner.learn(env, until_step=10**12, deadline_s=start + budget_s)
    seconds = time.monotonic() - start
    return RunResult(
        f"ours: DqnLearner + MelodyEnv x{n_envs}, {kind} W={spec.window_steps}",
        learner.global_step,
        learner.updates,
        seconds,
        f"{n_envs}",
    )


def time_parts(
    spec: Spec, corpus: Corpus, n_envs: int, budget_s: float, seed: int, kind: str
) -> str:
    """The env alone (random actions, the style model's reward included) and the update alone
    (batch 128, Double DQN as in training, on a buffer of env states); one line of figures."""
    from training.config import LearnerConfig
    from training.dqn import DqnLearner, ReplayBuffer
    from training.env.environment import EnvConfig, MelodyEnv
    from training.networks import build_q_network, network_args_for

    env = MelodyEnv(
        spec,
        corpus,
        EnvConfig(n_envs=n_envs, seed=seed),
        style_log_probs=style_log_probs_fn(spec, kind),
    )
    rng = np.random.default_rng(seed)
    slots = 64
    buffer = ReplayBuffer(slots * n_envs, n_envs, spec.state_dim, gamma=GAMMA)
    states = env.reset()
    steps, start = 0, time.monotonic()
    while time.monotonic() - start < budget_s / 2 or steps < slots:
        actions = rng.integers(0, spec.n_actions, size=n_envs)
        result = env.step(actions)
        if steps < slots:
            buffer.add(states, actions, result.rewards, result.dones)
        states = result.states
        steps += 1
    env_s = time.monotonic() - start
    args = network_args_for(spec, HIDDEN, kind=kind)
    learner = DqnLearner(
        build_q_network(args),
        build_q_network(args),
        LearnerConfig(batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE),
        spec.state_dim,
        10**9,
        seed=seed,
    )
    updates, start = 0, time.monotonic()
    while time.monotonic() - start < budget_s / 2:
        learner.update(buffer)
        updates += 1
    update_s = time.monotonic() - start
    per_transition = spec.state_dim * 2  # float16 states in the replay buffer
    return (
        f"{kind} W={spec.window_steps} (state_dim {spec.state_dim}): env alone "
        f"{steps * n_envs / env_s:,.0f} env steps/s (x{n_envs}, style reward of the same kind); "
        f"update alone {updates / update_s:,.1f} updates/s (batch {BATCH_SIZE}, Double DQN); "
        f"replay of {BUFFER_SIZE:,} transitions {BUFFER_SIZE * per_transition / 2**20:,.0f} MiB"
    )


def run_sb3(
    spec: Spec,
    corpus: Corpus,
    n_envs: int,
    train_freq: int,
    budget_s: float,
    learning_starts: int,
    seed: int,
) -> RunResult:
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    from training.env.environment import EnvConfig
    from training.env.gym_env import MelodyGymEnv

    style = style_log_probs_fn(spec)

    def make(i: int) -> Any:
        return lambda: MelodyGymEnv(
            spec, corpus, EnvConfig(n_envs=1, seed=seed + i), style_log_probs=style
        )

    vec_env = DummyVecEnv([make(i) for i in range(n_envs)])
    model = DQN(
        "MlpPolicy",
        vec_env,
        learning_rate=LEARNING_RATE,
        buffer_size=BUFFER_SIZE,
        learning_starts=learning_starts,
        batch_size=BATCH_SIZE,
        gamma=GAMMA,
        train_freq=train_freq,
        gradient_steps=1,
        # SB3 counts target updates in env steps; ours in updates: match the wall-clock rhythm.
        target_update_interval=TARGET_UPDATE_UPDATES * train_freq * n_envs,
        policy_kwargs={"net_arch": list(HIDDEN)},
        device="cpu",
        seed=seed,
        verbose=0,
    )

    class StopAfter(BaseCallback):
        def _on_training_start(self) -> None:
            self.start_s = time.monotonic()

        def _on_step(self) -> bool:
            return time.monotonic() - self.start_s < budget_s

    callback = StopAfter()
    model.learn(total_timesteps=10**9, callback=callback)
    seconds = time.monotonic() - callback.start_s
    per_update = train_freq * n_envs
    return RunResult(
        f"SB3 DQN + MelodyGymEnv, DummyVecEnv x{n_envs}, train_freq={train_freq}",
        int(model.num_timesteps),
        int(model._n_updates),
        seconds,
        f"{per_update}",
    )


def format_table(results: list[RunResult]) -> str:
    lines = [
        "| run | env steps | updates | seconds | env steps/s | updates/s | transitions/update |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.env_steps:,} | {r.updates:,} | {r.seconds:.1f} | "
            f"{r.env_steps_per_s:,.0f} | {r.updates_per_s:,.1f} | {r.transitions_per_update} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--budget-s", type=float, default=30.0, help="seconds per run (30)")
    parser.add_argument("--corpus", default="default", help="default|corpus .npz|MIDI folder")
    parser.add_argument("--n-envs", type=int, default=256, help="our parallel episodes (256)")
    parser.add_argument("--sb3-envs", type=int, default=16, help="SB3 DummyVecEnv size, run 3")
    parser.add_argument(
        "--learning-starts", type=int, default=2_000, help="transitions before updates (2000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kind", default="mlp", help="our network: mlp | hybrid | dilated")
    parser.add_argument("--window", type=int, default=32, help="the spec's window_steps (32)")
    parser.add_argument("--ours-only", action="store_true", help="no SB3 runs; parts timed")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    spec = dataclasses.replace(DEFAULT_SPEC, window_steps=args.window)
    corpus = load_corpus(args.corpus)
    print(
        f"corpus {corpus.name!r}: {corpus.n_tunes} tunes; state_dim {spec.state_dim}, "
        f"{spec.n_actions} actions; {args.kind} {HIDDEN}; batch {BATCH_SIZE}; "
        f"{args.budget_s:.0f} s per run; torch threads {torch.get_num_threads()}",
        flush=True,
    )
    results = []
    results.append(
        run_ours(
            spec, corpus, args.n_envs, args.budget_s, args.learning_starts, args.seed, args.kind
        )
    )
    print(format_table(results[-1:]).splitlines()[-1], flush=True)
    if args.ours_only or args.kind != "mlp" or args.window != DEFAULT_SPEC.window_steps:
        print(time_parts(spec, corpus, args.n_envs, args.budget_s, args.seed, args.kind))
        return 0
    matched_freq = max(1, args.n_envs // args.sb3_envs)  # same transitions per update as ours
    for n_envs, train_freq in ((1, 4), (args.sb3_envs, 1), (args.sb3_envs, matched_freq)):
        results.append(
            run_sb3(
                spec, corpus, n_envs, train_freq, args.budget_s, args.learning_starts, args.seed
            )
        )
        print(format_table(results[-1:]).splitlines()[-1], flush=True)

    print()
    print(format_table(results))
    best_sb3 = max(results[1:], key=lambda r: r.env_steps_per_s)
    ratio = results[0].env_steps_per_s / best_sb3.env_steps_per_s
    update_ratio = results[0].updates_per_s / max(r.updates_per_s for r in results[1:])
    print(
        f"\nenv steps/s, ours / best SB3 ({best_sb3.name}): {ratio:.1f}x "
        f"(goal >= 10x: {'met' if ratio >= 10 else 'NOT met'}); "
        f"updates/s, ours / best SB3: {update_ratio:.2f}x"
    )
    if args.json is not None:
        payload = {
            "runs": [
                {
                    "name": r.name,
                    "env_steps": r.env_steps,
                    "updates": r.updates,
                    "seconds": r.seconds,
                    "env_steps_per_s": r.env_steps_per_s,
                    "updates_per_s": r.updates_per_s,
                }
                for r in results
            ],
            "env_steps_ratio": ratio,
            "updates_ratio": update_ratio,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
