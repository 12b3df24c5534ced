"""Fine-tuning from an ONNX style: weights matched by name and shape, refusals in one line, a real
tiny run that starts from an exported file and ends with the degenerate-style check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from exports.metadata import ModelMetadata
from exports.onnx_writer import export_onnx
from exports.spec import DEFAULT_SPEC
from exports.state_samples import synthetic_states
from tests.support.corpus import tiny_corpus, write_config
from training.checkpoint import load_checkpoint
from training.cli.train_command import train
from training.config import FineTuneConfig
from training.finetune import (
    FineTuneError,
    matched_state_dict,
    read_onnx_weights,
    start_weights,
)
from training.networks import build_q_network, network_args_for
from training.style_model import StyleModel

TINY_HIDDEN = [32]  # tests/support/corpus.py's tiny config


def exported(tmp_path: Path, hidden: list[int], seed: int = 0) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(seed)
    network = build_q_network(network_args_for(DEFAULT_SPEC, hidden=hidden)).eval()
    metadata = ModelMetadata(
        spec=DEFAULT_SPEC, reward_weights={"w_style": 1.0}, style_name="base", corpus={}
    )
    path = tmp_path / f"base{seed}.onnx"
    export_onnx(
        network, metadata, path, synthetic_states(DEFAULT_SPEC, 64, np.random.default_rng(0))
    )
    return path, network


def test_weights_from_an_onnx_file_reproduce_its_network(tmp_path: Path) -> None:
    path, original = exported(tmp_path, TINY_HIDDEN)
    fresh = build_q_network(network_args_for(DEFAULT_SPEC, hidden=TINY_HIDDEN)).eval()
    states = torch.as_tensor(synthetic_states(DEFAULT_SPEC, 32, np.random.default_rng(1)))
    assert not torch.allclose(fresh(states), original(states))
    fresh.load_state_dict(matched_state_dict(fresh, read_onnx_weights(path)))
    torch.testing.assert_close(fresh(states), original(states))


def test_another_architecture_is_refused_in_one_line(tmp_path: Path) -> None:
    path, _ = exported(tmp_path, TINY_HIDDEN)
    wider = build_q_network(network_args_for(DEFAULT_SPEC, hidden=[48]))
    with pytest.raises(
        FineTuneError, match=r"does not fit this network: 'body.0.weight' is"
    ) as err:
        matched_state_dict(wider, read_onnx_weights(path))
    assert "\n" not in str(err.value)
    deeper = build_q_network(network_args_for(DEFAULT_SPEC, hidden=[32, 32]))
    with pytest.raises(FineTuneError, match="it has no weight 'body.2.weight'"):
        matched_state_dict(deeper, read_onnx_weights(path))


def test_start_weights_follow_the_corpus_size_and_refuse_a_path_that_does_not_fit(
    tmp_path: Path,
) -> None:
    path, _ = exported(tmp_path, TINY_HIDDEN)
    fits = [build_q_network(network_args_for(DEFAULT_SPEC, hidden=TINY_HIDDEN))]
    lines: list[str] = []
    small = FineTuneConfig(from_model=str(path), when_tunes_below=200)
    assert start_weights(small, 50, DEFAULT_SPEC, fits, lines.append) is not None
    assert start_weights(small, 500, DEFAULT_SPEC, fits, lines.append) is None  # big: scratch
    assert start_weights(FineTuneConfig(), 50, DEFAULT_SPEC, fits, lines.append) is None
    misfit = [build_q_network(network_args_for(DEFAULT_SPEC, hidden=[48]))]
    with pytest.raises(FineTuneError, match="does not fit"):
        start_weights(small, 50, DEFAULT_SPEC, misfit, lines.append)
    missing = FineTuneConfig(from_model=str(tmp_path / "nope.onnx"))
    with pytest.raises(FineTuneError, match="no ONNX file at"):
        start_weights(missing, 50, DEFAULT_SPEC, fits, lines.append)


def test_a_shipped_style_that_does_not_fit_is_skipped_with_one_line() -> None:
    lines: list[str] = []
    misfit = [build_q_network(network_args_for(DEFAULT_SPEC, hidden=[7]))]
    shipped = FineTuneConfig(from_model="default", when_tunes_below=200)
    assert start_weights(shipped, 50, DEFAULT_SPEC, misfit, lines.append) is None
    assert len(lines) == 1 and lines[0].startswith("not fine-tuning: default.onnx")


def test_a_tiny_run_starts_both_networks_from_the_file(tmp_path: Path, capsys) -> None:
    path, original = exported(tmp_path, TINY_HIDDEN, seed=5)
    corpus = tiny_corpus(tmp_path / "tiny.npz")
    config = write_config(tmp_path / "tiny.toml")
    overrides = {
        "finetune.from_model": str(path),
        "finetune.when_tunes_below": 0,
        "style_model.epochs": 0,  # no training: the style model is the file's network
    }
    out = train(str(config), str(corpus), tmp_path / "run", progress_bar=False, overrides=overrides)
    err = capsys.readouterr().err + capsys.readouterr().out
    assert "style model: starts from the weights of base5.onnx" in err
    assert "Q-network: starts from the weights of base5.onnx" in err
    assert "no degenerate pattern in" in err or "warning: this style is degenerate" in err
    checkpoint = load_checkpoint(out)
    assert checkpoint.style_model is not None
    style = StyleModel.from_dict(checkpoint.style_model)
    states = torch.as_tensor(synthetic_states(DEFAULT_SPEC, 16, np.random.default_rng(2)))
    torch.testing.assert_close(style.network(states), original(states))
    assert "musicianship.degenerate" in checkpoint.metrics
