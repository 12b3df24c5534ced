"""The seams of the live loop: small Protocols, so fakes need no inheritance.

The input callback (rtmidi's thread) only timestamps and enqueues an ``InputEvent`` on an
``Inbox``; one scheduler thread drains it, keeps time with a ``Clock``, asks a ``Policy`` for
Q-values and sends through a ``NoteSink``. ``None`` on the inbox is the stop sentinel (a signal
handler puts it there, so a thread blocked on the queue wakes up).
"""

from __future__ import annotations

import queue
from typing import NamedTuple, Protocol

from exports.model_file import Policy as Policy  # the one policy seam, kept importable here


class InputEvent(NamedTuple):
    """One MIDI message as received."""

    time_ns: int
    """``time.perf_counter_ns()`` when the input callback got it."""
    data: tuple[int, ...]
    """The raw message bytes (status first), unvalidated."""


Inbox = queue.SimpleQueue  # of InputEvent | None


class Clock(Protocol):
    def now_ns(self) -> int:
        """Monotonic time in nanoseconds (perf_counter_ns for the real clock)."""
        ...

    def sleep_until(self, deadline_ns: int) -> None:
        """Return at (or as soon as possible after) ``deadline_ns``; a fake returns at once."""
        ...


class NoteSink(Protocol):
    """Where the agent's MIDI goes. Channels are 0-based; values already valid."""

    def note_on(self, channel: int, pitch: int, velocity: int) -> None: ...

    def note_off(self, channel: int, pitch: int) -> None: ...

    def control_change(self, channel: int, control: int, value: int) -> None: ...

    def send(self, data: tuple[int, ...]) -> None:
        """Any other message as bytes (MIDI thru)."""
        ...
