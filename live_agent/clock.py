"""Clocks: the real one (perf_counter_ns, absolute deadlines) and a fake that jumps.

Both satisfy ``live_agent.protocols.Clock``. A clock with ``fast_forward = True`` tells the
scheduler that time only moves when it sleeps: it then never blocks waiting for input (every
event is already queued, stamped in fake time), which is how ``deepjam answer`` and the tests run
the live loop as fast as the CPU allows.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from exports.spec import GRID_STEPS_PER_BEAT
from live_agent.tempo import TempoEstimate, TempoTracker

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


# --- grid sources: where the 16th steps fall ---------------------------------------------------
#
# The scheduler asks a StepGrid for each next boundary. ``InternalGrid`` is --bpm from a start
# time; ``PlayerGrid`` follows the player's beat (live_agent.tempo) once it is locked and falls
# back to --bpm until then. MIDI clock is not a grid (its ticks *are* the boundaries): with
# ``--clock auto`` the session hands over to the MIDI-clock loop while a clock really runs, and
# back when it stops (``PlayerGrid.continue_from``: on from the clock's last 16th, numbered on).
# A new source (Ableton Link) implements the same protocol.

MIN_STEP_FRACTION = 0.5
"""A boundary closer than half a step to the previous one is not taken (the grid moved)."""


class StepGrid(Protocol):
    """Where the 16th-step boundaries fall; ``step`` counts 16ths from the grid's downbeat, so the
    bar position is ``step % steps_per_bar``."""

    @property
    def source(self) -> str:
        """What the grid follows now: "internal", "player", "link" ..."""
        ...

    def next_boundary(self, after_ns: int) -> tuple[int, int]:
        """(step, boundary ns) of the first boundary at least half a step after ``after_ns``."""
        ...

    def observe_onset(self, time_ns: int) -> None:
        """The player pressed a key at ``time_ns`` (grids that follow the player use it)."""
        ...

    @property
    def step_ns(self) -> float:
        """The current length of a step, nanoseconds."""
        ...


class InternalGrid:
    """A fixed tempo from ``start_ns``: boundaries at ``start_ns + k * step_ns``."""

    source = "internal"

    def __init__(
        self, bpm: float, start_ns: int, steps_per_beat: int = GRID_STEPS_PER_BEAT
    ) -> None:
        self.start_ns = start_ns
        self._step_ns = 60e9 / bpm / steps_per_beat

    @property
    def step_ns(self) -> float:
        return self._step_ns

    def next_boundary(self, after_ns: int) -> tuple[int, int]:
        k = max(0, math.ceil((after_ns - self.start_ns) / self._step_ns + MIN_STEP_FRACTION))
        return k, self.start_ns + round(k * self._step_ns)

    def observe_onset(self, time_ns: int) -> None:
        pass


class PlayerGrid:
    """The player's grid once ``TempoTracker`` is locked on it; ``fallback`` until then (and
    whenever the lock is lost). ``describe()`` is the log line of the estimate."""

    def __init__(self, fallback: InternalGrid, tracker: TempoTracker | None = None) -> None:
        self.fallback = fallback
        self.tracker = tracker if tracker is not None else TempoTracker()
        self.locks = 0
        self._was_locked = False

    @property
    def source(self) -> str:
        return "player" if self.tracker.locked else self.fallback.source

    @property
    def estimate(self) -> TempoEstimate | None:
        return self.tracker.estimate

    @property
    def step_ns(self) -> float:
        e = self.tracker.estimate
        return e.step_ns if e is not None and e.locked else self.fallback.step_ns

    def observe_onset(self, time_ns: int, velocity: int | None = None) -> None:
        """The player pressed a key at ``time_ns`` (``velocity``: how hard, when known: the
        tracker hears the downbeat in accents)."""
        self.tracker.observe_onset(time_ns, velocity)
        locked = self.tracker.locked
        if locked and not self._was_locked:
            self.locks += 1
        self._was_locked = locked

    def next_boundary(self, after_ns: int) -> tuple[int, int]:
        e = self.tracker.estimate
        if e is None or not e.locked:
            return self.fallback.next_boundary(after_ns)
        k = math.ceil((after_ns - e.origin_ns) / e.step_ns + MIN_STEP_FRACTION)
        return k, round(e.origin_ns + k * e.step_ns)

    def continue_from(self, step: int, boundary_ns: int, step_ns: float) -> None:
        """Until the player's beat is locked, go on from grid ``step`` at ``boundary_ns`` with
        16ths ``step_ns`` long (where a MIDI clock that stopped left the grid), numbered on."""
        if step_ns <= 0:
            step_ns = self.fallback.step_ns
        bpm = 60e9 / step_ns / GRID_STEPS_PER_BEAT
        self.fallback = InternalGrid(bpm, boundary_ns - round(step * step_ns))

    def describe(self) -> str:
        e = self.tracker.estimate
        if e is None:
            return f"player tempo: not heard yet (grid {self.fallback.source})"
        return e.describe() + ("" if e.locked else " (not locked)")
