"""Clocks: the real one (perf_counter_ns, absolute deadlines) and a fake that jumps.

Both satisfy ``live_agent.protocols.Clock``. A clock with ``fast_forward = True`` tells the
scheduler that time only moves when it sleeps: it then never blocks waiting for input (every
event is already queued, stamped in fake time), which is how ``deepjam answer`` and the tests run
the live loop as fast as the CPU allows.
"""

from __future__ import annotations

import time

# Below this much time left, sleep_until spins instead of sleeping: time.sleep overshoots by
# ~50-100 us on a quiet Linux machine, by milliseconds on a loaded one. The spin adapts to the
# overshoot seen recently, between these bounds.
MIN_SPIN_NS = 600_000
MAX_SPIN_NS = 4_000_000
SPIN_SLACK_NS = 200_000
OVERSHOOT_DECAY = 0.98


class RealClock:
    """Monotonic wall time; ``sleep_until`` sleeps, then spins for the last stretch (0.6 to
    4 ms: the recent worst overshoot of ``time.sleep`` plus 0.2 ms)."""

    fast_forward = False

    def __init__(self) -> None:
        self.spin_ns = MIN_SPIN_NS
        self._overshoot_ns = 0.0

    def now_ns(self) -> int:
        """``time.perf_counter_ns()``: the same clock as the input timestamps."""
        return time.perf_counter_ns()

    def sleep_until(self, deadline_ns: int) -> None:
        """Return at ``deadline_ns`` or just after (a few us); at once if it has passed."""
        wake_ns = deadline_ns - self.spin_ns
        remaining = wake_ns - time.perf_counter_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)
            overshoot = time.perf_counter_ns() - wake_ns
            self._overshoot_ns = max(float(overshoot), self._overshoot_ns * OVERSHOOT_DECAY)
            self.spin_ns = int(
                min(MAX_SPIN_NS, max(MIN_SPIN_NS, self._overshoot_ns + SPIN_SLACK_NS))
            )
        while time.perf_counter_ns() < deadline_ns:
            # Yield the GIL while spinning: MIDI callbacks run in JACK's thread and need it.
            time.sleep(0)


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
