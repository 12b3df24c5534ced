"""A controls file's model slots are checked when a jam starts, not at their program change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exports.errors import ConfigError
from exports.model_file import load_model
from live_agent.controls import check_slots, load_controls


def test_the_shipped_slots_pass() -> None:
    check_slots(load_controls().model_slots, load_model)


@pytest.mark.parametrize("content", [None, b"not a model"])
def test_a_missing_or_broken_slot_is_one_line_at_start(
    tmp_path: Path, onnx_model: Path, content: bytes | None
) -> None:
    bad = tmp_path / "mine.onnx"
    if content is not None:
        bad.write_bytes(content)
    controls = tmp_path / "controls.toml"
    controls.write_text(f'[models]\n0 = "{onnx_model}"\n5 = "mine.onnx"\n')
    with pytest.raises(ConfigError) as caught:
        check_slots(load_controls(controls).model_slots, load_model)
    message = str(caught.value)
    assert re.match(r"controls: \[models\] slot 5 cannot be played \(.*mine\.onnx", message)
    assert message.endswith("fix that entry or remove it") and "\n" not in message
    assert "ONNXRuntimeError" not in message  # onnxruntime's reason, without its preamble
