"""Finding and opening MIDI ports through python-rtmidi, with one-line errors.

A port is named exactly or by a case-insensitive substring (``--input keystep`` finds
``Arturia KeyStep 37``). A name that matches nothing, or several ports, raises ``PortError``
with what is there: ``no MIDI input matches 'Keystep'; available: ['Midi Through']``.

``--api`` picks the MIDI system: ``jack``, ``alsa``, ``coremidi`` or ``auto`` (the first compiled
system that answers, JACK first: on a machine running a JACK server that is where the ports are).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from exports.errors import ConfigError, PortError

PortKind = Literal["input", "output"]

API_CHOICES = ("auto", "jack", "alsa", "coremidi")
VIRTUAL_INPUT_NAME = "deepjam in"
VIRTUAL_OUTPUT_NAME = "deepjam out"
CLIENT_NAME = "deepjam"


def _rtmidi() -> Any:
    import rtmidi

    return rtmidi


def api_ids() -> dict[str, int]:
    """``--api`` names -> rtmidi API constants (``auto`` is ``API_UNSPECIFIED``)."""
    rtmidi = _rtmidi()
    return {
        "auto": rtmidi.API_UNSPECIFIED,
        "jack": rtmidi.API_UNIX_JACK,
        "alsa": rtmidi.API_LINUX_ALSA,
        "coremidi": rtmidi.API_MACOSX_CORE,
    }


def api_name(api: int) -> str:
    """The ``--api`` name of an rtmidi API constant (``'api 7'`` for one deepjam does not name)."""
    for name, value in api_ids().items():
        if value == api:
            return name
    return f"api {api}"


def _open_client(kind: PortKind, api: int, client_name: str) -> Any:
    """An rtmidi MidiIn/MidiOut on ``api``; raises PortError when that MIDI system is not up."""
    rtmidi = _rtmidi()
    cls = rtmidi.MidiIn if kind == "input" else rtmidi.MidiOut
    try:
        return cls(api, name=client_name)
    except rtmidi.RtMidiError as err:
        hint = (
            "start a JACK server (e.g. `jackd -d dummy`) or pick another --api"
            if api == rtmidi.API_UNIX_JACK
            else "pick another --api (see `deepjam ports --api jack`)"
        )
        server = os.environ.get("JACK_DEFAULT_SERVER")
        where = (
            f" (JACK_DEFAULT_SERVER={server!r})" if server and api == rtmidi.API_UNIX_JACK else ""
        )
        raise PortError(
            f"cannot open the {api_name(api)} MIDI system{where}: {str(err).strip()}; {hint}"
        ) from err


def resolve_api(name: str) -> int:
    """The rtmidi API for an ``--api`` name; ``auto`` becomes the first compiled one that answers.

    Raises ConfigError for an unknown or uncompiled name, PortError when ``auto`` finds none.
    """
    rtmidi = _rtmidi()
    ids = api_ids()
    if name not in ids:
        raise ConfigError(f"expected --api to be one of {list(API_CHOICES)}, got {name!r}")
    compiled = list(rtmidi.get_compiled_api())
    if name != "auto":
        api = ids[name]
        if api not in compiled:
            have = [api_name(a) for a in compiled]
            raise ConfigError(
                f"this python-rtmidi was built without {name}; it has {have}; pick one of those"
            )
        return api
    # JACK first: where a JACK server runs, the ports a user patches live there.
    order = sorted(compiled, key=lambda a: 0 if a == rtmidi.API_UNIX_JACK else 1)
    failures = []
    for api in order:
        if api == rtmidi.API_RTMIDI_DUMMY:
            continue
        try:
            probe = _open_client("input", api, CLIENT_NAME + "-probe")
        except PortError as err:
            failures.append(f"{api_name(api)}: {str(err).split(': ', 1)[-1]}")
            continue
        probe.delete()
        return int(api)
    raise PortError(f"no MIDI system answers ({'; '.join(failures)}); start JACK or ALSA")


@dataclass(frozen=True)
class PortList:
    """What ports a MIDI system shows now; names as rtmidi gives them."""

    api: int
    inputs: list[str]
    """Ports deepjam can read from (sources: keyboards, other programs' outputs)."""
    outputs: list[str]
    """Ports deepjam can send to (synths, DAW inputs)."""


def list_ports(api: int) -> PortList:
    """The input and output ports of one MIDI system; raises PortError if it is not running."""
    midi_in = _open_client("input", api, CLIENT_NAME + "-list")
    midi_out = _open_client("output", api, CLIENT_NAME + "-list")
    try:
        return PortList(
            api=api, inputs=list(midi_in.get_ports()), outputs=list(midi_out.get_ports())
        )
    finally:
        midi_in.delete()
        midi_out.delete()


def match_port(available: list[str], wanted: str, kind: PortKind) -> int:
    """Index of the port named ``wanted``: exact name first, else one case-insensitive substring.

    Raises PortError (one line, with the available names) for no match or an ambiguous one.
    """
    if wanted in available:
        return available.index(wanted)
    needle = wanted.casefold()
    hits = [i for i, name in enumerate(available) if needle in name.casefold()]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise PortError(f"no MIDI {kind} matches {wanted!r}; available: {available}")
    names = [available[i] for i in hits]
    raise PortError(f"MIDI {kind} {wanted!r} is ambiguous, it matches {names}; give the full name")


@dataclass
class OpenedPort:
    """An open rtmidi port and how it was asked for, so a watchdog can find it again."""

    kind: PortKind
    api: int
    handle: Any
    """The rtmidi MidiIn / MidiOut."""
    name: str
    """The port's name as listed (the peer for a real port, our own for a virtual one)."""
    wanted: str | None
    """What the user asked for (None for a virtual port)."""
    virtual: bool

    def close(self) -> None:
        """Close the port and its client; safe to call twice."""
        if self.handle is not None:
            self.handle.close_port()
            self.handle.delete()
            self.handle = None


def open_port(
    kind: PortKind,
    api: int,
    wanted: str | None,
    virtual: bool = False,
    client_name: str = CLIENT_NAME,
) -> OpenedPort:
    """Open an input or output: a virtual port (``deepjam in`` / ``deepjam out``) when
    ``virtual`` or when ``wanted`` is None, else the port ``wanted`` names (see ``match_port``).

    Raises PortError with one line when the system is down or the name matches nothing.
    """
    handle = _open_client(kind, api, client_name)
    rtmidi = _rtmidi()
    try:
        if virtual or wanted is None:
            port_name = VIRTUAL_INPUT_NAME if kind == "input" else VIRTUAL_OUTPUT_NAME
            try:
                handle.open_virtual_port(port_name)
            except rtmidi.RtMidiError as err:
                raise PortError(
                    f"cannot make virtual MIDI {kind} {port_name!r} on {api_name(api)}: "
                    f"{str(err).strip()}; name a port instead (`deepjam ports`)"
                ) from err
            return OpenedPort(kind, api, handle, port_name, None, True)
        available = list(handle.get_ports())
        index = match_port(available, wanted, kind)
        own = "deepjam in" if kind == "input" else "deepjam out"
        try:
            handle.open_port(index, own)
        except rtmidi.RtMidiError as err:
            raise PortError(
                f"cannot open MIDI {kind} {available[index]!r}: {str(err).strip()}; "
                f"is another program holding it?"
            ) from err
        return OpenedPort(kind, api, handle, available[index], wanted, False)
    except BaseException:
        handle.delete()
        raise


def format_port_list(ports: PortList) -> str:
    """Text for ``deepjam ports``: one port a line under an Inputs / Outputs heading."""
    lines = [f"MIDI system: {api_name(ports.api)}", "Inputs (use with --input):"]
    lines += [f"  {name}" for name in ports.inputs] or ["  (none)"]
    lines.append("Outputs (use with --output):")
    lines += [f"  {name}" for name in ports.outputs] or ["  (none)"]
    return "\n".join(lines)
