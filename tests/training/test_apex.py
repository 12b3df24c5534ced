"""``deepjam train --ray --actors N``: a real 2-actor Ape-X run on a local Ray cluster.

On the session's one Ray cluster (``ray_local``, tests/conftest.py); the runs are tiny (32 envs,
a [32] network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("ray")

from exports.errors import ConfigError  # noqa: E402
from live_agent.cli import main as deepjam_main  # noqa: E402
from tests.support.corpus import tiny_corpus, write_config  # noqa: E402
from training.checkpoint import load_checkpoint  # noqa: E402
from training.cli.train_command import train  # noqa: E402
from training.scale.apex import actor_epsilons  # noqa: E402

torch.set_num_threads(1)


def test_ape_x_epsilons() -> None:
    assert actor_epsilons(1) == [0.4]
    eps = actor_epsilons(4)
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.4**8)
    assert all(a > b for a, b in zip(eps, eps[1:], strict=False))
    with pytest.raises(ConfigError, match="--actors"):
        actor_epsilons(0)


def test_a_two_actor_ray_run_trains_checkpoints_and_resumes(tmp_path: Path, ray_local) -> None:
    corpus = tiny_corpus(tmp_path / "tiny.npz")
    config = write_config(tmp_path / "tiny.toml")
    out = tmp_path / "run"
    path = train(str(config), str(corpus), out, steps=6000, progress_bar=False, ray_actors=2)
    checkpoint = load_checkpoint(path)
    assert checkpoint.global_step >= 6000
    metrics = checkpoint.metrics
    apex = metrics["apex"]
    assert apex["actors"] == 2 and apex["epsilons"] == actor_epsilons(2)
    # Both actors contributed, each with its own ε.
    assert all(n > 0 for n in apex["transitions"]) and sum(apex["transitions"]) >= 6000
    assert apex["epsilons"][0] == pytest.approx(0.4) and apex["epsilons"][1] < 0.001
    # The learner updated, broadcast its weights, and the actors acted with the new ones.
    assert metrics["updates"] > 0 and apex["updates"] == metrics["updates"]
    assert apex["broadcasts"] >= 1 and min(apex["weight_versions"]) >= 1
    style_weights = checkpoint.style_model["state_dict"]  # the Q-network started as these
    moved = any(not torch.equal(v, style_weights[k]) for k, v in checkpoint.q_network_state.items())
    assert moved
    # The run folder is a single-process run's.
    assert json.loads((out / "metrics.json").read_text())["global_step"] == checkpoint.global_step
    assert np.isfinite(metrics["eval_greedy_return"]) and np.isfinite(metrics["mean_reward"])
    assert list((out / "tb").glob("events.out.tfevents.*"))

    # --resume continues the learner from the saved step and updates.
    saved_step, saved_updates = checkpoint.global_step, checkpoint.extra["learner"]["updates"]
    target = saved_step + 1500
    train(
        str(config), str(corpus), out, resume=True, steps=target, progress_bar=False, ray_actors=2
    )
    resumed = load_checkpoint(path)
    assert resumed.metrics["apex"]["started_at_step"] == saved_step
    assert resumed.metrics["apex"]["started_at_updates"] == saved_updates
    assert target <= resumed.global_step < target + 2 * 2 * 4 * 32  # chunks in flight
    assert resumed.extra["learner"]["updates"] > saved_updates


def test_ray_flags_are_checked_in_one_line(tmp_path: Path, capsys) -> None:
    code = deepjam_main(["train", "--out", str(tmp_path / "r"), "--actors", "2"])
    assert code == 2 and "--actors and --address need --ray" in capsys.readouterr().err
    code = deepjam_main(["train", "--out", str(tmp_path / "r"), "--ray", "--actors", "0"])
    assert code == 2 and "--actors must be >= 1" in capsys.readouterr().err
