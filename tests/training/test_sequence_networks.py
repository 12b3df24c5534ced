"""The sequence networks hear the whole window, export to ONNX with parity, start from the style
model, and decide live through the Decider on a 128-step window that rolls."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from exports.encoding import StepContext, encode_states, monophonic_window
from exports.errors import ConfigError
from exports.metadata import ModelMetadata
from exports.model_file import load_model
from exports.onnx_writer import export_onnx
from exports.spec import DEFAULT_SPEC, Spec
from exports.state_samples import synthetic_states
from training.config import config_from_dict
from training.networks import SequenceQNetwork, build_q_network, network_args_for

torch.set_num_threads(1)

LONG = dataclasses.replace(DEFAULT_SPEC, window_steps=128)
SEQUENCE_KINDS = ("hybrid", "dilated")


def _network(kind: str, spec: Spec = LONG, seed: int = 0, dueling: bool = False) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_q_network(network_args_for(spec, [64, 64], dueling, kind=kind)).eval()


def _q(network: torch.nn.Module, states: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return network(torch.from_numpy(states)).numpy()


@pytest.mark.parametrize("kind", SEQUENCE_KINDS)
def test_a_sequence_network_hears_the_oldest_step_of_the_window(kind: str) -> None:
    """A note 8 bars back (a 4-bar call's first note, under a 4-bar answer) changes the
    Q-values: the network hears the call itself, not only its summary."""
    network = _network(kind)
    states = synthetic_states(LONG, 4, np.random.default_rng(0))
    f, w = LONG.features_per_part_step, LONG.window_steps
    moved = states.copy()
    player_step_0 = slice(w * f, w * f + f)  # the player's oldest step
    moved[:, player_step_0] = 0.0
    moved[:, w * f] = 1.0  # an onset ...
    moved[:, w * f + 1 + 9] = 1.0  # ... of pitch class 9
    assert not np.array_equal(states, moved)
    assert np.abs(_q(network, states) - _q(network, moved)).max() > 1e-6


def test_the_mlp_over_a_long_window_and_the_hybrid_read_the_same_flat_state() -> None:
    """One encoder: every kind takes (B, state_dim); the hybrid's MLP reads the last 32 steps,
    the context and the call summary of it, so its first layer is as wide as today's MLP's
    input plus the convolution's embedding."""
    mlp = _network("mlp")
    hybrid = _network("hybrid")
    states = synthetic_states(LONG, 3, np.random.default_rng(1))
    assert _q(mlp, states).shape == _q(hybrid, states).shape == (3, LONG.n_actions)
    assert isinstance(hybrid, SequenceQNetwork)
    first = next(m for m in hybrid.mlp.modules() if isinstance(m, torch.nn.Linear))
    assert first.in_features == DEFAULT_SPEC.state_dim + hybrid.encoder.out_features


@pytest.mark.parametrize("kind", SEQUENCE_KINDS)
def test_a_sequence_network_exports_with_parity(kind: str, tmp_path: Path) -> None:
    network = _network(kind, dueling=kind == "hybrid")
    meta = ModelMetadata(
        spec=LONG, reward_weights={"style": 1.0}, style_name=kind, corpus={"name": "none"}
    )
    states = synthetic_states(LONG, 200, np.random.default_rng(2))
    report = export_onnx(network, meta, tmp_path / f"{kind}.onnx", states)
    assert report.max_abs_diff <= 1e-4 and report.argmax_agreement == 1.0
    model = load_model(tmp_path / f"{kind}.onnx")
    assert model.spec.window_steps == 128 and model.spec.state_dim == LONG.state_dim
    fresh = synthetic_states(LONG, 9, np.random.default_rng(3))
    for batch in (fresh[:1], fresh):  # the batch axis stays dynamic through the reshapes
        np.testing.assert_allclose(model.q_values(batch), _q(network, batch), atol=1e-5)
    # Every weight is in the file under its parameter's name (fine-tuning from a shipped style
    # reads them back by name).
    initializers = {i.name for i in onnx.load(str(tmp_path / f"{kind}.onnx")).graph.initializer}
    assert set(network.state_dict()) <= initializers


@pytest.mark.parametrize("kind", ("mlp", *SEQUENCE_KINDS))
def test_the_q_network_starts_from_the_style_models_weights(kind: str) -> None:
    """init_from_style_model: the style model (no dueling) and the Q-network of one kind have
    the same parameters, so the Q-network starts as the style model, output for output."""
    style = _network(kind, seed=1)
    q_network = build_q_network(network_args_for(LONG, [64, 64], False, kind=kind))
    q_network.load_state_dict(style.state_dict())
    states = synthetic_states(LONG, 5, np.random.default_rng(4))
    np.testing.assert_array_equal(_q(q_network.eval(), states), _q(style, states))


def test_the_network_kind_is_chosen_in_the_config_and_checked() -> None:
    config = config_from_dict({"network": {"kind": "hybrid"}, "spec": {"window_steps": 128}})
    assert config.network.kind == "hybrid" and config.build_spec().window_steps == 128
    with pytest.raises(ConfigError, match=r"network\.kind: expected one of \['mlp', 'hybrid'"):
        config_from_dict({"network": {"kind": "lstm"}})
    with pytest.raises(ConfigError, match="multiple of 32 steps"):
        build_q_network(network_args_for(Spec(window_steps=48), kind="hybrid"))


def test_a_128_step_model_decides_live_on_a_window_that_rolls(tmp_path: Path) -> None:
    """Through the Decider: after 200 steps the live state is ``encode_states`` of the last 128
    steps of both parts (the oldest step dropped each push), and the action is the exported
    network's choice on that state."""
    network = _network("hybrid", seed=5)
    meta = ModelMetadata(
        spec=LONG, reward_weights={"style": 1.0}, style_name="long", corpus={"name": "none"}
    )
    path = tmp_path / "long.onnx"
    export_onnx(network, meta, path, synthetic_states(LONG, 100, np.random.default_rng(6)))
    from live_agent.agent import Decider

    decider = Decider(load_model(path), np.random.default_rng(0))
    rng = np.random.default_rng(7)
    steps = 200
    agent_top = np.where(rng.random(steps) < 0.3, -1, rng.integers(60, 80, steps))
    player_top = np.where(rng.random(steps) < 0.3, -1, rng.integers(55, 75, steps))
    agent_onset = (agent_top >= 0) & (rng.random(steps) < 0.6)
    player_onset = (player_top >= 0) & (rng.random(steps) < 0.6)
    for k in range(steps):
        chroma_a, chroma_p = np.zeros(12, bool), np.zeros(12, bool)
        if agent_top[k] >= 0:
            chroma_a[agent_top[k] % 12] = True
        if player_top[k] >= 0:
            chroma_p[player_top[k] % 12] = True
        decider.observe_step(
            chroma_a, int(agent_top[k]), bool(agent_onset[k]),
            chroma_p, int(player_top[k]), bool(player_onset[k]),
            move_frame=False,
        )  # fmt: skip
    live = decider.state(step=5, answering=True, progress=0.25).copy()
    last = slice(steps - 128, steps)
    expected = encode_states(
        LONG,
        monophonic_window(agent_top[None, last], agent_onset[None, last]),
        monophonic_window(player_top[None, last], player_onset[None, last]),
        StepContext(
            np.array([5]), np.array([False]), np.array([True]), np.array([0.25]),
            np.zeros((1, LONG.call_features), np.float32),
        ),
    )  # fmt: skip
    np.testing.assert_array_equal(live, expected)
    greedy = int(_q(network, expected).argmax())
    action = decider.decide(5, True, 0.25, 0.0, 1.0, 0, 0, 127)  # temperature 0: greedy
    assert action == greedy
