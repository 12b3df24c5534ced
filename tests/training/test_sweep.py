"""``deepjam sweep``: a real 2-trial Ray Tune sweep of tiny trials, kill-and-resume, and the
spec's one-line errors. The session's one local Ray cluster (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from exports.errors import ConfigError
from live_agent.cli import main as deepjam_main
from tests.support.corpus import tiny_corpus
from tests.support.waiting import eventually
from training.scale.sweep import TRIAL_RECORD, expand_trials, load_spec, rank, run_sweep

ray = pytest.importorskip("ray")

TINY_STYLE = """
seed = 1
[style]
name = "tiny"
[env]
n_envs = 16
[network]
hidden = [16]
[learner]
batch_size = 16
buffer_size = 2048
learning_starts = 64
target_update_interval = 10
[budget]
env_steps = 600
minutes = 0
checkpoint_interval_s = 60
log_interval_steps = 256
[style_model]
epochs = 1
batch_size = 128
"""

SPEC = """
[sweep]
config = "tiny.toml"
corpus = "tiny.npz"
metric = "{metric}"
mode = "{mode}"
max_concurrent = {concurrent}
[eval]
compositions = 8
key_calls = 2
[search]
learner.learning_rate = [1e-4, 3e-3]
"""


@pytest.fixture
def cluster(ray_local: Any) -> str:
    """The address of the session's one Ray cluster (tests/conftest.py)."""
    return str(ray_local.get_runtime_context().gcs_address)


def write_sweep(
    folder: Path, metric: str = "train.eval_greedy_return", mode: str = "max", concurrent: int = 0
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tiny_corpus(folder / "tiny.npz")
    (folder / "tiny.toml").write_text(TINY_STYLE)
    spec = folder / "sweep.toml"
    spec.write_text(SPEC.format(metric=metric, mode=mode, concurrent=concurrent))
    return spec


def table_order(results_md: Path) -> list[str]:
    return [
        line.split("|")[2].strip()
        for line in results_md.read_text().splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    ]


def test_a_two_trial_sweep_on_ray_writes_run_folders_table_and_plot(
    tmp_path: Path, cluster: str
) -> None:
    spec = load_spec(write_sweep(tmp_path, metric="fidelity.interval_js_bits", mode="min"))
    result = run_sweep(spec, tmp_path / "out", use_ray=True)
    assert not result.failed
    assert [r["name"] for r in result.ranked] == sorted(
        ["trial-000", "trial-001"],
        key=lambda n: next(r for r in result.ranked if r["name"] == n)["figures"][spec.metric],
    )
    for trial in ("trial-000", "trial-001"):
        folder = tmp_path / "out" / "trials" / trial
        for name in ("checkpoint.pt", "metrics.json", "eval.md", "piano_rolls.png", TRIAL_RECORD):
            assert (folder / name).is_file(), f"{trial}: no {name}"
        assert list((folder / "tb").glob("events.out.tfevents.*"))
        record = json.loads((folder / TRIAL_RECORD).read_text())
        assert record["figures"][spec.metric] >= 0  # a JS divergence, from this trial's eval
        assert "## Listening" in (folder / "eval.md").read_text()
    lrs = {r["params"]["learner.learning_rate"] for r in result.ranked}
    assert lrs == {1e-4, 3e-3}
    # The table ranks by the metric, smallest first (mode = "min").
    values = {r["name"]: r["figures"][spec.metric] for r in result.ranked}
    order = table_order(result.table_path)
    assert order == sorted(values, key=values.__getitem__)
    assert result.plot_path.stat().st_size > 10_000
    # Ranking follows the mode.
    flipped = rank(result.ranked, spec.metric, "max")
    assert [r["name"] for r in flipped] == order[::-1]


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_rerunning_finished_trials(
    tmp_path: Path, cluster: str
) -> None:
    spec_path = write_sweep(tmp_path, concurrent=1)  # one trial at a time
    out = tmp_path / "out"
    command = [sys.executable, "-m", "live_agent.cli", "sweep", str(spec_path), "--out", str(out)]
    process = subprocess.Popen(
        command + ["--ray", "--address", cluster],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    first = out / "trials" / "trial-000" / TRIAL_RECORD
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None and not first.exists():
            time.sleep(0.2)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert first.exists(), "the first trial did not finish in time"
        os.killpg(process.pid, signal.SIGKILL)  # the sweep process, for real
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()
    assert not (out / "results.md").exists()  # killed before the end
    finished = first.read_text()
    stamps = {p: p.stat().st_mtime_ns for p in first.parent.rglob("*") if p.is_file()}
    # The cluster reaps the killed sweep's trial: its CPU comes back.
    total_cpus = ray.cluster_resources().get("CPU", 0)
    eventually(lambda: ray.available_resources().get("CPU", 0) >= total_cpus, timeout_s=30)
    result = run_sweep(load_spec(spec_path), out, resume=True, use_ray=True)
    assert result.skipped == ["trial-000"]
    assert not result.failed
    assert first.read_text() == finished
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # trial-000 was not rerun
    assert sorted(r["name"] for r in result.ranked) == ["trial-000", "trial-001"]
    assert sorted(table_order(result.table_path)) == ["trial-000", "trial-001"]
    assert (out / "trials" / "trial-001" / "checkpoint.pt").is_file()


def test_the_spec_is_checked_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path = write_sweep(tmp_path)
    good = spec_path.read_text()
    cases = [
        ("[sweep]\n", "[sweep]\nmetrik = 1\n", "unknown key 'sweep.metrik'"),
        ('"train.eval_greedy_return"', '"bogus"', "sweep.metric: unknown metric 'bogus'"),
        (
            "[1e-4, 3e-3]",
            "{ log_uniform = [1e-3, 1e-4] }",
            "search.learner.learning_rate.log_uniform: expected [low, high], numbers, low < high",
        ),
        ('mode = "max"', 'mode = "up"', 'sweep.mode: expected "max" or "min"'),
        ("[search]", "[serch]", "unknown table or key 'serch'"),
    ]
    for old, new, expected in cases:
        spec_path.write_text(good.replace(old, new))
        with pytest.raises(ConfigError) as info:
            load_spec(spec_path)
        assert expected in str(info.value) and "\n" not in str(info.value)
    # An unknown config key and a value the config refuses, named with the config's rule.
    spec_path.write_text(good.replace("learner.learning_rate", "learner.lr"))
    with pytest.raises(ConfigError, match="unknown config field 'learner.lr'"):
        load_spec(spec_path)
    spec_path.write_text(good.replace("[1e-4, 3e-3]", "[1e-4, -1.0]"))
    with pytest.raises(ConfigError, match="learner.learning_rate: expected a number > 0"):
        load_spec(spec_path)
    # Through the CLI: exit 2 and one line on stderr.
    spec_path.write_text(good.replace('"train.eval_greedy_return"', '"bogus"'))
    code = deepjam_main(["sweep", str(spec_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "unknown metric 'bogus'" in err
    # Grid and random axes: the grid crossed with the draws, the same trials every time.
    spec_path.write_text(
        good.replace("[sweep]\n", "[sweep]\nsamples = 3\n")
        + 'reward.w_play = { uniform = [1.0, 2.0] }\ncorpus = ["tiny.npz", "other.npz"]\n'
    )
    spec = load_spec(spec_path)
    trials = expand_trials(spec)
    assert len(trials) == 2 * 2 * 3
    assert [t.to_dict() for t in trials] == [t.to_dict() for t in expand_trials(spec)]
    assert all(1.0 <= t.overrides["reward.w_play"] <= 2.0 for t in trials)
    assert {Path(t.corpus).name for t in trials} == {"tiny.npz", "other.npz"}
    assert len({t.overrides["reward.w_play"] for t in trials}) == len(trials)


def test_overrides_reach_every_config_section_and_the_example_spec_loads() -> None:
    from training.config import apply_overrides, load_config

    base = load_config("default")
    config = apply_overrides(
        base, {"reward.w_play": 2.5, "env.n_envs": 8, "learner.kl_temperature": 0.5, "seed": 7}
    )
    assert config.reward["w_play"] == 2.5 and config.env["n_envs"] == 8
    assert config.learner.kl_temperature == 0.5 and config.seed == 7
    assert base.reward["w_play"] != 2.5  # a copy
    with pytest.raises(ConfigError, match="unknown config section 'bogus'"):
        apply_overrides(base, {"bogus.x": 1})
    example = Path(__file__).parents[2] / "training" / "scale" / "sweep_example.toml"
    trials = expand_trials(load_spec(example))
    assert len(trials) == 4
    assert {t.params["learner.kl_temperature"] for t in trials} == {0.5, 1.0}
    assert all(1e-4 <= t.params["learner.learning_rate"] <= 1e-3 for t in trials)


def test_a_failed_trial_is_named_in_the_table_and_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path = write_sweep(tmp_path)
    spec_path.write_text(
        spec_path.read_text().replace("[1e-4, 3e-3]", "[1e-4]") + 'corpus = ["missing.npz"]\n'
    )
    out = tmp_path / "out"
    code = deepjam_main(["sweep", str(spec_path), "--out", str(out)])  # in this process
    assert code == 1
    err = capsys.readouterr().err
    assert "trial-000 failed: CorpusError" in err and "missing.npz" in err
    table = (out / "results.md").read_text()
    assert "0 of 1 trials finished" in table and "- trial-000 (" in table
    assert (out / "trials.png").is_file()
    # The sweep folder is not reused by accident.
    assert deepjam_main(["sweep", str(spec_path), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
