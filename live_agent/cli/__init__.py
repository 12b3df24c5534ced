"""The ``deepjam`` command: a thin dispatcher over subcommands that packages register.

Subcommands come from the ``deepjam.commands`` entry-point group (see pyproject.toml): each
entry is a ``register(subparsers)`` function. That keeps the live side free of any import of the
trainer, and ``deepjam train --help`` works without torch (commands import heavy modules inside
their handlers). A subcommand that needs an optional extra says so with
``parser.set_defaults(requires_extra="train")``; the dispatcher checks it before the handler runs,
so a missing extra is one line naming the pip command, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version

from exports.errors import DeepjamError
from exports.extras import extra_for_module, install_line, require_extra


def package_version() -> str:
    """deepjam's installed version, e.g. ``'0.1.0'`` (``'unknown'`` when not installed)."""
    try:
        return version("deepjam")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepjam",
        description="A real-time MIDI improviser driven by a Deep Q-Network.",
    )
    parser.add_argument("--version", action="version", version=f"deepjam {package_version()}")
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
        extra = getattr(args, "requires_extra", None)
        if extra:
            require_extra(extra, f"deepjam {args.command}")
        return int(args.func(args) or 0)
    except DeepjamError as err:
        print(f"deepjam {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        # A module an extra brings, imported deep inside a handler: the same one line.
        extra = extra_for_module(err.name or "")
        if extra is None:
            raise
        print(
            f"deepjam {args.command}: error: this needs the {extra} extra, which is not "
            f"installed (missing: {err.name}); install it with: {install_line(extra)}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
