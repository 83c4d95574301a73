"""The outage notebook on the `demo` scenario: resource-pressure findings, and no planted secret
anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .nbrun import execute

pytestmark = [pytest.mark.sim, pytest.mark.notebook]

# the canaries the demo scenario plants in every frontend pod's log
# (incidentlib/sim/scenarios/demo.yaml)
CANARIES = ("sim-canary-token-7f3a9c2e1b4d", "sim-canary-pass-5d8e2a")


def test_demo_findings_and_no_secret_in_the_evidence(sim_cluster: Any, tmp_path: Path) -> None:
    sim = sim_cluster("demo")
    frontend = sim.kubectl("logs", "deployment/frontend", "-n", "production", "--tail=100")
    assert CANARIES[0] in frontend.stdout  # the secret is really there to leak
    pods = sim.kubectl(
        "get", "pods", "-n", "production", "-l", "app=frontend", "-o", "name"
    ).stdout.split()
    for (
        pod
    ) in pods:  # an error line carrying both secrets: error lines are shown, so it must show masked
        sim.append_logs(
            "production",
            pod.split("/", 1)[1],
            "frontend",
            [f"ERROR login failed password={CANARIES[1]} Authorization: Bearer {CANARIES[0]}"],
        )
    out = tmp_path / "demo.ipynb"
    scraps, _ = execute(out, kubeconfig=str(sim.kubeconfig))
    raw = out.read_text()
    for canary in CANARIES:
        assert canary not in raw
    assert "ERROR login failed password=*** Authorization: Bearer ***" in raw  # shown, masked
    titles = {f["title"]: f for f in scraps["findings"]}
    assert titles["1 pod(s) were OOMKilled"]["severity"] == "SEV2"
    pending = titles["2 pod(s) Pending"]
    assert "scheduler: insufficient memory" in pending["detail"]
    assert "node node-2 MemoryPressure" in titles
    oom = scraps["pods"][scraps["pods"]["last_termination_reason"] == "OOMKilled"]
    assert set(oom["exit_code"]) == {137}
    assert scraps["severity"]["level"] == "SEV1"
