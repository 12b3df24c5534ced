"""``deepjam train``: a real tiny run end to end, kill-and-resume, and one-line config errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from exports.errors import ConfigError, DeepjamError
from exports.spec import DEFAULT_SPEC
from live_agent.cli import main as deepjam_main
from tests.support.corpus import tiny_corpus, write_config
from training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from training.cli.train_command import CHECKPOINT_NAME, train
from training.config import StyleConfig, config_from_dict, load_config
from training.networks import build_q_network, network_args_for

torch.set_num_threads(1)


def test_default_preset_is_a_valid_config() -> None:
    config = load_config("default")
    assert config.style.name == "default"
    assert config.env["n_envs"] >= 64
    assert config.budget.minutes <= 10
    assert config_from_dict(config.to_dict()) == config


@pytest.mark.slow  # a training run
def test_a_tiny_training_run_writes_a_loadable_checkpoint(tmp_path: Path, capsys) -> None:
    corpus = tiny_corpus(tmp_path / "tiny.npz")
    config = write_config(tmp_path / "tiny.toml")
    out = tmp_path / "run"
    started = time.monotonic()
    path = train(str(config), str(corpus), out, progress_bar=True)
    assert time.monotonic() - started < 20
    # No time budget: the bar counts the 3,000 steps, and ends on them.
    err = capsys.readouterr().err
    assert "DQN: until 3,000 env steps" in err
    assert re.search(r"100%\|[^\r\n]*\| [\d,]+ of 3,000 steps \(steps bind\)", err), err
    assert "time binds" not in err
    checkpoint = load_checkpoint(path)
    assert checkpoint.global_step >= 3000
    assert checkpoint.style_name == "tiny" and checkpoint.style_description == "a test style"
    assert checkpoint.spec == DEFAULT_SPEC
    assert checkpoint.corpus["name"] == "tiny" and checkpoint.corpus["tunes"] == 10
    assert checkpoint.config["learner"]["batch_size"] == 32
    assert set(checkpoint.reward_weights) == {"w_style", "w_theory", "w_play"}
    metrics = checkpoint.metrics
    assert metrics["style_val_log_lik"] > metrics["style_uniform_log_lik"]
    assert metrics["updates"] > 0 and np.isfinite(metrics["mean_reward"])
    # Learned something: the style model beats random play. (86 DQN updates are too few to
    # promise that the greedy Q does under every reward, seed by seed; test_dqn proves the
    # learner learns.)
    assert metrics["eval_style_greedy_return"] > metrics["eval_random_return"]
    assert np.isfinite(metrics["eval_greedy_return"])
    q = checkpoint.q_network()(torch.zeros(2, DEFAULT_SPEC.state_dim))
    assert q.shape == (2, DEFAULT_SPEC.n_actions)
    assert json.loads((out / "metrics.json").read_text())["global_step"] == checkpoint.global_step
    assert list((out / "tb").glob("events.out.tfevents.*"))
    # An existing run is not overwritten by accident.
    with pytest.raises(ConfigError, match="--resume"):
        train(str(config), str(corpus), out, progress_bar=False)
    # Resuming it says in one line that it is finished, and how to go on; it trains nothing.
    mtime = path.stat().st_mtime_ns
    resume = ["train", "--out", str(out), "--corpus", str(corpus), "--resume"]
    assert deepjam_main(resume) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is already finished" in lines[0], lines
    assert f"{checkpoint.global_step:,} of 3,000 env steps" in lines[0]
    assert "--resume --steps 6000" in lines[0] and "deepjam export" in lines[0]
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    corpus = tiny_corpus(tmp_path / "tiny.npz")
    config = write_config(tmp_path / "tiny.toml", interval_s=0.5)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "live_agent.cli", "train", "--config", str(config)]
    command += ["--corpus", str(corpus), "--out", str(out), "--steps", "100000000"]
    process = subprocess.Popen(
        command + ["--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        checkpoint_path = out / CHECKPOINT_NAME
        while time.monotonic() < deadline and process.poll() is None:
            if checkpoint_path.exists() and load_checkpoint(checkpoint_path).global_step > 2000:
                break
            time.sleep(0.2)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()
    saved = load_checkpoint(out / CHECKPOINT_NAME)  # atomic writes: never half a file
    assert saved.global_step > 2000
    saved_updates = saved.extra["learner"]["updates"]
    target = saved.global_step + 1024
    resumed = subprocess.run(
        command[:-1] + [str(target), "--resume", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out / CHECKPOINT_NAME} at step {saved.global_step:,}" in resumed.stderr
    assert "style model epoch" not in resumed.stderr  # the style model came from the checkpoint
    final = load_checkpoint(out / CHECKPOINT_NAME)
    assert target <= final.global_step < target + 32  # 32 parallel envs per vector step
    assert final.extra["learner"]["updates"] >= saved_updates
    assert (out / "checkpoint.prev.pt").exists()


def test_bad_config_is_one_line_naming_the_field(tmp_path: Path, capsys) -> None:
    corpus = tiny_corpus(tmp_path / "tiny.npz")
    bad = tmp_path / "bad.toml"
    bad.write_text("[learner]\ngamma = 1.5\n")
    code = deepjam_main(
        ["train", "--config", str(bad), "--corpus", str(corpus), "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "learner.gamma" in err and "1.5" in err
    with pytest.raises(ConfigError, match="no preset named 'nope'"):
        load_config("nope")
    with pytest.raises(ConfigError, match="network.hidden"):
        config_from_dict({"network": {"hidden": "wide"}})
    with pytest.raises(ConfigError, match="'env.n_env'"):
        config_from_dict({"env": {"n_env": 8}})
    with pytest.raises(ConfigError, match="reward: unknown reward weight 'w_bogus'"):
        config_from_dict({"reward": {"w_bogus": 1.0}})
    with pytest.raises(ConfigError, match="steps_per_beat must be 4"):
        config_from_dict({"spec": {"steps_per_beat": 3}}).build_spec()


def test_damaged_checkpoints_are_refused_in_one_line(tmp_path: Path) -> None:
    args = network_args_for(DEFAULT_SPEC, [8])
    network = build_q_network(args)
    path = save_checkpoint(
        tmp_path / "ok.pt",
        q_network=network,
        network_args=args,
        spec=DEFAULT_SPEC,
        style_name="s",
        reward_weights={"w_style": 1.0},
        corpus={"name": "c"},
        global_step=7,
        config=StyleConfig().to_dict(),
    )
    assert load_checkpoint(path).global_step == 7
    (tmp_path / "run").mkdir()
    path.rename(tmp_path / "run" / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        train("default", "unused", tmp_path / "run", resume=True, progress_bar=False)
    path = (tmp_path / "run" / CHECKPOINT_NAME).rename(path)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:500])
    for damaged in (cut, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(damaged)
        assert isinstance(info.value, DeepjamError) and "\n" not in str(info.value)
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": 1, "hello": 1}, wrong)
    with pytest.raises(CheckpointError, match="not a deepjam checkpoint"):
        load_checkpoint(wrong)
