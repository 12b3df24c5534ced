"""The Q-network (and the style model's network): the encoded state -> one score per action.

Every kind takes the one flat state of ``exports.encoding.encode_states``, (B, state_dim)
float32, laid out as

    [agent part (W x F) | player part (W x F) | step context | call summary]

(W = ``spec.window_steps``, F = ``spec.features_per_part_step``, steps oldest first), so the ONNX
input, the live agent's rolling state and the training env are the same for all of them: a
sequence kind reshapes the per-step part inside the network. Kinds:

* ``"mlp"``: Linear/ReLU layers over the whole state. Fast (one state in onnxruntime ~21 us p50,
  ~200 DQN updates/s at batch 128 on one thread, W = 32), but it hears the window as a bag of
  positions, and a 2-bar window cannot hold a 4-bar call and its answer.
* ``"hybrid"``: the MLP over the last ``local_steps`` steps of both parts, the context and the
  call summary, beside a convolution embedding of the whole window (``TreeEncoder``: both parts
  as 2F channels, a beat a patch, then pairs: W = 128 -> 32 beats -> 16 -> 8 -> 4 positions of
  ``channels[-1]``). The MLP keeps today's note-to-note detail; the convolution hears the call
  itself and the answer so far (a 4-bar call and a 4-bar answer are 128 steps).
* ``"dilated"``: the convolution alone, a step a position, in pairs down to one position: a
  causal dilated stack (dilations 1, 2, 4, ...; WaveNet) read at its last step, with the context
  and the call summary into the MLP head.

Plain Linear/ReLU/Slice/Reshape/Concat ops: every kind exports to ONNX with either exporter.

A network is described by a plain dict (``network_args``) that travels in the checkpoint, as in
nanoGPT, so a checkpoint can rebuild its own network:

    {"kind": "mlp", "state_dim": 1130, "n_actions": 39, "hidden": [256, 256], "dueling": False}
    {"kind": "hybrid", ..., "window_steps": 128, "features_per_step": 17, "local_steps": 32,
     "channels": [32, 32, 32, 32]}
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from exports.errors import ConfigError
from exports.spec import Spec
from training.config import NETWORK_KINDS as NETWORK_KINDS  # one home: the config checks it

DEFAULT_HIDDEN = (256, 256)
HYBRID_CHANNELS: tuple[int, ...] = (32, 32, 32, 32)
"""The hybrid's convolution widths, a layer each: beats, then pairs (W = 128: 4 positions left).
Measured on the style model (2 minutes, default corpus): 32 wide made twice the updates of
(48, 64, 64, 64) in the same time and scored better (-1.069 against -1.102 nats/step)."""
DILATED_WIDTH = 64
"""The dilated stack's width; it has log2(W) layers (7 for W = 128)."""
HYBRID_FIRST_STEPS = 4
"""Steps in the hybrid convolution's first patch: one beat."""
LOCAL_STEPS = 32
"""Steps of each part the hybrid's MLP reads note by note (two bars: the MLP's old window)."""


def network_args_for(
    spec: Spec,
    hidden: list[int] | tuple[int, ...] = DEFAULT_HIDDEN,
    dueling: bool = False,
    kind: str = "mlp",
    channels: list[int] | tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """The ``network_args`` of a ``kind`` network for ``spec``'s states and actions."""
    if kind not in NETWORK_KINDS:
        raise ConfigError(f"network.kind: expected one of {list(NETWORK_KINDS)}, got {kind!r}")
    args: dict[str, Any] = {
        "kind": kind,
        "state_dim": spec.state_dim,
        "n_actions": spec.n_actions,
        "hidden": [int(h) for h in hidden],
        "dueling": bool(dueling),
    }
    if kind != "mlp":
        args["window_steps"] = spec.window_steps
        args["features_per_step"] = spec.features_per_part_step
        args["channels"] = [int(c) for c in (channels or _default_channels(kind, spec))]
    if kind == "hybrid":
        args["local_steps"] = min(LOCAL_STEPS, spec.window_steps)
    return args


def _default_channels(kind: str, spec: Spec) -> list[int]:
    if kind == "hybrid":
        return list(HYBRID_CHANNELS)
    return [DILATED_WIDTH] * max(spec.window_steps.bit_length() - 1, 1)


class MlpQNetwork(nn.Module):
    """(B, state_dim) float32 states -> (B, n_actions) Q-values (or logits for the style model).

    With ``dueling`` the last hidden layer feeds a value head V(s) and an advantage head A(s, a),
    combined as Q = V + A - mean_a A (Wang et al. 2016, eq. 9). The sequence kinds end in one,
    over their features.
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


class TreeEncoder(nn.Module):
    """(B, W, C_in) -> (B, channels[-1] * W / (first_steps * 2^(len(channels) - 1))): a 1-D
    convolution whose kernel equals its stride, layer by layer. The first layer reads patches of
    ``first_steps`` steps; each next one reads pairs of the layer below, halving the length,
    and the positions left are flattened (where a figure lies in the window counts).

    A convolution with kernel = stride is a Linear layer over reshaped patches, and that is how
    it is computed: torch's CPU Conv1d took ~2x the time for the same sums, and onnxruntime runs
    the MatMuls as fast as the MLP's. With ``first_steps`` = 2 and as many layers as halve W to
    one position, it is exactly a causal stack of kernel-2 convolutions with dilations
    1, 2, 4, ..., read at its last step (WaveNet), computed for that step alone."""

    def __init__(
        self, in_features: int, window_steps: int, first_steps: int, channels: list[int]
    ) -> None:
        super().__init__()
        self.first_steps = first_steps
        self.lengths: list[int] = []
        self.widths: list[int] = []
        layers: list[nn.Module] = []
        width, length = in_features * first_steps, window_steps // first_steps
        for c in channels:
            layers.append(nn.Linear(width, c))
            self.lengths.append(length)
            self.widths.append(width)
            width, length = 2 * c, length // 2
        self.layers = nn.ModuleList(layers)
        self.out_features = channels[-1] * self.lengths[-1]

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        # 2-D throughout (rows = batch x positions), so each layer exports as a Gemm whose weight
        # keeps its parameter's name (training.finetune matches a shipped file's weights by name).
        x = seq
        for layer, width in zip(self.layers, self.widths, strict=True):
            x = torch.relu(layer(x.reshape(-1, width)))  # (B * length, c)
        return x.reshape(-1, self.out_features)


def _tree_fits(window_steps: int, first_steps: int, layers: int) -> bool:
    return layers >= 1 and window_steps % (first_steps << (layers - 1)) == 0


class SequenceQNetwork(nn.Module):
    """(B, state_dim) float32 states -> (B, n_actions): a convolution over both parts' window
    (reshaped from the flat state), and, with ``local_steps`` > 0, the last ``local_steps``
    steps as they are; both, with the context and the call summary, into the MLP head."""

    def __init__(
        self,
        kind: str,
        state_dim: int,
        n_actions: int,
        hidden: list[int],
        dueling: bool,
        window_steps: int,
        features_per_step: int,
        channels: list[int],
        local_steps: int,
    ) -> None:
        super().__init__()
        self.window_steps, self.features_per_step = window_steps, features_per_step
        self.local_steps = local_steps
        self.part_dim = window_steps * features_per_step
        self.rest_dim = state_dim - 2 * self.part_dim  # context + call summary
        first = HYBRID_FIRST_STEPS if kind == "hybrid" else 2
        self.encoder = TreeEncoder(2 * features_per_step, window_steps, first, channels)
        width = self.encoder.out_features + 2 * local_steps * features_per_step + self.rest_dim
        self.mlp = MlpQNetwork(width, n_actions, hidden, dueling)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        w, f, p = self.window_steps, self.features_per_step, self.part_dim
        agent = states[:, :p].reshape(-1, w, f)  # (B, W, F)
        player = states[:, p : 2 * p].reshape(-1, w, f)  # (B, W, F)
        seq = torch.cat([agent, player], dim=2)  # (B, W, 2F): step by step, both parts
        parts = [self.encoder(seq)]  # (B, E)
        if self.local_steps > 0:
            start = (w - self.local_steps) * f
            parts += [states[:, start:p], states[:, p + start : 2 * p]]  # (B, L*F) each
        parts.append(states[:, 2 * p :])  # (B, context + call)
        return self.mlp(torch.cat(parts, dim=1))  # (B, n_actions)


def _check_args(args: dict[str, Any]) -> dict[str, Any]:
    fix = "expected e.g. {'kind': 'mlp', 'state_dim': 1130, 'n_actions': 39, 'hidden': [256, 256]}"
    kind = args.get("kind", "mlp")
    if kind not in NETWORK_KINDS:
        raise ConfigError(f"network kind must be one of {list(NETWORK_KINDS)}, got {kind!r}")
    try:
        checked: dict[str, Any] = {
            "kind": kind,
            "state_dim": int(args["state_dim"]),
            "n_actions": int(args["n_actions"]),
            "hidden": [int(h) for h in args.get("hidden", DEFAULT_HIDDEN)],
            "dueling": bool(args.get("dueling", False)),
        }
        if kind != "mlp":
            checked["window_steps"] = int(args["window_steps"])
            checked["features_per_step"] = int(args["features_per_step"])
            checked["channels"] = [int(c) for c in args["channels"]]
            checked["local_steps"] = int(args.get("local_steps", 0))
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"network args {args!r} are invalid ({err!r}); {fix}") from err
    sizes = [checked["state_dim"], checked["n_actions"], *checked["hidden"]]
    sizes += checked.get("channels", []) + [checked.get("window_steps", 1)]
    if any(s < 1 for s in sizes) or not checked.get("channels", [1]):
        raise ConfigError(f"network sizes must be positive, got {args!r}; {fix}")
    if kind != "mlp":
        w, f = checked["window_steps"], checked["features_per_step"]
        if not 0 <= checked["local_steps"] <= w or checked["state_dim"] <= 2 * w * f:
            raise ConfigError(
                f"network args {args!r} do not fit a state of {checked['state_dim']} features "
                f"with a {w}-step window of {f} features a step; build them with "
                f"network_args_for(spec, kind={kind!r})"
            )
        first = HYBRID_FIRST_STEPS if kind == "hybrid" else 2
        layers = len(checked["channels"])
        if not _tree_fits(w, first, layers):
            raise ConfigError(
                f"a {kind} network reads its {w}-step window in patches of {first} steps, then "
                f"halves it {layers - 1} times; use a window that is a multiple of "
                f"{first << max(layers - 1, 0)} steps (e.g. 128) or fewer layers"
            )
    return checked


def build_q_network(args: dict[str, Any]) -> nn.Module:
    """A freshly initialized network from ``network_args`` (see module docstring).

    Raises ConfigError (one line) for an unknown kind or bad sizes.
    """
    a = _check_args(args)
    if a["kind"] == "mlp":
        return MlpQNetwork(a["state_dim"], a["n_actions"], a["hidden"], a["dueling"])
    return SequenceQNetwork(
        a["kind"],
        a["state_dim"],
        a["n_actions"],
        a["hidden"],
        a["dueling"],
        a["window_steps"],
        a["features_per_step"],
        a["channels"],
        a["local_steps"],
    )
