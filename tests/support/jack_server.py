"""A real JACK server (dummy driver) for the tests and the benchmarks that need one.

The server runs in realtime mode (``-R``): on a non-realtime server at small periods a
python-rtmidi input can stop receiving for good (docs/measurements.md). Each gets a name of its
own so parallel runs and a user's own server do not meet. It is stopped with SIGTERM and waited
for (``stop_jack_server``), also when a test fails: JACK's shm registry has only 8 server slots
and a server that dies uncleanly keeps its slot.

Under ``CI=true`` a missing ``jackd`` fails the test; elsewhere it skips.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

JACK_SAMPLE_RATE = 48000
JACK_PERIOD_FRAMES = 256
JACK_START_TIMEOUT_S = 15.0
GIL_SWITCH_INTERVAL_S = 0.0002
"""sys.setswitchinterval while a JACK-Client probe runs Python in JACK's thread: its process
callback must get the GIL within a fraction of a period (the default, 5 ms, is an xrun)."""


@dataclass(frozen=True)
class JackServer:
    name: str
    sample_rate: int
    period_frames: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess that must reach this server."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name}

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _server_answers(name: str) -> bool:
    import jack

    try:
        client = jack.Client("deepjam-test-probe", no_start_server=True, servername=name)
    except jack.JackError:
        return False
    client.close()
    return True


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """SIGTERM (the clean way out: a jack server frees its shm slot, deepjam jam ends its
    notes), then wait ``timeout_s`` before a kill."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def stop_jack_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then wait (10 s) before a kill: a server that dies uncleanly keeps its shm slot."""
    stop_process(process)


def start_jack_server(
    name: str, log_path: Path, period_frames: int = JACK_PERIOD_FRAMES
) -> JackServer:
    """Start ``jackd -R -d dummy`` under ``name`` and wait until a client can connect."""
    jackd = shutil.which("jackd")
    if jackd is None:
        message = "jackd is not installed (apt-get install jackd2); integration tests need it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    log = log_path.open("wb")
    command = [jackd, "-n", name, "-R", "-d", "dummy", "-r", str(JACK_SAMPLE_RATE)]
    command += ["-p", str(period_frames)]
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"},
    )
    log.close()
    server = JackServer(name, JACK_SAMPLE_RATE, period_frames, log_path, process)
    deadline = time.monotonic() + JACK_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jackd exited with {process.returncode}:\n{server.log_tail()}")
        if _server_answers(name):
            return server
        time.sleep(0.05)
    stop_jack_server(process)
    pytest.fail(f"jackd {name!r} did not answer in {JACK_START_TIMEOUT_S} s:\n{server.log_tail()}")
