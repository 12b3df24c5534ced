"""Joining or starting a Ray cluster: the one place deepjam calls ``ray.init``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def ray_cluster(
    what: str, address: str | None = None, num_cpus: int | None = None
) -> Iterator[Any]:
    """Yield the ``ray`` module with a cluster up: the one already initialised in this process,
    else the cluster at ``address`` (``auto``, ``ray://host:10001``, ...), else a fresh local
    one with ``num_cpus`` CPUs (default: all). A cluster started here is shut down on exit.
    ``what`` names the command for the one-line missing-extra message.

    A local cluster's workers run at this process's priority (Ray's default is niceness 15:
    on a machine doing anything else they would get a fraction of a core, and the driver,
    e.g. the Ape-X learner, would starve its actors); set ``RAY_worker_niceness`` to override."""
    from exports.extras import require_extra

    require_extra("scale", what)
    import ray

    if ray.is_initialized():
        yield ray
        return
    import os

    niceness = "RAY_worker_niceness"  # Ray's spelling: RAY_ + the raylet's config name
    niceness_set = address is None and niceness not in os.environ
    if niceness_set:
        os.environ[niceness] = "0"  # read by the raylet that ray.init starts
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
        )
    finally:
        if niceness_set:
            del os.environ[niceness]
    try:
        yield ray
    finally:
        ray.shutdown()
