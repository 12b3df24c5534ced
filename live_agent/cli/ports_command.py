"""``deepjam ports``: list the MIDI inputs and outputs ``deepjam jam`` can open."""

from __future__ import annotations

import argparse

from live_agent.io.ports import API_CHOICES


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "ports",
        help="list MIDI input and output ports",
        description="List the MIDI ports of one MIDI system; pass a name (or a part of it) to "
        "`deepjam jam --input/--output`.",
    )
    parser.add_argument(
        "--api",
        choices=API_CHOICES,
        default="auto",
        help="MIDI system (default: auto, JACK first when a JACK server runs)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from live_agent.io.ports import format_port_list, list_ports, resolve_api

    print(format_port_list(list_ports(resolve_api(args.api))))
    return 0
