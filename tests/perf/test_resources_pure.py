"""Resource frames on small JSON fixtures: limits, leaks, OOM kills, pressure, disk."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from incidentlib.kube import metrics as r


def _pod(
    name,
    *,
    mem_limit="256Mi",
    cpu_limit="500m",
    restarts=0,
    last=None,
    phase="Running",
    node="node-1",
):
    res = {"requests": {"cpu": "100m", "memory": "128Mi"}}
    if mem_limit:
        res["limits"] = {"cpu": cpu_limit, "memory": mem_limit}
    cs = {"name": "app", "restartCount": restarts, "state": {"running": {}}}
    if last:
        cs["lastState"] = {"terminated": last}
    return {
        "metadata": {"namespace": "production", "name": name},
        "spec": {"nodeName": node, "containers": [{"name": "app", "resources": res}]},
        "status": {"phase": phase, "containerStatuses": [cs]},
    }


def _pm(name, mem, cpu="50m", ts=None):
    m = {
        "metadata": {"namespace": "production", "name": name},
        "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": mem}}],
    }
    if ts:
        m["timestamp"] = ts
    return m


def test_quantity_units() -> None:
    assert r.quantity("250m", cpu=True) == 250.0
    assert r.quantity("123456789n", cpu=True) == pytest.approx(123.456789)
    assert r.quantity("2", cpu=True) == 2000.0
    assert r.quantity("64Mi") == 64 * 2**20
    assert math.isnan(r.quantity(None))


def test_pod_usage_against_limits_flags_90_percent() -> None:
    pods = [_pod("hot"), _pod("calm"), _pod("nolimit", mem_limit=None)]
    metrics = [
        _pm("hot", "240Mi"),
        _pm("calm", "100Mi", cpu="460m"),
        _pm("nolimit", "900Mi"),
        _pm("cold", "10Mi"),
    ]
    df = r.pod_usage_frame(metrics, pods)
    assert list(df.columns) == r.POD_USAGE_COLUMNS
    by = df.set_index("pod")
    assert by.loc["hot", "memory_pct_limit"] == pytest.approx(240 / 256 * 100)
    assert by.loc["hot", "near_limit"] and by.loc["calm", "near_limit"]  # cpu 460m of 500m = 92%
    assert not by.loc["nolimit", "near_limit"] and math.isnan(
        by.loc["nolimit", "memory_limit_bytes"]
    )
    assert df["pod"].iloc[0] == "hot"
    assert r.near_limit(df)["pod"].tolist() == ["hot", "calm"]


def test_leak_suspect_needs_steady_growth() -> None:
    t0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    samples = []
    for i in range(4):
        ts = t0 + timedelta(seconds=30 * i)
        samples.append(
            (
                ts,
                [
                    _pm("leaky", f"{100 + 5 * i}Mi"),
                    _pm("flat", "100Mi"),
                    _pm("wobbly", f"{100 + (i % 2) * 20}Mi"),
                ],
            )
        )
    trend = r.memory_trend(samples)
    assert list(trend.columns) == r.TREND_COLUMNS and len(trend) == 12
    top = r.pod_usage_frame(samples[-1][1], [_pod("leaky"), _pod("flat"), _pod("wobbly")])
    leaks = r.leak_suspects(trend, top)
    assert r.trend_note(trend, samples=4) is None
    assert leaks["pod"].tolist() == ["leaky"]
    row = leaks.iloc[0]
    assert row["growth_bytes_per_min"] == pytest.approx(10 * 2**20)  # 15 Mi over 1.5 min
    assert row["minutes_to_limit"] == pytest.approx((256 - 115) / 10)


def test_repeated_metrics_timestamp_is_one_measurement() -> None:
    t0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    same = "2026-11-27T09:00:00Z"
    trend = r.memory_trend(
        [(t0 + timedelta(seconds=i), [_pm("p", f"{100 + i}Mi", ts=same)]) for i in range(3)]
    )
    assert len(trend) == 1
    assert r.leak_suspects(trend).empty
    assert r.trend_note(trend, samples=3).startswith(
        "only 1 distinct measurement(s) in 3 sample(s)"
    )


def test_oom_kills_and_pending_and_pressure() -> None:
    oom = {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-11-27T08:59:00Z"}
    pods = [
        _pod("worker-1", restarts=4, last=oom),
        _pod("web-1"),
        {
            **_pod("big-1", phase="Pending"),
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient memory.",
                    }
                ],
            },
        },
    ]
    kills = r.oom_kills(pods)
    assert kills[["pod", "container", "restarts", "exit_code"]].values.tolist() == [
        ["worker-1", "app", 4, 137]
    ]
    assert kills["memory_limit_bytes"].iloc[0] == 256 * 2**20
    pending = r.pending_pods(pods)
    assert pending[["pod", "reason"]].values.tolist() == [["big-1", "Unschedulable"]]
    nodes = [
        {
            "metadata": {"name": "node-2"},
            "status": {
                "allocatable": {"cpu": "2", "memory": "4Gi"},
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {
                        "type": "MemoryPressure",
                        "status": "True",
                        "reason": "KubeletHasInsufficientMemory",
                        "message": "kubelet has insufficient memory available",
                    },
                ],
            },
        },
        {
            "metadata": {"name": "node-1"},
            "status": {
                "allocatable": {"cpu": "2", "memory": "4Gi"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
    ]
    pressure = r.pressure_nodes(nodes)
    assert pressure[["node", "condition", "reason"]].values.tolist() == [
        ["node-2", "MemoryPressure", "KubeletHasInsufficientMemory"]
    ]
    top = r.node_usage_frame(
        [{"metadata": {"name": "node-2"}, "usage": {"cpu": "1500m", "memory": "3Gi"}}], nodes
    )
    assert list(top.columns) == r.NODE_USAGE_COLUMNS
    assert top.set_index("node").loc["node-2", "memory_pct"] == 75.0
    assert top.set_index("node").loc["node-2", "pressure"] == "MemoryPressure"
    assert math.isnan(top.set_index("node").loc["node-1", "cpu_pct"])


def test_disk_frame_from_kubelet_summary() -> None:
    summary = {
        "node": {
            "nodeName": "node-1",
            "fs": {"usedBytes": 90, "capacityBytes": 100, "availableBytes": 10},
        },
        "pods": [
            {
                "podRef": {"name": "web-1", "namespace": "production"},
                "ephemeral-storage": {"usedBytes": 5, "capacityBytes": 100, "availableBytes": 10},
            },
            {"podRef": {"name": "dns", "namespace": "kube-system"}, "ephemeral-storage": {}},
        ],
    }
    df = r.disk_frame([summary], namespace="production")
    assert list(df.columns) == r.DISK_COLUMNS
    assert df[["kind", "pod", "used_pct"]].values.tolist() == [
        ["node", "", 90.0],
        ["pod", "web-1", 5.0],
    ]


def test_findings_and_views_read_well() -> None:
    pods = [_pod("hot", cpu_limit=None)]
    pods[0]["spec"]["containers"][0]["resources"]["limits"] = {"memory": "256Mi"}
    top = r.pod_usage_frame([_pm("hot", "250Mi", cpu="350m")], pods)
    found = r.findings(top_pods=top)
    assert found == [
        {
            "severity": "SEV3",
            "title": "pod hot near its limit (memory 98%)",
            "detail": "using 250Mi of 256Mi memory (threshold 90% of the limit)",
            "next_step": "scale out, or raise the limit after checking it is not a leak",
        }
    ]
    view = r.top_pods_view(top)
    assert view.iloc[0].tolist() == ["hot", "node-1", "350m", "", "250Mi", "98%", 0, "YES"]
