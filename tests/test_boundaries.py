"""Package boundaries: the live side and the contract never import torch or the trainer."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["exports", "live_agent"])
def test_package_imports_without_torch_or_training(package: str) -> None:
    code = (
        f"import sys, pkgutil, importlib, {package}\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in ('torch', 'training') if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, f"{package} pulled in {done.stdout.strip()} {done.stderr[-500:]}"


def test_training_package_import_does_not_import_torch() -> None:
    code = "import sys, training, training.cli.commands; sys.exit('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
