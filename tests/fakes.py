"""Test fakes shared by the tests (imported, never through a conftest): a recording sink, a
deterministic policy, a real small ONNX model, inboxes of scripted input, and a fake clock that
charges the scheduler thread's own work to fake time."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import numpy as np

from exports.spec import DEFAULT_SPEC, Spec
from live_agent.protocols import InputEvent

MS = 1_000_000


class RecordingNoteSink:
    """A NoteSink that keeps every call with the (fake) time it happened at."""

    def __init__(self, clock: object | None = None) -> None:
        self.clock = clock
        self.events: list[tuple] = []

    def _now(self) -> int:
        return self.clock.now_ns() if self.clock is not None else 0  # type: ignore[attr-defined]

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        self.events.append((self._now(), "on", channel, pitch, velocity))

    def note_off(self, channel: int, pitch: int) -> None:
        self.events.append((self._now(), "off", channel, pitch))

    def control_change(self, channel: int, control: int, value: int) -> None:
        self.events.append((self._now(), "cc", channel, control, value))

    def send(self, data: tuple[int, ...]) -> None:
        self.events.append((self._now(), "send", tuple(data)))

    def sounding(self, all_notes_off: bool = False) -> set[tuple[int, int]]:
        """(channel, pitch) still on after replaying the events; ``all_notes_off``: count CC 123
        as releasing its channel (by default every note must have had its own note-off)."""
        on: set[tuple[int, int]] = set()
        for event in self.events:
            if event[1] == "on":
                on.add((event[2], event[3]))
            elif event[1] == "off":
                on.discard((event[2], event[3]))
            elif event[1] == "cc" and event[3] == 123 and all_notes_off:
                on = {n for n in on if n[0] != event[2]}
            elif event[1] == "send":
                data = event[2]
                if data[0] & 0xF0 == 0x90 and data[2] > 0:
                    on.add((data[0] & 0x0F, data[1]))
                elif data[0] & 0xF0 in (0x80, 0x90):
                    on.discard((data[0] & 0x0F, data[1]))
        return on


class ScriptedPolicy:
    """A deterministic Policy: at call i the best action is ``script[i % len(script)]``."""

    def __init__(self, script: list[int], spec: Spec = DEFAULT_SPEC) -> None:
        self._spec = spec
        self.script = script
        self.calls = 0
        self.states: list[np.ndarray] = []

    @property
    def spec(self) -> Spec:
        return self._spec

    def q_values(self, states: np.ndarray) -> np.ndarray:
        self.states.append(states.copy())
        q = np.zeros((states.shape[0], self._spec.n_actions), dtype=np.float32)
        q[:, self.script[self.calls % len(self.script)]] = 1.0
        self.calls += 1
        return q


def make_onnx_model(
    path: Path, spec: Spec = DEFAULT_SPEC, hidden: tuple[int, ...] = (32,), seed: int = 0
) -> Path:
    """A random MLP Q-network written with ``exports.onnx_writer.export_onnx`` (real metadata)."""
    import torch

    from exports.metadata import ModelMetadata
    from exports.onnx_writer import export_onnx
    from exports.state_samples import synthetic_states

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    layers: list[torch.nn.Module] = []
    width = spec.state_dim
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, spec.n_actions))
    net = torch.nn.Sequential(*layers)
    metadata = ModelMetadata(
        spec=spec, reward_weights={"style": 1.0}, style_name="test-random", corpus={"name": "none"}
    )
    states = synthetic_states(spec, 64, np.random.default_rng(seed))
    export_onnx(net, metadata, path, states)
    return path


def inbox_of(events: list[tuple[int, tuple[int, ...]]], close: bool = True) -> queue.SimpleQueue:
    """An inbox preloaded with (time_ns, bytes) events, then the stop sentinel."""
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    for time_ns, data in events:
        inbox.put(InputEvent(time_ns, tuple(data)))
    if close:
        inbox.put(None)
    return inbox


class ChargingClock:
    """A fast-forward fake clock that also moves by the CPU time of the thread using it.

    ``FakeClock`` makes work free: a decision that takes 20 ms of CPU is on time. This clock
    charges the calling thread's CPU time (``time.thread_time_ns``) since it last slept to fake
    time, so slow work on the scheduler thread makes late steps, exactly as on a real clock, while
    work on other threads (a model loading, a swap being prepared) and waiting are free, and
    sleeping still jumps. Only the scheduler thread may use it."""

    fast_forward = True

    def __init__(self, start_ns: int = 0) -> None:
        self.base_ns = start_ns
        self._cpu_mark_ns = time.thread_time_ns()

    def now_ns(self) -> int:
        """Fake time: the last sleep's deadline plus this thread's CPU time since."""
        return self.base_ns + (time.thread_time_ns() - self._cpu_mark_ns)

    def sleep_until(self, deadline_ns: int) -> None:
        """Jump to ``deadline_ns`` if it is still ahead; the CPU charge starts again from there."""
        now = self.now_ns()
        if deadline_ns > now:
            self.base_ns = deadline_ns
            self._cpu_mark_ns = time.thread_time_ns()
