"""`kube.actions.execute` against the simulated cluster: every outcome it can report, each staged
so that only the right one is true: shown, skipped, a refused write (failed), rolled out, a rollout
that never finishes (timeout), a change whose read-back fails, a change without a rollout. The
cluster is real (the sim's REST API); about 0.1 s to start, so `make mutate` runs these too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from incidentlib.kube import actions as ka
from incidentlib.kube import client as kube
from incidentlib.kube import reads
from incidentlib.plan import ApiRequest, Plan

pytestmark = pytest.mark.sim

FRONTEND = "/apis/apps/v1/namespaces/production/deployments/frontend"


@pytest.fixture
def cluster(sim_cluster: Any) -> Iterator[tuple[Any, kube.Cluster]]:
    sim = sim_cluster("bad-rollout")
    c = kube.connect(kubeconfig=str(sim.kubeconfig))
    yield sim, c
    c.close()


def _writes(sim: Any) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in sim.requests() if r["method"] != "GET"]


def test_shown_and_skipped_send_nothing(cluster) -> None:
    sim, c = cluster
    dep = reads.fetch_deployment(c, "production", "frontend")
    sim.clear_requests()
    recorded: list[dict] = []
    shown = ka.execute(c, ka.plan_scale(dep, 4), record=recorded.append)
    assert (shown["status"], shown["applied"], shown["detail"]) == (
        "shown",
        False,
        "not applied: run with apply=True to make this change",
    )
    skipped = ka.execute(c, ka.plan_scale(dep, 2), apply=True, record=recorded.append)
    assert (skipped["status"], skipped["applied"], skipped["detail"]) == (
        "skipped",
        False,
        "deployment/frontend already has 2 replicas",
    )
    empty = Plan("scale", "deployment/frontend in production", "nothing", "true")
    assert ka.execute(c, empty, apply=True)["status"] == "shown"  # no request: nothing to send
    assert recorded == [shown, skipped] and _writes(sim) == []


def test_a_refused_write_is_failed_with_the_servers_message(sim_cluster: Any) -> None:
    sim = sim_cluster("bad-rollout", forbidden_namespaces={"production"})
    c = kube.connect(kubeconfig=str(sim.kubeconfig))
    dep = {"metadata": {"namespace": "production", "name": "frontend"}, "spec": {"replicas": 2}}
    recorded: list[dict] = []
    out = ka.execute(c, ka.plan_scale(dep, 4), apply=True, record=recorded.append)
    c.close()
    assert (out["status"], out["applied"]) == ("failed", False)
    assert out["detail"].startswith(
        "not permitted: PATCH /apis/apps/v1/namespaces/production/deployments/frontend/scale "
        "answered 403 Forbidden: deployments.apps "
    )
    assert out["detail"].endswith(
        "; this identity may not change that; mitigations need the incident-runbook-mitigate "
        "role in this namespace (deploy/overlays/mitigations)"
    )
    assert recorded == [out]


def test_an_applied_scale_rolls_out_and_says_so(cluster) -> None:
    sim, c = cluster
    dep = reads.fetch_deployment(c, "production", "frontend")
    sim.clear_requests()
    out = ka.execute(c, ka.plan_scale(dep, 4), apply=True, timeout_s=30, poll_s=0.1)
    assert (out["status"], out["applied"], out["detail"]) == (
        "rolled out",
        True,
        'deployment "frontend" successfully rolled out',
    )
    assert out["images"] == "registry.example.com/frontend:1.9.0" and out["revision"] == 1
    assert _writes(sim) == [("PATCH", FRONTEND + "/scale")]
    assert c.get_json(FRONTEND)["spec"]["replicas"] == 4


def test_a_rollout_that_never_finishes_is_a_timeout_not_rolled_out(cluster) -> None:
    sim, c = cluster
    # revision 3 of backend crash-loops: a restart replaces pods that never become available
    dep = reads.fetch_deployment(c, "production", "backend")
    sim.clear_requests()
    out = ka.execute(c, ka.plan_restart(dep), apply=True, timeout_s=1.2, poll_s=0.1)
    assert (out["status"], out["applied"]) == ("timeout", True)
    assert out["detail"].startswith(
        'timed out after 1.2 s: Waiting for deployment "backend" rollout to finish: '
    )
    # `at` is when the change was sent, before the wait (both to the second)
    waited = datetime.fromisoformat(out["finished_at"]) - datetime.fromisoformat(out["at"])
    assert waited >= timedelta(seconds=1)
    [patch] = [r for r in sim.requests() if r["method"] == "PATCH"]
    assert "fieldManager=kubectl-rollout" in str(patch["query"])  # as kubectl rollout restart
    assert out["images"] == "registry.example.com/backend:2.4.0"


def test_a_change_whose_read_back_fails_is_applied_rollout_unknown(cluster) -> None:
    _, c = cluster
    plan = Plan(
        "scale",
        "deployment/frontend in production",
        "scale deployment/frontend from 2 to 3 replicas",
        "kubectl scale ...",
        requests=[ApiRequest("PATCH", FRONTEND + "/scale", {"spec": {"replicas": 3}}, ka.MERGE)],
        rollout="/apis/apps/v1/namespaces/production/deployments/gone",
    )
    out = ka.execute(c, plan, apply=True, timeout_s=5, poll_s=0.1)
    assert (out["status"], out["applied"]) == ("applied, rollout unknown", True)
    assert out["detail"].startswith("the change was made; reading it back failed: ")
    assert "gone" in out["detail"] and "not found" in out["detail"]
    assert c.get_json(FRONTEND)["spec"]["replicas"] == 3  # the change itself was made


def test_a_change_without_a_rollout_is_applied(cluster) -> None:
    sim, c = cluster
    cm = c.get_json("/api/v1/namespaces/production/configmaps/app-config")
    key = next(iter(cm.get("data") or {"CACHE_ENABLED": ""}))
    plan = ka.plan_configmap_key(cm, key, "changed-by-test")
    sim.clear_requests()
    out = ka.execute(c, plan, apply=True)
    assert (out["status"], out["applied"], out["detail"]) == (
        "applied",
        True,
        f"{plan.summary}: done",
    )
    assert _writes(sim) == [("PATCH", "/api/v1/namespaces/production/configmaps/app-config")]
    assert c.get_json("/api/v1/namespaces/production/configmaps/app-config")["data"][key] == (
        "changed-by-test"
    )
