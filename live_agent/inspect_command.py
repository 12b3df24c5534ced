"""Placeholder: this subcommand is being built; it registers nothing yet."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pass
