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
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
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
        "--name",
        help="the style's name, shown by `deepjam inspect` and the live player (default: the "
        "config's style.name; with the default preset on your own corpus, the corpus's name)",
    )
    parser.add_argument(
        "--description",
        help="one line about the style (default: the config's, or what it was trained on)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (log lines only)"
    )
    parser.add_argument(
        "--ray",
        action="store_true",
        help="distributed experience (Ape-X): N Ray actors play, this process learns "
        "(the scale extra)",
    )
    parser.add_argument(
        "--actors", type=int, help="with --ray: experience actors, each with its own ε (default 2)"
    )
    parser.add_argument(
        "--address",
        help="with --ray: a running Ray cluster (auto, ray://HOST:10001; default: local)",
    )
    parser.set_defaults(func=run_train_command)


def run_train_command(args: argparse.Namespace) -> int:
    """The handler: check the arguments, then train."""
    from exports.errors import ConfigError

    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    if args.minutes is not None and args.minutes < 0:
        raise ConfigError(f"--minutes must be >= 0 (0 = no limit), got {args.minutes}")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    if not args.ray and (args.actors is not None or args.address is not None):
        raise ConfigError("--actors and --address need --ray")
    if args.actors is not None and args.actors < 1:
        raise ConfigError(f"--actors must be >= 1, got {args.actors}")
    if args.ray:
        from exports.extras import require_extra

        require_extra("scale", "deepjam train --ray")
    try:
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
            name=args.name,
            description=args.description,
            ray_actors=(args.actors or 2) if args.ray else None,
            ray_address=args.address,
        )
    except RunFinished as finished:
        TrainLog.line(str(finished))
    return 0


def style_label(
    config_name: str,
    config_description: str,
    corpus_name: str,
    corpus_tunes: int,
    name: str | None = None,
    description: str | None = None,
) -> tuple[str, str]:
    """(name, description) a trained style carries. ``--name``/``--description`` win; the
    default preset trained on another corpus is named after that corpus (a Bach-only style must
    not call itself the folk default); a name that is not the config's gets a description of
    what it was trained on."""
    from exports.errors import ConfigError

    if name is not None and not name.strip():
        raise ConfigError("--name must not be empty")
    label = name.strip() if name else config_name
    if name is None and config_name == "default" and corpus_name != "default":
        label = corpus_name
    if description is not None:
        return label, description
    if label != config_name:
        return (
            label,
            f"trained on {corpus_name} ({corpus_tunes:,} tunes) with the {config_name} preset",
        )
    return label, config_description


class RunFinished(Exception):
    """``--resume`` of a run that met its budget and was evaluated: nothing to train. The
    message is the one line to print (what was met, and how to train on or export)."""


def resume_command(
    out_dir: Path,
    corpus_arg: str,
    device_arg: str = "cpu",
    threads: int = 1,
    progress_bar: bool = True,
    extra: tuple[str, ...] = (),
) -> str:
    """The shell command that resumes the run in ``out_dir`` as it was started: its config,
    budget, seed and style label come from the checkpoint; the corpus, device, threads and bar
    are given again (they are not in the checkpoint). ``extra`` adds flags (a larger budget)."""
    import shlex

    words = ["deepjam", "train", "--out", str(out_dir), "--corpus", corpus_arg, "--resume"]
    if device_arg != "cpu":
        words += ["--device", device_arg]
    if threads != 1:
        words += ["--threads", str(threads)]
    if not progress_bar:
        words.append("--no-progress")
    return shlex.join([*words, *extra])


def finished_message(
    out_dir: Path, corpus_arg: str, global_step: int, elapsed_s: float, budget: Any
) -> str | None:
    """The one line for ``--resume`` of a finished run, or None when a budget is left (a raised
    ``--steps``/``--minutes``): which budget it met, how to train on, how to export."""
    met, raise_flags = [], []
    if global_step >= budget.env_steps:
        met.append(f"{global_step:,} of {budget.env_steps:,} env steps")
        raise_flags += ["--steps", str(2 * budget.env_steps)]
    if budget.minutes > 0 and elapsed_s >= budget.minutes * 60.0:
        met.append(f"{clock_text(elapsed_s)} of its {budget.minutes:g}-minute budget")
        raise_flags += ["--minutes", f"{2 * budget.minutes:g}"]
    if not met:
        return None
    checkpoint = Path(out_dir) / CHECKPOINT_NAME
    return (
        f"{out_dir} is already finished ({' and '.join(met)}); nothing to resume. To train it "
        f"further, raise the budget: {resume_command(out_dir, corpus_arg, extra=tuple(raise_flags))}"
        f"; or export it: deepjam export {checkpoint} -o {Path(out_dir).name}.onnx"
    )


def _pick_device(device_arg: str) -> Any:
    import torch

    from exports.errors import ConfigError

    if device_arg == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device_arg == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu or auto")
    return torch.device(device_arg)


def clock_text(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss`` from an hour) of a non-negative duration."""
    total = max(int(round(seconds)), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def binding_budget(
    steps_left: int, steps_per_s: float | None, time_left_s: float | None
) -> tuple[str, float]:
    """Which budget ends the DQN phase first, and when: ``("steps" | "time", eta_s)``.

    ``steps_per_s`` is the recent env-step rate (None before one is measured: the step budget's
    ETA is then unknown, inf); ``time_left_s`` None means no time budget. The time budget binds
    when it runs out before the steps do at the recent rate.
    """
    steps_eta_s = float("inf")
    if steps_left <= 0:
        steps_eta_s = 0.0
    elif steps_per_s is not None and steps_per_s > 0:
        steps_eta_s = steps_left / steps_per_s
    if time_left_s is not None and max(time_left_s, 0.0) < steps_eta_s:
        return "time", max(time_left_s, 0.0)
    return "steps", steps_eta_s


RATE_WINDOW_S = 2.0
"""The env-step rate behind a step-budget ETA is re-measured over windows this long and
smoothed (half the newest window, half the estimate before): it follows the slow-down when
updates start without jumping with every vector step."""


class TrainLog:
    """All of a run's reporting in one place: log lines on stderr, the tqdm bar, TensorBoard.

    ``progress`` takes each ``TrainProgress`` of the DQN loop, sums it into a window and, every
    ``log_interval_steps`` env steps, writes the window means to TensorBoard and to ``metrics``
    (``env_steps_per_s``, ``updates_per_s``, ``mean_reward``, ``mean_<term>``).

    The bar measures whichever budget binds first (``binding_budget``): with a time budget
    that ends first it counts wall time of the whole run against ``time_budget_s`` and its ETA
    is the time left, which is when the loop stops; else it counts env steps against
    ``total_steps`` with the ETA from the recent step rate. ``elapsed_s`` gives the run's wall
    time so far (over all processes of a resumed run).
    """

    def __init__(
        self,
        out_dir: Path,
        metrics: dict[str, Any],
        total_steps: int,
        initial_step: int,
        initial_updates: int,
        log_interval_steps: int,
        progress_bar: bool = True,
        time_budget_s: float | None = None,
        elapsed_s: Any = None,
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        self.metrics = metrics
        self.log_interval_steps = log_interval_steps
        self.total_steps = total_steps
        self.time_budget_s = time_budget_s
        self.elapsed_s = elapsed_s
        if time_budget_s is not None and elapsed_s is None:
            raise ValueError("a time budget needs elapsed_s, the run's wall-time clock")
        self.writer = SummaryWriter(log_dir=str(out_dir / "tb"))
        self.line(f"DQN: {self.budget_text()}")
        self.bar = tqdm(
            total=total_steps,
            initial=min(initial_step, total_steps),
            disable=not progress_bar,
            file=sys.stderr,
            bar_format="{percentage:3.0f}%|{bar}|",
            delay=1e9,  # nothing until the first show(), which sets the bar's text
        )
        self.window: dict[str, float] = {}
        self.episode_returns: list[float] = []
        """Returns of the episodes that ended in the current window."""
        self.recent_returns: list[float] = []
        """Those of the last complete window."""
        self.last_log_step = initial_step
        self.rate_start = (time.monotonic(), initial_step, initial_updates)
        self.rate_mark = (time.monotonic(), initial_step)
        self.steps_per_s: float | None = None
        """The recent env-step rate (see ``RATE_WINDOW_S``); None until one window has passed."""
        self.binding: str = "steps"
        """The budget that binds first, as the bar last showed it: "steps" or "time"."""
        self.eta_s: float = float("inf")
        """The bar's last ETA of the DQN phase, seconds."""
        self.postfix = ""
        self.last_refresh_s = 0.0
        self.show(initial_step, time.monotonic())

    @staticmethod
    def line(text: str) -> None:
        """One log line on stderr, prefixed ``deepjam train:``."""
        print(f"deepjam train: {text}", file=sys.stderr, flush=True)

    def _add(self, name: str, value: float | None) -> None:
        if value is not None:
            self.window[name] = self.window.get(name, 0.0) + value
            self.window[name + "#"] = self.window.get(name + "#", 0.0) + 1

    def budget_text(self) -> str:
        """What the run is bounded by, for the line before the DQN phase."""
        steps = f"{self.total_steps:,} env steps"
        if self.time_budget_s is None:
            return f"until {steps}"
        return (
            f"until {clock_text(self.time_budget_s)} of wall time or {steps}, whichever comes first"
        )

    def show(self, step: int, now: float) -> None:
        """Update the bar for ``step``: the binding budget, its progress and the true ETA."""
        time_left_s = None
        if self.time_budget_s is not None:
            time_left_s = self.time_budget_s - float(self.elapsed_s())
        self.binding, self.eta_s = binding_budget(
            self.total_steps - step, self.steps_per_s, time_left_s
        )
        rate = "" if self.steps_per_s is None else f" at {self.steps_per_s:,.0f}/s"
        eta = "?" if self.eta_s == float("inf") else clock_text(self.eta_s)
        if self.binding == "time" and self.time_budget_s is not None:
            elapsed = self.time_budget_s - (time_left_s or 0.0)
            self.bar.total, self.bar.n = self.time_budget_s, min(elapsed, self.time_budget_s)
            text = (
                f"{clock_text(elapsed)} of {clock_text(self.time_budget_s)} (time binds), "
                f"{step:,} steps{rate}, ETA {eta}"
            )
        else:
            self.bar.total, self.bar.n = self.total_steps, min(step, self.total_steps)
            text = f"{step:,} of {self.total_steps:,} steps (steps bind){rate}, ETA {eta}"
        text += self.postfix
        self.bar.bar_format = "{percentage:3.0f}%|{bar}| " + text.replace("{", "{{").replace(
            "}", "}}"
        )
        if getattr(self.bar, "delay", 0.0):  # a disabled bar has none
            self.bar.delay = 0.0
        self.bar.refresh()
        self.last_refresh_s = now

    def progress(self, p: Any) -> None:
        """Take one ``TrainProgress``; write a window to TensorBoard when one is complete."""
        import numpy as np

        now = time.monotonic()
        mark_s, mark_step = self.rate_mark
        if now - mark_s >= RATE_WINDOW_S:
            rate = (p.global_step - mark_step) / (now - mark_s)
            self.steps_per_s = rate if self.steps_per_s is None else 0.5 * (self.steps_per_s + rate)
            self.rate_mark = (now, p.global_step)
        if now - self.last_refresh_s >= 1.0:
            self.show(p.global_step, now)
        self._add("train/loss", p.loss)
        self._add("train/q_mean", p.q_mean)
        self._add("reward/mean", p.mean_reward)
        for term, value in p.terms.items():
            self._add(f"reward/{term}", value)
        self.episode_returns.extend(p.episode_returns)
        if p.global_step - self.last_log_step < self.log_interval_steps:
            return
        window, metrics, writer = self.window, self.metrics, self.writer
        for name in [k for k in window if not k.endswith("#")]:
            writer.add_scalar(name, window[name] / window[name + "#"], p.global_step)
        writer.add_scalar("train/epsilon", p.epsilon, p.global_step)
        start_s, start_step, start_updates = self.rate_start
        env_steps_per_s = (p.global_step - start_step) / max(now - start_s, 1e-9)
        updates_per_s = (p.updates - start_updates) / max(now - start_s, 1e-9)
        writer.add_scalar("perf/env_steps_per_s", env_steps_per_s, p.global_step)
        writer.add_scalar("perf/updates_per_s", updates_per_s, p.global_step)
        if self.episode_returns:
            mean_return = float(np.mean(self.episode_returns))
            writer.add_scalar("episode/return", mean_return, p.global_step)
            self.recent_returns[:] = self.episode_returns
            self.postfix = f"; return {mean_return:.2f}, eps {p.epsilon:.2f}"
        metrics["env_steps_per_s"] = env_steps_per_s
        metrics["updates_per_s"] = updates_per_s
        metrics["mean_reward"] = window.get("reward/mean", 0.0) / max(
            window.get("reward/mean#", 1.0), 1.0
        )
        for term in p.terms:
            key = f"reward/{term}"
            metrics[f"mean_{term}"] = window[key] / window[key + "#"]
        window.clear()
        self.episode_returns.clear()
        self.last_log_step = p.global_step
        self.rate_start = (now, p.global_step, p.updates)

    def mean_return(self) -> float | None:
        """Mean return of the latest episodes (the open window, else the last complete one)."""
        import numpy as np

        returns = self.episode_returns or self.recent_returns
        return float(np.mean(returns)) if returns else None

    def close(self) -> None:
        self.bar.close()
        self.writer.close()


@dataclasses.dataclass
class TrainRun:
    """Everything ``setup_run`` builds: config, corpus, style model, learner, env, clocks.

    The DQN loop (``run_loop``, or the Ray loop of ``training.scale.apex``) and
    ``final_evaluation`` work on it; ``save`` writes the checkpoint.
    """

    config: Any  # TrainConfig
    spec: Any  # exports.spec.Spec
    corpus: Any  # Corpus
    train_corpus: Any
    style_model: Any  # StyleModel
    network_args: dict[str, Any]
    learner: Any  # DqnLearner
    env_config: Any  # EnvConfig
    reward_weights: Any
    device: Any  # torch.device
    out_dir: Path
    metrics: dict[str, Any]
    resumed: bool
    started_s: float
    """time.monotonic() when this process started the run."""
    elapsed_before_s: float
    """Wall time the run had spent before this process (0 unless resumed)."""
    rl_elapsed_before_s: float
    rl_started_s: float = 0.0
    time_budget_s: float | None = None
    finished: bool = False
    """Set by ``final_evaluation``: the budget was met and the run evaluated; saved with the
    checkpoint, so ``--resume`` of a finished run says so instead of training on."""

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def elapsed_s(self) -> float:
        """Wall time of the whole run so far, over all processes of a resumed run."""
        return self.elapsed_before_s + time.monotonic() - self.started_s

    def time_left_s(self) -> float:
        """Wall time left of the budget (inf without one)."""
        if self.time_budget_s is None:
            return float("inf")
        return self.time_budget_s - self.elapsed_s()

    def rl_elapsed_s(self) -> float:
        """Wall time spent in the DQN phase, over all processes of the run."""
        return self.rl_elapsed_before_s + time.monotonic() - self.rl_started_s

    def deadline_s(self) -> float | None:
        """The ``time.monotonic()`` at which the time budget ends; None without one."""
        if self.time_budget_s is None:
            return None
        return time.monotonic() + max(self.time_left_s(), 0.0)

    def progress_handler(self, log: TrainLog, stop: StopRequest | None = None) -> Any:
        """The DQN loop's ``on_progress``: shows the progress on ``log``, saves a checkpoint every
        ``budget.checkpoint_interval_s``, and returns True (stop) once ``stop`` is requested."""
        interval_s = self.config.budget.checkpoint_interval_s
        last_checkpoint_s = time.monotonic()

        def on_progress(p: Any) -> bool:
            nonlocal last_checkpoint_s
            log.progress(p)
            if stop is not None and stop.requested:
                return True
            if time.monotonic() - last_checkpoint_s >= interval_s:
                mean_return = log.mean_return()
                if mean_return is not None:
                    self.metrics["mean_episode_return"] = mean_return
                self.save()
                last_checkpoint_s = time.monotonic()
            return False

        return on_progress

    def make_env(self, seed: int, validation: bool = False) -> Any:
        """A ``MelodyEnv`` on the training tunes (or the validation ones) with this run's reward."""
        from training.env.environment import MelodyEnv

        corpus = self.train_corpus
        if validation:
            eval_corpus = self.corpus.subset(validation=True)
            corpus = eval_corpus if eval_corpus.n_tunes else self.train_corpus
        env_config = dataclasses.replace(self.env_config, seed=seed)
        return MelodyEnv(
            self.spec, corpus, env_config, self.reward_weights, self.style_model.log_probs
        )

    def save(self) -> None:
        """Write the checkpoint atomically, keeping the one before as checkpoint.prev.pt."""
        from training.checkpoint import save_checkpoint

        checkpoint_path, learner, config = self.checkpoint_path, self.learner, self.config
        if checkpoint_path.exists():
            tmp = self.out_dir / f".{PREVIOUS_CHECKPOINT_NAME}.tmp"
            shutil.copyfile(checkpoint_path, tmp)
            os.replace(tmp, self.out_dir / PREVIOUS_CHECKPOINT_NAME)
        save_checkpoint(
            checkpoint_path,
            q_network=learner.q_network,
            target_network=learner.target_network,
            optimizer=learner.optimizer,
            network_args=self.network_args,
            spec=self.spec,
            style_name=config.style.name,
            style_description=config.style.description,
            reward_weights=self.reward_weights.to_dict(),
            corpus=self.corpus.summary(),
            global_step=learner.global_step,
            metrics=self.metrics,
            config=config.to_dict(),
            style_model=self.style_model.to_dict(),
            extra={
                "learner": learner.state_dict(),
                "elapsed_s": self.elapsed_s(),
                "rl_elapsed_s": self.rl_elapsed_s(),
                "finished": self.finished,
            },
        )


def setup_run(
    config_arg: str,
    corpus_arg: str,
    out_dir: Path,
    resume: bool = False,
    device_arg: str = "cpu",
    minutes: float | None = None,
    steps: int | None = None,
    seed: int | None = None,
    threads: int = 1,
    overrides: dict[str, Any] | None = None,
    log: Any = TrainLog.line,
    name: str | None = None,
    description: str | None = None,
) -> TrainRun:
    """Load the config and corpus, train (or restore) the style model, build the learner.

    ``overrides`` maps dotted config keys (``"learner.learning_rate"``) to values, applied
    after the config file and before the budget flags (``deepjam sweep`` uses it). ``name`` /
    ``description`` label the style (see ``style_label``). A fresh run writes its first
    checkpoint here, so a kill from then on resumes without retraining the style model.
    Returns the ``TrainRun``; nothing of the DQN phase has run yet.
    """
    from functools import partial

    import numpy as np
    import torch

    from exports.errors import ConfigError
    from training.checkpoint import CheckpointError, load_checkpoint
    from training.config import apply_overrides, config_from_dict, load_config
    from training.data.corpus import resolve_corpus
    from training.dqn import DqnLearner
    from training.finetune import load_start_weights, start_weights
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
    else:
        if checkpoint_path.exists():
            raise ConfigError(
                f"{checkpoint_path} exists; pass --resume to continue it, or choose another --out"
            )
        config = apply_overrides(load_config(config_arg), overrides or {})
    if minutes is not None:
        config = config.replace("budget", minutes=float(minutes))
    if steps is not None:
        config = config.replace("budget", env_steps=int(steps))
    if seed is not None:
        config = config.replace("", seed=int(seed))
    budget = config.budget
    if checkpoint is not None:
        # A run evaluated by final_evaluation is finished (older checkpoints: it has the figures).
        done = checkpoint.extra.get("finished", "eval_greedy_return" in checkpoint.metrics)
        message = finished_message(
            out_dir,
            corpus_arg,
            checkpoint.global_step,
            float(checkpoint.extra.get("elapsed_s", 0.0)),
            budget,
        )
        if done and message is not None:
            raise RunFinished(message)
        log(f"resuming {checkpoint_path} at step {checkpoint.global_step:,}")
    spec = config.build_spec()
    # A resumed run draws new episodes rather than replaying the first ones.
    env_seed = config.seed + (checkpoint.global_step if checkpoint is not None else 0)
    run = TrainRun(
        config=config,
        spec=spec,
        corpus=None,
        train_corpus=None,
        style_model=None,
        network_args=network_args_for(
            spec, config.network.hidden, config.network.dueling, kind=config.network.kind
        ),
        learner=None,
        env_config=dataclasses.replace(config.env_config(), seed=env_seed),
        reward_weights=config.reward_weights(),
        device=device,
        out_dir=out_dir,
        metrics=dict(checkpoint.metrics) if checkpoint else {},
        resumed=checkpoint is not None,
        started_s=started,
        elapsed_before_s=float(checkpoint.extra.get("elapsed_s", 0.0)) if checkpoint else 0.0,
        rl_elapsed_before_s=(
            float(checkpoint.extra.get("rl_elapsed_s", 0.0)) if checkpoint else 0.0
        ),
        time_budget_s=budget.minutes * 60.0 if budget.minutes > 0 else None,
    )
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    # --- corpus -----------------------------------------------------------------------------
    corpus = resolve_corpus(corpus_arg)  # warns on stderr when it is small
    train_corpus = corpus.subset(validation=False)
    if train_corpus.n_tunes == 0:
        train_corpus = corpus
    run.corpus, run.train_corpus = corpus, train_corpus
    log(
        f"corpus {corpus.name!r}: {corpus.n_tunes} tunes ({train_corpus.n_tunes} for training), "
        f"{len(corpus.events):,} steps"
    )
    if checkpoint is None or name is not None or description is not None:
        label, about = style_label(
            config.style.name,
            config.style.description,
            corpus.name,
            corpus.n_tunes,
            name,
            description,
        )
        config = run.config = config.replace("style", name=label, description=about)
    log(f"style {config.style.name!r}: {config.style.description}")
    if checkpoint is not None and checkpoint.corpus != corpus.summary():
        log(
            f"warning: this corpus ({corpus.summary()}) differs from the one the run started "
            f"with ({checkpoint.corpus}); pass the same --corpus to resume faithfully"
        )

    # --- phase 1: the style model -----------------------------------------------------------
    start = None  # a small corpus: fine-tune from a shipped style's weights (training.finetune)
    if checkpoint is None:
        style_args = network_args_for(
            spec, config.network.hidden, dueling=False, kind=config.network.kind
        )
        fits = [build_q_network(style_args), build_q_network(run.network_args)]
        start = start_weights(config.finetune, corpus.n_tunes, spec, fits, log)
    if checkpoint is not None and checkpoint.style_model is not None:
        style_model = StyleModel.from_dict(checkpoint.style_model, device)
    else:
        style_config = config.style_model
        if run.time_budget_s is not None:
            # Leave at least half of the budget to the DQN.
            cap = max(run.time_left_s() / 2.0, 1.0) / 60.0
            limit = min(style_config.max_minutes, cap) if style_config.max_minutes > 0 else cap
            style_config = dataclasses.replace(style_config, max_minutes=limit)
        log(f"style model: up to {style_config.epochs} epochs, {style_config.max_minutes:.2f} min")
        style_model = train_style_model(
            spec,
            corpus,
            style_config,
            config.network.hidden,
            config.seed,
            device,
            log,
            env_config=run.env_config,
            kind=config.network.kind,
            start=(
                None
                if start is None
                else partial(load_start_weights, weights=start, what="style model", log=log)
            ),
        )
    run.style_model = style_model
    sm = style_model.metrics
    log(
        f"style model: validation log-lik {sm['style_val_log_lik']:.3f} nats/step "
        f"(uniform {sm['style_uniform_log_lik']:.3f}), accuracy {sm['style_val_accuracy']:.3f}"
    )
    run.metrics.update(sm)

    # --- the DQN learner --------------------------------------------------------------------
    q_network = build_q_network(run.network_args)
    target_network = build_q_network(run.network_args)
    if start is not None:
        # Fine-tuning: the shipped style's Q-values, not the freshly tuned style model's logits.
        load_start_weights(q_network, start, "Q-network", log)
    elif checkpoint is None and config.network.init_from_style_model:
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
    run.learner = learner
    # The exploration schedule runs over the DQN phase's share of a wall-time budget.
    run.rl_started_s = time.monotonic()
    if run.time_budget_s is not None:
        rl_budget_s = run.rl_elapsed_before_s + max(run.time_left_s(), 1e-9)
        learner.time_fraction = lambda: run.rl_elapsed_s() / rl_budget_s
    if checkpoint is None:
        run.save()  # a kill from here on resumes without retraining the style model
    return run


def make_log(run: TrainRun, progress_bar: bool = True) -> TrainLog:
    """The run's ``TrainLog``, continuing its step and update counters."""
    return TrainLog(
        run.out_dir,
        run.metrics,
        run.config.budget.env_steps,
        run.learner.global_step,
        run.learner.updates,
        run.config.budget.log_interval_steps,
        progress_bar,
        time_budget_s=run.time_budget_s,
        elapsed_s=run.elapsed_s,
    )


class StopRequest:
    """Set by the first Ctrl-C (SIGINT) inside ``stop_on_sigint``: the DQN loop stops at the
    next vector step, so the checkpoint it saves is a consistent one. A second Ctrl-C raises
    KeyboardInterrupt at once, as usual."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def stop_on_sigint() -> Iterator[StopRequest]:
    """Within the block, the first SIGINT sets ``StopRequest.requested`` instead of raising;
    the handler before is restored after (also outside the main thread: a no-op there)."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:  # e.g. `nohup ... &`: SIGINT is meant to be ignored
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        stop.requested = True
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run_loop(run: TrainRun, log: TrainLog, stop: StopRequest | None = None) -> None:
    """The DQN phase in this process: ``DqnLearner.learn`` on the vectorized env until the step
    or time budget is met (or ``stop`` is requested), with a checkpoint every
    ``budget.checkpoint_interval_s``."""
    budget, learner = run.config.budget, run.learner
    env = run.make_env(run.env_config.seed)
    learner.learn(env, budget.env_steps, run.deadline_s(), run.progress_handler(log, stop))
    log.show(learner.global_step, time.monotonic())


def final_evaluation(run: TrainRun, log: TrainLog, rl_s: float, start: tuple[int, int]) -> None:
    """After the DQN phase: the run's figures into ``metrics``, greedy Q against random play and
    the style model's own choice on fresh validation episodes, the degenerate-pattern check
    (``training.eval.musicianship.check_style``), the last checkpoint and ``<out>/metrics.json``.
    ``rl_s`` is this process's DQN wall time; ``start`` the learner's (global_step, updates) when
    it began."""
    import numpy as np

    from training.dqn import evaluate_policy, select_actions
    from training.eval.evaluate import MUSICIANSHIP_FIGURES
    from training.eval.musicianship import check_style, style_check_line
    from training.finetune import q_values

    learner, metrics, spec, config = run.learner, run.metrics, run.spec, run.config
    mean_return = log.mean_return()
    if mean_return is not None:
        metrics["mean_episode_return"] = mean_return
    metrics["global_step"] = learner.global_step
    metrics["updates"] = learner.updates
    if rl_s > 0 and learner.global_step > start[0]:
        metrics["env_steps_per_s"] = (learner.global_step - start[0]) / rl_s
        metrics["updates_per_s"] = (learner.updates - start[1]) / rl_s
    log.line(
        "DQN phase over; scoring greedy Q, the style model and random play on validation episodes"
    )
    eval_env = run.make_env(config.seed + 1, validation=True)  # the same episodes every run
    eval_steps = 2 * eval_env.max_turn_steps
    eval_rng = np.random.default_rng(config.seed + 1)
    policies = {
        "greedy": lambda s: select_actions(learner.q_network, s, 0.0, eval_rng, run.device),
        "style_greedy": lambda s: np.argmax(run.style_model.log_probs(s), axis=1),
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
    run.finished = True
    log.line(
        "validation episodes, mean return: greedy Q {eval_greedy_return:.2f}, style model "
        "greedy {eval_style_greedy_return:.2f}, random {eval_random_return:.2f}".format(**metrics)
    )
    terms = sorted(
        k
        for k in metrics
        if k.startswith("eval_greedy_theory/") or k.startswith("eval_greedy_play/")
    )
    log.line(
        "reward terms per step (greedy, validation): "
        + ", ".join(f"{k.split('/', 1)[1]} {metrics[k]:+.3f}" for k in terms)
    )
    # Degenerate answers (one-note runs, trills, one circled pitch): answers to held-out calls
    # played as live plays them, judged by the rule eval and export use.
    try:
        heard = check_style(spec, lambda s: q_values(learner.q_network, s, run.device), run.corpus)
    except ValueError as err:  # no held-out call of 3+ notes (a tiny corpus): nothing to answer
        log.line(f"degenerate-pattern check skipped: {err}")
    else:
        for name in MUSICIANSHIP_FIGURES:
            metrics[f"musicianship.{name}"] = float(getattr(heard, name))
        line, degenerate = style_check_line(heard, "this style")
        metrics["musicianship.degenerate"] = float(degenerate)
        log.line(line)
    run.save()
    (run.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    log.line(
        f"done: {learner.global_step:,} env steps, {learner.updates:,} updates in {rl_s:.0f} s "
        f"of DQN ({metrics.get('env_steps_per_s', 0.0):,.0f} env steps/s, "
        f"{metrics.get('updates_per_s', 0.0):.0f} updates/s); "
        f"mean episode return {metrics.get('mean_episode_return', float('nan')):.2f}; "
        f"checkpoint {run.checkpoint_path}"
    )


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
    overrides: dict[str, Any] | None = None,
    name: str | None = None,
    description: str | None = None,
    ray_actors: int | None = None,
    ray_address: str | None = None,
) -> Path:
    """Train (or resume) a style into ``out_dir/checkpoint.pt``; returns the checkpoint's path.

    Three stages: ``setup_run`` (config, corpus, style model, learner), ``run_loop`` (the DQN
    phase), ``final_evaluation`` (figures, last checkpoint, metrics.json). With ``ray_actors``
    the DQN phase is the Ape-X loop of ``training.scale.apex`` (that many Ray actors, on the
    cluster at ``ray_address`` or a local one); the run folder is the same.

    Ctrl-C (SIGINT) in the DQN phase stops it at the next vector step (the Ape-X loop: as soon
    as its actors are stopped); then the checkpoint is written and ``saved at step N; resume
    with: <command>`` printed, and KeyboardInterrupt is raised (the CLI exits 130). Raises
    ``RunFinished`` on ``resume`` of a finished run.
    """
    ray_flags: tuple[str, ...] = ()
    if ray_actors is not None:
        ray_flags = ("--ray", "--actors", str(ray_actors))
        ray_flags += ("--address", ray_address) if ray_address else ()
    resume_line = resume_command(
        Path(out_dir), corpus_arg, device_arg, threads, progress_bar, ray_flags
    )
    try:
        run = setup_run(
            config_arg,
            corpus_arg,
            out_dir,
            resume,
            device_arg,
            minutes,
            steps,
            seed,
            threads,
            overrides,
            name=name,
            description=description,
        )
    except KeyboardInterrupt:
        interrupted_before_training(Path(out_dir) / CHECKPOINT_NAME, resume_line)
        raise
    log = make_log(run, progress_bar)
    start = (run.learner.global_step, run.learner.updates)
    rl_started_s = time.monotonic()
    try:
        if ray_actors is not None:
            from training.scale.apex import run_apex_loop

            try:  # a Ctrl-C stops the actors and raises KeyboardInterrupt here
                run_apex_loop(run, log, ray_actors, ray_address)
            finally:
                log.bar.close()
        else:
            with stop_on_sigint() as stop:
                try:
                    run_loop(run, log, stop)
                finally:
                    log.bar.close()
            if stop.requested:
                raise KeyboardInterrupt
        final_evaluation(run, log, time.monotonic() - rl_started_s, start)
    except KeyboardInterrupt:
        run.save()
        log.line(f"stopped: saved at step {run.learner.global_step:,}; resume with: {resume_line}")
        raise
    finally:
        log.close()
    return run.checkpoint_path


def interrupted_before_training(checkpoint_path: Path, resume_line: str) -> None:
    """The line for a Ctrl-C before the DQN phase began: the checkpoint there is the one to
    resume (a resumed run's, unchanged), or there is none yet (the style model was training)."""
    if checkpoint_path.exists():
        from training.checkpoint import load_checkpoint

        step = load_checkpoint(checkpoint_path).global_step
        TrainLog.line(f"stopped: saved at step {step:,}; resume with: {resume_line}")
    else:
        TrainLog.line(
            "stopped before the first checkpoint (the style model was training): nothing was "
            "saved; start again with the same command"
        )
