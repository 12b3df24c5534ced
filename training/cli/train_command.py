"""``deepjam train``: train a style (style model, then DQN) into a checkpoint.

    deepjam train --config default --corpus default --out runs/folk
    deepjam train --config my_style.toml --corpus ~/midi/reels --out runs/reels --minutes 5
    deepjam train --config default --corpus default --out runs/folk --resume

Phases: (1) the supervised style model on the corpus (its validation log-likelihood is printed
and stored), (2) DQN on the vectorized melody environment with the reward
r = w_style log p_style + w_theory r_theory + w_play r_play. Progress goes to a tqdm bar on
stderr and TensorBoard scalars to ``<out>/tb``. ``<out>/checkpoint.pt`` is rewritten atomically
every ``budget.checkpoint_interval_s`` (the one before is kept as ``checkpoint.prev.pt``);
``--resume`` continues from it, so a kill loses at most one interval.

Handlers import torch inside themselves, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_CHECKPOINT_NAME = "checkpoint.prev.pt"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``deepjam train``."""
    parser = subparsers.add_parser(
        "train",
        help="train a style from a corpus (style model, then DQN) into a checkpoint",
        description=(
            "Train a style: a supervised style model on the corpus, then a DQN on the melody "
            "environment. Writes <out>/checkpoint.pt every checkpoint interval, TensorBoard "
            "scalars to <out>/tb, and <out>/metrics.json at the end."
        ),
    )
    parser.add_argument(
        "--config",
        default="default",
        help="a preset name (training/presets/NAME.toml) or a path to a style TOML (default: default)",
    )
    parser.add_argument(
        "--corpus",
        default="default",
        help="'default' (built by `deepjam corpus build`), a corpus .npz, or a folder of MIDI files",
    )
    parser.add_argument("--out", required=True, type=Path, help="run folder, e.g. runs/folk")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda", "auto"),
        help="torch device (default: cpu; auto = cuda when available)",
    )
    parser.add_argument(
        "--minutes", type=float, help="wall-time budget of the whole run (overrides budget.minutes)"
    )
    parser.add_argument(
        "--steps", type=int, help="env-step budget (transitions; overrides budget.env_steps)"
    )
    parser.add_argument("--seed", type=int, help="seed (overrides the config's seed)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: with 2, throughput collapses when a core is busy)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (log lines only)"
    )
    parser.set_defaults(func=run_train_command)


def _log(line: str) -> None:
    print(f"deepjam train: {line}", file=sys.stderr, flush=True)


def run_train_command(args: argparse.Namespace) -> int:
    """The handler: check the arguments, then train."""
    from exports.errors import ConfigError

    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    if args.minutes is not None and args.minutes < 0:
        raise ConfigError(f"--minutes must be >= 0 (0 = no limit), got {args.minutes}")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    train(
        config_arg=args.config,
        corpus_arg=args.corpus,
        out_dir=args.out,
        resume=args.resume,
        device_arg=args.device,
        minutes=args.minutes,
        steps=args.steps,
        seed=args.seed,
        threads=args.threads,
        progress_bar=not args.no_progress,
    )
    return 0


def _pick_device(device_arg: str) -> Any:
    import torch

    from exports.errors import ConfigError

    if device_arg == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device_arg == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu or auto")
    return torch.device(device_arg)


def train(
    config_arg: str,
    corpus_arg: str,
    out_dir: Path,
    resume: bool = False,
    device_arg: str = "cpu",
    minutes: float | None = None,
    steps: int | None = None,
    seed: int | None = None,
    threads: int = 1,
    progress_bar: bool = True,
) -> Path:
    """Train (or resume) a style into ``out_dir/checkpoint.pt``; returns the checkpoint's path."""
    import numpy as np
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from exports.errors import ConfigError
    from training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from training.config import config_from_dict, load_config
    from training.data.corpus import resolve_corpus
    from training.dqn import DqnLearner, TrainProgress, evaluate_policy, select_actions
    from training.env.environment import MelodyEnv
    from training.networks import build_q_network, network_args_for
    from training.style_model import StyleModel, train_style_model

    started = time.monotonic()
    torch.set_num_threads(threads)
    device = _pick_device(device_arg)
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / CHECKPOINT_NAME

    # --- config (a resumed run keeps its own config; the budget flags still apply) ----------
    checkpoint = None
    if resume:
        checkpoint = load_checkpoint(checkpoint_path)
        if "learner" not in checkpoint.extra or not checkpoint.config:
            raise CheckpointError(
                f"{checkpoint_path} was not written by `deepjam train` (no learner state or "
                f"config), so it cannot be resumed; start a new run with another --out"
            )
        config = config_from_dict(checkpoint.config)
        _log(f"resuming {checkpoint_path} at step {checkpoint.global_step:,}")
    else:
        if checkpoint_path.exists():
            raise ConfigError(
                f"{checkpoint_path} exists; pass --resume to continue it, or choose another --out"
            )
        config = load_config(config_arg)
    if minutes is not None:
        config = config.replace("budget", minutes=float(minutes))
    if steps is not None:
        config = config.replace("budget", env_steps=int(steps))
    if seed is not None:
        config = config.replace("", seed=int(seed))
    budget = config.budget
    spec = config.build_spec()
    reward_weights = config.reward_weights()
    # A resumed run draws new episodes rather than replaying the first ones.
    env_seed = config.seed + (checkpoint.global_step if checkpoint is not None else 0)
    env_config = dataclasses.replace(config.env_config(), seed=env_seed)
    elapsed_before_s = float(checkpoint.extra.get("elapsed_s", 0.0)) if checkpoint else 0.0
    time_budget_s = budget.minutes * 60.0 if budget.minutes > 0 else None

    def time_left_s() -> float:
        if time_budget_s is None:
            return float("inf")
        return time_budget_s - elapsed_before_s - (time.monotonic() - started)

    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    # --- corpus -----------------------------------------------------------------------------
    corpus = resolve_corpus(corpus_arg)  # warns on stderr when it is small
    train_corpus = corpus.subset(validation=False)
    if train_corpus.n_tunes == 0:
        train_corpus = corpus
    _log(
        f"corpus {corpus.name!r}: {corpus.n_tunes} tunes ({train_corpus.n_tunes} for training), "
        f"{len(corpus.events):,} steps"
    )
    if checkpoint is not None and checkpoint.corpus != corpus.summary():
        _log(
            f"warning: this corpus ({corpus.summary()}) differs from the one the run started "
            f"with ({checkpoint.corpus}); pass the same --corpus to resume faithfully"
        )

    # --- phase 1: the style model -----------------------------------------------------------
    if checkpoint is not None and checkpoint.style_model is not None:
        style_model = StyleModel.from_dict(checkpoint.style_model, device)
    else:
        style_config = config.style_model
        if time_budget_s is not None:
            # Leave at least half of the budget to the DQN.
            cap = max(time_left_s() / 2.0, 1.0) / 60.0
            limit = min(style_config.max_minutes, cap) if style_config.max_minutes > 0 else cap
            style_config = dataclasses.replace(style_config, max_minutes=limit)
        _log(f"style model: up to {style_config.epochs} epochs, {style_config.max_minutes:.2f} min")
        style_model = train_style_model(
            spec, corpus, style_config, config.network.hidden, config.seed, device, _log
        )
    sm = style_model.metrics
    _log(
        f"style model: validation log-lik {sm['style_val_log_lik']:.3f} nats/step "
        f"(uniform {sm['style_uniform_log_lik']:.3f}), accuracy {sm['style_val_accuracy']:.3f}"
    )

    # --- phase 2: DQN -----------------------------------------------------------------------
    network_args = network_args_for(spec, config.network.hidden, config.network.dueling)
    q_network = build_q_network(network_args)
    target_network = build_q_network(network_args)
    if checkpoint is None and config.network.init_from_style_model:
        # RL Tuner: the Q-network starts as the style model.
        q_network.load_state_dict(style_model.network.state_dict())
    learner = DqnLearner(
        q_network,
        target_network,
        config.learner,
        spec.state_dim,
        budget.env_steps,
        seed=config.seed,
        device=device,
    )
    if checkpoint is not None:
        learner.q_network.load_state_dict(checkpoint.q_network_state)
        learner.target_network.load_state_dict(
            checkpoint.target_network_state or checkpoint.q_network_state
        )
        if checkpoint.optimizer_state is not None:
            learner.optimizer.load_state_dict(checkpoint.optimizer_state)
        learner.load_state_dict(checkpoint.extra["learner"])
    # The exploration schedule runs over the DQN phase's share of a wall-time budget.
    rl_elapsed_before_s = float(checkpoint.extra.get("rl_elapsed_s", 0.0)) if checkpoint else 0.0
    rl_budget_s = rl_elapsed_before_s + max(time_left_s(), 1e-9)
    rl_started_s = time.monotonic()

    def rl_elapsed_s() -> float:
        return rl_elapsed_before_s + time.monotonic() - rl_started_s

    if time_budget_s is not None:
        learner.time_fraction = lambda: rl_elapsed_s() / rl_budget_s

    env = MelodyEnv(spec, train_corpus, env_config, reward_weights, style_model.log_probs)
    writer = SummaryWriter(log_dir=str(out_dir / "tb"))
    metrics: dict[str, Any] = dict(checkpoint.metrics) if checkpoint else {}
    metrics.update(sm)

    def write_checkpoint() -> None:
        if checkpoint_path.exists():
            tmp = out_dir / f".{PREVIOUS_CHECKPOINT_NAME}.tmp"
            shutil.copyfile(checkpoint_path, tmp)
            os.replace(tmp, out_dir / PREVIOUS_CHECKPOINT_NAME)
        save_checkpoint(
            checkpoint_path,
            q_network=learner.q_network,
            target_network=learner.target_network,
            optimizer=learner.optimizer,
            network_args=network_args,
            spec=spec,
            style_name=config.style.name,
            style_description=config.style.description,
            reward_weights=reward_weights.to_dict(),
            corpus=corpus.summary(),
            global_step=learner.global_step,
            metrics=metrics,
            config=config.to_dict(),
            style_model=style_model.to_dict(),
            extra={
                "learner": learner.state_dict(),
                "elapsed_s": elapsed_before_s + time.monotonic() - started,
                "rl_elapsed_s": rl_elapsed_s(),
            },
        )

    # Window sums for logging, reset at each log line.
    window: dict[str, float] = {}
    episode_returns: list[float] = []
    recent_returns: list[float] = []
    last_log_step = learner.global_step
    last_checkpoint_s = time.monotonic()
    rate_start_s, rate_start_step, rate_start_updates = (
        time.monotonic(),
        learner.global_step,
        learner.updates,
    )
    bar = tqdm(
        total=budget.env_steps,
        initial=min(learner.global_step, budget.env_steps),
        unit="step",
        unit_scale=True,
        disable=not progress_bar,
        mininterval=1.0,
        file=sys.stderr,
    )

    def add(name: str, value: float | None) -> None:
        if value is not None:
            window[name] = window.get(name, 0.0) + value
            window[name + "#"] = window.get(name + "#", 0.0) + 1

    def on_progress(p: TrainProgress) -> bool:
        nonlocal last_log_step, last_checkpoint_s
        nonlocal rate_start_s, rate_start_step, rate_start_updates
        bar.update(p.global_step - bar.n)
        add("train/loss", p.loss)
        add("train/q_mean", p.q_mean)
        add("reward/mean", p.mean_reward)
        for term, value in p.terms.items():
            add(f"reward/{term}", value)
        episode_returns.extend(p.episode_returns)
        if p.global_step - last_log_step >= budget.log_interval_steps:
            now = time.monotonic()
            for name in [k for k in window if not k.endswith("#")]:
                writer.add_scalar(name, window[name] / window[name + "#"], p.global_step)
            writer.add_scalar("train/epsilon", p.epsilon, p.global_step)
            env_steps_per_s = (p.global_step - rate_start_step) / max(now - rate_start_s, 1e-9)
            updates_per_s = (p.updates - rate_start_updates) / max(now - rate_start_s, 1e-9)
            writer.add_scalar("perf/env_steps_per_s", env_steps_per_s, p.global_step)
            writer.add_scalar("perf/updates_per_s", updates_per_s, p.global_step)
            if episode_returns:
                mean_return = float(np.mean(episode_returns))
                writer.add_scalar("episode/return", mean_return, p.global_step)
                recent_returns[:] = episode_returns
                bar.set_postfix(ret=f"{mean_return:.2f}", eps=f"{p.epsilon:.2f}", refresh=False)
            metrics["env_steps_per_s"] = env_steps_per_s
            metrics["updates_per_s"] = updates_per_s
            metrics["mean_reward"] = window.get("reward/mean", 0.0) / max(
                window.get("reward/mean#", 1.0), 1.0
            )
            for term in p.terms:
                key = f"reward/{term}"
                metrics[f"mean_{term}"] = window[key] / window[key + "#"]
            window.clear()
            episode_returns.clear()
            last_log_step = p.global_step
            rate_start_s, rate_start_step, rate_start_updates = now, p.global_step, p.updates
        if time.monotonic() - last_checkpoint_s >= budget.checkpoint_interval_s:
            if recent_returns:
                metrics["mean_episode_return"] = float(np.mean(recent_returns))
            write_checkpoint()
            last_checkpoint_s = time.monotonic()
        return False

    if checkpoint is None:
        write_checkpoint()  # a kill from here on resumes without retraining the style model
        last_checkpoint_s = time.monotonic()
    deadline_s = None if time_budget_s is None else time.monotonic() + max(time_left_s(), 0.0)
    rl_started_step, rl_started_updates = learner.global_step, learner.updates
    try:
        learner.learn(env, budget.env_steps, deadline_s, on_progress)
    finally:
        bar.close()
    rl_s = time.monotonic() - rl_started_s
    if recent_returns or episode_returns:
        metrics["mean_episode_return"] = float(np.mean(episode_returns or recent_returns))
    metrics["global_step"] = learner.global_step
    metrics["updates"] = learner.updates
    if rl_s > 0 and learner.global_step > rl_started_step:
        metrics["env_steps_per_s"] = (learner.global_step - rl_started_step) / rl_s
        metrics["updates_per_s"] = (learner.updates - rl_started_updates) / rl_s
    # A quick look at what was learned: greedy Q against random play and the style model's own
    # choice, on fresh episodes cut from the validation tunes.
    eval_corpus = corpus.subset(validation=True)
    eval_env = MelodyEnv(
        spec,
        eval_corpus if eval_corpus.n_tunes else train_corpus,
        dataclasses.replace(env_config, seed=config.seed + 1),  # the same episodes every run
        reward_weights,
        style_model.log_probs,
    )
    eval_steps = 2 * eval_env.max_turn_steps
    eval_rng = np.random.default_rng(config.seed + 1)
    policies = {
        "greedy": lambda s: select_actions(learner.q_network, s, 0.0, eval_rng, device),
        "style_greedy": lambda s: np.argmax(style_model.log_probs(s), axis=1),
        "random": lambda s: eval_rng.integers(0, spec.n_actions, size=len(s)),
    }
    for name, act in policies.items():
        result = evaluate_policy(eval_env, act, eval_steps)
        metrics[f"eval_{name}_return"] = result["return"]
        metrics[f"eval_{name}_reward"] = result["reward"]
        if name == "greedy":
            for key, value in result.items():
                if key.startswith("term/"):
                    metrics[f"eval_greedy_{key[5:]}"] = value
    _log(
        "validation episodes, mean return: greedy Q {eval_greedy_return:.2f}, style model "
        "greedy {eval_style_greedy_return:.2f}, random {eval_random_return:.2f}".format(**metrics)
    )
    write_checkpoint()
    writer.close()
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    _log(
        f"done: {learner.global_step:,} env steps, {learner.updates:,} updates in {rl_s:.0f} s "
        f"of DQN ({metrics.get('env_steps_per_s', 0.0):,.0f} env steps/s, "
        f"{metrics.get('updates_per_s', 0.0):.0f} updates/s); "
        f"mean episode return {metrics.get('mean_episode_return', float('nan')):.2f}; "
        f"checkpoint {checkpoint_path}"
    )
    return checkpoint_path
