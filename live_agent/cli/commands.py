"""Subcommands of the live side: registered into ``deepjam`` through an entry point.

Each command lives in its own ``*_command`` module with a ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib

COMMAND_MODULES = (
    "live_agent.cli.ports_command",
    "live_agent.cli.jam_command",
    "live_agent.cli.answer_command",
    "live_agent.cli.inspect_command",
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the live side's subcommands (ports, jam, answer, inspect)."""
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
