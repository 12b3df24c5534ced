"""Shared fixtures: a real JACK server (dummy driver), the tiny scale model, one Ray cluster.

The helpers behind them live in tests/support/ (the benchmarks import them from there too); the
fakes are in tests/fakes.py. Every test marked ``jack`` and every test that uses the Ray cluster
is also marked ``slow`` here, so ``python3 -m pytest -m "not slow"`` is the fast loop.

The JACK server gets a unique name (``deepjam-test-<pid>``) so parallel runs and a user's own
server do not meet; clients find it through ``JACK_DEFAULT_SERVER``, set for this process and
inherited by subprocesses. Under ``CI=true`` a missing ``jackd`` fails the test; elsewhere it
skips.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.jack_server import (
    GIL_SWITCH_INTERVAL_S,
    JackServer,
    start_jack_server,
    stop_jack_server,
)
from tests.support.scale_model import write_scale_model

RAY_TEST_CPUS = 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on JACK or on the Ray cluster is slow: it starts servers and subprocesses."""
    for item in items:
        uses_ray = "ray_local" in getattr(item, "fixturenames", ())
        if (item.get_closest_marker("jack") or uses_ray) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


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
        stop_jack_server(server.process)


@pytest.fixture(scope="session")
def scale_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the tiny scale model (see ``write_scale_model``), written once per session."""
    return write_scale_model(tmp_path_factory.mktemp("models") / "scale.onnx")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """The ``ray`` module with one local cluster of 2 CPUs for the whole session (it takes
    seconds to start), shut down at its end. Skips without the scale extra."""
    pytest.importorskip("ray", reason="the scale extra (ray) is installed by .ci/setup")
    from training.scale.cluster import ray_cluster

    with ray_cluster("tests", num_cpus=RAY_TEST_CPUS) as ray:
        yield ray
