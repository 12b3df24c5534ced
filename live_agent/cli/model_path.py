"""Which model to play: ``--model``, else the packaged default. One finder for jam and answer."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from exports.errors import ModelError


def default_model_path() -> Path:
    """The packaged model, ``live_agent/models/default.onnx`` (it may not be installed)."""
    return Path(str(resources.files("live_agent").joinpath("models", "default.onnx")))


def resolve_model_path(model: Path | None) -> Path:
    """``--model``, else the packaged default; ModelError in one line when that is missing."""
    if model is not None:
        return model
    path = default_model_path()
    if not path.is_file():
        raise ModelError(
            f"no --model given and the packaged default model {path} is not installed; "
            "pass --model FILE.onnx (make one with `deepjam train` then `deepjam export`)"
        )
    return path
