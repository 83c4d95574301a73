"""The simulated Kubernetes cluster: test and demo infrastructure speaking the real REST API.

    start(scenario, *, workdir, port=0, tls=False) -> SimHandle   serve a scenario on loopback
    scenario_names() -> list[str]                                the scenarios that exist
"""

from __future__ import annotations

from .handle import SimHandle, start
from .scenario import names as scenario_names

__all__ = ["SimHandle", "start", "scenario_names"]
