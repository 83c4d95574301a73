"""REST semantics of the simulated cluster: Status errors, selectors, paging, watch, patches,
delete, subresources, staged failures, TLS. Through raw HTTP and the official client."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from incidentlib.sim.testing import running_sim

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A demo cluster shared by the tests of this module that leave it as they found it."""
    with running_sim("demo", workdir=tmp_path_factory.mktemp("sim-api")) as handle:
        yield handle


def call(
    handle,
    method: str,
    path: str,
    body: object = None,
    *,
    content_type: str = "application/json",
    raw: bytes | None = None,
    accept: str = "application/json",
) -> tuple[int, dict | str]:
    """One request on a fresh connection; JSON answers decoded."""
    u = urllib.parse.urlsplit(handle.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {
        "Content-Type": content_type,
        "Accept": accept,
        "Authorization": f"Bearer {handle.token}",
    }
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, text


def apis(handle) -> tuple[client.CoreV1Api, client.AppsV1Api]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(handle.kubeconfig), client_configuration=cfg)
    api = client.ApiClient(cfg)
    return client.CoreV1Api(api), client.AppsV1Api(api)


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "scratch", "labels": {"app": "scratch"}},
    "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
}


def test_bad_input_answers_status_and_server_keeps_serving(sim):
    code, body = call(sim, "POST", "/api/v1/namespaces/production/pods", raw=b'{"kind": "Pod", ')
    assert code == 400 and body["kind"] == "Status" and body["reason"] == "BadRequest"
    code, body = call(sim, "GET", "/api/v1/namespaces/production/widgets")
    assert (code, body["reason"]) == (404, "NotFound")
    assert body["message"] == "the server could not find the requested resource"
    code, body = call(sim, "GET", "/api/v1/namespaces/nope")
    assert (code, body["message"]) == (404, 'namespaces "nope" not found')
    code, body = call(sim, "POST", "/api/v1/namespaces/nope/pods", POD)
    assert (code, body["message"]) == (404, 'namespaces "nope" not found')
    code, body = call(
        sim,
        "POST",
        "/api/v1/namespaces/production/configmaps",
        {"metadata": {"name": "app-config"}, "data": {}},
    )
    assert (code, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'configmaps "app-config" already exists'
    code, body = call(
        sim,
        "PATCH",
        "/apis/apps/v1/namespaces/production/deployments/backend",
        [{"op": "replace", "path": "/spec/nothing/here", "value": 1}],
        content_type="application/json-patch+json",
    )
    assert (code, body["reason"]) == (422, "Invalid")
    code, body = call(
        sim,
        "PATCH",
        "/apis/apps/v1/namespaces/production/deployments/backend",
        raw=b"{not json",
        content_type="application/merge-patch+json",
    )
    assert (code, body["reason"]) == (400, "BadRequest")
    code, body = call(
        sim,
        "PATCH",
        "/apis/apps/v1/namespaces/production/deployments/backend",
        {"spec": {}},
        content_type="text/plain",
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    code, body = call(
        sim,
        "PATCH",
        "/apis/apps/v1/namespaces/production/deployments/backend/scale",
        {"spec": {"replicas": -1}},
        content_type="application/merge-patch+json",
    )
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.replicas"
    code, body = call(
        sim,
        "PATCH",
        "/apis/apps/v1/namespaces/production/deployments/backend",
        {"spec": {"replicas": -3}},
        content_type="application/merge-patch+json",
    )
    assert (code, body["reason"]) == (422, "Invalid")
    assert "spec.replicas: Invalid value: -3: must be greater than or equal to 0" in body["message"]
    code, body = call(
        sim,
        "PUT",
        "/api/v1/namespaces/production/configmaps/app-config",
        {"metadata": {"name": "app-config", "resourceVersion": "1"}, "data": {}},
    )
    assert (code, body["reason"]) == (409, "Conflict")
    code, body = call(sim, "GET", "/api/v1/pods?watch=maybe")
    assert code == 400 and "ParseBool" in body["message"]
    code, body = call(sim, "GET", "/api/v1/pods?labelSelector=app%20in%20(")
    assert code == 400
    code, body = call(sim, "GET", "/version")
    assert code == 200 and body["gitVersion"].startswith("v1.32")
    _, dep = call(sim, "GET", "/apis/apps/v1/namespaces/production/deployments/backend")
    assert dep["spec"]["replicas"] == 3  # nothing above changed it


def test_discovery_documents(sim):
    _, core = call(sim, "GET", "/api/v1")
    assert core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and {
        "pods/log",
        "pods/status",
        "nodes/proxy",
    } <= set(by_name)
    _, apps = call(sim, "GET", "/apis/apps/v1")
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    _, groups = call(sim, "GET", "/apis")
    assert {g["name"] for g in groups["groups"]} == {
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "batch",
        "discovery.k8s.io",
        "metrics.k8s.io",
        "rbac.authorization.k8s.io",
    }
    assert all(g["preferredVersion"]["groupVersion"] for g in groups["groups"])


def test_selectors_and_paging(sim):
    _, page = call(
        sim, "GET", "/api/v1/namespaces/production/pods?labelSelector=app%20in%20(backend,frontend)"
    )
    assert sorted({p["metadata"]["labels"]["app"] for p in page["items"]}) == [
        "backend",
        "frontend",
    ]
    _, page = call(
        sim, "GET", "/api/v1/namespaces/production/pods?labelSelector=app!%3Dbackend,app"
    )
    assert page["items"] and all(p["metadata"]["labels"]["app"] != "backend" for p in page["items"])
    _, pending = call(sim, "GET", "/api/v1/pods?fieldSelector=status.phase%3DPending")
    assert {p["metadata"]["labels"]["app"] for p in pending["items"]} == {"report-generator"}
    _, on_node = call(
        sim, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1,status.phase!%3DSucceeded"
    )
    assert on_node["items"] and all(p["spec"]["nodeName"] == "node-1" for p in on_node["items"])
    _, everything = call(sim, "GET", "/api/v1/pods")
    names, url, pages = [], "/api/v1/pods?limit=4", 0
    while url:
        _, page = call(sim, "GET", url)
        pages += 1
        names += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue")
        if token:
            assert page["metadata"]["remainingItemCount"] > 0
        url = f"/api/v1/pods?limit=4&continue={urllib.parse.quote(token)}" if token else ""
    assert names == [p["metadata"]["name"] for p in everything["items"]]
    assert pages == -(-len(names) // 4)
    assert everything["kind"] == "PodList" and everything["metadata"]["resourceVersion"]


def test_table_output_columns(sim):
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    _, table = call(
        sim,
        "GET",
        "/api/v1/namespaces/production/pods?labelSelector=app%3Dreport-generator",
        accept=accept,
    )
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    row = table["rows"][0]
    assert row["cells"][2] == "Pending" and row["object"]["kind"] == "PartialObjectMetadata"
    _, full = call(
        sim,
        "GET",
        "/api/v1/events?includeObject=Object&fieldSelector=reason%3DFailedScheduling",
        accept=accept,
    )
    assert full["rows"] and full["rows"][0]["object"]["kind"] == "Event"
    assert "0/3 nodes are available: 3 Insufficient memory." in full["rows"][0]["cells"][6]


def test_resource_pressure_facts(sim):
    v1, _ = apis(sim)
    node2 = v1.read_node("node-2", _request_timeout=10)
    assert {c.type: c.status for c in node2.status.conditions}["MemoryPressure"] == "True"
    described = sim.kubectl("describe", "node", "node-2").stdout
    assert "NodeHasInsufficientMemory" in described and "Attempting to reclaim memory" in described
    oom = v1.list_namespaced_pod(
        "production", label_selector="app=analytics", _request_timeout=10
    ).items[0]
    term = oom.status.container_statuses[0].last_state.terminated
    assert (term.reason, term.exit_code) == ("OOMKilled", 137)
    pg = v1.list_namespaced_pod(
        "production", label_selector="app=postgres", _request_timeout=10
    ).items[0]
    assert pg.status.phase == "Running" and pg.status.container_statuses[0].restart_count == 4
    logs = v1.read_namespaced_pod_log(
        pg.metadata.name, "production", tail_lines=300, _request_timeout=10
    )
    assert (
        "FATAL:  remaining connection slots are reserved" in logs
        or "ERROR:  canceling statement" in logs
    )
    _, summary = call(sim, "GET", f"/api/v1/nodes/{pg.spec.node_name}/proxy/stats/summary")
    entry = next(p for p in summary["pods"] if p["podRef"]["name"] == pg.metadata.name)
    assert entry["ephemeral-storage"]["usedBytes"] > 12 * 2**30
    assert summary["node"]["fs"]["capacityBytes"] > summary["node"]["fs"]["usedBytes"] > 0
    front = v1.list_namespaced_pod(
        "production", label_selector="app=frontend", _request_timeout=10
    ).items[0]
    text = v1.read_namespaced_pod_log(
        front.metadata.name, "production", tail_lines=100, _request_timeout=10
    )
    assert "Authorization: Bearer sim-canary-token-7f3a9c2e1b4d" in text
    assert "password=sim-canary-pass-5d8e2a" in text


def test_memory_leak_grows_with_simulated_time(sim_cluster):
    handle = sim_cluster("resource-pressure")

    def working_set() -> int:
        _, body = call(handle, "GET", "/apis/metrics.k8s.io/v1beta1/namespaces/production/pods")
        pod = next(p for p in body["items"] if p["metadata"]["name"].startswith("session-cache-"))
        return int(pod["containers"][0]["usage"]["memory"].removesuffix("Ki")) * 1024

    before = working_set()
    assert 870 * 2**20 <= before <= 900 * 2**20  # 400Mi + 4Mi a minute for 2 hours
    handle.advance(600)
    assert working_set() - before == pytest.approx(40 * 2**20, rel=0.02)


def test_watch_with_bookmarks_and_resumption(sim_cluster):
    handle = sim_cluster("bad-rollout")
    v1, apps = apis(handle)
    listing = v1.list_namespaced_pod(
        "production", label_selector="app=frontend", _request_timeout=10
    )
    rv = listing.metadata.resource_version
    apps.patch_namespaced_deployment_scale(
        "frontend", "production", {"spec": {"replicas": 3}}, _request_timeout=10
    )
    seen = []
    w = watch.Watch()
    for ev in w.stream(
        v1.list_namespaced_pod,
        "production",
        label_selector="app=frontend",
        resource_version=rv,
        allow_watch_bookmarks=True,
        timeout_seconds=3,
        _request_timeout=10,
    ):
        if ev["type"] != "BOOKMARK":
            seen.append((ev["type"], ev["object"].metadata.name))
    added = [name for kind, name in seen if kind == "ADDED"]
    assert len(added) == 1 and added[0].startswith("frontend-")
    assert ("MODIFIED", added[0]) in seen  # the kubelet started it
    names = {p.metadata.name for p in listing.items}
    assert not [
        n for kind, n in seen if kind == "ADDED" and n in names
    ]  # resumed: old pods not re-sent
    code, body = call(
        handle,
        "GET",
        f"/api/v1/namespaces/production/pods?watch=1&resourceVersion={rv}"
        "&allowWatchBookmarks=true&timeoutSeconds=3",
    )
    kinds = [json.loads(line)["type"] for line in body.splitlines()]  # type: ignore[union-attr]
    assert code == 200 and "BOOKMARK" in kinds and "ADDED" in kinds


def test_patch_flavours_delete_status_and_scale(sim_cluster):
    handle = sim_cluster("bad-rollout")
    v1, apps = apis(handle)
    # strategic merge (dict body) merges containers by name
    apps.patch_namespaced_deployment(
        "frontend",
        "production",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "frontend", "env": [{"name": "MODE", "value": "safe"}]}
                        ]
                    }
                }
            }
        },
        _request_timeout=10,
    )
    c = apps.read_namespaced_deployment(
        "frontend", "production", _request_timeout=10
    ).spec.template.spec.containers
    assert (
        len(c) == 1
        and c[0].image == "registry.example.com/frontend:1.9.0"
        and c[0].env[0].value == "safe"
    )
    # JSON patch (list body)
    apps.patch_namespaced_deployment(
        "frontend",
        "production",
        [
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/env/0/value",
                "value": "fast",
            }
        ],
        _request_timeout=10,
    )
    c = apps.read_namespaced_deployment(
        "frontend", "production", _request_timeout=10
    ).spec.template.spec.containers
    assert c[0].env[0].value == "fast"
    # merge patch replaces lists wholesale
    code, body = call(
        handle,
        "PATCH",
        "/api/v1/namespaces/production/configmaps/app-config",
        {"data": {"LOG_LEVEL": None, "NEW": "1"}},
        content_type="application/merge-patch+json",
    )
    assert code == 200 and "LOG_LEVEL" not in body["data"] and body["data"]["NEW"] == "1"
    # scale subresource answers an autoscaling/v1 Scale
    scale = apps.read_namespaced_deployment_scale("backend", "production", _request_timeout=10)
    assert scale.spec.replicas == 3 and scale.status.selector == "app=backend"
    # delete answers the pod; the ReplicaSet replaces it
    victim = v1.list_namespaced_pod(
        "production", label_selector="app=frontend", _request_timeout=10
    ).items[0]
    gone = v1.delete_namespaced_pod(victim.metadata.name, "production", _request_timeout=10)
    assert isinstance(gone, client.V1Pod) and gone.metadata.name == victim.metadata.name
    after = {
        p.metadata.name
        for p in v1.list_namespaced_pod("production", label_selector="app=frontend").items
    }
    assert len(after) == 2 and victim.metadata.name not in after
    # a status written through the status subresource is kept: the kubelet leaves the pod alone
    pod = sorted(after)[0]
    v1.patch_namespaced_pod_status(
        pod,
        "production",
        {
            "status": {
                "phase": "Failed",
                "reason": "Evicted",
                "message": "The node was low on resource: memory.",
            }
        },
        _request_timeout=10,
    )
    handle.advance(120)
    staged = v1.read_namespaced_pod(pod, "production", _request_timeout=10)
    assert (staged.status.phase, staged.status.reason) == ("Failed", "Evicted")
    out = handle.kubectl(
        "get", "pod", pod, "-n", "production", "-o", "jsonpath={.status.phase}/{.status.reason}"
    )
    assert out.stdout == "Failed/Evicted"


def test_create_replace_and_generate_name(sim_cluster):
    handle = sim_cluster("healthy")
    code, created = call(handle, "POST", "/api/v1/namespaces/production/pods", POD)
    assert code == 201 and created["metadata"]["uid"] and created["status"]["phase"] == "Pending"
    time.sleep(1.2)
    code, pod = call(handle, "GET", "/api/v1/namespaces/production/pods/scratch")
    assert pod["spec"]["nodeName"].startswith("node-") and pod["status"]["phase"] == "Running"
    _, cm = call(handle, "GET", "/api/v1/namespaces/production/configmaps/app-config")
    cm["data"]["LOG_LEVEL"] = "debug"
    code, replaced = call(handle, "PUT", "/api/v1/namespaces/production/configmaps/app-config", cm)
    assert code == 200 and replaced["data"]["LOG_LEVEL"] == "debug"
    assert int(replaced["metadata"]["resourceVersion"]) > int(cm["metadata"]["resourceVersion"])
    code, gen = call(
        handle,
        "POST",
        "/api/v1/namespaces/production/configmaps",
        {"metadata": {"generateName": "job-"}, "data": {"a": "b"}},
    )
    assert (
        code == 201
        and gen["metadata"]["name"].startswith("job-")
        and len(gen["metadata"]["name"]) == 9
    )


def test_forbidden_namespace_and_missing_metrics(sim_cluster):
    handle = sim_cluster("healthy", forbidden_namespaces={"production"}, metrics=False)
    v1, _ = apis(handle)
    with pytest.raises(ApiException) as e:
        v1.list_namespaced_pod("production", _request_timeout=10)
    assert e.value.status == 403 and json.loads(e.value.body)["reason"] == "Forbidden"
    assert v1.list_namespaced_pod("kube-system", _request_timeout=10).items
    with pytest.raises(
        ApiException
    ) as e:  # namespaced roles only: no list across all namespaces either
        v1.list_pod_for_all_namespaces(_request_timeout=10)
    assert e.value.status == 403 and "at the cluster scope" in json.loads(e.value.body)["message"]
    assert v1.list_node(
        _request_timeout=10
    ).items  # cluster-scoped kinds are not namespaced roles' business
    _, groups = call(handle, "GET", "/apis")
    assert "metrics.k8s.io" not in [g["name"] for g in groups["groups"]]
    code, _ = call(handle, "GET", "/apis/metrics.k8s.io/v1beta1/nodes")
    assert code == 404
    top = handle.kubectl("top", "nodes")
    assert top.returncode != 0 and "Metrics API not available" in top.stderr


def test_logs_query_parameters(sim_cluster):
    handle = sim_cluster("bad-rollout")
    v1, _ = apis(handle)
    pod = v1.list_namespaced_pod("production", label_selector="app=frontend").items[0].metadata.name
    base = f"/api/v1/namespaces/production/pods/{pod}/log"
    _, tail = call(handle, "GET", base + "?tailLines=10")
    assert len(tail.splitlines()) == 10  # type: ignore[union-attr]
    _, since = call(handle, "GET", base + "?sinceSeconds=10&timestamps=true")
    lines = since.splitlines()  # type: ignore[union-attr]
    assert 18 <= len(lines) <= 22 and all(line[:4].isdigit() and "Z " in line for line in lines)
    code, body = call(handle, "GET", base + "?previous=true")
    assert code == 400 and "previous terminated container" in body["message"]
    code, body = call(handle, "GET", base + "?container=nope")
    assert code == 400


def test_tls_serves_kubectl_and_client(sim_cluster):
    handle = sim_cluster("bad-rollout", tls=True)
    assert handle.url.startswith("https://127.0.0.1:")
    v1, _ = apis(handle)
    assert [n.metadata.name for n in v1.list_node(_request_timeout=10).items] == [
        "node-1",
        "node-2",
        "node-3",
    ]
    out = handle.kubectl("get", "deploy", "backend", "-n", "production", "--no-headers")
    assert out.returncode == 0 and out.stdout.split()[:2] == ["backend", "0/3"]
    assert (
        handle.requests()[-1]["path"] == "/apis/apps/v1/namespaces/production/deployments/backend"
    )


def test_status_patch_replaces_container_statuses_and_taints_block_scheduling(sim_cluster):
    handle = sim_cluster("healthy")
    v1, _ = apis(handle)
    pod = v1.list_namespaced_pod("production", label_selector="app=frontend").items[0].metadata.name
    v1.patch_namespaced_pod_status(
        pod,
        "production",
        {
            "status": {
                "containerStatuses": [
                    {
                        "name": "frontend",
                        "image": "registry.example.com/frontend:1.9.0",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 3,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    }
                ]
            }
        },
        _request_timeout=10,
    )
    cs = v1.read_namespaced_pod(pod, "production").status.container_statuses[0]
    assert (
        cs.state.running is None
        and cs.state.waiting.reason == "CrashLoopBackOff"
        and cs.restart_count == 3
    )
    for node in ("node-1", "node-2", "node-3"):
        out = handle.kubectl("taint", "nodes", node, "dedicated=db:NoSchedule")
        assert out.returncode == 0, out.stderr
    code, _ = call(handle, "POST", "/api/v1/namespaces/production/pods", POD)
    assert code == 201
    handle.advance(5)
    _, events = call(
        handle,
        "GET",
        "/api/v1/namespaces/production/events?fieldSelector=involvedObject.name%3Dscratch",
    )
    failed = [e for e in events["items"] if e["reason"] == "FailedScheduling"]
    assert failed and failed[0]["message"].startswith(
        "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: db}."
    )
    assert handle.kubectl("taint", "nodes", "node-1", "dedicated=db:NoSchedule-").returncode == 0
    handle.advance(5)
    _, scratch = call(handle, "GET", "/api/v1/namespaces/production/pods/scratch")
    assert scratch["spec"]["nodeName"] == "node-1"


def test_stop_ends_open_watches(tmp_path):
    import threading

    with running_sim("healthy", workdir=tmp_path) as handle:
        u = urllib.parse.urlsplit(handle.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        conn.request(
            "GET",
            "/api/v1/namespaces/production/pods?watch=true",
            headers={"Authorization": f"Bearer {handle.token}"},
        )
        resp = conn.getresponse()
        assert resp.status == 200
        first = resp.readline()
        assert json.loads(first)["type"] == "ADDED"
        done = threading.Event()
        threading.Thread(target=lambda: (resp.read(), done.set()), daemon=True).start()
    assert done.wait(5), "the watch kept streaming after stop()"
    conn.close()


def test_delete_collection_by_label(sim_cluster):
    handle = sim_cluster("bad-rollout")
    v1, _ = apis(handle)
    before = {
        p.metadata.name
        for p in v1.list_namespaced_pod("production", label_selector="app=backend").items
    }
    code, body = call(
        handle, "DELETE", "/api/v1/namespaces/production/pods?labelSelector=app%3Dbackend"
    )
    assert code == 200 and body["kind"] == "PodList"
    assert {p["metadata"]["name"] for p in body["items"]} == before
    after = {
        p.metadata.name
        for p in v1.list_namespaced_pod("production", label_selector="app=backend").items
    }
    assert len(after) == 3 and not after & before  # the ReplicaSet made new ones
    assert {
        p.metadata.name
        for p in v1.list_namespaced_pod("production", label_selector="app=frontend").items
    }


def test_custom_spec_with_bad_nodes(sim_cluster):
    handle = sim_cluster(
        {
            "include": ["healthy"],
            "nodes": {
                "conditions": {"node-1": {"DiskPressure": "True"}, "node-3": {"Ready": "False"}}
            },
        }
    )
    rows = handle.kubectl("get", "nodes", "--no-headers").stdout.splitlines()
    assert [r.split()[:2] for r in rows] == [
        ["node-1", "Ready"],
        ["node-2", "Ready"],
        ["node-3", "NotReady"],
    ]
    _, summary = call(handle, "GET", "/api/v1/nodes/node-1/proxy/stats/summary")
    fs = summary["node"]["fs"]
    assert fs["usedBytes"] / fs["capacityBytes"] == pytest.approx(0.92, abs=0.01)
    _, events = call(handle, "GET", "/api/v1/namespaces/default/events")
    assert {(e["involvedObject"]["name"], e["reason"]) for e in events["items"]} >= {
        ("node-1", "NodeHasDiskPressure"),
        ("node-3", "NodeNotReady"),
    }
    _, pods = call(handle, "GET", "/api/v1/pods")
    assert pods["items"] and not [
        p
        for p in pods["items"]
        if p["spec"]["nodeName"] == "node-3" and p["metadata"]["namespace"] == "production"
    ]


def test_the_listen_backlog_is_the_kernels_not_socketservers_five(sim):
    """A Go API server listens with the kernel's somaxconn; socketserver's default backlog of 5
    made the outage notebook's ten concurrent reads lose a SYN now and then and wait a second for
    its retransmission. `ss` reads the listening socket's backlog from the kernel (its Send-Q)."""
    import shutil
    import socket
    import subprocess
    from pathlib import Path

    assert shutil.which("ss"), "ss (iproute2) is missing: .ci/run installs it"
    port = urllib.parse.urlsplit(sim.url).port
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert int(out[2]) == min(socket.SOMAXCONN, somaxconn), out
