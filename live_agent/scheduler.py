"""The one scheduler thread: keeps the 16th grid, drains input, decides ahead, sends on time.

Two time bases:

* internal: absolute deadlines ``t0 + k * step_ns`` at the session's bpm (no drift);
* MIDI clock: 24 ppqn ticks from the input, 6 ticks a 16th; Start (the next tick is step 0),
  Stop, Continue, and Song Position Pointer (in 16ths, honoured while stopped).

``--clock auto`` moves between them: ``ClockWatch`` follows the clock messages in the input
while the grid is internal (or the player's), and hands the grid to the MIDI clock only while a
clock really runs: a Start or Continue followed by a 16th of steady ticks, or a steady run of
``RUN_TICKS`` ticks at a plausible tempo. ``run_midi_clock`` hands it back on Stop, or when no
tick came for about a beat; the grid then goes on from the clock's last 16th, at its tempo,
numbered on (``HandBack``). A lone or stray clock byte changes nothing.

For each step k the loop drains input until the decision time (the boundary minus a margin),
decides, drains input until the boundary, then only sends. The margin is sized from what was
measured: the p99 of how late the thread woke for a decision plus the p99 of a decision, plus a
little slack, at least ``MIN_MARGIN_NS`` and at most a quarter step. If the loop falls a whole
step behind it skips to the next step it can make (counted in ``skipped_steps``) rather than
bursting notes. A step is counted late (``late_steps``) only when the agent's MIDI of that step
left more than ``LATE_NS`` after its boundary, measured where it is sent (``Target.send``
returns when that was): a step with nothing to send is never late.

With a clock whose ``fast_forward`` is True (``FakeClock``) the loop never blocks: queued events
carry fake timestamps, each is processed when fake time reaches it, and sleeping jumps time.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np

from exports.spec import GRID_STEPS_PER_BEAT
from live_agent.clock import InternalGrid, StepGrid
from live_agent.listener import Kind, Message, classify
from live_agent.protocols import Clock, Inbox, InputEvent

MIDI_CLOCK_PPQN = 24
TICKS_PER_STEP = MIDI_CLOCK_PPQN // GRID_STEPS_PER_BEAT  # 6 ticks of 24 ppqn a 16th
MIN_MARGIN_NS = 1_000_000
MARGIN_SLACK_NS = 300_000
LATE_NS = 5_000_000
"""A note that leaves this long after its 16th is late: about where a listener starts to hear a
note as off the beat (a 16th at 120 bpm is 125 ms). Sends are measured where they happen."""
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
RUN_TICKS = MIDI_CLOCK_PPQN
"""auto: a run of this many steady ticks (a beat) without Start is a clock that runs."""
MIN_TICK_NS = round(60e9 / 300 / MIDI_CLOCK_PPQN)
"""auto: the shortest tick of a plausible clock (300 bpm)."""
MAX_TICK_NS = round(60e9 / 30 / MIDI_CLOCK_PPQN)
"""auto: the longest tick of a plausible clock (30 bpm); a longer gap ends a run of ticks."""
STEADY_TOLERANCE = 0.5
"""auto: steady ticks lie within this fraction of a tick of one straight line."""
ARM_TICKS = TICKS_PER_STEP
"""auto: after Start or Continue, this many steady ticks (a 16th) before the clock takes over."""


class Target(Protocol):
    """What the scheduler drives: ``engine.Session``."""

    def handle(self, event: InputEvent, message: Message) -> None: ...

    def prepare(self) -> None: ...

    def decide(self, step: int, boundary_ns: int | None) -> None: ...

    def send(self, step: int) -> int | None:
        """Send step's MIDI now; returns when its first message left (ns), None if none did."""
        ...

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
        """How late the loop reached a boundary (the margin is sized from it; never "late")."""
        self.send_late_ns[self.sends % TIMING_WINDOW] = late_ns
        self.sends += 1

    def add_sent(self, boundary_ns: int, sent_ns: int | None) -> None:
        """A step was sent: its MIDI left at ``sent_ns`` (None: it had none). Late only when a
        message left more than ``LATE_NS`` after the step's boundary."""
        self.steps += 1
        if sent_ns is not None and sent_ns - boundary_ns > LATE_NS:
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
) -> bool:
    """Drive ``target`` on a grid until the pump ends (or ``until_step`` steps were played):
    returns False then; True as soon as ``handover()`` turns True (checked after each input
    message), leaving a decided step unsent. ``grid``: where the boundaries fall (default:
    ``step_ns`` apart from ``start_ns``); a grid that moves (the player's beat) is asked afresh
    for each boundary, and its step number (bar position) is what ``decide`` and ``send`` get."""
    t0 = clock.now_ns() + START_LEAD_NS if start_ns is None else start_ns
    if grid is None:
        grid = InternalGrid(60e9 / step_ns / GRID_STEPS_PER_BEAT, t0)
    fast = pump.fast

    def drain(until_ns: int) -> bool | None:
        """Handle input until ``until_ns``: None on time, False when it ended, True: handover."""
        while True:
            got = pump.next_message(until_ns)
            if isinstance(got, _Timeout):
                return None
            if isinstance(got, _End):
                return False
            target.handle(*got)
            if handover is not None and handover():
                return True

    played = 0
    step, boundary = grid.next_boundary(t0 - int(grid.step_ns))
    while until_step is None or played < until_step:
        if handover is not None and handover():
            return True
        decide_at = boundary - timing.margin_ns
        if not fast:
            if (ended := drain(decide_at - PREPARE_LEAD_NS)) is not None:
                return ended
            target.prepare()
        if (ended := drain(decide_at)) is not None:
            return ended
        now = clock.now_ns()
        timing.add_wake(now - decide_at)
        current_step_ns = int(grid.step_ns)
        if now > boundary + current_step_ns // 2:
            # Far behind (the process was stalled): skip to the next step we can make in time.
            behind = (now - boundary) // current_step_ns + 1
            for skipped in range(step, step + behind):
                target.skip(skipped)
            timing.skipped_steps += behind
            played += behind
            step, boundary = grid.next_boundary(boundary + (behind - 1) * current_step_ns)
            continue
        started = clock.now_ns()
        target.decide(step, boundary)
        timing.add_decision(clock.now_ns() - started)
        if (ended := drain(boundary if fast else boundary - SPIN_NS)) is not None:
            return ended
        clock.sleep_until(boundary)
        timing.add_send(clock.now_ns() - boundary)
        timing.add_sent(boundary, target.send(step))
        played += 1
        if played % MARGIN_UPDATE_STEPS == 0:
            timing.update_margin(int(grid.step_ns))
        step, boundary = grid.next_boundary(boundary)
    return False


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


class ClockWatch:
    """``--clock auto``: watches the clock messages in the input while the grid is the session's
    own, and says when a MIDI clock really runs (``takeover``: the step and time of the tick to
    hand the grid over on). A clock runs when its ticks are steady: the last ticks lie on one
    straight line of plausible tempo (30..300 bpm), each within ``STEADY_TOLERANCE`` of a tick
    of it (JACK's period quantizes arrival times: a tolerance of half a tick keeps 16 ms periods
    at 125 bpm steady; random bytes drift off any line).

    * After Start or Continue: ``ARM_TICKS`` steady ticks (a 16th), then the first tick that is
      a step boundary, counted from Start (step 0 on its first tick) or from Song Position
      Pointer; the step count is the clock's own.
    * Without Start: ``RUN_TICKS`` steady ticks (a beat); step 0 is the tick that completes it.

    Anything less (a lone tick, a lone Start, Start then nothing, random bytes) changes nothing.
    ``follower`` keeps the transport and position (Stop, SPP) for ``run_midi_clock``.
    """

    def __init__(self) -> None:
        self.follower = MidiClockFollower()
        self.takeover: tuple[int, int] | None = None
        self._armed = False
        self._since_arm = 0
        self._ticks: deque[int] = deque(maxlen=RUN_TICKS)

    def reset(self) -> None:
        """After a hand-back: the clock stopped; the next takeover needs new evidence."""
        self.follower.stop()
        self.takeover = None
        self._armed = False
        self._ticks.clear()

    def observe(self, kind: Kind, time_ns: int, data1: int = 0, data2: int = 0) -> bool:
        """One clock message (CLOCK, START, CONTINUE, STOP, SONG_POSITION); True when the clock
        takes over at this tick (``takeover`` says where)."""
        follower = self.follower
        if kind is Kind.START or kind is Kind.CONTINUE:
            if kind is Kind.START:
                follower.start()
            else:
                follower.resume()
            self._armed, self._since_arm = True, 0
            self._ticks.clear()
        elif kind is Kind.STOP:
            follower.stop()
            self._armed = False
        elif kind is Kind.SONG_POSITION:
            follower.song_position(data1 | (data2 << 7))
        elif kind is Kind.CLOCK:
            return self._tick(time_ns)
        return False

    def _tick(self, time_ns: int) -> bool:
        follower = self.follower
        ticks = self._ticks
        if ticks and time_ns - ticks[-1] > MAX_TICK_NS * (1 + STEADY_TOLERANCE):
            ticks.clear()  # a gap: whatever came before is not this clock
            if self._armed:
                self._armed = False  # Start (or Continue) with no clock after it: forgotten
                follower.stop()
        ticks.append(time_ns)
        if self._armed:
            self._since_arm += 1
            step = follower.tick(time_ns)
            if step is not None and self._since_arm > ARM_TICKS and self._steady(ARM_TICKS + 1):
                self.takeover = (step, time_ns)
                return True
            return False
        if self._steady(RUN_TICKS):
            follower.start()
            follower.tick_ns = (ticks[-1] - ticks[0]) / (len(ticks) - 1)
            follower.tick(time_ns)
            self.takeover = (0, time_ns)
            return True
        return False

    def _steady(self, count: int) -> bool:
        """Whether the last ``count`` ticks lie on a line of plausible tempo."""
        ticks = self._ticks
        if len(ticks) < count:
            return False
        first = ticks[-count]
        mean = (ticks[-1] - first) / (count - 1)
        if not MIN_TICK_NS <= mean <= MAX_TICK_NS:
            return False
        slack = STEADY_TOLERANCE * mean
        return all(
            abs(ticks[i] - (first + (i - len(ticks) + count) * mean)) <= slack
            for i in range(len(ticks) - count, len(ticks))
        )


class HandBack(NamedTuple):
    """Where the MIDI clock left the grid: its last 16th (``step`` at ``boundary_ns``), and the
    length of a 16th at its tempo; the grid goes on from there."""

    step: int
    boundary_ns: int
    step_ns: float


def run_midi_clock(
    target: Target,
    pump: InputPump,
    clock: Clock,
    follower: MidiClockFollower,
    timing: TimingStats,
    takeover: tuple[int, int] | None = None,
    hand_back_ns: int | None = None,
) -> HandBack | None:
    """Drive ``target`` from MIDI clock in the input until the pump ends (returns None).

    ``--clock auto`` passes ``takeover`` (step, tick time: the tick that was just heard, which
    is that step's boundary; the step is sent at once) and ``hand_back_ns``: then Stop, or no
    tick for about a beat (24 ticks at the clock's tempo; ``hand_back_ns`` before one is known),
    ends the loop and returns where the grid goes on (``HandBack``). Stop then leaves the agent
    playing; with ``--clock midi`` it silences it until Start or Continue."""
    decided: int | None = None
    auto = hand_back_ns is not None
    last: tuple[int, int] | None = None
    """The last step sent and its boundary (ns)."""

    def on_boundary(step: int, boundary_ns: int) -> None:
        nonlocal decided, last
        if decided != step:
            started = clock.now_ns()
            target.decide(step, boundary_ns)  # the tick came before the decision was made
            timing.add_decision(clock.now_ns() - started)
        decided = None
        timing.add_send(clock.now_ns() - boundary_ns)
        timing.add_sent(boundary_ns, target.send(step))
        last = (step, boundary_ns)
        if timing.steps % MARGIN_UPDATE_STEPS == 0 and follower.tick_ns:
            timing.update_margin(int(follower.tick_ns * TICKS_PER_STEP))

    def hand_back() -> HandBack:
        step_ns = (
            follower.tick_ns * TICKS_PER_STEP
            if follower.tick_ns
            else (hand_back_ns or 0) / GRID_STEPS_PER_BEAT
        )
        if last is not None:
            return HandBack(last[0], last[1], step_ns)
        when = follower.last_tick_ns if follower.last_tick_ns is not None else clock.now_ns()
        return HandBack(follower.next_step() - 1, when, step_ns)

    entered_ns = clock.now_ns()
    if takeover is not None:
        on_boundary(*takeover)
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
        if auto:
            quiet_ns = MIDI_CLOCK_PPQN * follower.tick_ns if follower.tick_ns else hand_back_ns or 0
            heard = follower.last_tick_ns
            deadline = int((heard if heard is not None else entered_ns) + quiet_ns)
            if clock.now_ns() >= deadline:
                return hand_back()  # no tick for about a beat: the clock stopped
            until = deadline if until is None else min(until, deadline)
        got = pump.next_message(until)
        if isinstance(got, _Timeout):
            continue
        if isinstance(got, _End):
            return None
        event, message = got
        kind = message.kind
        if kind is Kind.CLOCK:
            boundary_step = follower.tick(event.time_ns)
            if boundary_step is not None:
                on_boundary(boundary_step, event.time_ns)
        elif kind is Kind.START:
            follower.start()
            decided = None
            entered_ns = event.time_ns
            target.transport_start()
        elif kind is Kind.CONTINUE:
            follower.resume()
            decided = None
            entered_ns = event.time_ns
        elif kind is Kind.STOP:
            follower.stop()
            if auto:
                return hand_back()
            decided = None
            target.transport_stop()
        elif kind is Kind.SONG_POSITION:
            follower.song_position(message.data1 | (message.data2 << 7))
        else:
            target.handle(event, message)
