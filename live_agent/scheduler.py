"""The one scheduler thread: keeps the 16th grid, drains input, decides ahead, sends on time.

Two time bases:

* internal: absolute deadlines ``t0 + k * step_ns`` at the session's bpm (no drift);
* MIDI clock: 24 ppqn ticks from the input, 6 ticks a 16th; Start (the next tick is step 0),
  Stop, Continue, and Song Position Pointer (in 16ths, honoured while stopped).

For each step k the loop drains input until the decision time (the boundary minus a margin),
decides, drains input until the boundary, then only sends. The margin is sized from what was
measured: the p99 of how late the thread woke for a decision plus the p99 of a decision, plus a
little slack, at least ``MIN_MARGIN_NS`` and at most a quarter step. A step sent more than
``LATE_NS`` after its boundary is counted late; if the loop falls a whole step behind it skips to
the next step it can make (each skipped step counted late too) rather than bursting notes.

With a clock whose ``fast_forward`` is True (``FakeClock``) the loop never blocks: queued events
carry fake timestamps, each is processed when fake time reaches it, and sleeping jumps time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from exports.spec import GRID_STEPS_PER_BEAT
from live_agent.clock import InternalGrid, StepGrid
from live_agent.listener import Kind, Message, classify
from live_agent.protocols import Clock, Inbox, InputEvent

MIDI_CLOCK_PPQN = 24
TICKS_PER_STEP = MIDI_CLOCK_PPQN // GRID_STEPS_PER_BEAT  # 6 ticks of 24 ppqn a 16th
MIN_MARGIN_NS = 1_000_000
MARGIN_SLACK_NS = 300_000
LATE_NS = 1_000_000
SPIN_NS = 1_000_000
"""Real clock: stop waiting on the inbox this long before a boundary; the clock spins the rest."""
PREPARE_LEAD_NS = 1_500_000
"""Real clock: warm the model this long before the decision (a cold inference is 3-10x slower)."""
POLL_NS = 20_000_000
"""Real clock: the longest a blocking wait lasts, so a set stop Event is seen within 20 ms."""
MARGIN_UPDATE_STEPS = 32
TIMING_WINDOW = 512
START_LEAD_NS = 50_000_000
TICK_SMOOTHING = 0.2


class Target(Protocol):
    """What the scheduler drives: ``engine.Session``."""

    def handle(self, event: InputEvent, message: Message) -> None: ...

    def prepare(self) -> None: ...

    def decide(self, step: int, boundary_ns: int | None) -> None: ...

    def send(self, step: int) -> None: ...

    def skip(self, step: int) -> None: ...

    def transport_start(self) -> None: ...

    def transport_stop(self) -> None: ...


class _Timeout:
    pass


class _End:
    pass


TIMEOUT = _Timeout()
END = _End()


class TimingStats:
    """Late steps and the two latencies the margin is sized from (ns, last 512 of each)."""

    def __init__(self) -> None:
        self.late_steps = 0
        self.skipped_steps = 0
        self.steps = 0
        self.decision_ns = np.zeros(TIMING_WINDOW, dtype=np.int64)
        self.wake_late_ns = np.zeros(TIMING_WINDOW, dtype=np.int64)
        self.send_late_ns = np.zeros(TIMING_WINDOW, dtype=np.int64)
        self.decisions = 0
        self.wakes = 0
        self.sends = 0
        self.margin_ns = MIN_MARGIN_NS

    def add_decision(self, duration_ns: int) -> None:
        self.decision_ns[self.decisions % TIMING_WINDOW] = duration_ns
        self.decisions += 1

    def add_wake(self, late_ns: int) -> None:
        self.wake_late_ns[self.wakes % TIMING_WINDOW] = max(0, late_ns)
        self.wakes += 1

    def add_send(self, late_ns: int) -> None:
        self.send_late_ns[self.sends % TIMING_WINDOW] = late_ns
        self.sends += 1
        if late_ns > LATE_NS:
            self.late_steps += 1

    @staticmethod
    def _p(values: np.ndarray, count: int, q: float) -> int:
        n = min(count, TIMING_WINDOW)
        return int(np.percentile(values[:n], q)) if n else 0

    def decision_p(self, q: float) -> int:
        return self._p(self.decision_ns, self.decisions, q)

    def send_late_p(self, q: float) -> int:
        return self._p(self.send_late_ns, self.sends, q)

    def update_margin(self, step_ns: int) -> None:
        wanted = self._p(self.wake_late_ns, self.wakes, 99) + self.decision_p(99) + MARGIN_SLACK_NS
        self.margin_ns = int(min(max(wanted, MIN_MARGIN_NS), step_ns // 4))


class InputPump:
    """Takes events off the inbox in time order; validates and routes them."""

    def __init__(
        self,
        inbox: Inbox,
        clock: Clock,
        stop: threading.Event,
        on_message: Callable[[InputEvent, Message], None],
        dropped: dict[str, int],
    ) -> None:
        self.inbox = inbox
        self.clock = clock
        self.stop = stop
        self.fast = bool(getattr(clock, "fast_forward", False))
        self.on_message = on_message
        self.dropped = dropped
        self.pending: InputEvent | None = None
        self.closed = False

    def next_message(self, until_ns: int | None) -> tuple[InputEvent, Message] | _Timeout | _End:
        """The next valid message stamped at or before ``until_ns`` (None: no limit), TIMEOUT when
        time reached ``until_ns`` first, END on the stop sentinel, a set stop Event, or (fast
        clock) when input is exhausted and there is no deadline to reach."""
        while True:
            if self.stop.is_set() or self.closed:
                return END
            event = self._take(until_ns)
            if isinstance(event, _Timeout | _End):
                return event
            message = classify(event.data, self.dropped)  # type: ignore[arg-type]
            if message is not None:
                return event, message

    def _take(self, until_ns: int | None) -> InputEvent | _Timeout | _End:
        if self.fast:
            if self.pending is None:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    if until_ns is None:
                        return END
                    self.clock.sleep_until(until_ns)
                    return TIMEOUT
                if item is None:
                    self.closed = True
                    return END
                self.pending = item
            if until_ns is not None and self.pending.time_ns > until_ns:
                self.clock.sleep_until(until_ns)
                return TIMEOUT
            event, self.pending = self.pending, None
            self.clock.sleep_until(event.time_ns)
            return event
        # Real time: whatever is queued has already happened.
        while True:
            now = self.clock.now_ns()
            if until_ns is not None and now >= until_ns:
                return TIMEOUT
            wait_ns = POLL_NS if until_ns is None else min(POLL_NS, until_ns - now)
            try:
                item = self.inbox.get(timeout=wait_ns / 1e9)
            except queue.Empty:
                if self.stop.is_set():
                    return END
                continue
            if item is None:
                self.closed = True
                return END
            return item


def run_internal(
    target: Target,
    pump: InputPump,
    clock: Clock,
    step_ns: int,
    timing: TimingStats,
    until_step: int | None = None,
    start_ns: int | None = None,
    grid: StepGrid | None = None,
    handover: Callable[[], bool] | None = None,
) -> None:
    """Drive ``target`` on a grid until the pump ends (or ``until_step`` steps were played, or
    ``handover()`` turns True). ``grid``: where the boundaries fall (default: ``step_ns`` apart
    from ``start_ns``); a grid that moves (the player's beat) is asked afresh for each boundary,
    and its step number (bar position) is what ``decide`` and ``send`` get."""
    t0 = clock.now_ns() + START_LEAD_NS if start_ns is None else start_ns
    if grid is None:
        grid = InternalGrid(60e9 / step_ns / GRID_STEPS_PER_BEAT, t0)
    fast = pump.fast
    played = 0
    step, boundary = grid.next_boundary(t0 - int(grid.step_ns))
    while until_step is None or played < until_step:
        if handover is not None and handover():
            return
        decide_at = boundary - timing.margin_ns
        if not fast:
            while True:
                got = pump.next_message(decide_at - PREPARE_LEAD_NS)
                if isinstance(got, _Timeout):
                    break
                if isinstance(got, _End):
                    return
                target.handle(*got)
            target.prepare()
        while True:
            got = pump.next_message(decide_at)
            if isinstance(got, _Timeout):
                break
            if isinstance(got, _End):
                return
            target.handle(*got)
        now = clock.now_ns()
        timing.add_wake(now - decide_at)
        current_step_ns = int(grid.step_ns)
        if now > boundary + current_step_ns // 2:
            # Far behind (the process was stalled): skip to the next step we can make in time.
            behind = (now - boundary) // current_step_ns + 1
            for skipped in range(step, step + behind):
                target.skip(skipped)
            timing.skipped_steps += behind
            timing.late_steps += behind
            played += behind
            step, boundary = grid.next_boundary(boundary + (behind - 1) * current_step_ns)
            continue
        started = clock.now_ns()
        target.decide(step, boundary)
        timing.add_decision(clock.now_ns() - started)
        wait_until = boundary if fast else boundary - SPIN_NS
        while True:
            got = pump.next_message(wait_until)
            if isinstance(got, _Timeout):
                break
            if isinstance(got, _End):
                return
            target.handle(*got)
        clock.sleep_until(boundary)
        timing.add_send(clock.now_ns() - boundary)
        target.send(step)
        timing.steps += 1
        played += 1
        if played % MARGIN_UPDATE_STEPS == 0:
            timing.update_margin(int(grid.step_ns))
        step, boundary = grid.next_boundary(boundary)


class MidiClockFollower:
    """Transport and tempo from MIDI clock: 24 ppqn ticks, Start / Stop / Continue / SPP."""

    def __init__(self) -> None:
        self.running = False
        self.ticks = -1
        """Ticks since position 0; -1 right after Start: the next tick is step 0's boundary."""
        self.last_tick_ns: int | None = None
        self.tick_ns: float | None = None
        self.starts = 0

    def start(self) -> None:
        self.running = True
        self.ticks = -1
        self.last_tick_ns = None
        self.starts += 1

    def resume(self) -> None:
        self.running = True
        self.last_tick_ns = None

    def stop(self) -> None:
        self.running = False

    def song_position(self, sixteenths: int) -> None:
        if not self.running:
            self.ticks = sixteenths * TICKS_PER_STEP - 1

    def tick(self, time_ns: int) -> int | None:
        """Count one tick; returns the step whose boundary it is, or None."""
        if not self.running:
            return None
        if self.last_tick_ns is not None:
            delta = time_ns - self.last_tick_ns
            if delta > 0:
                self.tick_ns = (
                    delta
                    if self.tick_ns is None
                    else ((1 - TICK_SMOOTHING) * self.tick_ns + TICK_SMOOTHING * delta)
                )
        self.last_tick_ns = time_ns
        self.ticks += 1
        return self.ticks // TICKS_PER_STEP if self.ticks % TICKS_PER_STEP == 0 else None

    def next_step(self) -> int:
        return self.ticks // TICKS_PER_STEP + 1

    def predicted_boundary_ns(self, step: int) -> int | None:
        if self.tick_ns is None or self.last_tick_ns is None:
            return None
        return int(self.last_tick_ns + (step * TICKS_PER_STEP - self.ticks) * self.tick_ns)


def run_midi_clock(
    target: Target, pump: InputPump, clock: Clock, follower: MidiClockFollower, timing: TimingStats
) -> None:
    """Drive ``target`` from MIDI clock in the input until the pump ends."""
    decided: int | None = None
    while True:
        until: int | None = None
        if follower.running and decided != follower.next_step():
            step = follower.next_step()
            predicted = follower.predicted_boundary_ns(step)
            until = clock.now_ns() if predicted is None else predicted - timing.margin_ns
            if clock.now_ns() >= until:
                started = clock.now_ns()
                timing.add_wake(started - until)
                target.decide(step, predicted)
                timing.add_decision(clock.now_ns() - started)
                decided = step
                continue
        elif not pump.fast:
            until = clock.now_ns() + POLL_NS
        got = pump.next_message(until)
        if isinstance(got, _Timeout):
            continue
        if isinstance(got, _End):
            return
        event, message = got
        kind = message.kind
        if kind is Kind.CLOCK:
            boundary_step = follower.tick(event.time_ns)
            if boundary_step is None:
                continue
            if decided != boundary_step:
                timing.late_steps += 1  # the tick came before the decision was made
                target.decide(boundary_step, event.time_ns)
            decided = None
            timing.add_send(clock.now_ns() - event.time_ns)
            target.send(boundary_step)
            timing.steps += 1
            if timing.steps % MARGIN_UPDATE_STEPS == 0 and follower.tick_ns:
                timing.update_margin(int(follower.tick_ns * TICKS_PER_STEP))
        elif kind is Kind.START:
            follower.start()
            decided = None
            target.transport_start()
        elif kind is Kind.CONTINUE:
            follower.resume()
            decided = None
        elif kind is Kind.STOP:
            follower.stop()
            decided = None
            target.transport_stop()
        elif kind is Kind.SONG_POSITION:
            follower.song_position(message.data1 | (message.data2 << 7))
        else:
            target.handle(event, message)
