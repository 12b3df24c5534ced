"""Training checkpoints: one torch file holding everything a run needs to resume or export.

The file is a plain dict (loadable with ``torch.load(weights_only=True)``):

    format            CHECKPOINT_FORMAT
    q_network         state_dict of the online Q-network
    target_network    state_dict of the target network (None if not saved)
    optimizer         Adam state_dict (None if not saved)
    network_args      dict that rebuilds the network (training.networks.build_q_network)
    spec              exports.spec.Spec.to_dict()
    style             {"name": ..., "description": ...}
    reward_weights    {term: weight}
    corpus            Corpus.summary()
    global_step       env steps done (transitions collected, summed over the parallel envs)
    metrics           small dict of figures (style model validation log-lik, mean reward, ...)
    config            the full style config as a plain dict
    style_model       {"network_args": ..., "state_dict": ...} or None
    extra             anything else the trainer needs to resume (plain types / tensors)

Writes are atomic (temp file in the same folder, then ``os.replace``): a kill mid-write leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from exports.errors import DeepjamError
from exports.spec import Spec
from training.networks import build_q_network

CHECKPOINT_FORMAT = 1
REQUIRED_KEYS = (
    "format",
    "q_network",
    "network_args",
    "spec",
    "style",
    "reward_weights",
    "corpus",
    "global_step",
)


class CheckpointError(DeepjamError, ValueError):
    """A checkpoint file is missing, corrupt, or was written by another format."""


@dataclass
class Checkpoint:
    """A loaded checkpoint. ``q_network()`` rebuilds the online network in eval mode."""

    path: Path
    q_network_state: dict[str, torch.Tensor]
    network_args: dict[str, Any]
    spec: Spec
    style_name: str
    style_description: str
    reward_weights: dict[str, float]
    corpus: dict[str, Any]
    global_step: int
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    target_network_state: dict[str, torch.Tensor] | None = None
    optimizer_state: dict[str, Any] | None = None
    style_model: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    format: int = CHECKPOINT_FORMAT

    def q_network(self) -> nn.Module:
        """The online Q-network with its weights loaded, in eval mode, on the CPU."""
        network = build_q_network(self.network_args)
        try:
            network.load_state_dict(self.q_network_state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise CheckpointError(
                f"checkpoint {self.path}: its weights do not fit its network_args ({first}); "
                f"the file is damaged, train again"
            ) from err
        return network.eval()


def save_checkpoint(
    path: str | Path,
    *,
    q_network: nn.Module,
    network_args: dict[str, Any],
    spec: Spec,
    style_name: str,
    reward_weights: dict[str, float],
    corpus: dict[str, Any],
    global_step: int,
    style_description: str = "",
    metrics: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    target_network: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    style_model: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically; returns its path. Weights are stored on the CPU."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

    payload = {
        "format": CHECKPOINT_FORMAT,
        "q_network": cpu_state(q_network),
        "target_network": cpu_state(target_network) if target_network is not None else None,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "network_args": dict(network_args),
        "spec": spec.to_dict(),
        "style": {"name": style_name, "description": style_description},
        "reward_weights": {k: float(v) for k, v in reward_weights.items()},
        "corpus": dict(corpus),
        "global_step": int(global_step),
        "metrics": dict(metrics or {}),
        "config": dict(config or {}),
        "style_model": style_model,
        "extra": dict(extra or {}),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``.

    Raises CheckpointError (one line, with the fix) when the file is missing, not a torch file,
    corrupt, or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; train one with `deepjam train --out DIR` "
            f"and pass DIR/checkpoint.pt"
        )
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        zipfile.BadZipFile,
    ) as err:
        # torch's own messages run to paragraphs: keep the first sentence.
        first = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0][:120]
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({first}); it is damaged or not a deepjam "
            f"checkpoint: use another one or train again"
        ) from err
    if not isinstance(raw, dict):
        raise CheckpointError(
            f"checkpoint {path} holds a {type(raw).__name__}, expected a dict; it is not a "
            f"deepjam checkpoint"
        )
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {missing}; it is not a deepjam checkpoint (or is damaged)"
        )
    if raw["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format {raw['format']!r}, this deepjam reads "
            f"{CHECKPOINT_FORMAT}; train again with this version"
        )
    try:
        spec = Spec.from_dict(raw["spec"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path}: its spec is invalid ({err})") from err
    style = raw["style"] if isinstance(raw["style"], dict) else {}
    return Checkpoint(
        path=path,
        q_network_state=raw["q_network"],
        network_args=dict(raw["network_args"]),
        spec=spec,
        style_name=str(style.get("name", "")),
        style_description=str(style.get("description", "")),
        reward_weights=dict(raw["reward_weights"]),
        corpus=dict(raw["corpus"]),
        global_step=int(raw["global_step"]),
        metrics=dict(raw.get("metrics") or {}),
        config=dict(raw.get("config") or {}),
        target_network_state=raw.get("target_network"),
        optimizer_state=raw.get("optimizer"),
        style_model=raw.get("style_model"),
        extra=dict(raw.get("extra") or {}),
        format=int(raw["format"]),
    )
