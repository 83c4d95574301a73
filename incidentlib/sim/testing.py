"""Test helpers: `running_sim` (a context manager) and the `sim_cluster` pytest fixture, a factory
that starts simulated clusters and stops them all at teardown.

Registered as a pytest plugin by tests/conftest.py (`pytest_plugins = ["incidentlib.sim.testing"]`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .handle import SimHandle, start

__all__ = ["SimHandle", "running_sim", "sim_cluster"]


@contextlib.contextmanager
def running_sim(
    scenario: str | dict = "healthy", *, workdir: Path, tls: bool = False, **options: object
) -> Iterator[SimHandle]:
    """A cluster serving `scenario` for the duration of the with-block."""
    handle = start(scenario, workdir=workdir, tls=tls, **options)  # type: ignore[arg-type]
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def sim_cluster(tmp_path: Path) -> Iterator[Callable[..., SimHandle]]:
    """Factory: `sim_cluster("bad-rollout", tls=False)` starts a cluster; all are stopped at
    teardown.

    Extra keywords go to `incidentlib.sim.start` (e.g. `forbidden_namespaces={"secret-ns"}`,
    `metrics=False`).
    """
    handles: list[SimHandle] = []

    def make(
        scenario: str | dict = "healthy", *, tls: bool = False, **options: object
    ) -> SimHandle:
        handle = start(scenario, workdir=tmp_path / f"sim-{len(handles)}", tls=tls, **options)  # type: ignore[arg-type]
        handles.append(handle)
        return handle

    yield make
    for h in handles:
        h.stop()
