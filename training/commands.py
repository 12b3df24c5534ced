"""Subcommands of the training side: registered into ``deepjam`` through an entry point.

Handlers import torch and the heavy modules inside themselves, so ``--help`` is instant and
works without the ``train`` extra.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the training side's subcommands (corpus, train, eval, export)."""
