"""The optional extras of the ``deepjam`` package, and one line that names a missing one.

A command checks what it needs before it does any work (``require_extra``), so a user without
the ``train`` extra reads ``deepjam train needs the train extra ...: pip install ...`` instead
of a ``ModuleNotFoundError`` traceback, and ``deepjam answer --plot`` refuses before it writes
anything rather than after the MIDI file. ``EXTRAS`` mirrors ``[project.optional-dependencies]``
in pyproject.toml by import name (a test holds the two together). Standard library only.
"""

from __future__ import annotations

import importlib.util

from exports.errors import DeepjamError

EXTRAS: dict[str, tuple[str, ...]] = {
    "train": (
        "torch",
        "onnx",
        "onnxscript",
        "music21",
        "tensorboard",
        "matplotlib",
        "tqdm",
        "gymnasium",
    ),
    "plot": ("matplotlib",),
    "link": ("aalink",),
    "scale": ("ray", "pandas", "pyarrow"),
}
"""Extra name -> the modules it brings, by import name (JACK-Client imports as ``jack``)."""

INSTALL_LINES: dict[str, str] = {
    # torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
    "train": 'pip install torch==2.13.0 && pip install "deepjam[train]"',
    "scale": 'pip install torch==2.13.0 && pip install "deepjam[train,scale]"',
}


class MissingExtraError(DeepjamError, ImportError):
    """An optional part of deepjam is not installed; the message names the pip line."""


def install_line(extra: str) -> str:
    """The pip command that installs ``extra`` (from a checkout, ``.`` stands for ``deepjam``)."""
    return INSTALL_LINES.get(extra, f'pip install "deepjam[{extra}]"')


def missing_modules(modules: tuple[str, ...] | list[str]) -> list[str]:
    """The names in ``modules`` that cannot be imported here (looked up, not imported)."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def require_extra(extra: str, what: str) -> None:
    """Raise MissingExtraError (one line: what needs it, what is missing, the pip line) unless
    every module of ``extra`` is importable. ``what`` names the user's action, e.g.
    ``'deepjam train'`` or ``'--plot'``."""
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {sorted(EXTRAS)}")
    missing = missing_modules(EXTRAS[extra])
    if missing:
        raise MissingExtraError(
            f"{what} needs the {extra} extra, which is not installed (missing: "
            f"{', '.join(missing)}); install it with: {install_line(extra)}"
        )


def extra_for_module(module: str) -> str | None:
    """The extra that provides top-level module ``module`` (``'torch.nn'`` -> ``'train'``)."""
    top = module.split(".")[0]
    for extra, modules in EXTRAS.items():
        if top in modules:
            return extra
    return None
