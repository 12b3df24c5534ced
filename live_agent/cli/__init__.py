"""The ``deepjam`` command: a thin dispatcher over subcommands that packages register.

Subcommands come from the ``deepjam.commands`` entry-point group (see pyproject.toml): each
entry is a ``register(subparsers)`` function. That keeps the live side free of any import of the
trainer, and ``deepjam train --help`` works without torch (commands import heavy modules inside
their handlers).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from exports.errors import DeepjamError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepjam",
        description="A real-time MIDI improviser driven by a Deep Q-Network.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    registered = sorted(entry_points(group="deepjam.commands"), key=lambda e: e.name)
    if not registered:
        parser.error("no subcommands are installed; install deepjam with `pip install -e .`")
    for entry in registered:
        entry.load()(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DeepjamError as err:
        print(f"deepjam {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
