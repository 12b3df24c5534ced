"""A second Ableton Link peer for the tests: a real ``aalink.Link`` on a thread of its own.

Its timeline is read with its own code (not deepjam's): Link's beat read between two
``perf_counter_ns`` readings, pinned to their midpoint, so the tests compare deepjam with the
session as another Link app sees it, on the same clock as the JACK probe's timestamps.

Link has one session per network, and this machine is shared: ``LinkPeer.start`` first waits
until no other peer is there (another run of these tests), so two runs do not set each other's
tempo. Under ``CI=true`` a missing aalink fails; elsewhere the tests skip.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

ALONE_TIMEOUT_S = 20.0
"""How long ``start`` waits for another run's Link session to end before going on anyway."""
SESSION_AGE_S = 1.5
"""Link merges two sessions that meet into the older one, and takes sessions founded within
0.5 s of each other as a tie (broken by their ids): the peer's session must be well older than
deepjam's when it joins. (And a client that joins within a second after another left may win
even so: the tests use a fresh peer for each deepjam that joins.)"""


def require_aalink() -> Any:
    """The aalink module; skips the test without it (fails under CI=true)."""
    if os.environ.get("CI") == "true":
        import aalink

        return aalink
    return pytest.importorskip("aalink")


@dataclass(frozen=True)
class Timeline:
    """The peer's Link timeline: ``beat`` at ``time_ns`` (perf_counter_ns), ``tempo_bpm``."""

    time_ns: int
    beat: float
    tempo_bpm: float

    def beat_at(self, time_ns: float) -> float:
        return self.beat + (time_ns - self.time_ns) * self.tempo_bpm / 60e9

    def time_at(self, beat: float) -> float:
        return self.time_ns + (beat - self.beat) * 60e9 / self.tempo_bpm


class LinkPeer:
    """A Link peer at ``bpm`` with a quantum of ``quantum`` beats (a bar)."""

    def __init__(self, bpm: float, quantum: int = 4) -> None:
        self.bpm = bpm
        self.quantum = quantum
        self.link: Any = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-link-peer", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        aalink = require_aalink()
        self.link = aalink.Link(self.bpm)
        self.link.quantum = self.quantum
        self.link.enabled = True
        self._ready.set()
        try:
            while not self._stop.is_set():
                await asyncio.sleep(0.01)
        finally:
            self.link.enabled = False

    def start(self) -> LinkPeer:
        require_aalink()
        deadline = time.monotonic() + ALONE_TIMEOUT_S
        while True:
            self._thread.start()
            if not self._ready.wait(10):
                raise RuntimeError("the test's Link peer did not start")
            time.sleep(SESSION_AGE_S)
            if self.link.num_peers == 0 or time.monotonic() > deadline:
                break
            # Another run's session is on the network: leave it, wait, join again when alone.
            self.stop()
            time.sleep(1.0)
            self._stop.clear()
            self._ready.clear()
            self._thread = threading.Thread(target=self._run, name="test-link-peer", daemon=True)
        self.set_tempo(self.bpm)  # ours, even if another session was there at the deadline
        return self

    def set_tempo(self, bpm: float) -> None:
        self.link.tempo = bpm

    @property
    def peers(self) -> int:
        return int(self.link.num_peers)

    def timeline(self) -> Timeline:
        """The timeline now (the narrowest of five readings)."""
        best: tuple[int, int, float, float] | None = None
        for _ in range(5):
            tempo = float(self.link.tempo)
            before = time.perf_counter_ns()
            beat = float(self.link.beat)
            after = time.perf_counter_ns()
            if float(self.link.tempo) == tempo and (best is None or after - before < best[0]):
                best = (after - before, (before + after) // 2, beat, tempo)
        if best is None:
            raise RuntimeError("the peer's tempo moved under every reading")
        return Timeline(best[1], best[2], best[3])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __enter__(self) -> LinkPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
