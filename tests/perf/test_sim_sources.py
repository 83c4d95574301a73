"""Resource use, log scanning and mitigations against the simulated cluster (real REST API over a
socket)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incidentlib.errors import InvalidParameter, SourceUnavailable
from incidentlib.kube import actions, reads
from incidentlib.kube import client as kube
from incidentlib.kube import logs as logscan
from incidentlib.kube import metrics as resources
from incidentlib.notebook.run import Run

pytestmark = pytest.mark.sim


@pytest.fixture
def pressure(sim_cluster):
    sim = sim_cluster("resource-pressure")
    return sim, kube.connect(kubeconfig=str(sim.kubeconfig))


def test_resource_pressure_leak_oom_pressure_pending_and_disk(pressure) -> None:
    sim, cluster = pressure
    pods = reads.fetch_pods(cluster, "production")
    nodes = reads.fetch_nodes(cluster)
    samples = reads.sample_pods(cluster, "production", samples=3, interval_s=1.1)
    assert len(samples) == 3  # three distinct measurements (the sim's timestamps move)
    top = resources.pod_usage_frame(samples[-1][1], pods)
    series = resources.container_series(samples)
    leaks = resources.leak_suspects(series, resources.container_limits(pods))
    assert leaks["pod"].str.startswith("session-cache-").tolist() == [True]
    per_hour = leaks["growth_bytes_per_hour"].iloc[0]
    assert 120 * 2**20 <= per_hour <= 480 * 2**20  # declared 4Mi/min = 240 MiB/h
    assert leaks["limit_bytes"].iloc[0] == 2 * 2**30
    assert reads.metrics_resolution(samples[0][1]) == 15.0  # the sim's `window`

    kills = resources.oom_kills(pods)
    assert kills["pod"].str.startswith("analytics-").tolist() == [True]
    assert kills[["exit_code", "memory_limit_bytes"]].values.tolist() == [[137, 512 * 2**20]]
    press = resources.pressure_nodes(nodes)
    assert press[["node", "condition"]].values.tolist() == [["node-2", "MemoryPressure"]]
    assert press["reason"].iloc[0] == "KubeletHasInsufficientMemory"
    pending = resources.pending_pods(pods)
    assert len(pending) == 2 and pending["pod"].str.startswith("report-generator-").all()
    assert "Insufficient memory" in pending["message"].iloc[0]
    top_nodes = resources.node_usage_frame(reads.fetch_node_metrics(cluster), nodes)
    assert top_nodes.set_index("node").loc["node-2", "pressure"] == "MemoryPressure"
    assert top_nodes.set_index("node").loc["node-2", "memory_pct"] >= 90

    found = resources.findings(
        top_pods=top, leaks=leaks, ooms=kills, pressure=press, pending=pending
    )
    titles = [f["title"] for f in found]
    assert "node node-2 under MemoryPressure" in titles
    assert any(t.startswith("pod analytics-") and "OOMKilled" in t for t in titles)
    assert any(
        t.startswith("memory leak suspect: container session-cache of pod session-cache-")
        for t in titles
    )

    hosts = sorted({p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")})
    disk = resources.disk_frame(reads.fetch_disk(cluster, hosts), namespace="production")
    assert set(disk.loc[disk["kind"] == "node", "node"]) == set(hosts)
    assert (disk["used_bytes"] > 0).all() and disk["used_pct"].between(0, 100).all()


def test_missing_metrics_api_is_a_clear_source_error(sim_cluster) -> None:
    sim = sim_cluster("resource-pressure", metrics=False)
    cluster = kube.connect(kubeconfig=str(sim.kubeconfig))
    with pytest.raises(SourceUnavailable, match="metrics API"):
        reads.sample_pods(cluster, "production", samples=1)


def test_log_errors_per_pod_of_the_deployment(pressure) -> None:
    sim, cluster = pressure
    pod = next(
        p["metadata"]["name"]
        for p in reads.fetch_pods(cluster, "production")
        if p["metadata"]["name"].startswith("session-cache-")
    )
    sim.append_logs(
        "production",
        pod,
        "session-cache",
        [
            "ERROR lookup of key user:4711 failed after 120ms",
            "ERROR lookup of key user:93 failed after 7ms",
        ],
    )
    logs = reads.fetch_logs(cluster, "production", "session-cache", since=timedelta(minutes=10))
    counts = logscan.error_counts(logs)
    assert counts[["pod", "container"]].values.tolist() == [[pod, "session-cache"]]
    assert counts["minutes"].iloc[0] == 10.0
    assert (
        counts["error_lines"].iloc[0] == 2
    )  # the generated share is WARN lines: grep -c ERROR counts 2
    assert counts["lines"].iloc[0] >= 500  # 1 line a second over 10 minutes
    messages = logscan.top_messages(logs)
    assert messages[["message", "count"]].values.tolist() == [
        ["ERROR lookup of key user:<n> failed after <n>ms", 2]
    ]


def test_mitigations_show_first_and_apply_only_when_asked(sim_cluster) -> None:
    sim = sim_cluster("healthy")
    cluster = kube.connect(kubeconfig=str(sim.kubeconfig))
    dep = reads.fetch_deployment(cluster, "production", "backend")
    cm = reads.fetch_configmap(cluster, "production", "app-config")
    scale_out = actions.plan_scale_out(dep, 5)
    assert scale_out.command == "kubectl scale deployment/backend -n production --replicas=5"
    assert "-  replicas: 3" in scale_out.change and "+  replicas: 5" in scale_out.change
    cache = actions.plan_configmap_key(cm, "CACHE_ENABLED", "true")
    assert (
        cache.summary == "set CACHE_ENABLED=true in configmap/app-config (now CACHE_ENABLED=false)"
    )
    assert cache.requests[0].body == {"data": {"CACHE_ENABLED": "true"}}
    assert (
        "-  CACHE_ENABLED: 'false'" in cache.change and "+  CACHE_ENABLED: 'true'" in cache.change
    )
    down = actions.plan_scale_down(dep)
    assert down.summary == "scale deployment/backend from 3 to 1 replicas"
    run = Run("performance", quiet=True)
    for plan in (scale_out, cache, down):
        assert (
            actions.execute(cluster, plan, apply=False, record=run.record_action)["status"]
            == "shown"
        )
    assert (
        reads.fetch_deployment(cluster, "production", "backend")["spec"]["replicas"] == 3
    )  # nothing changed
    served = sim.requests()
    assert any(
        r["method"] == "GET" and r["path"].endswith("/configmaps/app-config") for r in served
    )
    assert not [r for r in served if r["method"] != "GET"]

    out = actions.execute(
        cluster, scale_out, apply=True, record=run.record_action, timeout_s=30, poll_s=0.2
    )
    assert (out["applied"], out["status"]) == (True, "rolled out")
    assert (
        actions.execute(cluster, cache, apply=True, record=run.record_action)["status"] == "applied"
    )
    assert reads.fetch_deployment(cluster, "production", "backend")["spec"]["replicas"] == 5
    cm = reads.fetch_configmap(cluster, "production", "app-config")
    assert cm["data"]["CACHE_ENABLED"] == "true" and cm["data"]["LOG_LEVEL"] == "info"
    assert (
        actions.plan_configmap_key(cm, "CACHE_ENABLED", "true").skipped
        == "CACHE_ENABLED is already true"
    )
    assert [a["status"] for a in run.actions] == [
        "shown",
        "shown",
        "shown",
        "rolled out",
        "applied",
    ]
    with pytest.raises(InvalidParameter, match="unknown mitigation\\(s\\) reboot"):
        actions.performance_mitigations("scale_out, reboot")
    with pytest.raises(InvalidParameter, match="fewer than the current 5"):
        actions.plan_scale_out(reads.fetch_deployment(cluster, "production", "backend"), 4)
    restart = actions.plan_restart(
        reads.fetch_deployment(cluster, "production", "backend"),
        now=datetime(2026, 12, 2, 8, 0, 5, 999_000, tzinfo=UTC),
    )
    actions.execute(cluster, restart, apply=True, timeout_s=30, poll_s=0.2)
    dep = reads.fetch_deployment(cluster, "production", "backend")
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/restartedAt"] == "2026-12-02T08:00:05Z"
