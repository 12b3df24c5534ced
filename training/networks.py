"""The Q-network (and the style model's network): an MLP over the encoded state.

Per ../shared/MEASUREMENTS.md an MLP is the architecture that is fast where it matters: ~21 us
p50 for one state in onnxruntime, ~200 DQN updates/s at batch 128 on one thread. Plain
Linear/ReLU ops only, so the module exports to ONNX with either exporter.

A network is described by a plain dict (``network_args``) that travels in the checkpoint, as in
nanoGPT, so a checkpoint can rebuild its own network:

    {"kind": "mlp", "state_dim": 1107, "n_actions": 39, "hidden": [256, 256], "dueling": False}
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from exports.errors import ConfigError
from exports.spec import Spec

NETWORK_KINDS = ("mlp",)
DEFAULT_HIDDEN = (256, 256)


def network_args_for(
    spec: Spec, hidden: list[int] | tuple[int, ...] = DEFAULT_HIDDEN, dueling: bool = False
) -> dict[str, Any]:
    """The ``network_args`` of an MLP Q-network for ``spec``'s states and actions."""
    return {
        "kind": "mlp",
        "state_dim": spec.state_dim,
        "n_actions": spec.n_actions,
        "hidden": [int(h) for h in hidden],
        "dueling": bool(dueling),
    }


class MlpQNetwork(nn.Module):
    """(B, state_dim) float32 states -> (B, n_actions) Q-values (or logits for the style model).

    With ``dueling`` the last hidden layer feeds a value head V(s) and an advantage head A(s, a),
    combined as Q = V + A - mean_a A (Wang et al. 2016, eq. 9).
    """

    def __init__(self, state_dim: int, n_actions: int, hidden: list[int], dueling: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = state_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.dueling = dueling
        self.head = nn.Linear(width, n_actions)  # advantages when dueling
        self.value = nn.Linear(width, 1) if dueling else None

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        features = self.body(states)  # (B, hidden[-1])
        out = self.head(features)  # (B, n_actions)
        if self.value is not None:
            out = self.value(features) + out - out.mean(dim=1, keepdim=True)
        return out


def _check_args(args: dict[str, Any]) -> tuple[int, int, list[int], bool]:
    fix = "expected e.g. {'kind': 'mlp', 'state_dim': 1107, 'n_actions': 39, 'hidden': [256, 256]}"
    kind = args.get("kind", "mlp")
    if kind not in NETWORK_KINDS:
        raise ConfigError(f"network kind must be one of {list(NETWORK_KINDS)}, got {kind!r}")
    try:
        state_dim = int(args["state_dim"])
        n_actions = int(args["n_actions"])
        hidden = [int(h) for h in args.get("hidden", DEFAULT_HIDDEN)]
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"network args {args!r} are invalid ({err!r}); {fix}") from err
    if state_dim < 1 or n_actions < 1 or any(h < 1 for h in hidden):
        raise ConfigError(f"network sizes must be positive, got {args!r}; {fix}")
    return state_dim, n_actions, hidden, bool(args.get("dueling", False))


def build_q_network(args: dict[str, Any]) -> nn.Module:
    """A freshly initialized network from ``network_args`` (see module docstring).

    Raises ConfigError (one line) for an unknown kind or bad sizes.
    """
    state_dim, n_actions, hidden, dueling = _check_args(args)
    return MlpQNetwork(state_dim, n_actions, hidden, dueling)
