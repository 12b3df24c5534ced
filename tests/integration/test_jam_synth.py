"""``deepjam jam --synth``: FluidSynth starts, deepjam plays on it, its sound reaches the
system's playback, and it is gone (silent) once deepjam stops. Recorded by a JACK client."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exports.midi import NOTE_OFF, NOTE_ON
from live_agent.io.synth import SYNTH_CLIENT_NAME, check_synth
from tests.support.jack_probe import jack_recorder, run_jam

pytestmark = pytest.mark.jack
SILENT_PEAK = 1e-4
"""Below -80 dBFS: nothing sounds."""
CALL = (62, 64, 66, 67, 69, 67, 66, 64)
STEP_S = 0.125  # a 16th at 120 bpm


class AudioMeter:
    """A JACK client with two audio inputs that keeps (monotonic time, peak) per cycle."""

    def __init__(self, name: str = "synth-meter") -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.inputs = [self.client.inports.register(side) for side in ("left", "right")]
        self.peaks: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        peak = max(float(np.abs(port.get_array()).max()) for port in self.inputs)
        with self.lock:
            self.peaks.append((time.monotonic(), peak))

    def connect(self, left: str, right: str) -> None:
        for source, port in zip((left, right), self.inputs, strict=True):
            self.client.connect(source, port)

    def peak_between(self, start: float, end: float) -> float:
        with self.lock:
            values = [peak for when, peak in self.peaks if start <= when < end]
        return max(values, default=0.0)

    def port_names(self) -> list[str]:
        return [port.name for port in self.client.get_ports()]

    def connections(self, name: str) -> list[str]:
        return [port.name for port in self.client.get_all_connections(name)]

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_synth_sounds_during_the_answer_and_is_silent_after_stop(
    jack_server: object, scale_model_path: Path
) -> None:
    check_synth()  # FluidSynth and the soundfont are installed by .ci/setup: fail, never skip
    left, right = f"{SYNTH_CLIENT_NAME}:left", f"{SYNTH_CLIENT_NAME}:right"
    meter = AudioMeter()
    try:
        args = ["--synth", "--virtual", "--api", "jack", "--model", str(scale_model_path)]
        args += ["--temperature", "0", "--answer-bars", "1", "--velocity", "90"]
        with jack_recorder("kbd-sim") as keyboard, run_jam(args, ready_timeout_s=60) as jam:
            assert wait_for(lambda: left in meter.port_names(), 20), jam.stderr_text()
            # FluidSynth's audio goes to the system's playback, as a laptop user needs.
            assert wait_for(lambda: "system:playback_1" in meter.connections(left), 10)
            assert "system:playback_2" in meter.connections(right)
            meter.connect(left, right)
            keyboard.connect_to("deepjam-in:deepjam in")
            call_start = time.monotonic()
            for pitch in CALL:  # no --thru: the call itself never reaches the synth
                keyboard.send((NOTE_ON, pitch, 90))
                time.sleep(STEP_S)
                keyboard.send((NOTE_OFF, pitch, 0))
            call_end = time.monotonic()
            assert wait_for(lambda: meter.peak_between(call_end, time.monotonic()) > 0.01, 8), (
                f"no sound from the synth after the call:\n{jam.stderr_text()}"
            )
            assert meter.peak_between(call_start, call_end - STEP_S) < SILENT_PEAK
            answer_peak = meter.peak_between(call_end, time.monotonic())
            stopped_at = time.monotonic()
        # Out of run_jam: deepjam got SIGTERM and exited; the synth went with it.
        assert wait_for(lambda: left not in meter.port_names(), 5), "FluidSynth is still running"
        assert any("stopped FluidSynth" in line for line in jam.lines), jam.stderr_text()
        time.sleep(0.5)
        assert meter.peak_between(time.monotonic() - 0.4, time.monotonic()) < SILENT_PEAK
        assert answer_peak > 0.01 and stopped_at > call_end
    finally:
        meter.close()
