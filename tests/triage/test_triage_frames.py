"""triage's pure builders on small JSON fixtures: deployments, last rollouts, health figures,
severity, next notebooks."""

from __future__ import annotations

import pandas as pd

from incidentlib.kube.frames import deployments_frame, recent_rollouts_frame
from incidentlib.notebook.run import Run
from incidentlib.scenarios.triage import (
    health_figures,
    next_notebooks,
    record_findings,
    run_command,
    suggest_severity,
    triage_figures,
)
from incidentlib.service.probe import ProbeResult


def rs(
    name: str,
    rev: int,
    image: str,
    created: str,
    *,
    owner: str = "backend",
    replicas: int = 0,
    ready: int = 0,
) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "production",
            "creationTimestamp": created,
            "annotations": {
                "deployment.kubernetes.io/revision": str(rev),
                "kubernetes.io/change-cause": f"deploy {image}",
            },
            "ownerReferences": [{"kind": "Deployment", "name": owner, "controller": True}],
        },
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "c", "image": image}]}},
        },
        "status": {"readyReplicas": ready},
    }


DEPLOYMENTS = [
    {
        "metadata": {
            "name": "backend",
            "namespace": "production",
            "annotations": {"deployment.kubernetes.io/revision": "3"},
        },
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "backend:2.4.0"}]}}},
        "status": {"replicas": 3, "updatedReplicas": 3},
    },
    {
        "metadata": {
            "name": "frontend",
            "namespace": "production",
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"image": "frontend:1.9.0"}]}},
        },
        "status": {"readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2},
    },
]


def test_deployments_frame() -> None:
    df = deployments_frame(DEPLOYMENTS)
    assert df.to_dict("records") == [
        {
            "namespace": "production",
            "name": "backend",
            "replicas": 3,
            "ready": 0,
            "available": 0,
            "updated": 3,
            "revision": 3,
            "images": "backend:2.4.0",
        },
        {
            "namespace": "production",
            "name": "frontend",
            "replicas": 2,
            "ready": 2,
            "available": 2,
            "updated": 2,
            "revision": 1,
            "images": "frontend:1.9.0",
        },
    ]


def test_recent_rollouts_newest_first_with_the_current_revision_marked() -> None:
    items = [
        rs("backend-a", 1, "backend:2.2.0", "2026-11-17T09:00:00Z"),
        rs("backend-c", 3, "backend:2.4.0", "2026-11-27T09:02:00Z", replicas=3),
        rs("backend-b", 2, "backend:2.3.1", "2026-11-24T09:00:00Z"),
        rs(
            "frontend-a",
            1,
            "frontend:1.9.0",
            "2026-11-21T09:00:00Z",
            owner="frontend",
            replicas=2,
            ready=2,
        ),
        {"metadata": {"name": "orphan", "namespace": "production"}},
    ]
    df = recent_rollouts_frame(items, deployments=DEPLOYMENTS, limit=3)
    assert list(df["deployment"] + ":" + df["revision"].astype(str)) == [
        "backend:3",
        "backend:2",
        "frontend:1",
    ]
    assert list(df["current"]) == [True, False, True]
    assert df["created"].iloc[0] == pd.Timestamp("2026-11-27T09:02:00Z")
    assert df["change_cause"].iloc[0] == "deploy backend:2.4.0"


def probe_result(status: int | None, total: float, error: str | None = None) -> ProbeResult:
    return ProbeResult(status, 0.1, 0.2, 0.0, total - 1, total, error)


def test_health_figures_majority_rule_and_error_rate() -> None:
    ok = [probe_result(200, 10.0)] * 9 + [probe_result(500, 12.0)]
    f = health_figures(ok)
    assert (
        f["health_ok"] is True
        and f["error_rate"] == 0.1
        and f["probe_failures"] == 1
        and f["health_error"] == "HTTP 500"
    )
    down = [probe_result(None, 3000.0, "connection refused")] * 3 + [probe_result(200, 5.0)]
    f = health_figures(down)
    assert (
        f["health_ok"] is False
        and f["error_rate"] == 0.75
        and f["health_error"] == "connection refused"
    )
    assert health_figures([]) == {}


PODS = pd.DataFrame(
    [
        {
            "namespace": "production",
            "name": f"backend-x-{i}",
            "owner": "backend",
            "status": "CrashLoopBackOff",
            "ready": "0/1",
            "restarts": 7,
            "exit_code": 1,
            "last_termination_reason": "Error",
        }
        for i in range(3)
    ]
    + [
        {
            "namespace": "production",
            "name": "frontend-x-0",
            "owner": "frontend",
            "status": "Running",
            "ready": "1/1",
            "restarts": 0,
            "exit_code": None,
            "last_termination_reason": None,
        },
        {
            "namespace": "batch",
            "name": "job-x",
            "owner": "nightly",
            "status": "OOMKilled",
            "ready": "0/1",
            "restarts": 2,
            "exit_code": 137,
            "last_termination_reason": "OOMKilled",
        },
    ]
)
UNHEALTHY = PODS[PODS["status"] != "Running"].reset_index(drop=True)


def test_figures_and_severity_for_a_crash_looping_backend() -> None:
    figures = triage_figures(
        namespace="production",
        deployment="backend",
        pods=PODS,
        unhealthy=UNHEALTHY,
        deployments=deployments_frame(DEPLOYMENTS),
        health={"health_ok": True, "error_rate": 0.08},
    )
    assert figures["pods_down"] == 3 and figures["pods_total"] == 3 and figures["ready_pods"] == 0
    assert figures["unhealthy_pods_all_namespaces"] == 4
    sev = suggest_severity(figures, namespace="production", deployment="backend")
    assert sev.level == "SEV1"
    assert sev.reason == (
        "deployment backend in production has 0/3 ready pods "
        "(rule: service down = complete outage, SEV1)"
    )


def test_severity_from_error_rate_alone_names_the_figure() -> None:
    sev = suggest_severity(
        {"health_ok": True, "error_rate": 0.02}, namespace="production", deployment="backend"
    )
    assert (sev.level, sev.rule) == ("SEV3", "error-rate")
    assert sev.reason.startswith("health-check error rate 2.0% is between 1.0% and 5.0%")


def test_severity_for_an_unreachable_database_and_a_lock_chain() -> None:
    sev = suggest_severity(
        {"database_reachable": False, "database_error": "connection refused"},
        namespace="production",
        deployment="backend",
    )
    assert sev.level == "SEV1" and "the database is unreachable (connection refused)" in sev.reason
    sev = suggest_severity(
        {"database_reachable": True, "blocked_sessions": 2},
        namespace="production",
        deployment="backend",
    )
    assert sev.level == "SEV2" and sev.reason.startswith("2 database sessions wait on a lock")


def test_next_notebooks_name_each_scenario_with_its_reason() -> None:
    roots = pd.DataFrame(
        [
            {
                "root_blocking_pid": 4711,
                "blocked_sessions": 2,
                "longest_wait_s": 372.0,
                "state": "idle in transaction",
                "application": "billing",
            }
        ]
    )
    database = {
        "root_blockers": roots,
        "summary": {"usage": 0.5},
        "idle_in_transaction": pd.DataFrame(columns=["idle_s"]),
    }
    figures = {
        "desired_pods": 3,
        "ready_pods": 0,
        "health_ok": True,
        "error_rate": 0.08,
        "p95_ms": 900.0,
    }
    nodes = pd.DataFrame(
        [{"name": "node-2", "pressure": "MemoryPressure"}, {"name": "node-1", "pressure": ""}]
    )
    nxt = next_notebooks(
        namespace="production",
        deployment="backend",
        unhealthy=UNHEALTHY,
        figures=figures,
        database=database,
        nodes=nodes,
        latency_slo_ms=500,
    ).set_index("notebook")["reason"]
    assert list(nxt.index) == ["outage", "database", "performance"]
    assert nxt["outage"] == (
        "deployment backend has 0/3 ready pods; "
        "3 pods of backend are CrashLoopBackOff (21 restarts, exit code 1)"
    )
    assert nxt["database"] == (
        "lock chain: pid 4711 (idle in transaction, app billing) blocks 2 sessions, "
        "the longest for 372 s"
    )
    assert nxt["performance"] == (
        "health-check error rate 8.0% (the runbook's SEV3 threshold is 1%); "
        "p95 latency 900 ms is above 500 ms; 1 pod was OOMKilled (job-x); "
        "node node-2 reports MemoryPressure"
    )


def test_nothing_wrong_suggests_nothing() -> None:
    nxt = next_notebooks(
        namespace="production",
        deployment="backend",
        unhealthy=UNHEALTHY.iloc[0:0],
        figures={"health_ok": True, "error_rate": 0.0, "p95_ms": 20.0},
    )
    assert nxt.empty and list(nxt.columns) == [
        "notebook",
        "reason",
        "namespace",
        "deployment",
        "alerts",
    ]


def test_run_command() -> None:
    assert run_command(
        "outage", namespace="production", deployment="backend", incident_id="INC-1"
    ) == ("runbook run outage -p namespace production -p deployment backend --incident INC-1")


def test_a_refused_login_is_no_sev1_no_next_notebook_and_one_finding_to_fix_it() -> None:
    error = (
        "PostgreSQL at host=db dbname=app user=sre refused the runbook's login: password "
        'authentication failed for user "sre"'
    )
    figures = triage_figures(
        namespace="production", deployment="backend", database_error=error, database_refused=True
    )
    assert figures == {"database_login_refused": True, "database_error": error}
    sev = suggest_severity(figures, namespace="production", deployment="backend")
    assert (sev.level, sev.rule) == ("SEV4", "no-impact")
    nxt = next_notebooks(namespace="production", deployment="backend", figures=figures)
    assert nxt.empty
    run = Run("triage", quiet=True)
    run.figures.update(figures)
    record_findings(run, nxt, severity=sev, namespace="production", deployment="backend")
    assert run.findings == [
        {
            "severity": None,
            "title": "the runbook could not log in to the database",
            "detail": error + " (the server answered: its health was not measured)",
            "next_step": "fix the runbook's login: the password (PGPASSWORD, ~/.pgpass or the "
            "service file), the user and dbname in dsn, a pg_hba.conf entry for this host; then "
            "run triage again",
        }
    ]
    # unreachable stays SEV1 with the database notebook next
    down = triage_figures(
        namespace="production", deployment="backend", database_error="connection refused"
    )
    assert down == {"database_reachable": False, "database_error": "connection refused"}
    assert suggest_severity(down, namespace="production", deployment="backend").level == "SEV1"
    assert next_notebooks(namespace="production", deployment="backend", figures=down)[
        "notebook"
    ].tolist() == ["database"]
