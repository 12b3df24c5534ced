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
    ``what`` names the command for the one-line missing-extra message."""
    from exports.extras import require_extra

    require_extra("scale", what)
    import ray

    if ray.is_initialized():
        yield ray
        return
    ray.init(
        address=address,
        num_cpus=num_cpus if address is None else None,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
