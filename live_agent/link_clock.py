"""Ableton Link as a grid source (``deepjam jam --clock link``): the session's tempo and bar.

``LinkGrid`` joins the Link session on this network (the ``aalink`` package, the ``link``
extra) with a quantum of one bar (the model's ``beats_per_bar``), so Link's phase is the bar
position, and implements ``clock.StepGrid``: step k falls on Link beat ``origin + k /
steps_per_beat``, where ``origin`` is the first Link bar line after the grid is first asked.
So the first 16th is on the session's next bar, ``step % steps_per_bar`` is the 16th within
Link's bar, and a tempo change by any peer moves the boundaries from the next one on.

Threads: aalink is an asyncio library. Its loop runs on a small daemon thread of its own
(``deepjam-link``), which samples Link every ``REFRESH_S`` into a frozen ``LinkSnapshot``
(Link beat pinned to a ``perf_counter_ns`` instant, tempo, peers). The scheduler thread only
reads the latest snapshot (one reference; it never calls aalink, never waits).

Time base: Link's clock is not ``perf_counter_ns`` (on Linux it is CLOCK_MONOTONIC_RAW, 0.1 s
or more apart from perf_counter's CLOCK_MONOTONIC, and the two drift apart slowly). Nothing is
assumed about it: each sample reads Link's beat between two ``perf_counter_ns`` readings (a
bracket of about a microsecond; the narrowest of a few tries) and pins that beat to their
midpoint. ``offset_ns`` (perf_counter minus Link's clock, measured the same way) is kept for
the log.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from exports.errors import PortError
from exports.extras import require_extra
from live_agent.clock import MIN_STEP_FRACTION

REFRESH_S = 0.01
"""How often the Link thread takes a new snapshot: a tempo change is followed within this."""
PEER_WAIT_S = 1.0
"""At start, how long to wait for the session's other peers before playing alone at --bpm."""
FIRST_LEAD_NS = 30_000_000
"""The first bar used as step 0 is at least this far ahead of the first ask (decide in time)."""
SAMPLE_TRIES = 3
"""Beat readings per snapshot; the one with the narrowest perf_counter bracket is kept."""
STOP_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class LinkSnapshot:
    """Link's timeline as last sampled: ``beat`` held at ``time_ns`` (perf_counter_ns)."""

    time_ns: int
    beat: float
    tempo_bpm: float
    peers: int
    """Other peers in the session (0: deepjam is alone)."""
    offset_ns: int
    """perf_counter_ns minus Link's clock (microseconds scaled to ns), as measured."""

    def beat_at(self, time_ns: int) -> float:
        """Link beat at ``time_ns`` (perf_counter_ns), at this snapshot's tempo."""
        return self.beat + (time_ns - self.time_ns) * self.tempo_bpm / 60e9

    def time_at(self, beat: float) -> int:
        """perf_counter_ns of Link beat ``beat``, at this snapshot's tempo."""
        return self.time_ns + round((beat - self.beat) * 60e9 / self.tempo_bpm)


def sample_link(link: Any) -> LinkSnapshot:
    """One snapshot of aalink ``link`` (call it on the Link thread)."""
    best: tuple[int, int, float, float] | None = None  # (bracket ns, mid ns, beat, tempo)
    for _ in range(SAMPLE_TRIES):
        tempo = float(link.tempo)
        before = time.perf_counter_ns()
        beat = float(link.beat)
        after = time.perf_counter_ns()
        if float(link.tempo) != tempo:
            continue  # a tempo change between the readings: the beat may not match
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) // 2, beat, tempo)
    if best is None:  # the tempo moved under every try (a peer sweeping it): take the last
        best = (after - before, (before + after) // 2, beat, float(link.tempo))
    before = time.perf_counter_ns()
    link_us = link.time // timedelta(microseconds=1)
    after = time.perf_counter_ns()
    return LinkSnapshot(
        time_ns=best[1],
        beat=best[2],
        tempo_bpm=best[3],
        peers=int(link.num_peers),
        offset_ns=(before + after) // 2 - link_us * 1000,
    )


class LinkGrid:
    """The Link session's 16th grid (``clock.StepGrid``). ``start()`` joins the session (and
    waits up to ``PEER_WAIT_S`` for its peers), ``stop()`` leaves it; or use it as a context
    manager. ``bpm`` is deepjam's tempo while it is alone in the session (a peer that joins
    later takes it, or brings its own session's)."""

    def __init__(self, bpm: float, beats_per_bar: int = 4, steps_per_beat: int = 4) -> None:
        require_extra("link", "--clock link (Ableton Link)")
        self.bpm = bpm
        self.beats_per_bar = beats_per_bar
        self.steps_per_beat = steps_per_beat
        self._snapshot: LinkSnapshot | None = None
        self._origin_beat: float | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- the Link thread --------------------------------------------------------------------

    def start(self, peer_wait_s: float = PEER_WAIT_S) -> LinkGrid:
        """Join the Link session on a thread of its own; return once Link has been sampled and
        a peer was seen (or ``peer_wait_s`` passed without one)."""
        self._thread = threading.Thread(target=self._run, name="deepjam-link", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0) or self._error is not None:
            raise PortError(
                f"Ableton Link did not start ({self._error or 'no answer in 10 s'}); Link needs "
                "a network interface with UDP multicast (port 20808)"
            ) from self._error
        deadline = time.monotonic() + peer_wait_s
        while self.snapshot.peers == 0 and time.monotonic() < deadline:
            time.sleep(REFRESH_S)
        if self.snapshot.peers:
            time.sleep(4 * REFRESH_S)  # a snapshot taken after the join settled the timeline
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._follow())
        except BaseException as err:  # reported by start(); the grid keeps its last snapshot
            self._error = err
            self._ready.set()

    async def _follow(self) -> None:
        import aalink

        link = aalink.Link(self.bpm)  # its callbacks would run on this thread's loop
        link.quantum = self.beats_per_bar
        link.enabled = True
        try:
            while not self._stopping.is_set():
                self._snapshot = sample_link(link)  # one reference: readers never see half
                self._ready.set()
                await asyncio.sleep(REFRESH_S)
        finally:
            link.enabled = False

    def stop(self) -> None:
        """Leave the Link session and end its thread (the last snapshot stays readable)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        self._thread = None

    def __enter__(self) -> LinkGrid:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the scheduler reads (never blocks) -----------------------------------------------

    @property
    def snapshot(self) -> LinkSnapshot:
        """The latest sample of Link's timeline."""
        snapshot = self._snapshot
        if snapshot is None:
            raise RuntimeError("LinkGrid.start() has not run")
        return snapshot

    @property
    def source(self) -> str:
        return "link"

    @property
    def tempo_bpm(self) -> float:
        """The session's tempo now, beats per minute."""
        return self.snapshot.tempo_bpm

    @property
    def peers(self) -> int:
        """Other peers in the Link session now."""
        return self.snapshot.peers

    @property
    def step_ns(self) -> float:
        return 60e9 / self.snapshot.tempo_bpm / self.steps_per_beat

    @property
    def origin_beat(self) -> float | None:
        """The Link beat of step 0 (a bar line), None until the grid was first asked."""
        return self._origin_beat

    def next_boundary(self, after_ns: int) -> tuple[int, int]:
        """(step, perf_counter_ns) of the first 16th of Link's timeline at least half a step
        after ``after_ns``; the first ask fixes step 0 on Link's next bar line."""
        snap = self.snapshot
        spb = self.steps_per_beat
        if self._origin_beat is None:
            earliest_ns = max(
                after_ns + round(MIN_STEP_FRACTION * self.step_ns),
                time.perf_counter_ns() + FIRST_LEAD_NS,
            )
            bar = math.ceil(snap.beat_at(earliest_ns) / self.beats_per_bar)
            self._origin_beat = float(bar * self.beats_per_bar)
            return 0, snap.time_at(self._origin_beat)
        position = (snap.beat_at(after_ns) - self._origin_beat) * spb
        step = math.ceil(position + MIN_STEP_FRACTION)
        return step, snap.time_at(self._origin_beat + step / spb)

    def observe_onset(self, time_ns: int) -> None:
        pass  # the session's tempo is Link's, not the player's

    def describe(self) -> str:
        """One line for the log: tempo, peers, how Link's clock sits against perf_counter."""
        snap = self.snapshot
        peers = f"{snap.peers} other peer{'' if snap.peers == 1 else 's'}"
        alone = "" if snap.peers else " (alone: others can join it)"
        return (
            f"Ableton Link: {snap.tempo_bpm:.1f} bpm, {peers}{alone}, bars of "
            f"{self.beats_per_bar} beats"
        )

    def source_text(self) -> str:
        """Where the tempo comes from, for the live view: e.g. ``Ableton Link (2 peers)``."""
        peers = self.snapshot.peers
        return f"Ableton Link ({peers} peer{'' if peers == 1 else 's'})"
