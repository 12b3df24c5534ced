"""The MIDI backend of the live loop: rtmidi input onto the Inbox, and an rtmidi NoteSink.

Input. rtmidi calls ``MidiInput._on_message`` on its own thread for every message. The
callback stamps ``time.perf_counter_ns()`` and puts an ``InputEvent`` on the inbox; nothing else
(mido's rule: never raise into the C thread; a failure is counted, not raised). Active Sensing
(0xFE) and a lone sysex end (0xF7) are the watchdog's probes: they only refresh
``last_message_ns``.

Sysex. rtmidi's JACK input glues every event after an unterminated sysex (0xF0 without its
0xF7) onto that sysex: the input goes deaf until an 0xF7 arrives. The watchdog sends a lone
0xF7 every ``watchdog.SYSEX_END_EVERY_S``; rtmidi then hands over ``F0 <data> <the swallowed
messages> F7`` as one "sysex", which ``exports.midi.split_swallowed`` cuts back into the
messages (any status byte but a real-time one ends a sysex: MIDI 1.0). ``sysex_recoveries``
counts them.

Output. ``MidiOutput`` is the ``NoteSink`` the scheduler sends through, wrapped in the one
ledger of open notes (``live_agent.ledger.NoteLedger``), which ends each note after a port comes
back (``reopen_guard``) or at shutdown. Send failures are counted: a vanished JACK peer drops
messages silently, and an error must not stop the jam.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from exports.errors import PortError
from exports.midi import (
    ACTIVE_SENSING,
    CONTROL_CHANGE,
    NOTE_OFF,
    NOTE_ON,
    SYSEX_END,
    SYSEX_START,
    TIMING_CLOCK,
    split_swallowed,
)
from live_agent.io.ports import (
    VIRTUAL_INPUT_NAME,
    VIRTUAL_OUTPUT_NAME,
    OpenedPort,
    PortKind,
    match_port,
    open_port,
)
from live_agent.protocols import InputEvent

# python-rtmidi makes one client per port; distinct names keep JACK from renaming the second
# one ("deepjam-01"), so the ports are "deepjam-in:deepjam in" and "deepjam-out:deepjam out".
INPUT_CLIENT_NAME = "deepjam-in"
OUTPUT_CLIENT_NAME = "deepjam-out"
CONNECT_WAIT_S = 0.2
"""How long a reconnect waits for the JACK server to list the new connection."""


class MidiInput:
    """An open MIDI input that timestamps each message and puts it on ``inbox``.

    ``received`` counts messages enqueued, ``callback_errors`` those the callback could not
    handle (dropped), ``last_message_ns`` is the perf_counter_ns of the latest message or probe.
    """

    def __init__(
        self,
        inbox: Any,
        api: int,
        wanted: str | None,
        virtual: bool = False,
        client_name: str = INPUT_CLIENT_NAME,
    ) -> None:
        self.inbox = inbox
        self.api = api
        self.wanted = wanted
        self.virtual = virtual
        self.client_name = client_name
        self.received = 0
        self.callback_errors = 0
        self.reopened = 0
        self.sysex_recoveries = 0
        """Times an unterminated sysex had swallowed messages, handed back when it ended."""
        self.last_message_ns = time.perf_counter_ns()
        self.port: OpenedPort = self._open()

    def _open(self) -> OpenedPort:
        port = open_port("input", self.api, self.wanted, self.virtual, self.client_name)
        # Keep clock (timing) messages for --clock midi; keep Active Sensing, the watchdog's
        # probe; keep sysex: the callback drops it, but first takes back the messages an
        # unterminated one swallowed (see the module docstring).
        port.handle.ignore_types(sysex=False, timing=False, active_sense=False)
        port.handle.set_callback(self._on_message)
        return port

    @property
    def name(self) -> str:
        return self.port.name

    def _on_message(self, message: tuple[list[int], float], _data: object = None) -> None:
        # rtmidi's thread: stamp, enqueue, nothing that could block or raise.
        now_ns = time.perf_counter_ns()
        try:
            data = message[0]
            self.last_message_ns = now_ns
            first = data[0]
            if first in (ACTIVE_SENSING, SYSEX_END):
                return  # a probe (or the lone end of a sysex)
            if first != SYSEX_START:
                self.inbox.put(InputEvent(now_ns, tuple(data)))
                self.received += 1
                return
            swallowed = split_swallowed(data)
            for event in swallowed:
                if event[0] != ACTIVE_SENSING:
                    self.inbox.put(InputEvent(now_ns, event))
                    self.received += 1
            if any(event[0] < TIMING_CLOCK for event in swallowed):
                self.sysex_recoveries += 1
        except Exception:
            self.callback_errors += 1

    def reopen(self) -> None:
        """Close and open the same port again (a new client); raises PortError if it is gone."""
        self.port.close()
        self.port = self._open()
        self.reopened += 1
        self.last_message_ns = time.perf_counter_ns()

    def close(self) -> None:
        self.port.close()


class ByteSink:
    """The ``NoteSink`` half shared by both backends: messages as bytes to ``_send``.

    No note bookkeeping here: the one ledger of open notes, with the output gate, is
    ``live_agent.ledger.NoteLedger``, wrapped around this sink by the session. Thread-safe.
    ``sent`` counts messages handed to the backend, ``send_errors`` those it refused.
    ``reopen_guard``, when set (to the ledger's ``reopen_then_panic``), runs each reopen under
    the ledger's lock and ends every note right after it, so a note the peer may still hold is
    ended and no note-on slips in between.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.send_errors = 0
        self.reopened = 0
        self.reopen_guard: Callable[[Callable[[], None]], None] | None = None
        self._lock = threading.RLock()

    def _send(self, data: list[int]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        with self._lock:
            self._send([NOTE_ON | channel, pitch, velocity])

    def note_off(self, channel: int, pitch: int) -> None:
        with self._lock:
            self._send([NOTE_OFF | channel, pitch, 0])

    def control_change(self, channel: int, control: int, value: int) -> None:
        with self._lock:
            self._send([CONTROL_CHANGE | channel, control, value])

    def send(self, data: tuple[int, ...]) -> None:
        with self._lock:
            self._send(list(data))

    def _reopen_with(self, reopen: Callable[[], None]) -> None:
        """Run ``reopen`` (under this sink's lock) through the guard, then count it. The guard
        takes the ledger's lock first: the same order as every send (ledger, then sink)."""

        def run() -> None:
            with self._lock:
                reopen()

        if self.reopen_guard is None:
            run()
        else:
            self.reopen_guard(run)
        self.reopened += 1


class MidiOutput(ByteSink):
    """A ``NoteSink`` on an rtmidi output port (see ``ByteSink`` for the counters)."""

    def __init__(
        self,
        api: int,
        wanted: str | None,
        virtual: bool = False,
        client_name: str = OUTPUT_CLIENT_NAME,
    ) -> None:
        super().__init__()
        self.api = api
        self.wanted = wanted
        self.virtual = virtual
        self.client_name = client_name
        self.port: OpenedPort = open_port("output", api, wanted, virtual, client_name)

    @property
    def name(self) -> str:
        return self.port.name

    def _send(self, data: list[int]) -> None:
        try:
            self.port.handle.send_message(data)
            self.sent += 1
        except Exception:  # rtmidi errors, or a handle closed under us by reopen
            self.send_errors += 1

    def reopen(self) -> None:
        """Open the port again (the peer came back), then end any note it may still hold."""

        def reopen() -> None:
            self.port.close()
            self.port = open_port("output", self.api, self.wanted, self.virtual, self.client_name)

        self._reopen_with(reopen)

    def close(self) -> None:
        with self._lock:
            self.port.close()


class JackClientIO(ByteSink):
    """Both ports in ONE JACK client (the JACK-Client package), timed to the audio frame.

    Why: python-rtmidi makes a client per port, so an answer leaves a cycle after its input
    and every note leaves at the start of a cycle (up to one period late: the grid jitters by
    a period). Here the process callback stamps each input event with its frame, and places
    each output message at the frame it was sent at, one period later: constant latency, no
    period quantization (docs/measurements.md).

    Ports: ``<client>:deepjam in`` and ``<client>:deepjam out``; ``input`` / ``output`` name
    peers to connect (exact name or case-insensitive substring, as ``ports.match_port``).
    ``cycles`` counts process cycles: it stops moving when JACK stops running the client,
    which is how ``check_health`` finds a dead client (and reopens it).

    Measured (benchmarks/live_latency.py, -p 64 at 48 kHz, quiet 2-core machine): onsets vs
    the best-fit grid p50 0.01-0.04 ms, p99 0.02-0.2 ms, against 0.33 / 0.34-0.5 ms for rtmidi.
    The price: its process callback is Python, so it needs the GIL inside JACK's cycle; a busy
    interpreter makes it miss a cycle now and then (an xrun; some runs then show p50 0.8 ms).
    rtmidi's output path has no Python in JACK's thread: steadier, quantized to the period.
    Hence rtmidi is the default and this backend is opt-in (``--backend jack-client``).
    """

    def __init__(
        self,
        inbox: Any,
        input: str | None,
        output: str | None,
        client_name: str = "deepjam",
    ) -> None:
        super().__init__()
        self.inbox = inbox
        self.wanted_input = input
        self.wanted_output = output
        self.client_name = client_name
        self.received = 0
        self.callback_errors = 0
        self.late_messages = 0
        self.cycles = 0
        self.api = -1  # not an rtmidi API: the watchdog's rtmidi probe does not apply
        self.virtual = input is None and output is None
        self._outbox: queue.SimpleQueue[tuple[int, bytes]] = queue.SimpleQueue()
        self._pending: list[tuple[int, bytes]] = []
        self._lost: set[str] = set()
        self._last_cycles = 0
        self._last_progress_ns = time.perf_counter_ns()
        self.input_peer: str | None = None
        self.output_peer: str | None = None
        self._open()

    # -- client ----------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            import jack
        except ImportError as err:
            raise PortError(
                "the jack-client backend needs the JACK-Client package (a dependency of "
                "deepjam): pip install JACK-Client, or use --backend rtmidi"
            ) from err
        try:
            client = jack.Client(self.client_name, no_start_server=True)
        except jack.JackError as err:
            raise PortError(
                f"cannot open a JACK client ({err}); start a JACK server (e.g. `jackd -d dummy`)"
            ) from err
        self._jack = jack
        self.client = client
        self.sample_rate = client.samplerate
        self.ns_per_frame = 1e9 / client.samplerate
        self.inport = client.midi_inports.register(VIRTUAL_INPUT_NAME)
        self.outport = client.midi_outports.register(VIRTUAL_OUTPUT_NAME)
        client.set_process_callback(self._process)
        client.activate()
        try:
            if self.wanted_input is not None:
                self.input_peer = self._match("input", self.wanted_input)
                client.connect(self.input_peer, self.inport)
            if self.wanted_output is not None:
                self.output_peer = self._match("output", self.wanted_output)
                client.connect(self.outport, self.output_peer)
        except BaseException:
            self._close_client()
            raise

    def _peers(self, kind: PortKind) -> list[str]:
        # An input listens to other clients' outputs, and the other way round.
        ports = self.client.get_ports(
            is_midi=True, is_output=kind == "input", is_input=kind == "output"
        )
        own = self.client.name + ":"
        return [p.name for p in ports if not p.name.startswith(own)]

    def _match(self, kind: PortKind, wanted: str) -> str:
        available = self._peers(kind)
        return available[match_port(available, wanted, kind)]

    @property
    def name(self) -> str:
        return f"{self.client.name}:{VIRTUAL_OUTPUT_NAME}"

    @property
    def input_name(self) -> str:
        return self.input_peer or f"{self.client.name}:{VIRTUAL_INPUT_NAME}"

    @property
    def output_name(self) -> str:
        return self.output_peer or f"{self.client.name}:{VIRTUAL_OUTPUT_NAME}"

    # -- JACK's thread ---------------------------------------------------------------------
    def _process(self, frames: int) -> None:
        try:
            now_ns = time.perf_counter_ns()
            cycle_start_ns = now_ns - int(self.client.frames_since_cycle_start * self.ns_per_frame)
            period_ns = int(frames * self.ns_per_frame)
            window_ns = cycle_start_ns - period_ns  # the period just past: stamped, and replayed
            self.cycles += 1
            for offset, data in self.inport.incoming_midi_events():
                status = data[0] if len(data) else 0
                if status == ACTIVE_SENSING:
                    continue
                self.inbox.put(
                    InputEvent(window_ns + int(offset * self.ns_per_frame), tuple(bytes(data)))
                )
                self.received += 1
            self.outport.clear_buffer()
            while True:
                try:
                    self._pending.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            last = 0
            keep = []
            for due_ns, message in self._pending:
                if due_ns >= cycle_start_ns:
                    keep.append((due_ns, message))  # due in the period now running: next cycle
                    continue
                offset = int((due_ns - window_ns) / self.ns_per_frame)
                if offset < 0:
                    self.late_messages += 1
                offset = min(max(offset, last), frames - 1)
                try:
                    self.outport.write_midi_event(offset, message)
                    last = offset
                except self._jack.JackError:
                    self.send_errors += 1
            self._pending = keep
        except Exception:
            self.callback_errors += 1

    # -- NoteSink --------------------------------------------------------------------------
    def _send(self, data: list[int]) -> None:
        self._outbox.put((time.perf_counter_ns(), bytes(data)))
        self.sent += 1

    def flush(self, timeout_s: float = 0.2) -> bool:
        """Wait until every queued message went out (False on timeout or no cycles)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._outbox.empty() and not self._pending:
                # written in the current cycle: one more cycle delivers it
                time.sleep(2 * self.client.blocksize / self.sample_rate)
                return True
            time.sleep(0.001)
        return False

    # -- health ----------------------------------------------------------------------------
    def check_health(self, now_ns: int, log: Any, dead_after_ns: int) -> None:
        """For the watchdog: a client JACK stopped running is reopened; a peer that vanished
        is reconnected when it returns (an output after ending every note it may hold)."""
        if self.cycles != self._last_cycles:
            self._last_cycles = self.cycles
            self._last_progress_ns = now_ns
        elif now_ns - self._last_progress_ns > dead_after_ns:
            log(
                f"JACK ran no cycle of {self.client.name!r} for "
                f"{(now_ns - self._last_progress_ns) / 1e9:.1f} s; reopening the client"
            )
            self._last_progress_ns = now_ns
            try:
                self.reopen()
            except PortError as err:
                log(f"reopening failed: {err}")
            return
        for kind, peer in (("input", self.input_peer), ("output", self.output_peer)):
            if peer is None:
                continue
            listed = peer in self._peers(kind)  # type: ignore[arg-type]
            key = f"{kind}-gone"
            if not listed and key not in self._lost:
                self._lost.add(key)
                log(f"MIDI {kind} {peer!r} vanished; the jam goes on, reconnecting when it returns")
            elif listed and key in self._lost:
                try:
                    if kind == "input":
                        with self._lock:
                            self.client.connect(peer, self.inport)
                        self.reopened += 1
                    else:
                        self._reopen_with(functools.partial(self._connect_output, peer))
                except self._jack.JackError as err:
                    log(f"MIDI {kind} {peer!r} is back but will not connect: {err}")
                    continue
                self._lost.discard(key)
                if kind == "output":
                    log(f"MIDI output {peer!r} is back: reconnected, sent all notes off")
                else:
                    log(f"MIDI input {peer!r} is back: reconnected")

    def _connect_output(self, peer: str) -> None:
        """Connect our output to ``peer`` and return once the connection carries messages: JACK
        makes a connection live at a later graph change, and what is written before that reaches
        no one (the all-notes-off sent next would be lost). Waits until the server lists it, then
        two periods."""
        self.client.connect(self.outport, peer)
        deadline = time.monotonic() + CONNECT_WAIT_S
        while time.monotonic() < deadline and peer not in {
            port.name for port in self.client.get_all_connections(self.outport)
        }:
            time.sleep(0.001)
        time.sleep(2 * self.client.blocksize / self.client.samplerate)

    def _close_client(self) -> None:
        try:
            self.client.deactivate()
        finally:
            self.client.close()

    def reopen(self) -> None:
        """A fresh client with the same ports and peers; ends any note left sounding."""

        def reopen() -> None:
            self._close_client()
            self._pending = []
            self._open()

        self._reopen_with(reopen)

    def close(self) -> None:
        """Deliver what is queued (the final all-notes-off), then close the client."""
        self.flush()
        with self._lock:
            self._close_client()
