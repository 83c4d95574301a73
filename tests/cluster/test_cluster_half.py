"""The cluster half of the runbook end to end: the notebooks on the node-failure and no-endpoints
scenarios, exec checks in the performance and database notebooks (and exec_checks=False), the
disk finding for a full persistent volume; and the pure builders on JSON fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from incidentlib.kube import exec as kexec
from incidentlib.kube import metrics, nodes, services
from incidentlib.sim.testing import running_sim

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def execute(name: str, out: Path, **parameters: Any) -> dict[str, Any]:
    import papermill as pm
    import scrapbook as sb

    pm.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
    )
    return {k: s.data for k, s in sb.read_notebook(str(out)).scraps.items()}


def titles(scraps: dict[str, Any]) -> list[str]:
    return [f["title"] for f in scraps["findings"]]


# ----------------------------------------------------------------------------------- notebooks
@pytest.mark.sim
@pytest.mark.notebook
def test_outage_on_a_failed_node(tmp_path: Path) -> None:
    with running_sim("node-failure", workdir=tmp_path / "sim") as sim:
        s = execute("outage", tmp_path / "out.ipynb", kubeconfig=str(sim.kubeconfig))
    node = next(f for f in s["findings"] if f["title"].startswith("node node-3 failed"))
    assert node["severity"] == "SEV2" and "Kubelet stopped posting node status." in node["detail"]
    assert "production/backend-" in node["detail"] and "search-" in node["detail"]
    assert not any(t.startswith("revision") for t in titles(s))  # an eviction blames no rollout
    assert s["severity"]["level"] == "SEV2"
    details = s["node_details"]
    assert list(details["node"]) == ["node-3"] and details.iloc[0]["ready"] == "Unknown"
    assert "node.kubernetes.io/unreachable:NoExecute" in details.iloc[0]["taints"]
    assert details.iloc[0]["allocated_memory_requests"] > 5 * 2**30
    events = s["events"]
    node_events = events[(events["involved_kind"] == "Node") & (events["namespace"] == "default")]
    assert {"NodeNotReady", "NodeControllerEviction"} <= set(node_events["reason"])
    assert list(s["logs"].columns) == ["namespace", "pod", "container", "previous", "line"]


@pytest.mark.sim
@pytest.mark.notebook
def test_outage_and_triage_on_a_service_without_endpoints(tmp_path: Path) -> None:
    with running_sim("no-endpoints", workdir=tmp_path / "sim") as sim:
        outage = execute("outage", tmp_path / "outage.ipynb", kubeconfig=str(sim.kubeconfig))
        triage = execute("triage", tmp_path / "triage.ipynb", kubeconfig=str(sim.kubeconfig))
    for s in (outage, triage):
        f = next(f for f in s["findings"] if f["title"].startswith("Service backend routes"))
        assert f["severity"] == "SEV1" and "selector matches nothing" in f["title"]
        assert "revision 2 of deployment/backend" in f["detail"]
        assert "removed tier=api" in f["detail"] and "added component=api" in f["detail"]
        assert s["severity"]["level"] == "SEV1"
        svc = s["services"].set_index("name")
        assert svc.loc["backend", "ready_endpoints"] == 0
        assert svc.loc["backend", "matching_pods"] == 0
        assert svc.loc["frontend", "ready_endpoints"] == 2


@pytest.mark.sim
@pytest.mark.notebook
def test_performance_exec_checks(tmp_path: Path) -> None:
    spec = {
        "include": ["database"],
        "deployments": [
            {
                "name": "postgres",
                "replicas": 1,
                "image": "postgres:16.4",
                "exec": {
                    "filesystems": [
                        {
                            "size": "20Gi",
                            "used": "19Gi",
                            "mountedOn": "/var/lib/postgresql/data",
                            "pvc": "data-postgres",
                        }  # fmt: skip
                    ]
                },
            }
        ],
    }
    with running_sim(spec, workdir=tmp_path / "sim") as sim:
        on = execute("performance", tmp_path / "on.ipynb", kubeconfig=str(sim.kubeconfig),
                     app_deployment="postgres", samples=1)  # fmt: skip
        off = execute("performance", tmp_path / "off.ipynb", kubeconfig=str(sim.kubeconfig),
                      app_deployment="postgres", samples=1, exec_checks=False)  # fmt: skip
    assert list(on["processes"].columns) == kexec.PROCESS_COLUMNS and len(on["processes"])
    disk = on["pod_disk"].set_index("mounted_on")
    assert disk.loc["/var/lib/postgresql/data", "use_pct"] == pytest.approx(95.0, abs=0.1)
    full = [t for t in titles(on) if "/var/lib/postgresql/data in pod" in t]
    assert full and "95% full" in full[0]
    volumes = on["disk"][on["disk"]["kind"] == "volume"]
    assert list(volumes["volume"]) == ["pvc/data-postgres"]
    assert any(t.startswith("pvc/data-postgres of pod") for t in titles(on))
    assert off["processes"].empty and off["pod_disk"].empty
    skipped = [s for s in off["sources"] if s["status"] == "skipped" and "exec" in s["source"]]
    assert skipped and skipped[0]["error"] == "exec_checks=False"


@pytest.mark.sim
@pytest.mark.notebook
def test_database_up_but_the_backend_cannot_reach_it(tmp_path: Path) -> None:
    spec = {
        "include": ["database"],
        "blocked": [{"from": "backend", "to": "postgres.production.svc:5432"}],
    }
    with running_sim(spec, workdir=tmp_path / "sim") as sim:
        s = execute("database", tmp_path / "db.ipynb", kubeconfig=str(sim.kubeconfig))
    conn = s["connectivity"]
    assert list(conn.columns) == kexec.CONNECTIVITY_COLUMNS and len(conn) == 3
    assert not conn["ok"].any() and conn["error"].str.contains("timed out").all()
    assert any("cannot reach the database" in t for t in titles(s))


# -------------------------------------------------------------------------------- pure builders
PS = """USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
app            1 11.8  1.8 496762 307916 ?        Ssl    08:14   0:01 /app/backend --port 8080
app           20  0.1  0.0   9175  3174 ?        S    08:14   0:20 /bin/sh /hc.sh
"""
DF = """Filesystem     1024-blocks     Used Available Use% Mounted on
overlay          104806400  8439808  96366592   9% /
/dev/rbd0         20971520 19922944   1048576  95% /var/lib/postgresql/data
"""


def test_parsers() -> None:
    ps = kexec.parse_ps(PS)
    assert ps[0] == {
        "user": "app",
        "pid": 1,
        "cpu_pct": 11.8,
        "mem_pct": 1.8,
        "rss_bytes": 307916 * 1024,
        "command": "/app/backend --port 8080",
    }
    df = kexec.parse_df(DF)
    assert df[1]["mounted_on"] == "/var/lib/postgresql/data" and df[1]["use_pct"] == 95.0
    assert kexec.parse_tcp_check("tcp-check ok 1.5 ms\n") == (True, 1.5, None)
    assert kexec.parse_tcp_check("tcp-check failed 3000 ms: timed out") == (
        False,
        3000.0,
        "timed out",
    )
    r = kexec.ExecResult("production", "db-0", "postgres", "disk", stdout=DF, exit_code=0)
    frame = kexec.pod_disk_frame([r])
    assert list(frame.columns) == kexec.POD_DISK_COLUMNS and frame["size_bytes"].dtype == "int64"
    assert "sh" == kexec.check_argv("tcp", host="db.internal", port=5432)[0]
    for bad in ("db; rm -rf /", "$(id)", "-oProxy"):
        with pytest.raises(Exception, match="not a host and port"):
            kexec.check_argv("tcp", host=bad, port=5432)
    assert kexec.redact_env("API_TOKEN=abc\nLOG_LEVEL=info\n").count("abc") == 0


def _pod(name: str, labels: dict[str, str], *, ready: bool = True, node: str = "node-1") -> dict:
    return {
        "metadata": {"name": name, "namespace": "production", "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "app"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_services_name_the_cause() -> None:
    svc = {
        "metadata": {"name": "backend", "namespace": "production"},
        "spec": {"type": "ClusterIP", "selector": {"app": "backend", "tier": "api"}},
    }
    relabelled = [_pod("backend-1", {"app": "backend", "component": "api"})]
    frame = services.services_frame([svc], relabelled)
    assert frame.iloc[0]["matching_pods"] == 0 and frame.iloc[0]["ready_endpoints"] == 0
    rs = [
        {
            "metadata": {
                "annotations": {"deployment.kubernetes.io/revision": str(rev)},
                "ownerReferences": [{"name": "backend", "controller": True}],
            },
            "spec": {"template": {"metadata": {"labels": labels}}},
        }
        for rev, labels in (
            (1, {"app": "backend", "tier": "api"}),
            (2, {"app": "backend", "component": "api"}),
        )
    ]
    change = services.relabel({"app": "backend", "tier": "api"}, rs)
    assert change is not None and change["revision"] == 2
    assert (change["removed"], change["added"]) == ("tier=api", "component=api")
    [problem] = services.routing_problems(frame, relabels={"backend": change})
    assert "selector matches nothing" in problem["title"] and "revision 2" in problem["detail"]
    unready = [_pod("backend-1", {"app": "backend", "tier": "api"}, ready=False)]
    sl = {
        "metadata": {
            "namespace": "production",
            "labels": {"kubernetes.io/service-name": "backend"},
        },
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": False}}],
    }
    frame = services.services_frame([svc], unready, slices=[sl])
    assert (frame.iloc[0]["ready_endpoints"], frame.iloc[0]["not_ready_endpoints"]) == (0, 1)
    [problem] = services.routing_problems(frame)
    assert "pods not ready" in problem["title"]


def test_node_details_and_failure() -> None:
    node = {
        "metadata": {"name": "node-3"},
        "spec": {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "Unknown", "reason": "NodeStatusUnknown"},
                {
                    "type": "Ready",
                    "status": "Unknown",
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                    "lastTransitionTime": "2026-12-02T06:00:00Z",
                },  # fmt: skip
            ]
        },
    }
    healthy = {
        "metadata": {"name": "node-1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    pod = _pod("backend-1", {"app": "backend"}, node="node-3")
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "250m", "memory": "256Mi"}}
    frame = nodes.node_details_frame([node, healthy], [pod])
    assert list(frame["node"]) == ["node-3"]
    row = frame.iloc[0]
    assert row["taints"] == "node.kubernetes.io/unreachable:NoExecute"
    assert row["allocated_cpu_requests"] == 250 and row["allocated_memory_requests"] == 256 * 2**20
    assert "production/backend-1" in row["pods"]
    failure = nodes.node_failure(node, [pod])
    assert failure["taken_down"] == ["production/backend-1"]
    assert failure["since"] == pd.Timestamp("2026-12-02T06:00:00Z")


def test_disk_findings_for_a_full_volume() -> None:
    summary = {
        "node": {"nodeName": "node-1", "fs": {"usedBytes": 10, "capacityBytes": 100}},
        "pods": [
            {
                "podRef": {"name": "db-0", "namespace": "production"},
                "volume": [
                    {
                        "name": "data",
                        "pvcRef": {"name": "data-db-0"},
                        "usedBytes": 95,
                        "capacityBytes": 100,
                        "availableBytes": 5,
                    }
                ],  # fmt: skip
            }
        ],
    }
    disk = metrics.disk_frame([summary])
    [f] = metrics.disk_findings(disk)
    assert f["title"] == "pvc/data-db-0 of pod production/db-0 is 95% full"


@pytest.mark.sim
def test_wide_events_are_the_namespace_every_warning_and_every_node_event(tmp_path: Path) -> None:
    # node-failure: kube-system has 49 Normal pod events (Scheduled, Pulled...) and 2 warnings;
    # default holds the failed node's NodeNotReady (type Normal): the wide read keeps all but the
    # other namespaces' Normal events, each once, filtered by the server
    from incidentlib.kube import client, reads

    with running_sim("node-failure", workdir=tmp_path / "sim") as sim:
        cluster = client.connect(kubeconfig=str(sim.kubeconfig))
        every = reads.fetch_events(cluster, None)
        wide = reads.fetch_events_wide(cluster, "production")
        requests = [r for r in sim.requests() if "/events" in r["path"]]

    def key(e: dict[str, Any]) -> tuple[str, str, str]:
        return (e["metadata"]["namespace"], e["type"], e["involvedObject"]["kind"])

    kept = [
        e
        for e in every
        if e["metadata"]["namespace"] == "production"
        or e["type"] != "Normal"
        or e["involvedObject"]["kind"] == "Node"
    ]
    assert sorted(e["metadata"]["uid"] for e in wide) == sorted(e["metadata"]["uid"] for e in kept)
    counts = pd.Series([key(e) for e in wide]).value_counts().to_dict()
    assert counts[("default", "Normal", "Node")] == 6
    assert counts[("kube-system", "Warning", "Pod")] == 2
    assert ("kube-system", "Normal", "Pod") not in counts
    assert len(every) - len(wide) == 50  # kube-system's 49 Normal pod events and 1 ReplicaSet one
    from urllib.parse import parse_qs

    # the three lists are read at once: in any order, each once
    asked = sorted(
        (r["path"], str(parse_qs(r["query"]).get("fieldSelector"))) for r in requests[1:]
    )
    assert asked == [
        ("/api/v1/events", "['involvedObject.kind=Node']"),
        ("/api/v1/events", "['type!=Normal']"),
        ("/api/v1/namespaces/production/events", "None"),
    ]
