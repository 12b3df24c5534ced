"""Keeps the jam's MIDI ports alive: reopens a dead input, reconnects a port that came back.

Three faults, found by polling every ``poll_s`` on the watchdog's own thread:

* A named port vanished (keyboard unplugged, synth quit): one log line; when it shows up
  again the port is reopened. A returning OUTPUT first gets a note-off for every note the
  ledger holds open, then CC 123 / CC 120 (``MidiOutput.reopen`` through the ledger's
  ``reopen_then_panic``), so no note hangs.
* A dead input: on JACK a python-rtmidi input can stop receiving for good while JACK runs on
  (docs/measurements.md). The watchdog's probe port sends Active Sensing (0xFE) to our input
  whenever it has been quiet for ``probe_after_s``; the input callback counts it as a sign of
  life. Nothing (no message, no probe) for ``dead_after_s`` means the input's client gets no
  JACK cycles: it is reopened as a fresh client, with its JACK connections restored.
* A port that cannot be reopened yet: retried on every poll, logged once.
* A sysex without its end (0xF7, lost or never sent): rtmidi's JACK input glues everything
  after it onto the sysex, so the input hears nothing. The probe port sends a lone 0xF7 every
  ``SYSEX_END_EVERY_S`` (less than a 16th at any tempo deepjam plays); it ends such a sysex,
  and ``MidiInput`` takes the swallowed messages back out of it (``sysex_recoveries``, one log
  line each). Otherwise the lone 0xF7 arrives as one more sign of life.

With the one-client JACK backend (``JackClientIO``) the dead-client check is direct: its
process callback counts cycles, and no cycle for ``dead_after_s`` reopens the client.

The jam goes on throughout: the scheduler keeps its own time and sends into the sink.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from exports.errors import PortError
from exports.midi import ACTIVE_SENSING, SYSEX_END
from live_agent.io.midi_io import JackClientIO, MidiInput, MidiOutput
from live_agent.io.ports import _open_client, api_ids

NS_PER_S = 1_000_000_000
DEAD_AFTER_PROBES = 2
SYSEX_END_EVERY_S = 0.05
"""How often the watchdog's thread sends a lone sysex end to the input: a note swallowed by an
unterminated sysex is heard this late at most (a 16th is 62.5 ms at 240 bpm)."""


def _jack_connections(port_name: str) -> list[str] | None:
    """Peers connected to a JACK port (via JACK-Client), or None when that is unavailable."""
    try:
        import jack

        client = jack.Client("deepjam-watchdog-q", no_start_server=True)
    except Exception:  # JACK-Client missing, or no server: nothing to restore
        return None
    try:
        return [p.name for p in client.get_all_connections(port_name)]
    except Exception:
        return None
    finally:
        client.close()


def _jack_connect(own_port: str, peers: list[str], own_is_input: bool) -> None:
    try:
        import jack

        client = jack.Client("deepjam-watchdog-c", no_start_server=True)
    except Exception:
        return
    try:
        for peer in peers:
            try:
                if own_is_input:
                    client.connect(peer, own_port)
                else:
                    client.connect(own_port, peer)
            except jack.JackError:
                pass  # the peer left meanwhile, or is connected already
    finally:
        client.close()


class PortWatchdog:
    """Watches one rtmidi input and output (either may be None), or a ``JackClientIO``;
    ``log`` gets one line per event.

    ``check()`` does one round of checks and is what tests call; ``start()`` runs it every
    ``poll_s`` on a daemon thread until ``stop()``.
    """

    def __init__(
        self,
        midi_in: MidiInput | None,
        midi_out: MidiOutput | None,
        log: Callable[[str], None],
        poll_s: float = 0.5,
        probe_after_s: float = 1.0,
        dead_after_s: float = 3.0,
        jack_io: JackClientIO | None = None,
        probe_client_name: str = "deepjam-watchdog",
    ) -> None:
        self.jack_io = jack_io
        self.probe_client_name = probe_client_name
        """This instance's own (``ports.instance_names``): a second deepjam has another."""
        self.midi_in = midi_in
        self.midi_out = midi_out
        self.log = log
        self.poll_s = poll_s
        self.probe_after_ns = int(probe_after_s * NS_PER_S)
        self.dead_after_ns = int(dead_after_s * NS_PER_S)
        self.input_reopens = 0
        self.output_reconnects = 0
        self._lost: set[str] = set()
        self._probe: Any = None
        self._probe_target = ""
        self._seen_message_ns = 0
        self._unanswered_probes = 0
        self._seen_recoveries = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._use_probe = midi_in is not None and midi_in.api == api_ids()["jack"]

    # -- probe -----------------------------------------------------------------------------
    def _own_input_port(self) -> str:
        assert self.midi_in is not None
        handle = self.midi_in.port.handle
        # rtmidi names our JACK port "<client>:<port>"; both are ours, set in open_port.
        port = "deepjam in"
        return f"{self.midi_in.client_name}:{port}" if handle is not None else ""

    def _connect_probe(self) -> None:
        target = self._own_input_port()
        if self._probe is None:
            try:
                self._probe = _open_client("output", self.midi_in.api, self.probe_client_name)  # type: ignore[union-attr]
            except PortError:
                return
        if self._probe_target == target and self._probe.is_port_open():
            return
        if self._probe.is_port_open():
            self._probe.close_port()
        ports = list(self._probe.get_ports())
        if target in ports:
            self._probe.open_port(ports.index(target), "probe")
            self._probe_target = target

    def _send_probe(self) -> bool:
        """Send one Active Sensing to our input; False when the probe cannot reach it (then
        the input is never declared dead: no answer is expected)."""
        try:
            self._connect_probe()
            if self._probe is not None and self._probe.is_port_open():
                self._probe.send_message([ACTIVE_SENSING])
                return True
            self._note_once(
                "probe",
                f"watchdog cannot reach {self._own_input_port()!r}; dead-input check paused",
            )
        except Exception as err:  # a probe failure must never stop the watchdog
            self._note_once("probe", f"watchdog probe failed ({err}); dead-input check paused")
        return False

    def end_sysex(self) -> None:
        """Send a lone sysex end (0xF7) to our input: it ends a sysex whose end was lost, so
        rtmidi hands back what that sysex swallowed (``MidiInput`` splits it out)."""
        if self.midi_in is None or not self._use_probe or "input-gone" in self._lost:
            return
        try:
            self._connect_probe()
            if self._probe is not None and self._probe.is_port_open():
                self._probe.send_message([SYSEX_END])
        except Exception:  # the dead-input probe says what is wrong, once
            return

    # -- checks ----------------------------------------------------------------------------
    def _check_sysex_recoveries(self) -> None:
        midi_in = self.midi_in
        if midi_in is None or midi_in.sysex_recoveries == self._seen_recoveries:
            return
        self._seen_recoveries = midi_in.sysex_recoveries
        self.log(
            f"MIDI input {midi_in.name!r}: a sysex without its end (0xF7) swallowed what came "
            f"after it; ended it and took those messages back "
            f"({midi_in.sysex_recoveries} so far)"
        )

    def _note_once(self, key: str, line: str) -> None:
        if key not in self._lost:
            self._lost.add(key)
            self.log(line)

    def _check_peer(self, port: MidiInput | MidiOutput, kind: str) -> None:
        """A named (non-virtual) peer: vanished -> log; back -> reopen."""
        if port.virtual or port.port.handle is None:
            return
        key = f"{kind}-gone"
        listed = list(port.port.handle.get_ports())
        if port.port.name in listed:
            if key in self._lost:
                try:
                    port.reopen()
                except PortError as err:
                    self._note_once(
                        f"{kind}-reopen",
                        f"MIDI {kind} {port.name!r} is back but will not open: {err}",
                    )
                    return
                self._lost.discard(key)
                self._lost.discard(f"{kind}-reopen")
                if isinstance(port, MidiOutput):
                    self.output_reconnects += 1
                    self.log(f"MIDI output {port.name!r} is back: reconnected, sent all notes off")
                else:
                    self.input_reopens += 1
                    self.log(f"MIDI input {port.name!r} is back: reconnected")
            return
        self._note_once(
            key,
            f"MIDI {kind} {port.name!r} vanished; the jam goes on, reconnecting when it returns",
        )

    def _check_input_alive(self, now_ns: int) -> None:
        midi_in = self.midi_in
        if midi_in is None or not self._use_probe or "input-gone" in self._lost:
            return
        if midi_in.last_message_ns != self._seen_message_ns:
            self._seen_message_ns = midi_in.last_message_ns
            self._unanswered_probes = 0
        quiet_ns = now_ns - midi_in.last_message_ns
        if quiet_ns < self.probe_after_ns:
            return
        # Dead = quiet for dead_after_s AND at least two probes went unanswered.
        if quiet_ns < self.dead_after_ns or self._unanswered_probes < DEAD_AFTER_PROBES:
            if self._send_probe():
                self._unanswered_probes += 1
            return
        own = self._own_input_port()
        peers = _jack_connections(own) or []
        peers = [p for p in peers if not p.startswith(self.probe_client_name + ":")]
        self.log(
            f"MIDI input {midi_in.name!r} received nothing for {quiet_ns / NS_PER_S:.1f} s, "
            f"not even the watchdog's probe; reopening it"
        )
        try:
            midi_in.reopen()
        except PortError as err:
            self._note_once("input-reopen", f"MIDI input {midi_in.name!r} did not reopen: {err}")
            return
        self.input_reopens += 1
        self._unanswered_probes = 0
        self._probe_target = ""
        if peers:
            _jack_connect(self._own_input_port(), peers, own_is_input=True)
        if self._send_probe():
            self._unanswered_probes = 1

    def check(self, now_ns: int | None = None) -> None:
        """One round: vanished / returning peers, then the dead-input probe."""
        now_ns = time.perf_counter_ns() if now_ns is None else now_ns
        if self.jack_io is not None:
            self.jack_io.check_health(now_ns, self.log, self.dead_after_ns)
        if self.midi_out is not None:
            self._check_peer(self.midi_out, "output")
        if self.midi_in is not None:
            self._check_peer(self.midi_in, "input")
        self._check_input_alive(now_ns)
        self._check_sysex_recoveries()

    # -- thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        tick_s = min(self.poll_s, SYSEX_END_EVERY_S)
        next_check_s = time.monotonic() + self.poll_s
        while not self._stop.wait(tick_s):
            try:
                self.end_sysex()
                if time.monotonic() >= next_check_s:
                    next_check_s += self.poll_s
                    self.check()
            except Exception as err:  # keep watching; the jam must not die of its watchdog
                self._note_once(
                    "error", f"watchdog error ({type(err).__name__}: {err}); still watching"
                )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="deepjam-watchdog", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._probe is not None:
            self._probe.close_port()
            self._probe.delete()
            self._probe = None
