"""Your own style from a small folder: start from a shipped style's weights, then check the result.

Trained from random weights on 50 MIDI files for 3 minutes, a style answered ``G4 G4 G4 G4 ...``
(median longest same-pitch run 7 notes, max 15). A small corpus cannot teach a network what a
melody is; it can teach an idiom to one that already knows. So a fresh run on a corpus with fewer
than ``[finetune] when_tunes_below`` tunes (200 in the presets) starts both the style model and
the Q-network from the weights of ``[finetune] from_model`` (the shipped default style), and
fine-tunes them on the user's tunes.

The shipped styles are ONNX files; their weights are the graph's initializers, read with
``onnx.numpy_helper`` and matched to the torch network's parameters by name and shape, so any
network whose export keeps its parameter names (whatever its ``network_args``) can start from
a file exported from the same architecture. A file of another architecture or spec is refused in
one line.

At the end of training, ``training.eval.musicianship.check_style`` answers held-out calls as
live plays them and says in plain words when the style still repeats one note, trills or circles
one pitch (the rule ``deepjam eval`` and ``deepjam export`` use).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exports.errors import ConfigError

SHIPPED_STYLE_NAMES = ("default", "folk", "reels", "chorale")
"""``from_model`` may name a shipped style: ``live_agent/models/<name>.onnx``."""
SPEC_KEY = "deepjam.spec"
SPEC_VERSION_KEY = "deepjam.spec_version"


class FineTuneError(ConfigError):
    """The weights to start from do not fit the network (architecture or spec)."""


def shipped_model_path(name: str) -> Path:
    """``live_agent/models/<name>.onnx``, found without importing ``live_agent`` (training
    never imports the live side; the file is package data)."""
    found = importlib.util.find_spec("live_agent")
    if found is None or not found.submodule_search_locations:
        raise FineTuneError(
            f"cannot find the shipped style {name!r}: the live_agent package is not installed; "
            f'set [finetune] from_model to an .onnx path or to ""'
        )
    return Path(list(found.submodule_search_locations)[0]) / "models" / f"{name}.onnx"


def resolve_from_model(from_model: str) -> Path:
    """A shipped style's name or a path -> the ONNX file (which must exist)."""
    path = shipped_model_path(from_model) if from_model in SHIPPED_STYLE_NAMES else Path(from_model)
    if not path.is_file():
        raise FineTuneError(
            f"[finetune] from_model {from_model!r}: no ONNX file at {path}; name a shipped style "
            f"{list(SHIPPED_STYLE_NAMES)} or pass an .onnx path"
        )
    return path


@dataclass
class StartWeights:
    """Initializer arrays of an ONNX style, by name, and where they came from."""

    path: Path
    arrays: dict[str, np.ndarray]
    spec: dict[str, Any] | None
    spec_version: int | None


def read_onnx_weights(path: Path) -> StartWeights:
    """The initializers of an ONNX file (float arrays by name) and its spec metadata."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises several kinds for a bad file
        raise FineTuneError(
            f"cannot read {path} as ONNX ({err}); pass a file from `deepjam export`"
        ) from err
    arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    spec = json.loads(meta[SPEC_KEY]) if SPEC_KEY in meta else None
    version = int(json.loads(meta[SPEC_VERSION_KEY])) if SPEC_VERSION_KEY in meta else None
    return StartWeights(path, arrays, spec, version)


def matched_state_dict(network: Any, weights: StartWeights) -> dict[str, Any]:
    """A full ``state_dict`` for ``network`` from the file's initializers: each parameter (and
    buffer) by its own name, or by a unique initializer name ending in ``.<name>`` (an export
    that wrapped the module). Raises FineTuneError (one line) naming the first that is missing
    or has another shape."""
    import torch

    out: dict[str, Any] = {}
    for name, tensor in network.state_dict().items():
        if not torch.is_floating_point(tensor):
            out[name] = tensor  # counters and the like: keep the network's own
            continue
        if name in weights.arrays:
            found = weights.arrays[name]
        else:
            suffix = [k for k in weights.arrays if k.endswith("." + name)]
            if len(suffix) != 1:
                raise FineTuneError(
                    f"{weights.path.name} does not fit this network: it has no weight {name!r} "
                    f"(its architecture differs); train from scratch with [finetune] "
                    f'from_model = "" or start from a style of this architecture'
                )
            found = weights.arrays[suffix[0]]
        if tuple(found.shape) != tuple(tensor.shape):
            raise FineTuneError(
                f"{weights.path.name} does not fit this network: {name!r} is "
                f"{tuple(found.shape)} there, {tuple(tensor.shape)} here (another architecture "
                f'or spec); train from scratch with [finetune] from_model = ""'
            )
        out[name] = torch.as_tensor(np.array(found), dtype=tensor.dtype)
    return out


def check_spec(weights: StartWeights, spec: Any, spec_version: int) -> None:
    """Refuse (one line) a file of another spec version or spec: the same shapes would read
    other state features."""
    if weights.spec_version is not None and weights.spec_version != spec_version:
        raise FineTuneError(
            f"{weights.path.name} has spec version {weights.spec_version}, this trainer "
            f"{spec_version}; re-export it with this version or train from scratch "
            f'([finetune] from_model = "")'
        )
    if weights.spec is not None and _spec_or_none(weights.spec) != spec:
        raise FineTuneError(
            f"{weights.path.name} was trained with spec {weights.spec}, this run uses "
            f'{spec.to_dict()}; use the same [spec] or train from scratch ([finetune] from_model = "")'
        )


def _spec_or_none(values: dict[str, Any]) -> Any:
    from exports.spec import Spec

    try:
        return Spec.from_dict(values)
    except (TypeError, ValueError):
        return None


def start_weights(
    finetune: Any,
    corpus_tunes: int,
    spec: Any,
    networks: list[Any],
    log: Callable[[str], None],
) -> StartWeights | None:
    """The weights a fresh run starts from, or None (random weights).

    None when ``finetune.from_model`` is empty or the corpus has ``when_tunes_below`` tunes or
    more. The file must fit ``spec`` and each of ``networks`` (freshly built: the style model's
    and the Q-network's), by parameter names and shapes. A shipped style's name (the presets'
    ``"default"``) that does not fit is reported in one line and the run starts from random
    weights (the shipped file may predate the network); an explicit path that does not fit is
    refused (FineTuneError, one line).
    """
    from exports.spec import SPEC_VERSION

    if not finetune.from_model:
        return None
    if finetune.when_tunes_below > 0 and corpus_tunes >= finetune.when_tunes_below:
        return None
    shipped = finetune.from_model in SHIPPED_STYLE_NAMES
    try:
        weights = read_onnx_weights(resolve_from_model(finetune.from_model))
        check_spec(weights, spec, SPEC_VERSION)
        for network in networks:
            matched_state_dict(network, weights)
    except FineTuneError as err:
        if not shipped:
            raise
        log(f"not fine-tuning: {err}")
        return None
    log(
        f"fine-tuning: the corpus has {corpus_tunes} tunes (< {finetune.when_tunes_below}), so "
        f"the style model and the Q-network start from {weights.path}"
        if finetune.when_tunes_below > 0
        else f"fine-tuning: the style model and the Q-network start from {weights.path}"
    )
    return weights


def load_start_weights(
    network: Any, weights: StartWeights, what: str, log: Callable[[str], None]
) -> None:
    """Load ``weights`` into ``network`` (in place); ``what`` names it in the log line."""
    network.load_state_dict(matched_state_dict(network, weights))
    log(f"{what}: starts from the weights of {weights.path.name}")


def q_values(network: Any, states: np.ndarray, device: Any = "cpu") -> np.ndarray:
    """(N, n_actions) float32 Q-values of a torch network for (N, state_dim) states."""
    import torch

    with torch.no_grad():
        q = network(torch.as_tensor(states, dtype=torch.float32, device=device))
    return q.cpu().numpy()
