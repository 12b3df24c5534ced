"""Writing a deepjam ONNX model from a torch Q-network, and its optional int8 twin.

The file carries the contract (``ModelMetadata.to_props()`` as ONNX ``metadata_props``) and is
checked before it takes its final name: the same reader the live player uses
(``exports.model_file.load_model``) must give torch's Q-values back on a few hundred states.
A file that fails the check is deleted, and whatever was at the target path stays as it was.

torch, onnx and onnxruntime are imported inside the functions: importing this module needs
numpy only, so ``exports`` stays importable without torch.

Exporter: the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``). For our MLPs it
takes ~0.2 s and matches torch to ~1e-7; the dynamo exporter (``exporter="dynamo"``, needs
onnxscript) gives the same graph (Gemm/Relu) but takes ~3 s and logs warnings. If a future
torch drops the TorchScript exporter, pass ``exporter="dynamo"``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from exports.errors import ConfigError, ModelError
from exports.metadata import INPUT_NAME, METADATA_PREFIX, OUTPUT_NAME, ModelMetadata
from exports.model_file import DecisionLatency, decision_latency, first_line, load_model

MIN_OPSET = 17
PRECISION_KEY = METADATA_PREFIX + "weights_precision"
"""Extra metadata on int8 copies (not part of ModelMetadata; readers ignore it)."""
PARITY_TOLERANCE = 1e-4
"""Largest |Q_onnx - Q_torch| accepted, in Q units, for Q-values up to ~100 in size."""
PARITY_RELATIVE = 1e-6
"""Beyond |Q| ~ 100 the limit grows as 1e-6 x max |Q|: onnxruntime sums in another order than
torch, and float32 keeps ~7 digits (a trained net with |Q| <= 37 differed by 2.3e-5)."""
MIN_INT8_AGREEMENT = 0.99
"""Share of held-out states on which the int8 model must pick the float model's greedy action."""

Exporter = Literal["torchscript", "dynamo"]


@dataclass(frozen=True)
class ParityReport:
    """How the written ONNX file compares with the torch module it came from."""

    path: Path
    n_states: int
    max_abs_diff: float
    """Largest |Q_onnx - Q_torch| over all states and actions."""
    argmax_agreement: float
    """Share of states where both pick the same greedy action (0..1)."""
    tolerance: float
    """The limit applied: max(tolerance, PARITY_RELATIVE x max |Q_torch|)."""
    export_s: float
    """Seconds for export + metadata + parity check."""
    exporter: str
    opset: int
    size_bytes: int


@dataclass(frozen=True)
class QuantizationReport:
    """An int8 model against its float original."""

    path: Path
    n_states: int
    agreement: float
    """Share of held-out states where the int8 greedy action equals the float one (0..1)."""
    max_abs_diff: float
    float_size_bytes: int
    int8_size_bytes: int
    float_latency: DecisionLatency
    int8_latency: DecisionLatency


def _temporary_path(path: Path) -> Path:
    """A sibling of ``path`` (same file system, so the final rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_atomically(data: bytes, tmp: Path) -> None:
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _set_metadata(model_proto: Any, props: dict[str, str]) -> None:
    """Replace every ``deepjam.*`` entry of an onnx ModelProto's metadata_props with ``props``."""
    keep = [p for p in model_proto.metadata_props if not p.key.startswith(METADATA_PREFIX)]
    del model_proto.metadata_props[:]
    for p in keep:
        model_proto.metadata_props.add(key=p.key, value=p.value)
    for key, value in sorted(props.items()):
        model_proto.metadata_props.add(key=key, value=value)


def _check_states(states: np.ndarray, state_dim: int, what: str) -> np.ndarray:
    states = np.ascontiguousarray(states, dtype=np.float32)
    if states.ndim != 2 or states.shape[0] < 1 or states.shape[1] != state_dim:
        raise ConfigError(
            f"expected {what} of shape (N >= 1, {state_dim}) for this spec, got {states.shape}; "
            f"encode them with exports.encoding.encode_states"
        )
    return states


def _onnx_bytes(module: Any, example: Any, opset: int, exporter: Exporter) -> bytes:
    """Serialize ``module`` with a dynamic batch axis; the model proto as bytes."""
    import tempfile

    import torch

    if exporter == "torchscript":
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            # torch 2.13 warns that the TorchScript exporter is deprecated; see the module doc.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            raw_path = Path(folder) / "raw.onnx"
            torch.onnx.export(
                module,
                (example,),
                raw_path,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
            return raw_path.read_bytes()
    if exporter == "dynamo":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch-internal pytree deprecations
            program = torch.onnx.export(
                module,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
        if program is None:  # only with dynamo=False and a file to write
            raise ModelError("the dynamo exporter returned no ONNX program; use 'torchscript'")
        return program.model_proto.SerializeToString()
    raise ConfigError(f"exporter must be 'torchscript' or 'dynamo', got {exporter!r}")


def export_onnx(
    module: Any,
    metadata: ModelMetadata,
    path: str | Path,
    parity_states: np.ndarray,
    opset: int = MIN_OPSET,
    *,
    tolerance: float = PARITY_TOLERANCE,
    exporter: Exporter = "torchscript",
) -> ParityReport:
    """Write ``module`` (a torch ``nn.Module``, (B, state_dim) -> (B, n_actions)) as ONNX.

    ``parity_states`` (N, state_dim) float32, a few hundred real states, are run through torch
    and through the written file (read back with ``load_model``). The file takes its final name
    only if the largest |difference| is <= ``tolerance`` (or ``PARITY_RELATIVE`` x max |Q| when
    that is larger) and the greedy actions agree on every state (a near-tie within that limit is
    not a disagreement); otherwise it is deleted and
    ``ModelError`` is raised. Returns the parity figures.
    """
    import onnx
    import torch

    start_s = time.perf_counter()
    path = Path(path)
    spec = metadata.spec
    if opset < MIN_OPSET:
        raise ConfigError(f"expected ONNX opset >= {MIN_OPSET}, got {opset}")
    states = _check_states(parity_states, spec.state_dim, "parity states")
    was_training = module.training
    module.eval()
    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    try:
        with torch.no_grad():
            q_torch = module(torch.from_numpy(states).to(device)).float().cpu().numpy()
        if q_torch.shape != (states.shape[0], spec.n_actions):
            raise ModelError(
                f"expected the network to map (N, {spec.state_dim}) states to (N, "
                f"{spec.n_actions}) Q-values for this spec, got {tuple(q_torch.shape)}; build it "
                f"with the spec's state_dim and n_actions"
            )
        example = torch.from_numpy(states[:1]).to(device)
        try:
            proto = onnx.load_from_string(_onnx_bytes(module, example, opset, exporter))
            _set_metadata(proto, metadata.to_props())
            onnx.checker.check_model(proto)
        except (ModelError, ConfigError):
            raise
        except Exception as err:  # torch and onnx raise many types; the first line says which
            other = "dynamo" if exporter == "torchscript" else "torchscript"
            raise ModelError(
                f"torch could not export the network with the {exporter} exporter "
                f"({first_line(err)}); try exporter={other!r}, or use Linear/ReLU layers"
            ) from err
    finally:
        module.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_path(path)
    try:
        _write_atomically(proto.SerializeToString(), tmp)
        model = load_model(tmp)
        q_onnx = model.q_values(states)  # (N, n_actions), one batch: checks the dynamic axis
        max_abs_diff = float(np.max(np.abs(q_onnx - q_torch)))
        limit = max(tolerance, PARITY_RELATIVE * float(np.max(np.abs(q_torch))))
        agreement, real_disagreements = _greedy_agreement(q_torch, q_onnx, limit)
        if not np.isfinite(max_abs_diff) or max_abs_diff > limit or real_disagreements:
            raise ModelError(
                f"{path.name}: the ONNX model does not match torch: max |dQ| {max_abs_diff:.3g} "
                f"(limit {limit:g}), greedy action differs on {real_disagreements} of "
                f"{len(states)} states; file not written; export with the other exporter "
                f"(exporter='dynamo'/'torchscript') or report the network's layers"
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return ParityReport(
        path=path,
        n_states=len(states),
        max_abs_diff=max_abs_diff,
        argmax_agreement=agreement,
        tolerance=limit,
        export_s=time.perf_counter() - start_s,
        exporter=exporter,
        opset=opset,
        size_bytes=path.stat().st_size,
    )


def _greedy_agreement(
    q_ref: np.ndarray, q_other: np.ndarray, tolerance: float
) -> tuple[float, int]:
    """(share of states with equal argmax, count of disagreements that are not near-ties).

    A disagreement is a near-tie when the reference scores the other's choice within
    ``tolerance`` of its own best.
    """
    ref_best, other_best = q_ref.argmax(axis=1), q_other.argmax(axis=1)
    rows = np.arange(len(q_ref))
    gap = q_ref[rows, ref_best] - q_ref[rows, other_best]  # >= 0
    real = int(np.sum((ref_best != other_best) & (gap > tolerance)))
    return float(np.mean(ref_best == other_best)), real


def read_metadata_props(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file (with the onnx package; no session)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def quantize_onnx(
    float_path: str | Path,
    out_path: str | Path,
    held_out_states: np.ndarray,
    min_agreement: float = MIN_INT8_AGREEMENT,
    latency_calls: int = 2000,
) -> QuantizationReport:
    """Write an int8 (dynamic quantization) copy of ``float_path`` to ``out_path``.

    The copy carries the float model's metadata. It is kept only if its greedy action equals
    the float model's on at least ``min_agreement`` of ``held_out_states`` (N, state_dim);
    otherwise it is deleted and ``ModelError`` gives the measured agreement. Returns sizes and
    single-decision latencies of both files.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    float_path, out_path = Path(float_path), Path(out_path)
    if float_path.resolve() == out_path.resolve():
        raise ConfigError(f"expected the int8 model to go to a new file, got {out_path} twice")
    float_model = load_model(float_path)
    states = _check_states(held_out_states, float_model.spec.state_dim, "held-out states")
    tmp = _temporary_path(out_path)
    try:
        quiet = logging.getLogger()  # onnxruntime.quantization logs advice on the root logger
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            # Per-channel weight scales: ~0.1 percentage points more agreement on our MLPs.
            quantize_dynamic(float_path, tmp, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            quiet.setLevel(level)
        proto = onnx.load(str(tmp))
        props = dict(float_model.session.get_modelmeta().custom_metadata_map)
        props[PRECISION_KEY] = json.dumps("int8")  # shown by `deepjam inspect`
        _set_metadata(proto, props)
        _write_atomically(proto.SerializeToString(), tmp)
        int8_model = load_model(tmp)
        q_float = float_model.q_values(states)
        q_int8 = int8_model.q_values(states)
        agreement = float(np.mean(q_float.argmax(axis=1) == q_int8.argmax(axis=1)))
        if agreement < min_agreement:
            raise ModelError(
                f"int8 model picks the float model's greedy action on only {agreement:.1%} of "
                f"{len(states)} held-out states (need >= {min_agreement:.0%}); not written; use "
                f"the float model {float_path.name}"
            )
        one = states[:1]
        report = QuantizationReport(
            path=out_path,
            n_states=len(states),
            agreement=agreement,
            max_abs_diff=float(np.max(np.abs(q_float - q_int8))),
            float_size_bytes=float_path.stat().st_size,
            int8_size_bytes=tmp.stat().st_size,
            float_latency=decision_latency(float_model, calls=latency_calls, state=one),
            int8_latency=decision_latency(int8_model, calls=latency_calls, state=one),
        )
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return report
