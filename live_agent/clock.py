"""Clocks: the real one (perf_counter_ns, absolute deadlines) and a fake that jumps.

Both satisfy ``live_agent.protocols.Clock``. A clock with ``fast_forward = True`` tells the
scheduler that time only moves when it sleeps: it then never blocks waiting for input (every
event is already queued, stamped in fake time), which is how ``deepjam answer`` and the tests run
the live loop as fast as the CPU allows.
"""

from __future__ import annotations

import time

# Below this much time left, sleep_until spins instead of sleeping: time.sleep overshoots by
# ~50-100 us on Linux, a spin of under a millisecond costs little and lands within a few us.
SPIN_NS = 600_000


class RealClock:
    """Monotonic wall time; ``sleep_until`` sleeps, then spins for the last ~0.6 ms."""

    fast_forward = False

    def now_ns(self) -> int:
        """``time.perf_counter_ns()``: the same clock as the input timestamps."""
        return time.perf_counter_ns()

    def sleep_until(self, deadline_ns: int) -> None:
        """Return at ``deadline_ns`` or just after (a few us); at once if it has passed."""
        remaining = deadline_ns - time.perf_counter_ns()
        if remaining > SPIN_NS:
            time.sleep((remaining - SPIN_NS) / 1e9)
        while time.perf_counter_ns() < deadline_ns:
            pass


class FakeClock:
    """Time that moves only when someone sleeps: ``sleep_until`` jumps to the deadline."""

    fast_forward = True

    def __init__(self, start_ns: int = 0) -> None:
        self.time_ns = start_ns

    def now_ns(self) -> int:
        """The fake time, nanoseconds."""
        return self.time_ns

    def sleep_until(self, deadline_ns: int) -> None:
        """Jump to ``deadline_ns`` (never backwards)."""
        self.time_ns = max(self.time_ns, deadline_ns)

    def advance(self, delta_ns: int) -> None:
        """Move time forward by ``delta_ns`` (e.g. to model a decision that takes time)."""
        self.time_ns += delta_ns
