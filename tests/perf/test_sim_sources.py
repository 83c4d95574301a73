"""Resource use, log scanning and mitigations against the simulated cluster (real REST API over a socket)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidentlib import cluster as k8s
from incidentlib import kube, logscan, perf_actions, resources
from incidentlib.errors import InvalidParameter, SourceUnavailable

pytestmark = pytest.mark.sim


@pytest.fixture
def pressure(sim_cluster):
    sim = sim_cluster("resource-pressure")
    return sim, kube.connect(kubeconfig=str(sim.kubeconfig))


def test_resource_pressure_leak_oom_pressure_pending_and_disk(pressure) -> None:
    sim, cluster = pressure
    pods = k8s.fetch_pods(cluster, "production")
    nodes = k8s.fetch_nodes(cluster)
    samples = resources.sample_pods(cluster, "production", samples=3, interval_s=1.1)
    trend = resources.memory_trend(samples)
    top = resources.pod_usage_frame(samples[-1][1], pods)
    leaks = resources.leak_suspects(trend, top)
    assert leaks["pod"].str.startswith("session-cache-").tolist() == [True]
    assert 2 * 2**20 <= leaks["growth_bytes_per_min"].iloc[0] <= 8 * 2**20  # declared 4Mi/min
    assert leaks["memory_limit_bytes"].iloc[0] == 2 * 2**30

    kills = resources.oom_kills(pods)
    assert kills["pod"].str.startswith("analytics-").tolist() == [True]
    assert kills[["exit_code", "memory_limit_bytes"]].values.tolist() == [[137, 512 * 2**20]]
    press = resources.pressure_nodes(nodes)
    assert press[["node", "condition"]].values.tolist() == [["node-2", "MemoryPressure"]]
    assert press["reason"].iloc[0] == "KubeletHasInsufficientMemory"
    pending = resources.pending_pods(pods)
    assert len(pending) == 2 and pending["pod"].str.startswith("report-generator-").all()
    assert "Insufficient memory" in pending["message"].iloc[0]
    top_nodes = resources.node_usage_frame(k8s.fetch_node_metrics(cluster), nodes)
    assert top_nodes.set_index("node").loc["node-2", "pressure"] == "MemoryPressure"
    assert top_nodes.set_index("node").loc["node-2", "memory_pct"] >= 90

    found = resources.findings(top_pods=top, leaks=leaks, ooms=kills, pressure=press, pending=pending)
    titles = [f["title"] for f in found]
    assert "node node-2 under MemoryPressure" in titles
    assert any(t.startswith("pod analytics-") and "OOMKilled" in t for t in titles)
    assert any(t.startswith("memory leak suspect: pod session-cache-") for t in titles)

    hosts = sorted({p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")})
    disk = resources.disk_frame(resources.fetch_disk(cluster, hosts), namespace="production")
    assert set(disk.loc[disk["kind"] == "node", "node"]) == set(hosts)
    assert (disk["used_bytes"] > 0).all() and disk["used_pct"].between(0, 100).all()


def test_missing_metrics_api_is_a_clear_source_error(sim_cluster) -> None:
    sim = sim_cluster("resource-pressure", metrics=False)
    cluster = kube.connect(kubeconfig=str(sim.kubeconfig))
    with pytest.raises(SourceUnavailable, match="metrics API"):
        resources.sample_pods(cluster, "production", samples=1)


def test_log_errors_per_pod_of_the_deployment(pressure) -> None:
    sim, cluster = pressure
    pod = next(p["metadata"]["name"] for p in k8s.fetch_pods(cluster, "production")
               if p["metadata"]["name"].startswith("session-cache-"))
    sim.append_logs("production", pod, "session-cache", [
        "ERROR lookup of key user:4711 failed after 120ms", "ERROR lookup of key user:93 failed after 7ms"])
    logs = logscan.fetch_logs(cluster, "production", "session-cache", since=timedelta(minutes=10))
    counts = logscan.error_counts(logs)
    assert counts[["pod", "container"]].values.tolist() == [[pod, "session-cache"]]
    assert counts["minutes"].iloc[0] == 10.0
    assert counts["error_lines"].iloc[0] == 2  # the generated share is WARN lines: grep -c ERROR counts 2
    assert counts["lines"].iloc[0] >= 500  # 1 line a second over 10 minutes
    messages = logscan.top_messages(logs)
    assert messages[["message", "count"]].values.tolist() == [["ERROR lookup of key user:<n> failed after <n>ms", 2]]


def test_mitigations_show_first_and_apply_only_when_asked(sim_cluster) -> None:
    sim = sim_cluster("healthy")
    cluster = kube.connect(kubeconfig=str(sim.kubeconfig))
    recs = perf_actions.mitigate(cluster, "production", "backend", replicas=5, configmap="app-config",
                                 key="CACHE_ENABLED", value="true", apply=False, selected={"scale_out", "cache"})
    by = {r["mitigation"]: r for r in recs}
    assert by["scale_out"]["command"] == "kubectl -n production scale deployment/backend --replicas=5"
    assert by["scale_out"]["before"] == "replicas=3" and by["scale_out"]["outcome"] == "shown only (apply=False)"
    assert by["cache"]["before"] == "CACHE_ENABLED=false" and by["cache"]["patch"] == '{"data": {"CACHE_ENABLED": "true"}}'
    assert by["scale_down"]["after"] == "replicas=1"
    dep = cluster.get_json("/apis/apps/v1/namespaces/production/deployments/backend")
    assert dep["spec"]["replicas"] == 3  # nothing changed
    served = sim.requests()
    assert any(r["method"] == "GET" and r["path"].endswith("/configmaps/app-config") for r in served)
    assert not [r for r in served if r["method"] != "GET"]

    recs = perf_actions.mitigate(cluster, "production", "backend", replicas=5, configmap="app-config",
                                 key="CACHE_ENABLED", value="true", apply=True, selected={"scale_out", "cache"})
    by = {r["mitigation"]: r for r in recs}
    assert by["scale_out"]["applied"] and by["cache"]["applied"]
    assert not by["restart"]["applied"] and by["restart"]["outcome"] == "shown only (not in `mitigations`)"
    assert cluster.get_json("/apis/apps/v1/namespaces/production/deployments/backend")["spec"]["replicas"] == 5
    cm = cluster.get_json("/api/v1/namespaces/production/configmaps/app-config")
    assert cm["data"]["CACHE_ENABLED"] == "true" and cm["data"]["LOG_LEVEL"] == "info"
    with pytest.raises(InvalidParameter, match="unknown mitigation\\(s\\) reboot"):
        perf_actions.chosen("scale_out, reboot")
    rec = perf_actions.rollout_restart(cluster, "production", "backend", apply=True)
    dep = cluster.get_json("/apis/apps/v1/namespaces/production/deployments/backend")
    assert dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == rec["after"].split("=", 1)[1]


def test_pods_whose_logs_cannot_be_read_are_rows_with_the_reason(pressure) -> None:
    sim, cluster = pressure
    logs = logscan.fetch_logs(cluster, "production", "report-generator", since=timedelta(minutes=5))
    counts = logscan.error_counts(logs)
    assert len(counts) == 2 and counts["pod"].str.startswith("report-generator-").all()
    assert counts["read_error"].str.contains("answered 400").all(), counts["read_error"].tolist()
    assert counts["errors_per_min"].isna().all() and (counts["lines"] == 0).all()
