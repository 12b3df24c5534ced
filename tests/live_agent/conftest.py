"""Fixtures of the live-agent tests (the fakes themselves are in tests/fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import make_onnx_model


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_onnx_model(tmp_path_factory.mktemp("models") / "tiny.onnx")
