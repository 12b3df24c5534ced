"""Shared fixtures: a real JACK server (dummy driver) for tests marked ``jack``.

The server runs in realtime mode (``-R``): on a non-realtime server at small periods a
python-rtmidi input can stop receiving for good (shared/MEASUREMENTS.md). It gets a unique name
(``deepjam-test-<pid>``) so parallel runs and a user's own server do not meet; clients find it
through ``JACK_DEFAULT_SERVER``, set for this process and inherited by subprocesses. It is
stopped with SIGTERM and waited for, also when a test fails: JACK's shm registry has only 8
server slots and a server that dies uncleanly keeps its slot.

Under ``CI=true`` a missing ``jackd`` fails the test; elsewhere it skips.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scale_model import write_scale_model

JACK_SAMPLE_RATE = 48000
JACK_PERIOD_FRAMES = 256
JACK_START_TIMEOUT_S = 15.0
GIL_SWITCH_INTERVAL_S = 0.0002


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


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


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
    _stop(process)
    pytest.fail(f"jackd {name!r} did not answer in {JACK_START_TIMEOUT_S} s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JackServer]:
    """A realtime JACK server with the dummy driver (48 kHz, 256 frames) for the whole session;
    JACK_DEFAULT_SERVER points at it while it runs."""
    name = f"deepjam-test-{os.getpid()}"
    log_path = tmp_path_factory.mktemp("jack") / "jackd.log"
    server = start_jack_server(name, log_path)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    # JACK-Client process callbacks of the tests' probes run Python in JACK's thread: they must
    # get the GIL within a fraction of a period (default switch interval: 5 ms, an xrun).
    switch_interval_s = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        yield server
    finally:
        sys.setswitchinterval(switch_interval_s)
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
        _stop(server.process)


@pytest.fixture(scope="session")
def scale_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the tiny scale model (see ``write_scale_model``), written once per session."""
    return write_scale_model(tmp_path_factory.mktemp("models") / "scale.onnx")
