"""Reading a deepjam ONNX model: load, check against this build's contract, run.

Only ONNX is read on the live side (no pickle), so a model from a stranger cannot run code.
Every way a file can fail to fit raises ``ModelError`` with one line: what is wrong, and the fix.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from exports.errors import ModelError
from exports.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from exports.spec import Spec

EXPORT_FIX = "expected a .onnx file written by `deepjam export`"
ONNX_FLOAT = "tensor(float)"


class Policy(Protocol):
    """The one policy seam, for both sides: a Q-network with the spec it was made for.
    ``PolicyModel`` (ONNX) is one, live and in evaluation; ``training.eval.evaluate.TorchPolicy``
    is one in training; tests' fakes are others (no inheritance needed)."""

    @property
    def spec(self) -> Spec: ...

    def q_values(self, states: np.ndarray) -> np.ndarray:
        """(B, state_dim) float32 -> (B, n_actions) float32."""
        ...


@dataclass
class PolicyModel:
    """A loaded, checked Q-network. ``q_values`` is the policy seam the live agent calls."""

    path: Path
    metadata: ModelMetadata
    session: Any  # onnxruntime.InferenceSession

    @property
    def spec(self) -> Spec:
        return self.metadata.spec

    def q_values(self, states: np.ndarray) -> np.ndarray:
        """(B, state_dim) float32 -> (B, n_actions) float32."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: states})[0]

    def bound(self, states: np.ndarray) -> Any:
        """A call that runs the model on ``states`` (a (B, state_dim) float32 array the caller
        rewrites in place) and returns its Q-values in one reused (B, n_actions) array: the live
        agent's per-decision call, without onnxruntime's per-call input and output handling."""
        binding = self.session.io_binding()
        q = np.empty((states.shape[0], self.spec.n_actions), dtype=np.float32)
        binding.bind_input(INPUT_NAME, "cpu", 0, np.float32, list(states.shape), states.ctypes.data)
        binding.bind_output(OUTPUT_NAME, "cpu", 0, np.float32, list(q.shape), q.ctypes.data)
        run = self.session.run_with_iobinding

        def q_values() -> np.ndarray:
            run(binding)
            return q

        return q_values

    def warm_up(self, calls: int = 20) -> None:
        """Run a few decisions so the first live one is not the slow one (~1 ms cold)."""
        zeros = np.zeros((1, self.spec.state_dim), dtype=np.float32)
        for _ in range(calls):
            self.q_values(zeros)


class DecisionLatency(NamedTuple):
    """Wall time of one single-state ``q_values`` call on this machine, in microseconds."""

    p50_us: float
    p99_us: float
    max_us: float
    calls: int


def decision_latency(
    model: PolicyModel,
    calls: int = 2000,
    warmup_calls: int = 200,
    state: np.ndarray | None = None,
) -> DecisionLatency:
    """Time ``calls`` back-to-back single-state decisions after ``warmup_calls``.

    ``state`` is one (1, state_dim) float32 state (zeros when None). Back to back is the best
    case: a decision every few ms meets colder caches (docs/measurements.md: 0.07-0.26 ms).
    """
    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    one = np.zeros((1, model.spec.state_dim), np.float32) if state is None else state
    one = np.ascontiguousarray(one, dtype=np.float32).reshape(1, model.spec.state_dim)
    for _ in range(warmup_calls):
        model.q_values(one)
    elapsed_ns = np.empty(calls, dtype=np.int64)
    for i in range(calls):
        start_ns = time.perf_counter_ns()
        model.q_values(one)
        elapsed_ns[i] = time.perf_counter_ns() - start_ns
    elapsed_us = elapsed_ns / 1000.0
    return DecisionLatency(
        p50_us=float(np.percentile(elapsed_us, 50)),
        p99_us=float(np.percentile(elapsed_us, 99)),
        max_us=float(elapsed_us.max()),
        calls=calls,
    )


def first_line(err: BaseException) -> str:
    """The first line of an error message (at most 160 characters), or its type."""
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


_ORT_PREAMBLE = re.compile(
    r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*(Load model from .*? failed:)?"
)


def onnxruntime_reason(err: BaseException) -> str:
    """onnxruntime's message for a user: its first line without the ``[ONNXRuntimeError] : 7 :
    INVALID_PROTOBUF : Load model from PATH failed:`` preamble ("Protobuf parsing failed")."""
    text = _ORT_PREAMBLE.sub("", first_line(err)).strip().rstrip(".")
    return text or type(err).__name__


def _check_signature(session: Any, spec: Spec, name: str) -> None:
    """Input 'state' (B, state_dim) float32 and output 'q_values' (B, n_actions) float32."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
        raise ModelError(
            f"{name}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, got inputs "
            f"{[i.name for i in inputs]} and outputs {[o.name for o in outputs]}; {EXPORT_FIX}"
        )
    state, q = inputs[0], next(o for o in outputs if o.name == OUTPUT_NAME)
    for arg, features, what in ((state, spec.state_dim, "state"), (q, spec.n_actions, "action")):
        if arg.type != ONNX_FLOAT or len(arg.shape) != 2:
            raise ModelError(
                f"{name}: expected {arg.name!r} to be a 2-D float32 tensor (batch, {features}), "
                f"got {arg.type} of shape {arg.shape}; {EXPORT_FIX}"
            )
        if isinstance(arg.shape[1], int) and arg.shape[1] != features:
            raise ModelError(
                f"{name}: {arg.name!r} has {arg.shape[1]} {what} features but its metadata spec "
                f"says {features}; the file was altered after export; {EXPORT_FIX}"
            )


def _probe(session: Any, spec: Spec, name: str) -> None:
    """One decision on a zero state: the graph runs and scores every action, finitely."""
    try:
        q = session.run([OUTPUT_NAME], {INPUT_NAME: np.zeros((1, spec.state_dim), np.float32)})[0]
    except Exception as err:  # onnxruntime raises its own types for a graph that cannot run
        raise ModelError(
            f"{name}: the model does not run on a (1, {spec.state_dim}) state "
            f"({onnxruntime_reason(err)}); {EXPORT_FIX}"
        ) from err
    if q.shape != (1, spec.n_actions):
        raise ModelError(
            f"{name}: expected Q-values of shape (1, {spec.n_actions}) for one state, got "
            f"{q.shape}; the file was altered after export; {EXPORT_FIX}"
        )
    if not np.all(np.isfinite(q)):
        raise ModelError(f"{name}: the model's Q-values are not finite (NaN or inf); {EXPORT_FIX}")


def load_model(path: str | Path, threads: int = 1) -> PolicyModel:
    """Open an ONNX model and check it fits; raises ModelError with one clear line otherwise.

    Checks, in order: the file exists and is ONNX; its ``deepjam.*`` metadata is complete, of
    this build's spec version, and its vocabulary matches its spec; input and output names,
    dtypes and widths match the spec; one decision runs and gives finite Q-values.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} does not exist; {EXPORT_FIX}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # onnxruntime raises its own types for every kind of bad file
        raise ModelError(
            f"{path.name} is not a readable ONNX model ({onnxruntime_reason(err)}); {EXPORT_FIX}"
        ) from err
    metadata = ModelMetadata.from_props(
        dict(session.get_modelmeta().custom_metadata_map), source=path.name
    )
    _check_signature(session, metadata.spec, path.name)
    _probe(session, metadata.spec, path.name)
    return PolicyModel(path=path, metadata=metadata, session=session)
