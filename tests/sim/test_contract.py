"""The contract other modules rely on: the fixture, the handle, the official client, the
scenarios."""

from __future__ import annotations

import json
import urllib.request

import pytest
from kubernetes import client, config

from incidentlib.errors import InvalidParameter
from incidentlib.sim import scenario_names, start

pytestmark = pytest.mark.sim


def api_client(handle) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(
        config_file=str(handle.kubeconfig), context=handle.context, client_configuration=cfg
    )
    return client.ApiClient(cfg)


def get_text(handle, path: str) -> str:
    request = urllib.request.Request(
        handle.url + path, headers={"Authorization": f"Bearer {handle.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.read().decode()


LISTS = [
    ("/api/v1/namespaces", "V1NamespaceList"),
    ("/api/v1/nodes", "V1NodeList"),
    ("/api/v1/pods", "V1PodList"),
    ("/api/v1/events", "CoreV1EventList"),
    ("/api/v1/services", "V1ServiceList"),
    ("/api/v1/configmaps", "V1ConfigMapList"),
    ("/apis/apps/v1/deployments", "V1DeploymentList"),
    ("/apis/apps/v1/replicasets", "V1ReplicaSetList"),
]


@pytest.mark.parametrize(
    "scenario", ["healthy", "bad-rollout", "resource-pressure", "database", "demo"]
)
def test_every_seeded_object_deserializes(sim_cluster, scenario):
    sim = sim_cluster(scenario)
    api = api_client(sim)
    counts = {}
    for path, model in LISTS:
        parsed = api.deserialize(get_text(sim, path), model, "application/json")
        counts[model] = len(parsed.items)
        assert all(item.metadata.name for item in parsed.items)
    assert counts["V1NodeList"] >= 3
    assert counts["V1PodList"] >= 10
    assert counts["CoreV1EventList"] > 0


def test_fixture_handle_fields_and_kubeconfig(sim_cluster):
    sim = sim_cluster("bad-rollout")
    assert sim.url.startswith("http://127.0.0.1:")
    assert sim.context == "sim"
    assert sim.env["KUBECONFIG"] == str(sim.kubeconfig)
    assert sim.env["KUBECACHEDIR"] != sim.env["KUBECONFIG"]
    v1 = client.CoreV1Api(api_client(sim))
    ns = [n.metadata.name for n in v1.list_namespace(_request_timeout=10).items]
    assert {"production", "kube-system", "default"} <= set(ns)
    nodes = v1.list_node(_request_timeout=10).items
    assert [n.metadata.name for n in nodes] == ["node-1", "node-2", "node-3"]
    assert nodes[0].status.node_info.kubelet_version == "v1.32.4"
    system = [
        p.metadata.name for p in v1.list_namespaced_pod("kube-system", _request_timeout=10).items
    ]
    for prefix in (
        "coredns-",
        "kube-proxy-",
        "etcd-node-1",
        "kube-apiserver-node-1",
        "kube-scheduler-node-1",
    ):
        assert any(name.startswith(prefix) for name in system), prefix


def test_bad_rollout_facts(sim_cluster):
    sim = sim_cluster("bad-rollout")
    api = api_client(sim)
    apps, v1 = client.AppsV1Api(api), client.CoreV1Api(api)
    dep = apps.read_namespaced_deployment("backend", "production", _request_timeout=10)
    assert dep.spec.replicas == 3
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert dep.spec.template.spec.containers[0].name == "backend"
    assert dep.spec.template.spec.containers[0].image == "registry.example.com/backend:2.4.0"
    rs = apps.list_namespaced_replica_set(
        "production", label_selector="app=backend", _request_timeout=10
    ).items
    by_rev = {r.metadata.annotations["deployment.kubernetes.io/revision"]: r for r in rs}
    assert sorted(by_rev) == ["1", "2", "3"]
    assert (
        by_rev["1"].spec.template.spec.containers[0].image == "registry.example.com/backend:2.2.0"
    )
    assert (
        by_rev["2"].spec.template.spec.containers[0].image == "registry.example.com/backend:2.3.1"
    )
    assert (
        by_rev["1"].spec.replicas == 0
        and by_rev["2"].spec.replicas == 0
        and by_rev["3"].spec.replicas == 3
    )
    assert "2.3.1" in by_rev["2"].metadata.annotations["kubernetes.io/change-cause"]
    pods = v1.list_namespaced_pod(
        "production", label_selector="app=backend", _request_timeout=10
    ).items
    assert len(pods) == 3
    for pod in pods:
        cs = pod.status.container_statuses[0]
        assert cs.state.waiting.reason == "CrashLoopBackOff"
        assert cs.last_state.terminated.exit_code == 1
        assert cs.last_state.terminated.reason == "Error"
        assert cs.last_state.terminated.finished_at > cs.last_state.terminated.started_at
        assert cs.restart_count >= 5
    prev = v1.read_namespaced_pod_log(
        pods[0].metadata.name, "production", container="backend", previous=True, _request_timeout=10
    )
    assert "FATAL backend exiting: ConfigError: DATABASE_POOL_SIZE must be set" in prev
    assert "Traceback (most recent call last):" in prev
    front = v1.list_namespaced_pod(
        "production", label_selector="app=frontend", _request_timeout=10
    ).items
    assert len(front) == 2 and all(p.status.phase == "Running" for p in front)
    log = v1.read_namespaced_pod_log(
        front[0].metadata.name, "production", tail_lines=200, _request_timeout=10
    )
    assert "ERROR upstream backend: connection refused" in log
    cm = v1.read_namespaced_config_map("app-config", "production", _request_timeout=10)
    assert cm.data["CACHE_ENABLED"] == "false"
    events = v1.list_namespaced_event("production", _request_timeout=10).items
    backoff = [e for e in events if e.reason == "BackOff"]
    assert len(backoff) == 3 and all(e.type == "Warning" and e.count >= 5 for e in backoff)
    assert all(e.first_timestamp < e.last_timestamp for e in backoff)
    assert {"ScalingReplicaSet", "Pulling", "Pulled", "Created", "Started", "Scheduled"} <= {
        e.reason for e in events
    }


def test_restarts_grow_as_time_passes(sim_cluster):
    sim = sim_cluster("bad-rollout")
    v1 = client.CoreV1Api(api_client(sim))

    def restarts() -> int:
        pods = v1.list_namespaced_pod(
            "production", label_selector="app=backend", _request_timeout=10
        ).items
        return pods[0].status.container_statuses[0].restart_count

    before = restarts()
    sim.advance(1200)
    assert restarts() >= before + 3


def test_request_log_and_staging_endpoints(sim_cluster):
    sim = sim_cluster("bad-rollout")
    sim.clear_requests()
    v1 = client.CoreV1Api(api_client(sim))
    pod = (
        v1.list_namespaced_pod("production", label_selector="app=frontend", _request_timeout=10)
        .items[0]
        .metadata.name
    )
    sim.append_logs(
        "production", pod, "frontend", ["ERROR staged line one", "ERROR staged line two"]
    )
    log = v1.read_namespaced_pod_log(pod, "production", tail_lines=2, _request_timeout=10)
    assert log.splitlines() == ["ERROR staged line one", "ERROR staged line two"]
    sim.set_metrics("production", pod, "frontend", cpu_m=750, memory_bytes=300 * 2**20)
    raw = get_text(sim, f"/apis/metrics.k8s.io/v1beta1/namespaces/production/pods/{pod}")
    usage = json.loads(raw)["containers"][0]["usage"]
    assert usage == {"cpu": "750000000n", "memory": f"{300 * 1024}Ki"}
    reqs = sim.requests()
    assert [r["method"] for r in reqs] == ["GET", "GET", "GET"]
    assert reqs[0]["path"] == "/api/v1/namespaces/production/pods"
    assert reqs[0]["query"] == "labelSelector=app%3Dfrontend"
    assert reqs[1]["path"].endswith(f"/pods/{pod}/log") and "tailLines=2" in reqs[1]["query"]
    assert set(reqs[0]) == {"method", "path", "query", "content_type", "user", "status"}
    assert [(r["user"], r["status"]) for r in reqs] == [("kubernetes-admin", 200)] * 3


def test_unknown_scenario_names_the_valid_ones(tmp_path):
    with pytest.raises(InvalidParameter, match="valid scenarios: .*bad-rollout"):
        start("no-such-scenario", workdir=tmp_path)
    assert {"healthy", "bad-rollout", "resource-pressure", "database", "demo", "scale"} <= set(
        scenario_names()
    )
