"""A tiny hand-made deepjam model for live tests: onnx + numpy, no torch, no training."""

from __future__ import annotations

from pathlib import Path

SCALE_MODEL_DEGREES = (60, 62, 64, 65, 67, 69, 71, 72)
"""Key-relative pitches the scale model plays: C major from middle C, one per bar position."""


def write_scale_model(path: Path, only_action: int | None = None) -> Path:
    """A tiny linear ONNX Q-network with deepjam metadata (onnx + numpy, no torch).

    Greedy, it starts a new note on every 16th: the key-relative C-major degree
    ``SCALE_MODEL_DEGREES[bar_position % 8]``. Played live, its notes must therefore be in the
    player's key (the live agent maps the relative frame to the estimated tonic). With
    ``only_action`` it always prefers that one action instead (e.g. REST: a silent model).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from exports.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
    from exports.spec import DEFAULT_SPEC

    spec = DEFAULT_SPEC
    weights = np.zeros((spec.state_dim, spec.n_actions), dtype=np.float32)
    bias = np.full(spec.n_actions, -10.0, dtype=np.float32)
    bias[0] = 0.0  # HOLD
    bar_offset = 2 * spec.window_steps * spec.features_per_part_step
    for position in range(spec.steps_per_bar if only_action is None else 0):
        pitch = SCALE_MODEL_DEGREES[position % len(SCALE_MODEL_DEGREES)]
        weights[bar_offset + position, spec.action_for_pitch(pitch)] = 20.0
    if only_action is not None:
        bias[:] = -10.0
        bias[only_action] = 0.0
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [INPUT_NAME, "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], [OUTPUT_NAME]),
        ],
        "scale_model",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", spec.state_dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", spec.n_actions])],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = ModelMetadata(
        spec=spec,
        reward_weights={"style": 0.0, "theory": 1.0, "play": 0.0},
        style_name="test-scale",
        corpus={"name": "none", "tunes": 0},
    )
    helper.set_model_props(model, metadata.to_props())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
