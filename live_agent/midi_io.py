"""The MIDI backend of the live loop: rtmidi input onto the Inbox, and an rtmidi NoteSink.

Input. rtmidi calls ``MidiInput._on_message`` on its own thread for every message. The
callback stamps ``time.perf_counter_ns()`` and puts an ``InputEvent`` on the inbox; nothing else
(mido's rule: never raise into the C thread; a failure is counted, not raised). Active Sensing
(0xFE) is the watchdog's liveness probe: it only refreshes ``last_message_ns``.

Output. ``MidiOutput`` is the ``NoteSink`` the scheduler sends through. It remembers which notes
it left sounding, so ``panic()`` can end each one (note-off, then CC 123 All Notes Off and
CC 120 All Sound Off) after a port comes back or at shutdown. Send failures are counted: a
vanished JACK peer drops messages silently, and an error must not stop the jam.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from live_agent.ports import OpenedPort, PortKind, open_port
from live_agent.protocols import InputEvent

NOTE_OFF = 0x80
NOTE_ON = 0x90
CONTROL_CHANGE = 0xB0
ACTIVE_SENSING = 0xFE
ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123
MIDI_CHANNELS = 16
# python-rtmidi makes one client per port; distinct names keep JACK from renaming the second
# one ("deepjam-01"), so the ports are "deepjam-in:deepjam in" and "deepjam-out:deepjam out".
INPUT_CLIENT_NAME = "deepjam-in"
OUTPUT_CLIENT_NAME = "deepjam-out"


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
        self.last_message_ns = time.perf_counter_ns()
        self.port: OpenedPort = self._open()

    def _open(self) -> OpenedPort:
        port = open_port("input", self.api, self.wanted, self.virtual, self.client_name)
        # Keep clock (timing) messages for --clock midi; drop sysex (the scheduler has no use
        # for it); keep Active Sensing, the watchdog's probe.
        port.handle.ignore_types(sysex=True, timing=False, active_sense=False)
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
            if data[0] == ACTIVE_SENSING:
                return
            self.inbox.put(InputEvent(now_ns, tuple(data)))
            self.received += 1
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


class MidiOutput:
    """A ``NoteSink`` on an rtmidi output port; thread-safe (scheduler and watchdog share it).

    ``sent`` counts messages handed to rtmidi, ``send_errors`` those rtmidi refused or that
    failed while the port was being reopened. ``sounding`` is the set of (channel, pitch)
    this sink turned on and has not turned off.
    """

    def __init__(
        self,
        api: int,
        wanted: str | None,
        virtual: bool = False,
        client_name: str = OUTPUT_CLIENT_NAME,
    ) -> None:
        self.api = api
        self.wanted = wanted
        self.virtual = virtual
        self.client_name = client_name
        self.sent = 0
        self.send_errors = 0
        self.reopened = 0
        self.sounding: set[tuple[int, int]] = set()
        self.channels_used: set[int] = set()
        self.closing = False
        """Set by ``close_gate``: note-ons are dropped (counted in ``dropped_after_stop``)."""
        self.dropped_after_stop = 0
        self._lock = threading.RLock()  # re-entrant: a signal handler may gate the sink mid-send
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

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        with self._lock:
            if self.closing and velocity > 0:
                self.dropped_after_stop += 1
                return
            self._send([NOTE_ON | channel, pitch, velocity])
            self.channels_used.add(channel)
            if velocity > 0:
                self.sounding.add((channel, pitch))
            else:
                self.sounding.discard((channel, pitch))

    def note_off(self, channel: int, pitch: int) -> None:
        with self._lock:
            self._send([NOTE_OFF | channel, pitch, 0])
            self.sounding.discard((channel, pitch))

    def control_change(self, channel: int, control: int, value: int) -> None:
        with self._lock:
            self._send([CONTROL_CHANGE | channel, control, value])

    def send(self, data: tuple[int, ...]) -> None:
        with self._lock:
            status = data[0] & 0xF0 if data else 0
            if self.closing and status == NOTE_ON and len(data) > 2 and data[2] > 0:
                self.dropped_after_stop += 1
                return
            self._send(list(data))
            if status == NOTE_ON and len(data) > 2 and data[2] > 0:
                self.sounding.add((data[0] & 0x0F, data[1]))
                self.channels_used.add(data[0] & 0x0F)
            elif status in (NOTE_ON, NOTE_OFF) and len(data) > 1:
                self.sounding.discard((data[0] & 0x0F, data[1]))

    def panic(self, channels: set[int] | None = None) -> None:
        """End everything: a note-off for each note this sink left on, then CC 123 and CC 120
        on ``channels`` (default: every channel this sink used, or channel 0)."""
        with self._lock:
            for channel, pitch in sorted(self.sounding):
                self._send([NOTE_OFF | channel, pitch, 0])
            self.sounding.clear()
            targets = channels if channels is not None else (self.channels_used or {0})
            for channel in sorted(targets):
                self._send([CONTROL_CHANGE | channel, ALL_NOTES_OFF, 0])
                self._send([CONTROL_CHANGE | channel, ALL_SOUND_OFF, 0])

    def close_gate(self) -> None:
        """Stop for good: from now on note-ons are dropped, then ``panic()`` ends what sounds.

        Shutdown calls this the moment a signal arrives, so no note can start after the
        all-notes-off, whatever the scheduler thread is doing.
        """
        with self._lock:
            if self.closing:
                return
            self.closing = True
            self.panic()

    def reopen(self) -> None:
        """Open the port again (the peer came back), then end any note it may still hold."""
        sounding = set(self.sounding)
        with self._lock:
            self.port.close()
            self.port = open_port("output", self.api, self.wanted, self.virtual, self.client_name)
            self.reopened += 1
            self.sounding = sounding
        self.panic()

    def close(self) -> None:
        with self._lock:
            self.port.close()


def port_kind(port: MidiInput | MidiOutput) -> PortKind:
    return "input" if isinstance(port, MidiInput) else "output"
