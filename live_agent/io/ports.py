"""Finding and opening MIDI ports through python-rtmidi, with one-line errors.

A port is named exactly or by a case-insensitive substring (``--input keystep`` finds
``Arturia KeyStep 37``). A name that matches nothing, or several ports, raises ``PortError``
with what is there: ``no MIDI input matches 'Keystep'; available: ['Midi Through']``.

``--api`` picks the MIDI system: ``jack``, ``alsa``, ``coremidi`` or ``auto`` (the first compiled
system that answers, JACK first: on a machine running a JACK server that is where the ports are).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from exports.errors import ConfigError, PortError

PortKind = Literal["input", "output"]

API_CHOICES = ("auto", "jack", "alsa", "coremidi")
VIRTUAL_INPUT_NAME = "deepjam in"
VIRTUAL_OUTPUT_NAME = "deepjam out"
CLIENT_NAME = "deepjam"
OWN_PREFIX = CLIENT_NAME
"""Every JACK/ALSA client deepjam makes is named deepjam...: never offered as a port to use."""
NO_INPUTS_FIX = (
    "plug in a MIDI keyboard (and check it shows in `deepjam ports`), or pass --virtual and "
    "connect your keyboard to 'deepjam in' yourself"
)
NO_OUTPUTS_FIX = (
    "start a synth (`deepjam jam --synth` starts FluidSynth) or a DAW, or pass --virtual and "
    "connect 'deepjam out' yourself"
)
_NATIVE_STDERR_LOCK = threading.RLock()
"""Held while fd 2 points into a sink (``quiet_native_stderr``) and while a line is logged
(``log_line``): a line logged by one thread while another probes a MIDI system is not lost."""
INPUT_DRAIN_S = 0.05
"""How long a JACK input waits, disconnected and with the GIL free, before its client closes:
time for a callback already under way in JACK's thread to finish (see ``OpenedPort.close``)."""


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hold back what C libraries (libjack, ALSA's libasound) print to file descriptor 2 while
    a MIDI system is probed: without a JACK server libjack prints five lines of its own before
    deepjam can say, in one line, what is wrong. Python's own stderr is flushed first."""
    with _NATIVE_STDERR_LOCK:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (a detached process): nothing to hide
            yield
            return
        try:
            with tempfile.TemporaryFile() as sink:
                os.dup2(sink.fileno(), 2)
                try:
                    yield
                finally:
                    os.dup2(saved, 2)
        finally:
            os.close(saved)


def log_line(text: str) -> None:
    """Print one line to stderr, never into the sink of a ``quiet_native_stderr`` that another
    thread (the watchdog opening its probe) holds at that moment."""
    with _NATIVE_STDERR_LOCK:
        print(text, file=sys.stderr, flush=True)


def is_own_port(name: str) -> bool:
    """True for a port of deepjam's own clients (``deepjam-in:deepjam in``, the watchdog's
    probe, ALSA's ``deepjam-out:deepjam out 130:0``): not a keyboard or synth to connect to."""
    client = name.split(":", 1)[0].strip().casefold()
    return client.startswith(OWN_PREFIX) or name.casefold().startswith(OWN_PREFIX + " ")


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
    # libjack would start a JACK server of its own when none runs: never do that behind the
    # user's back (and never take one of JACK's few server slots).
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    try:
        with quiet_native_stderr():
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
            reason = str(err.__cause__ or err).strip().split("::initialize: ")[-1]
            failures.append(f"{api_name(api)}: {reason.rstrip('.')}")
            continue
        probe.delete()
        return int(api)
    raise PortError(
        "no MIDI system is running: start a JACK server (`jackd -R -d alsa &`, or "
        "`jackd -R -d dummy &` on a machine with no sound card) or ALSA's sequencer "
        f"(`sudo modprobe snd-seq`); details: {'; '.join(failures)}"
    )


@dataclass(frozen=True)
class PortList:
    """What ports a MIDI system shows now; names as rtmidi gives them."""

    api: int
    inputs: list[str]
    """Ports deepjam can read from (sources: keyboards, other programs' outputs); not its own."""
    outputs: list[str]
    """Ports deepjam can send to (synths, DAW inputs); not its own."""


def list_ports(api: int) -> PortList:
    """The input and output ports of one MIDI system; raises PortError if it is not running."""
    midi_in = _open_client("input", api, CLIENT_NAME + "-list")
    midi_out = _open_client("output", api, CLIENT_NAME + "-list")
    try:
        with quiet_native_stderr():
            inputs, outputs = list(midi_in.get_ports()), list(midi_out.get_ports())
        return PortList(
            api=api,
            inputs=[name for name in inputs if not is_own_port(name)],
            outputs=[name for name in outputs if not is_own_port(name)],
        )
    finally:
        midi_in.delete()
        midi_out.delete()


@dataclass(frozen=True)
class InstanceNames:
    """The MIDI client names of one running deepjam (its own, not another instance's)."""

    input: str
    output: str
    watchdog: str


def instance_names(api: int) -> InstanceNames:
    """Client names no other deepjam on this MIDI system uses: ``deepjam-in`` / ``deepjam-out``
    / ``deepjam-watchdog`` for the first instance, ``deepjam-2-in`` ... for a second one. Each
    instance then finds and probes its own ports (never another's); all stay hidden from port
    lists (``is_own_port``)."""
    midi_in = _open_client("input", api, CLIENT_NAME + "-list")
    midi_out = _open_client("output", api, CLIENT_NAME + "-list")
    try:
        with quiet_native_stderr():
            names = list(midi_in.get_ports()) + list(midi_out.get_ports())
    finally:
        midi_in.delete()
        midi_out.delete()
    clients = {name.split(":", 1)[0] for name in names}
    for n in range(1, 100):
        prefix = CLIENT_NAME if n == 1 else f"{CLIENT_NAME}-{n}"
        chosen = InstanceNames(f"{prefix}-in", f"{prefix}-out", f"{prefix}-watchdog")
        if not clients & {chosen.input, chosen.output, chosen.watchdog}:
            return chosen
    raise PortError("99 deepjam instances already run on this MIDI system; stop one")


def match_port(available: list[str], wanted: str, kind: PortKind) -> int:
    """Index of the port named ``wanted``: exact name first, else one case-insensitive substring.

    deepjam's own ports are never candidates. Raises PortError (one line, with the names there
    are, or what to do when there are none) for no match or an ambiguous one.
    """
    candidates = [i for i, name in enumerate(available) if not is_own_port(name)]
    for i in candidates:
        if available[i] == wanted:
            return i
    needle = wanted.casefold()
    hits = [i for i in candidates if needle in available[i].casefold()]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        if not candidates:
            fix = NO_INPUTS_FIX if kind == "input" else NO_OUTPUTS_FIX
            raise PortError(f"no MIDI {kind}s found (asked for {wanted!r}); {fix}")
        names = [available[i] for i in candidates]
        raise PortError(f"no MIDI {kind} matches {wanted!r}; available: {names}")
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

    client_name: str = CLIENT_NAME
    """The MIDI client this port lives in (``<client_name>:deepjam in`` on JACK)."""

    def close(self) -> None:
        """Close the port and its client; safe to call twice.

        A JACK input is first disconnected from every peer and left alone for
        ``INPUT_DRAIN_S``, so that no callback is under way in JACK's thread when its client
        closes. Why (measured, tests/integration/test_watchdog.py's reopen soak): rtmidi calls
        our Python callback from the client's JACK thread, which must take the GIL; python-rtmidi's
        ``close_port`` frees the callback while holding the GIL, and closing the client kills
        that thread (JACK's ``Deactivate`` cancels it). A callback waiting for the GIL at that
        moment runs freed memory or dies holding interpreter state: a segfault or a hang, about
        once in 100 reopens under a steady stream of input. With no peer no event arrives, and
        a callback already under way finishes while this thread sleeps.
        """
        if self.handle is None:
            return
        if self.kind == "input" and self.api == _rtmidi().API_UNIX_JACK:
            disconnect_jack_port(jack_port_name(self.client_name, VIRTUAL_INPUT_NAME))
            time.sleep(INPUT_DRAIN_S)
        self.handle.close_port()  # also cancels the callback
        self.handle.delete()
        self.handle = None


def disconnect_jack_port(port_name: str) -> list[str]:
    """Disconnect every peer from one JACK port (through JACK-Client); returns the peers that
    were connected (none when the port, the server or JACK-Client is not there)."""
    try:
        import jack
    except ImportError:
        return []
    try:
        with quiet_native_stderr():
            client = jack.Client("deepjam-closer", no_start_server=True)
    except jack.JackError:
        return []
    try:
        try:
            port = client.get_port_by_name(port_name)
            peers = [p.name for p in client.get_all_connections(port)]
        except jack.JackError:
            return []
        for peer in peers:
            try:
                if port.is_input:
                    client.disconnect(peer, port)
                else:
                    client.disconnect(port, peer)
            except jack.JackError:
                pass  # the peer left meanwhile
        return peers
    finally:
        client.close()


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
            return OpenedPort(kind, api, handle, port_name, None, True, client_name)
        with quiet_native_stderr():
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
        return OpenedPort(kind, api, handle, available[index], wanted, False, client_name)
    except BaseException:
        handle.delete()
        raise


def format_port_list(ports: PortList) -> str:
    """Text for ``deepjam ports``: one port a line under an Inputs / Outputs heading."""
    lines = [f"MIDI system: {api_name(ports.api)}", "Inputs (use with --input):"]
    lines += [f"  {name}" for name in ports.inputs] or [f"  no MIDI inputs found: {NO_INPUTS_FIX}"]
    lines.append("Outputs (use with --output):")
    lines += [f"  {name}" for name in ports.outputs] or [
        f"  no MIDI outputs found: {NO_OUTPUTS_FIX}"
    ]
    return "\n".join(lines)


def jack_port_name(client_name: str, port_name: str) -> str:
    """The full JACK name of a port deepjam made, as ``jack_connect`` wants it."""
    return f"{client_name}:{port_name}"


def connect_lines(
    api: int, virtual_input: str | None, virtual_output: str | None, ports: PortList | None
) -> list[str]:
    """Copy-pasteable lines that connect deepjam's virtual ports (full names, e.g.
    ``deepjam-in:deepjam in``) to what is there: ``jack_connect`` on JACK, ``aconnect`` on
    ALSA. A source or destination seen in ``ports`` is filled in, else a placeholder."""
    rtmidi = _rtmidi()
    source = ports.inputs[0] if ports and ports.inputs else "YOUR-KEYBOARD-PORT"
    target = ports.outputs[0] if ports and ports.outputs else "YOUR-SYNTH-PORT"
    lines = []
    if api == rtmidi.API_UNIX_JACK:
        if virtual_input:
            lines.append(f'jack_connect "{source}" "{virtual_input}"')
        if virtual_output:
            lines.append(f'jack_connect "{virtual_output}" "{target}"')
    elif api == rtmidi.API_LINUX_ALSA:
        if virtual_input:
            lines.append(f'aconnect "{source.rsplit(" ", 1)[-1]}" "{virtual_input.split(":")[0]}"')
        if virtual_output:
            lines.append(f'aconnect "{virtual_output.split(":")[0]}" "{target.rsplit(" ", 1)[-1]}"')
    return lines
