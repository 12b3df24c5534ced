"""The one note ledger: every note-on sent is recorded until its note-off, so none can stick.

``NoteLedger`` wraps any ``NoteSink`` (an rtmidi or JACK output, a recording fake, a recorder)
and all note traffic goes through it: the agent's notes and the MIDI thru of the player's. It is
thread-safe (the scheduler plays through it while a signal handler or the port watchdog may end
everything) and holds the output gate:

* ``panic()`` sends a note-off for each open note, then All Notes Off (CC 123) and All Sound Off
  (CC 120) once on every channel used: the live panic control, and a port that came back
  (``reopen_then_panic``);
* ``close_gate()`` is shutdown: from then on note-ons are dropped (counted), and the one final
  panic runs at once; called again (the session's ``finally`` after the signal handler) it does
  nothing, so Ctrl-C sends CC 123 / 120 once.
* ``stop_asked``: a check run before every note-on, under the lock. ``deepjam jam`` sets it to
  a latch that knows the moment a signal lands (before Python's handler has run in the main
  thread, which waits for the GIL): a note-on due just after the signal is not sent, and the
  gate closes there and then, on the sending thread. So once a signal arrives no note-on goes
  out, and every sounding note is released within the time it takes to send the note-offs,
  wherever the signal lands (on a step boundary, too).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from exports.midi import ALL_NOTES_OFF, ALL_SOUND_OFF, NOTE_OFF, NOTE_ON
from live_agent.protocols import Clock, NoteSink


class _WallClock:
    def now_ns(self) -> int:
        return time.perf_counter_ns()

    def sleep_until(self, deadline_ns: int) -> None:
        remaining = deadline_ns - time.perf_counter_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)


class NoteLedger:
    """Sends notes through ``sink`` and remembers which (channel, pitch) sound, and whose.

    ``notes_sent`` counts the agent's note-ons, ``dropped_after_stop`` the note-ons refused once
    the gate closed, ``panics`` how many times everything was ended."""

    def __init__(self, sink: NoteSink, clock: Clock | None = None) -> None:
        self.sink = sink
        self.clock: Clock = clock if clock is not None else _WallClock()
        self.open_notes: Counter[tuple[int, int]] = Counter()
        """(channel, pitch) -> how many note-ons are open (a re-struck key counts twice)."""
        self.forwarded: Counter[tuple[int, int]] = Counter()
        """The open notes that are the player's, sent on by MIDI thru (a subset of the above)."""
        self.channels_used: set[int] = set()
        self.notes_sent = 0
        self.dropped_after_stop = 0
        self.panics = 0
        self.closing = False
        self.stop_asked: Callable[[], bool] | None = None
        """Checked before each note-on: True once shutdown was asked for (the gate then closes
        at once, before the note-on); None: only ``close_gate`` closes it."""
        self.panic_channels: tuple[int, ...] = ()
        """Channels that get CC 123 / 120 at every panic besides those used (the agent's)."""
        self._started_ns: dict[tuple[int, int], int] = {}
        self._lock = threading.RLock()  # re-entrant: a signal handler may run mid-send

    # --- sending ----------------------------------------------------------------------------

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        """The agent's note-on (dropped once the gate is closed)."""
        with self._lock:
            if self._gate_closed():
                self.dropped_after_stop += 1
                return
            self.sink.note_on(channel, pitch, velocity)
            self._opened((channel, pitch))
            self.notes_sent += 1

    def note_off(self, channel: int, pitch: int) -> None:
        """Release a note; one that is not open is released anyway (harmless, and safe)."""
        with self._lock:
            self.sink.note_off(channel, pitch)
            self._closed((channel, pitch))

    def control_change(self, channel: int, control: int, value: int) -> None:
        with self._lock:
            self.sink.control_change(channel, control, value)

    def forward(self, data: tuple[int, ...]) -> None:
        """Send a validated channel message as is (MIDI thru), keeping track of its notes."""
        status, channel = data[0] & 0xF0, data[0] & 0x0F
        with self._lock:
            if status == NOTE_ON and data[2] > 0:
                if self._gate_closed():
                    self.dropped_after_stop += 1
                    return
                self.sink.send(data)
                self._opened((channel, data[1]))
                self.forwarded[(channel, data[1])] += 1
                return
            self.sink.send(data)
            if status in (NOTE_OFF, NOTE_ON):
                key = (channel, data[1])
                self._closed(key)
                _decrement(self.forwarded, key)

    def release_forwarded(self, pitch: int) -> int:
        """Note-off the player's forwarded ``pitch`` on every channel it sounds on (its note-off
        was lost: the listener timed the key out); returns how many note-offs were sent."""
        with self._lock:
            sent = 0
            for key in [k for k in self.forwarded if k[1] == pitch]:
                for _ in range(self.forwarded.pop(key)):
                    self.sink.note_off(*key)
                    _decrement(self.open_notes, key)
                    sent += 1
                if key not in self.open_notes:
                    self._started_ns.pop(key, None)
            return sent

    # --- ending everything --------------------------------------------------------------------

    def panic(self, extra_channels: tuple[int, ...] = ()) -> int:
        """Note-off every open note (once per open note-on), then CC 123 and CC 120 on every
        channel used and on ``extra_channels``. Returns how many note-offs were sent."""
        with self._lock:
            sent = 0
            for (channel, pitch), count in sorted(self.open_notes.items()):
                for _ in range(count):
                    self.sink.note_off(channel, pitch)
                    sent += 1
            self.open_notes.clear()
            self.forwarded.clear()
            self._started_ns.clear()
            for channel in sorted(self.channels_used | {*extra_channels, *self.panic_channels}):
                self.sink.control_change(channel, ALL_NOTES_OFF, 0)
                self.sink.control_change(channel, ALL_SOUND_OFF, 0)
            self.panics += 1
            return sent

    def close_gate(self, extra_channels: tuple[int, ...] = ()) -> bool:
        """Shutdown: no note-on passes from now on, then at once the one final ``panic``.
        Returns False, doing nothing, if the gate was closed already."""
        with self._lock:
            if self.closing:
                return False
            self.closing = True
            self.panic(extra_channels)
            return True

    def _gate_closed(self) -> bool:
        """Whether note-ons are refused; closes the gate first if shutdown was just asked for."""
        if not self.closing and self.stop_asked is not None and self.stop_asked():
            self.close_gate()
        return self.closing

    def reopen_then_panic(self, reopen: Callable[[], None]) -> None:
        """For a sink whose port came back (``ByteSink.reopen_guard``): run ``reopen`` and then
        ``panic`` under the ledger's lock, so no note-on slips in between."""
        with self._lock:
            reopen()
            self.panic()

    # --- internals ----------------------------------------------------------------------------

    def _opened(self, key: tuple[int, int]) -> None:
        self.open_notes[key] += 1
        self.channels_used.add(key[0])
        self._started_ns[key] = self.clock.now_ns()

    def _closed(self, key: tuple[int, int]) -> None:
        _decrement(self.open_notes, key)
        if key not in self.open_notes:
            self._started_ns.pop(key, None)


def _decrement(counts: Counter[tuple[int, int]], key: tuple[int, int]) -> None:
    count = counts.pop(key, 0)
    if count > 1:
        counts[key] = count - 1
