"""Pod states staged through the status subresource of the simulated cluster: our STATUS / READY /
RESTARTS against what the real kubectl prints for the same pods, and through the cluster fetch and
frame builder."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from incidentlib.errors import KubeAPIError
from incidentlib.kube import client as kube
from incidentlib.kube import frames as cl
from incidentlib.kube import reads
from incidentlib.sim.testing import running_sim

from .podstates import cases, pod_object

pytestmark = pytest.mark.sim

# The simulated API server prints pods with the same printPod port a real API server runs (in Go),
# so every staged state must read the same through the real kubectl as through our own frame
# builder. A state listed here would be compared only against printPod's expected output.
SIM_PRINTER_GAPS: set[str] = set()
NAMESPACE = "states"


def _stage(c: Any, case: dict[str, Any], now: datetime) -> None:
    obj = pod_object(case, namespace=NAMESPACE, now=now)
    status = obj.pop("status")
    meta = obj["metadata"]
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": meta["name"], "labels": meta["labels"]},
        "spec": obj["spec"],
    }
    if case.get("deleting"):  # a finalizer keeps the deleted pod, Terminating, as on a real cluster
        body["metadata"]["finalizers"] = ["example.com/hold"]
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    c.write_json("POST", path, body)
    for _ in range(10):  # the simulated kubelet may write first: re-read and retry on Conflict
        current = c.get_json(f"{path}/{meta['name']}")
        current["status"] = status
        try:
            c.write_json("PUT", f"{path}/{meta['name']}/status", current)
            if case.get("deleting"):
                c.write_json("DELETE", f"{path}/{meta['name']}", {})
            return
        except KubeAPIError as e:
            if e.status != 409:
                raise
    raise AssertionError(f"could not stage {meta['name']}")


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with running_sim("healthy", workdir=tmp_path_factory.mktemp("states")) as sim:
        c = kube.connect(kubeconfig=str(sim.kubeconfig))
        c.write_json(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        )
        now = datetime.now(UTC)
        staged_cases = cases(now)
        for case in staged_cases:
            _stage(c, case, now)
        out = sim.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide", "--no-headers")
        items = reads.fetch_pods(c, NAMESPACE)
        frame = cl.pods_frame(items)
        c.close()
        return {"cases": staged_cases, "kubectl": out, "frame": frame}


def _kubectl_rows(out: Any) -> dict[str, tuple[str, str, str]]:
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        m = re.match(r"(\S+)\s+(\d+/\d+)\s+(\S+)\s+(\d+(?: \([^)]*\))?)\s+", line)
        assert m, line
        rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return rows


def _restarts(text: str) -> tuple[int, bool]:
    """The count and whether a "(... ago)" part is there (its seconds may tick between the two
    reads)."""
    return int(text.split()[0]), "ago)" in text


def test_staged_states_match_kubectl(staged: dict[str, Any]) -> None:
    kubectl = _kubectl_rows(staged["kubectl"])
    frame = staged["frame"].set_index("name")
    assert len(staged["cases"]) >= 25 and set(kubectl) == {c["name"] for c in staged["cases"]}
    compared = 0
    for case in staged["cases"]:
        name = case["name"]
        ours = frame.loc[name]
        ready, status, restarts = case["expect"]
        assert (ours["ready"], ours["status"], int(ours["restarts"])) == (
            ready,
            status,
            _restarts(restarts)[0],
        ), name
        if name in SIM_PRINTER_GAPS:
            continue
        k_ready, k_status, k_restarts = kubectl[name]
        assert (k_ready, k_status) == (ours["ready"], ours["status"]), name
        assert _restarts(k_restarts) == (int(ours["restarts"]), _restarts(restarts)[1]), name
        compared += 1
    assert compared >= 29


def test_unhealthy_from_staged_states(staged: dict[str, Any]) -> None:
    bad = set(cl.unhealthy_pods(staged["frame"])["name"])
    assert {
        "st-crashloop",
        "st-imagepull",
        "st-oomkilled",
        "st-pending",
        "st-evicted-bare",
        "st-init-crash",
        "st-running-two",
        "st-nodelost",
    } <= bad
    assert not bad & {"st-running", "st-completed", "st-oom-running", "st-sidecar"}
