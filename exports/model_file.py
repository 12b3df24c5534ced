"""Reading a deepjam ONNX model: load, check against this build's contract, run.

Only ONNX is read on the live side (no pickle), so a model from a stranger cannot run code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exports.errors import ModelError
from exports.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from exports.spec import Spec


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

    def warm_up(self, calls: int = 20) -> None:
        """Run a few decisions so the first live one is not the slow one (~1 ms cold)."""
        zeros = np.zeros((1, self.spec.state_dim), dtype=np.float32)
        for _ in range(calls):
            self.q_values(zeros)


def load_model(path: str | Path, threads: int = 1) -> PolicyModel:
    """Open an ONNX model and check it fits; raises ModelError with one clear line otherwise."""
    import onnxruntime as ort

    path = Path(path)
    fix = "point --model at a .onnx file written by `deepjam export`"
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} does not exist; {fix}")
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
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise ModelError(f"{path.name} is not a readable ONNX model ({reason}); {fix}") from err
    metadata = ModelMetadata.from_props(
        dict(session.get_modelmeta().custom_metadata_map), source=path.name
    )
    spec = metadata.spec
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
        raise ModelError(
            f"{path.name}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, got inputs "
            f"{[i.name for i in inputs]} and outputs {[o.name for o in outputs]}; {fix}"
        )
    if inputs[0].shape[-1] != spec.state_dim:
        raise ModelError(
            f"{path.name}: its input has {inputs[0].shape[-1]} features but its spec encodes "
            f"{spec.state_dim}; the file was altered after export; {fix}"
        )
    out = next(o for o in outputs if o.name == OUTPUT_NAME)
    if out.shape[-1] != spec.n_actions:
        raise ModelError(
            f"{path.name}: it scores {out.shape[-1]} actions but its vocabulary has "
            f"{spec.n_actions}; the file was altered after export; {fix}"
        )
    return PolicyModel(path=path, metadata=metadata, session=session)
