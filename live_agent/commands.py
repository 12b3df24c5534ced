"""Subcommands of the live side: registered into ``deepjam`` through an entry point."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the live side's subcommands (jam, ports, answer, inspect)."""
