"""Subcommands of the training side: registered into ``deepjam`` through an entry point.

Each command lives in its own ``*_command`` module with a ``register(subparsers)``. Handlers
import torch and the heavy modules inside themselves, so ``--help`` is instant and works
without the ``train`` extra; running one without it is one line that names the pip command
(the dispatcher checks ``requires_extra`` before the handler runs).
"""

from __future__ import annotations

import argparse
import importlib

COMMAND_MODULES = (
    "training.cli.corpus_command",
    "training.cli.train_command",
    "training.cli.eval_command",
    "training.cli.export_command",
    "training.cli.sweep_command",
)
NEEDS_TRAIN_EXTRA = ("train", "eval", "export", "sweep")
"""Subcommands that need torch (the train extra). ``corpus`` needs it only for the default
corpus (music21); ``corpus build --from DIR`` and ``corpus info`` run on the base install."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the training side's subcommands (corpus, train, eval, export, sweep)."""
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for command in NEEDS_TRAIN_EXTRA:
        subparsers.choices[command].set_defaults(requires_extra="train")
