"""Writing ONNX from torch: parity with torch through the player's reader, atomic writes, int8.

Real torch modules, real onnxruntime sessions, real files; a small spec keeps it fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from exports.errors import ConfigError, ModelError
from exports.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from exports.model_file import load_model
from exports.onnx_writer import PRECISION_KEY, export_onnx, quantize_onnx, read_metadata_props
from exports.spec import Spec
from exports.state_samples import synthetic_states, window_states
from live_agent.cli import main

SPEC = Spec(window_steps=4, pitch_low=60, pitch_high=72)

torch.set_num_threads(1)


def metadata(spec: Spec = SPEC) -> ModelMetadata:
    return ModelMetadata(
        spec=spec,
        reward_weights={"style": 1.0, "theory": 0.5},
        style_name="unit-style",
        corpus={"name": "unit", "tunes": 2},
        style_description="a small MLP",
        training_steps=42,
        metrics={"in_key": 0.8},
        source_version="deepjam test",
    )


def mlp(
    spec: Spec = SPEC, hidden: int = 64, seed: int = 0, n_actions: int | None = None
) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(spec.state_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, spec.n_actions if n_actions is None else n_actions),
    )


def states(n: int, seed: int) -> np.ndarray:
    return synthetic_states(SPEC, n, np.random.default_rng(seed))


def torch_q(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def test_an_exported_mlp_matches_torch_through_the_players_reader(tmp_path: Path) -> None:
    module = mlp()
    path = tmp_path / "style.onnx"
    report = export_onnx(module, metadata(), path, states(300, seed=0))
    assert report.n_states == 300 and report.exporter == "torchscript" and report.opset == 17
    assert report.max_abs_diff <= 1e-4 and report.argmax_agreement == 1.0
    assert report.size_bytes == path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["style.onnx"]  # no temp file left

    model = load_model(path)
    assert model.metadata == metadata()
    fresh = states(50, seed=1)  # not the parity states
    for batch in (fresh[:1], fresh[:7], fresh):  # the batch axis is dynamic
        np.testing.assert_allclose(model.q_values(batch), torch_q(module, batch), atol=1e-5)
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    assert module.training  # export restored the module's mode


def test_states_cut_from_real_tunes_feed_the_parity_check(tmp_path: Path) -> None:
    scale = np.array([60, -1, 62, -1, 64, 65, -2, 67, -1, -1, 69, 71, 72, -1, -2, -1], np.int16)
    tunes = [scale, scale[::-1].copy(), np.tile(scale, 3)]
    x = window_states(SPEC, tunes, [False, True, False], 200, np.random.default_rng(3))
    assert x.shape == (200, SPEC.state_dim) and x.dtype == np.float32
    assert len(np.unique(x, axis=0)) > 50  # varied windows, not one state repeated
    report = export_onnx(mlp(), metadata(), tmp_path / "style.onnx", x)
    assert report.max_abs_diff <= 1e-4


class Drifting(nn.Module):
    """Adds how often it was called before: torch's reference sees 0, the traced graph 1."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(SPEC.state_dim, SPEC.n_actions)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.calls
        self.calls += 1
        return self.linear(x) + offset


def test_a_graph_that_does_not_match_torch_is_refused_and_never_replaces_the_old_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "style.onnx"
    path.write_bytes(b"previous model")
    with pytest.raises(ModelError) as caught:
        export_onnx(Drifting(), metadata(), path, states(100, seed=0))
    message = str(caught.value)
    assert "does not match torch: max |dQ| 1 (limit 0.0001)" in message
    assert "file not written" in message and "\n" not in message
    assert path.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["style.onnx"]


def test_the_parity_limit_grows_with_the_size_of_q_for_float32s_seven_digits(
    tmp_path: Path,
) -> None:
    module = mlp()
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(100.0)  # |Q| in the thousands, as with a long discount horizon
    x = states(200, seed=0)
    largest_q = float(np.abs(torch_q(module, x)).max())
    assert largest_q > 1000
    report = export_onnx(module, metadata(), tmp_path / "big.onnx", x)
    assert report.tolerance == pytest.approx(1e-6 * largest_q)
    assert report.max_abs_diff <= report.tolerance
    small = export_onnx(mlp(), metadata(), tmp_path / "small.onnx", x)
    assert small.tolerance == 1e-4  # Q-values of ordinary size: the plain absolute limit


def test_bad_inputs_to_the_exporter_are_refused_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "style.onnx"
    with pytest.raises(
        ConfigError, match=rf"expected parity states of shape \(N >= 1, {SPEC.state_dim}\)"
    ):
        export_onnx(mlp(), metadata(), path, np.zeros((10, SPEC.state_dim + 1), np.float32))
    with pytest.raises(ConfigError, match="expected ONNX opset >= 17, got 13"):
        export_onnx(mlp(), metadata(), path, states(10, seed=0), opset=13)
    with pytest.raises(
        ModelError, match=rf"\(N, {SPEC.n_actions}\) Q-values for this spec, got \(10, 9\)"
    ):
        export_onnx(mlp(n_actions=9), metadata(), path, states(10, seed=0))
    assert not path.exists()


@pytest.mark.slow
def test_the_dynamo_exporter_gives_the_same_model(tmp_path: Path) -> None:
    module = mlp()
    report = export_onnx(
        module, metadata(), tmp_path / "d.onnx", states(100, seed=0), opset=18, exporter="dynamo"
    )
    assert report.exporter == "dynamo" and report.max_abs_diff <= 1e-4
    x = states(20, seed=5)
    np.testing.assert_allclose(
        load_model(tmp_path / "d.onnx").q_values(x), torch_q(module, x), atol=1e-5
    )


def test_an_int8_copy_is_kept_when_it_agrees_and_carries_the_metadata(tmp_path: Path) -> None:
    float_path, int8_path = tmp_path / "style.onnx", tmp_path / "style.int8.onnx"
    export_onnx(mlp(seed=0), metadata(), float_path, states(100, seed=0))
    report = quantize_onnx(float_path, int8_path, states(1000, seed=1), latency_calls=100)
    assert report.agreement >= 0.99 and report.n_states == 1000
    assert report.int8_size_bytes < report.float_size_bytes
    assert report.float_latency.p50_us > 0 and report.int8_latency.p50_us > 0
    int8 = load_model(int8_path)
    assert int8.metadata == metadata()  # the contract survived quantization
    assert read_metadata_props(int8_path)[PRECISION_KEY] == '"int8"'
    ops = {node.op_type for node in onnx.load(str(int8_path)).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeLinear" in ops


def test_an_int8_copy_that_disagrees_too_often_is_refused_with_the_measured_agreement(
    tmp_path: Path,
) -> None:
    float_path, int8_path = tmp_path / "style.onnx", tmp_path / "style.int8.onnx"
    export_onnx(mlp(seed=0), metadata(), float_path, states(100, seed=0))
    # This net's int8 copy agrees on 99.7% of these states: short of a 100% demand.
    with pytest.raises(ModelError, match=r"only 99\.\d% of 1000 held-out states \(need >= 100%\)"):
        quantize_onnx(float_path, int8_path, states(1000, seed=1), min_agreement=1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["style.onnx"]


# ---------------------------------------------------------------- deepjam export (CLI)


@pytest.fixture
def checkpoint_path(tmp_path: Path) -> Path:
    from training.checkpoint import save_checkpoint
    from training.networks import build_q_network, network_args_for

    args = network_args_for(SPEC, hidden=[64, 64])
    torch.manual_seed(1)
    network = build_q_network(args)
    # A trained net prefers some actions clearly; a fresh one has near-ties everywhere, which
    # int8 rounding flips (98.9% agreement here). Give it a clear favourite, as training would.
    last = [m for m in network.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.bias[3] += 1.0
    return save_checkpoint(
        tmp_path / "checkpoint.pt",
        q_network=network,
        network_args=args,
        spec=SPEC,
        style_name="tiny-reels",
        style_description="three tunes",
        reward_weights={"style": 1.0, "theory": 0.3, "play": 0.2},
        corpus={"name": "tiny", "tunes": 3, "steps": 64, "source": "test"},
        global_step=5000,
        metrics={"in_key": 0.75, "style_loglik": -2.5},
    )


@pytest.fixture
def corpus_path(tmp_path: Path) -> Path:
    from training.data.corpus_data import Corpus

    line = np.array([62, -1, 64, 66, -1, 67, -2, 69, 71, -1, 73, 74, -1, -1, -2, -1], np.int16)
    tunes = [line, line[::-1].copy(), np.tile(line, 2)]
    corpus = Corpus(
        name="tiny",
        events=np.concatenate(tunes),
        offsets=np.cumsum([0] + [len(t) for t in tunes]).astype(np.int64),
        titles=["a", "b", "c"],
        tonic=np.array([2, 2, 2]),
        minor=np.array([False, False, False]),
        validation=np.array([False, False, True]),
        source="test",
    )
    path = tmp_path / "tiny.npz"
    corpus.save(path)
    return path


def test_deepjam_export_writes_a_checked_model_from_a_checkpoint(
    tmp_path: Path, checkpoint_path: Path, corpus_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.checkpoint import load_checkpoint

    out = tmp_path / "tiny.onnx"
    code = main(
        [
            "export",
            str(checkpoint_path),
            "-o",
            str(out),
            "--corpus",
            str(corpus_path),
            "--quantize",
            "--description",
            "three tunes, exported",
        ]
    )
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, captured.err
    assert f"300 states (corpus tiny from {corpus_path})" in printed and "max |dQ|" in printed
    assert "note:" not in printed  # the checkpoint's corpus summary matches the corpus given
    assert "held-out states (corpus tiny from" in printed and "int8" in printed

    model = load_model(out)
    meta = model.metadata
    assert meta.style_name == "tiny-reels" and meta.style_description == "three tunes, exported"
    assert meta.training_steps == 5000 and meta.metrics == {"in_key": 0.75, "style_loglik": -2.5}
    assert meta.reward_weights == {"style": 1.0, "theory": 0.3, "play": 0.2}
    assert meta.corpus["name"] == "tiny" and meta.source_version.startswith("deepjam ")
    x = states(40, seed=9)
    network = load_checkpoint(checkpoint_path).q_network()
    np.testing.assert_allclose(model.q_values(x), torch_q(network, x), atol=1e-4)
    assert load_model(tmp_path / "tiny.int8.onnx").metadata == meta


def test_deepjam_export_falls_back_to_random_melodies_with_a_note(
    tmp_path: Path, checkpoint_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny.onnx"
    code = main(
        [
            "export",
            str(checkpoint_path),
            "-o",
            str(out),
            "--corpus",
            str(tmp_path / "none"),
            "--name",
            "renamed",
            "--parity-states",
            "50",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert printed.startswith("note: corpus ") and "random melodies" in printed
    assert "50 states (random melodies)" in printed
    assert load_model(out).metadata.style_name == "renamed"


def test_deepjam_export_of_a_missing_checkpoint_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "nope.pt" in err
    assert not (tmp_path / "x.onnx").exists()
