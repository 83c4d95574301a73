"""The outage notebook executed with papermill against the simulated cluster (issue 5, "What must
hold")."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from incidentlib.kube import client as kube
from incidentlib.sim.testing import running_sim

from .nbrun import chart_helpers_after, execute, health_server, text_of

pytestmark = [pytest.mark.sim, pytest.mark.notebook]


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """bad-rollout, apply=False, with a failing health endpoint: scraps, notebook text and the
    request log."""
    tmp = tmp_path_factory.mktemp("outage-shown")
    repo = tmp / "repo"
    env = {
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
    }
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "backend 2.4.0: pool size from env",
        ],
        check=True,
        env=env,
    )
    with running_sim("bad-rollout", workdir=tmp / "sim") as sim, health_server(503) as url:
        sim.clear_requests()
        scraps, nb = execute(
            tmp / "out.ipynb", kubeconfig=str(sim.kubeconfig), health_url=url, repo_path=str(repo)
        )
        return {
            "scraps": scraps,
            "text": text_of(nb),
            "requests": sim.requests(),
            "nb": nb,
            "helpers_left": chart_helpers_after(10),
        }


def test_every_backend_pod_crash_loops_with_exit_code_and_restarts(shown: dict[str, Any]) -> None:
    pods: pd.DataFrame = shown["scraps"]["pods"]
    for col in (
        "namespace",
        "name",
        "ready",
        "status",
        "restarts",
        "age",
        "ip",
        "node",
        "owner",
        "last_termination_reason",
        "exit_code",
    ):
        assert col in pods.columns
    backend = pods[pods["owner"] == "backend"]
    assert len(backend) == 3
    assert set(backend["status"]) == {"CrashLoopBackOff"}
    assert set(backend["exit_code"]) == {1}
    assert set(backend["last_termination_reason"]) == {"Error"}
    assert (backend["restarts"] >= 1).all() and set(backend["ready"]) == {"0/1"}
    assert set(pods[pods["owner"] == "frontend"]["status"]) == {"Running"}
    unhealthy = shown["scraps"]["unhealthy_pods"]
    assert sorted(unhealthy["name"]) == sorted(backend["name"])


def test_finding_names_revision_3_and_undo_to_2(shown: dict[str, Any]) -> None:
    findings = shown["scraps"]["findings"]
    blame = [f for f in findings if f.get("revision") == "3"]
    assert len(blame) == 1
    assert "revision 3 (image registry.example.com/backend:2.4.0)" in blame[0]["detail"]
    assert (
        "every pod of it has crash-looped" in blame[0]["detail"]
        and "exit code 1" in blame[0]["detail"]
    )
    assert (
        "kubectl rollout undo deployment/backend -n production --to-revision=2"
        in blame[0]["next_step"]
    )
    assert shown["scraps"]["severity"]["level"] == "SEV1"
    assert (
        "mitigation undo: roll deployment/backend back from revision 3 to revision 2"
        in shown["text"]
        and "+        image: registry.example.com/backend:2.3.1" in shown["text"]
    )


def test_health_rollouts_nodes_events_top_scraps(shown: dict[str, Any]) -> None:
    s = shown["scraps"]
    assert s["health"].iloc[0]["status"] == 503 and not s["health"].iloc[0]["ok"]
    assert "content-type:" in s["health"].iloc[0]["headers"]
    assert any(f["title"] == "health check failing" for f in s["findings"])
    rollouts = s["rollouts"]
    assert list(rollouts["revision"]) == [1, 2, 3]
    assert list(rollouts["images"]) == [
        f"registry.example.com/backend:{v}" for v in ("2.2.0", "2.3.1", "2.4.0")
    ]
    assert rollouts.iloc[1]["change_cause"] == "deploy backend 2.3.1 (ticket OPS-1412)"
    assert {"revision", "images", "change_cause", "created"} <= set(rollouts.columns)
    assert sorted(s["nodes"]["name"]) == ["node-1", "node-2", "node-3"]
    events = s["events"]
    assert events.iloc[0]["type"] == "Warning" and events.iloc[0]["reason"] == "BackOff"
    assert events["count"].iloc[0] >= 1
    assert len(s["top_pods"]) == 5 and (s["top_pods"]["memory"] > 0).all()
    assert s["actions"][0]["status"] == "shown" and s["actions"][0]["applied"] is False
    assert {r["status"] for r in s["sources"]} == {"ok"}
    assert s["started_at"] <= s["finished_at"]
    assert "FATAL backend exiting: ConfigError: DATABASE_POOL_SIZE must be set" in shown["text"]
    assert "▶ ERROR upstream backend: connection refused" in shown["text"]
    assert "backend 2.4.0: pool size from env" in shown["text"]  # git log of repo_path


def test_apply_false_leaves_no_write(shown: dict[str, Any]) -> None:
    methods = {r["method"] for r in shown["requests"]}
    assert methods == {"GET"}, methods
    assert any("/deployments/backend" in r["path"] for r in shown["requests"])


def test_executed_notebook_is_small_and_has_two_charts(shown: dict[str, Any]) -> None:
    pngs = [
        o
        for c in shown["nb"].cells
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(pngs) == 2


def test_the_chart_helper_is_gone_with_the_kernel(shown: dict[str, Any]) -> None:
    assert shown["helpers_left"] == []


def test_apply_true_rolls_back_and_pods_run(sim_cluster: Any, tmp_path: Path) -> None:
    sim = sim_cluster("bad-rollout")
    scraps, _ = execute(
        tmp_path / "apply.ipynb", kubeconfig=str(sim.kubeconfig), apply=True, rollout_timeout_s=30
    )
    action = scraps["actions"][0]
    assert (action["action"], action["applied"], action["status"]) == ("undo", True, "rolled out")
    cluster = kube.connect(kubeconfig=str(sim.kubeconfig))
    dep = cluster.get_json("/apis/apps/v1/namespaces/production/deployments/backend")
    assert (
        dep["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example.com/backend:2.3.1"
    )
    out = sim.kubectl("get", "pods", "-n", "production", "-l", "app=backend", "--no-headers")
    rows = [line.split() for line in out.stdout.splitlines()]
    assert (
        len(rows) == 3 and {r[2] for r in rows} == {"Running"} and {r[1] for r in rows} == {"1/1"}
    ), out.stdout
    writes = [r for r in sim.requests() if r["method"] != "GET"]
    assert [(w["method"], w["path"]) for w in writes] == [
        ("PATCH", "/apis/apps/v1/namespaces/production/deployments/backend")
    ]


def test_notifications_are_filled_from_the_findings(shown: dict[str, Any]) -> None:
    from incidentlib.notebook.comms import _clock

    rows = shown["scraps"]["notifications"]
    notes = rows.set_index("kind")["text"]
    rollouts = shown["scraps"]["rollouts"]
    started = _clock(
        pd.Timestamp(rollouts[rollouts["revision"] == 3]["created"].iloc[0]).to_pydatetime()
    )
    assert "Severity: SEV1" in notes["initial"]
    assert f"Started: {started}" in notes["initial"]  # the bad rollout, not the notebook's start
    lines = notes["initial"].splitlines()
    assert lines[0] == "🚨 INCIDENT: health check failing"
    assert re.fullmatch(
        r"Severity: SEV1 — GET http://127\.0\.0\.1:\d+/health answered HTTP 503 in \d+ ms \(rule: "
        r"health check failing = complete outage, SEV1\)",
        lines[1],
    )
    # the bad rollout is a root-cause finding: Identified, not Investigating
    assert lines[2:4] == [
        "Status: Identified",
        "Impact: 3 of 3 pods down, 1 of 1 health probes failed",
    ]
    assert "rollout undo" in notes["update"]
    assert not rows["posted"].any() and rows["post_result"].isna().all()  # never posted
    assert "── Status update" in shown["text"]
