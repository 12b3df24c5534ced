"""Test-side tools for the live agent on JACK: a frame-exact MIDI recorder (its own JACK client,
separate from deepjam), a `deepjam jam` subprocess runner, and a best-fit grid measure.

Used by the integration tests, the README-commands test and the JACK benchmarks.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exports.midi import (
    ALL_NOTES_OFF as ALL_NOTES_OFF,
)
from exports.midi import (
    ALL_SOUND_OFF as ALL_SOUND_OFF,
)
from exports.midi import (
    CONTROL_CHANGE as CONTROL_CHANGE,
)
from exports.midi import (
    NOTE_OFF as NOTE_OFF,
)
from exports.midi import (
    NOTE_ON as NOTE_ON,
)

# Re-exported: the tests take them from here too.
from tests.support.jack_server import stop_process

_EARS = itertools.count()


@dataclass
class Received:
    frame: int
    """JACK frame time of the event (exact: cycle start + offset)."""
    time_ns: int
    """perf_counter_ns estimate of when the event was due (cycle time + offset)."""
    data: bytes


@dataclass
class JackRecorder:
    """A keyboard and an ear on JACK, separate from deepjam, both timed to the frame.

    ``events`` collects what reaches ``<name>:in`` (a JACK-Client input). ``send`` plays bytes
    out of ``<name>-keys:out``, an rtmidi output: rtmidi queues them in C++ and its own process
    callback writes them, with no Python (and no GIL) in JACK's thread, so a busy test process
    cannot make JACK drop them as a Python callback that runs late would (under load one
    message in a few hundred was lost that way, and a lost note-off holds a note for deepjam's
    32-s held timeout). ``sent`` is what left that port, heard back by a second client.
    """

    name: str = "deepjam-probe"
    events: list[Received] = field(default_factory=list)
    sent: list[Received] = field(default_factory=list)
    """What ``send`` played out of ``<name>-keys:out``, stamped with the frame it left on."""
    client: Any = None
    sample_rate: int = 0
    keys: Any = None
    ear: Any = None
    out_name: str = ""
    """The JACK port ``send`` plays out of (an output: connect it to deepjam's input); JACK
    may number the client (``<name>-keys-01``) when the name was used a moment before."""

    def start(self) -> JackRecorder:
        import jack
        import rtmidi

        self.client = jack.Client(self.name, no_start_server=True)
        self.inport = self.client.midi_inports.register("in")
        self.sample_rate = self.client.samplerate
        self.client.set_process_callback(self._process)
        self.client.activate()
        # The port that hears what was sent sits in a client whose name does not contain
        # ``name``, so that ``--output NAME`` still matches one input port.
        self.ear = jack.Client(f"sent-ear-{os.getpid()}-{next(_EARS)}", no_start_server=True)
        self.sentport = self.ear.midi_inports.register("sent")
        self.ear.set_process_callback(self._process_sent)
        self.ear.activate()
        before = {p.name for p in self.client.get_ports(is_midi=True, is_output=True)}
        self.keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"{self.name}-keys")
        self.keys.open_virtual_port("out")
        self.out_name = next(
            p.name
            for p in self.client.get_ports(f"{self.name}-keys", is_midi=True, is_output=True)
            if p.name not in before
        )
        self.ear.connect(self.out_name, self.sentport)
        return self

    def _record(self, client: Any, port: Any, into: list[Received]) -> None:
        cycle_frame = client.last_frame_time
        cycle_ns = time.perf_counter_ns()  # the cycle began just before; good to ~0.1 ms
        for offset, data in port.incoming_midi_events():
            ns = cycle_ns + int(offset * 1e9 / self.sample_rate)
            into.append(Received(cycle_frame + offset, ns, bytes(data)))

    def _process(self, frames: int) -> None:
        self._record(self.client, self.inport, self.events)

    def _process_sent(self, frames: int) -> None:
        self._record(self.ear, self.sentport, self.sent)

    def send(self, data: bytes | list[int] | tuple[int, ...]) -> None:
        self.keys.send_message(list(data))

    def connect_from(self, port: str) -> None:
        self.client.connect(port, self.inport)

    def connect_to(self, port: str) -> None:
        self.client.connect(self.out_name, port)

    def wait_for_port(self, name: str, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(p.name == name for p in self.client.get_ports(is_midi=True)):
                return
            time.sleep(0.05)
        names = [p.name for p in self.client.get_ports(is_midi=True)]
        raise TimeoutError(f"JACK port {name!r} did not appear in {timeout_s} s; ports: {names}")

    def note_ons(self) -> list[Received]:
        return [
            e
            for e in self.events
            if len(e.data) == 3 and e.data[0] & 0xF0 == NOTE_ON and e.data[2] > 0
        ]

    def stop(self) -> None:
        if self.keys is not None:
            self.keys.close_port()
            self.keys = None
        if self.ear is not None:
            self.ear.deactivate()
            self.ear.close()
            self.ear = None
        if self.client is not None:
            self.client.deactivate()
            self.client.close()
            self.client = None


def inbox_events(inbox: queue.SimpleQueue, count: int, timeout_s: float = 3.0) -> list[Any]:  # type: ignore[type-arg]
    """Up to ``count`` events from a deepjam input's ``inbox``, waiting at most ``timeout_s``."""
    events: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(events) < count and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            events.append(inbox.get(timeout=0.05))
    return events


@contextmanager
def jack_recorder(name: str = "deepjam-probe") -> Iterator[JackRecorder]:
    recorder = JackRecorder(name).start()
    try:
        yield recorder
    finally:
        recorder.stop()


@dataclass
class JamProcess:
    process: subprocess.Popen[str]
    lines: list[str]

    def stderr_text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def run_jam(
    args: list[str], env: dict[str, str] | None = None, ready_timeout_s: float = 30.0
) -> Iterator[JamProcess]:
    """Run ``deepjam jam ARGS`` until it prints that it listens; SIGTERM and wait on exit."""
    command = [sys.executable, "-m", "live_agent.cli", "jam", *args]
    process = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env or dict(os.environ),
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip())
            if "listening on" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    jam = JamProcess(process, lines)
    try:
        if not ready.wait(ready_timeout_s) or process.poll() is not None:
            raise RuntimeError(f"deepjam jam did not start:\n{jam.stderr_text()}")
        yield jam
    finally:
        stop_process(process)
        reader.join(5)


def grid_deviation_ms(onset_s: np.ndarray, step_s: float) -> np.ndarray:
    """|onset - best-fit grid| in ms: steps assigned by rounding at the nominal step, then a
    least-squares line (offset and step) through (step index, onset)."""
    t = np.asarray(onset_s, dtype=np.float64)
    k = np.round((t - t[0]) / step_s)
    slope, intercept = np.polyfit(k, t, 1)
    return np.abs(t - (intercept + slope * k)) * 1e3


def late_share(lines: list[str]) -> float:
    """The share of steps deepjam reported late in its stop line (0 when it reported none)."""
    for line in lines:
        match = re.search(r"(\d+) 16ths of (\d+) came late", line)
        if match:
            return int(match.group(1)) / max(1, int(match.group(2)))
    return 0.0
