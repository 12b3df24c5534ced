"""``deepjam inspect``: a model's metadata, size and decision latency, with no torch needed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from exports.metadata import ModelMetadata
from exports.spec import SPEC_VERSION, Spec
from exports.state_samples import synthetic_states
from live_agent.cli import main

SPEC = Spec(window_steps=4, pitch_low=60, pitch_high=72)
LATENCY = re.compile(r"decision latency +p50 ([\d.]+) us, p99 ([\d.]+) us, max ([\d.]+) us")


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(float model, int8 copy) of a small MLP, written by the real exporter."""
    import torch
    from torch import nn

    from exports.onnx_writer import export_onnx, quantize_onnx

    torch.set_num_threads(1)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(SPEC.state_dim, 64), nn.ReLU(), nn.Linear(64, SPEC.n_actions))
    metadata = ModelMetadata(
        spec=SPEC,
        reward_weights={"style": 1.0, "theory": 0.5},
        style_name="reels",
        style_description="Irish reels, answered",
        corpus={"name": "oneills", "tunes": 1850},
        training_steps=1_234_567,
        metrics={"in_key": 0.912345},
        source_version="deepjam 0.1.0 (git abc1234)",
    )
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    float_path, int8_path = folder / "reels.onnx", folder / "reels.int8.onnx"
    export_onnx(module, metadata, float_path, synthetic_states(SPEC, 100, rng))
    quantize_onnx(float_path, int8_path, synthetic_states(SPEC, 1000, rng), latency_calls=10)
    return float_path, int8_path


def test_inspect_prints_the_metadata_size_and_a_latency(
    model_paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = model_paths[0]
    assert main(["inspect", str(path), "--calls", "300"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"{path}  (")
    assert f"{path.stat().st_size:,} bytes" in out.splitlines()[0]
    for expected in (
        "style             reels: Irish reels, answered",
        f"version {SPEC_VERSION}; 4 beats a bar, 4 steps a beat; window 4 steps; key-relative range 60..72 "
        "(13 pitches)",
        "network           kind not recorded in the file; reads a window of 4 steps "
        f"({SPEC.state_dim} state features), returns 15 Q-values; weights float32",
        "actions           melodic vocabulary, 15 actions: HOLD, REST, NOTE_ON:60 .. NOTE_ON:72",
        "reward weights    style 1, theory 0.5",
        "corpus            name oneills, tunes 1850",
        "training steps    1,234,567",
        "metrics           in_key  0.9123",
        "source            deepjam 0.1.0 (git abc1234)",
        "300 single-state calls after 200 warm-up, 1 thread(s)",
    ):
        assert expected in out
    found = LATENCY.search(out)
    assert found, out
    p50_us, p99_us, max_us = (float(v) for v in found.groups())
    assert 0 < p50_us <= p99_us <= max_us


def test_inspect_shows_an_int8_copy_as_int8(
    model_paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(model_paths[1]), "--calls", "0"]) == 0
    out = capsys.readouterr().out
    assert "weights int8" in out and "style             reels" in out
    assert "decision latency" not in out  # --calls 0 skips the timing


def test_inspect_refuses_bad_options_in_one_line(
    model_paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(model_paths[0]), "--calls", "-5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "deepjam inspect: error: expected --calls >= 0 and --threads >= 1, got -5 and 1"


def test_inspect_runs_where_torch_cannot_be_imported(model_paths: tuple[Path, Path]) -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any `import torch` now raises ImportError\n"
        "from live_agent.cli import main\n"
        f"code = main(['inspect', {str(model_paths[0])!r}, '--calls', '200'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "print('modules', loaded)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-800:]
    assert LATENCY.search(done.stdout), done.stdout
    assert "modules ['torch']" in done.stdout  # only the blocker itself
