"""Resource frames on small JSON fixtures: limits, leaks, OOM kills, pressure, disk."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
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
                    _pm("leaky", f"{100 + 5 * i}Mi", ts=ts.isoformat()),
                    _pm("flat", "100Mi", ts=ts.isoformat()),
                    _pm("wobbly", f"{100 + (i % 2) * 20}Mi", ts=ts.isoformat()),
                ],
            )
        )
    trend = r.memory_trend(samples)
    assert list(trend.columns) == r.TREND_COLUMNS and len(trend) == 12
    series = r.container_series(samples)
    assert list(series.columns) == r.SERIES_COLUMNS and len(series) == 12
    limits = r.container_limits([_pod("leaky"), _pod("flat"), _pod("wobbly")])
    assert limits[("production", "leaky", "app")] == 256 * 2**20
    leaks = r.leak_suspects(series, limits, source="metrics API")
    assert list(leaks.columns) == r.LEAK_COLUMNS
    assert leaks[["pod", "container", "source"]].values.tolist() == [
        ["leaky", "app", "metrics API"]
    ]
    row = leaks.iloc[0]
    assert row["growth_bytes_per_hour"] == pytest.approx(600 * 2**20)  # 5 Mi per 30 s
    assert row["memory_bytes"] == 115 * 2**20 and row["limit_bytes"] == 256 * 2**20
    assert row["hours_to_limit"] == pytest.approx((256 - 115) / 600)
    assert (row["points"], row["span_s"], row["fit_r2"]) == (4, 90.0, 1.0)
    # the same rise with a limit far away is no suspect within 24 h, but is within a longer horizon
    far = {k: 100 * 2**30 for k in limits}
    assert r.leak_suspects(series, far).empty
    assert r.leak_suspects(series, far, horizon_h=1000)["pod"].tolist() == ["leaky"]
    note = r.short_run_note(series, resolution_s=15)
    assert note.startswith("4 distinct measurements over 90 s from the metrics API")
    assert "(about 40Mi/h or more)" in note


def test_leak_fit_starts_after_a_restart_and_ignores_noise() -> None:
    t0 = pd.Timestamp("2026-11-27T06:00:00Z")
    rows = []
    for i in range(120):  # two hours, one point a minute
        t = t0 + pd.Timedelta(minutes=i)
        # sawtooth: grows 2 MiB/min, OOM-killed at minute 60, starts again from 100 MiB
        grown = 100 + 2 * (i % 60)
        rows.append(("ns", "p", "leaky", t, grown * 2**20))
        rows.append(("ns", "p", "noisy", t, (300 + (7 * i % 11) - 5) * 2**20))
    series = pd.DataFrame(rows, columns=r.SERIES_COLUMNS)
    limits = {("ns", "p", "leaky"): 512 * 2**20, ("ns", "p", "noisy"): 512 * 2**20}
    leaks = r.leak_suspects(series, limits, source="prometheus")
    assert leaks["container"].tolist() == ["leaky"]
    row = leaks.iloc[0]
    assert row["points"] == 60  # the points since the restart only
    assert row["growth_bytes_per_hour"] == pytest.approx(120 * 2**20)
    assert row["hours_to_limit"] == pytest.approx((512 - 218) / 120)
    from incidentlib.notebook import charts

    data, fit, limit = charts.leak_fits(series, leaks).axes[0].get_lines()
    assert len(data.get_xdata()) == len(fit.get_xdata()) == 60  # since the restart only
    assert fit.get_ydata()[-1] == pytest.approx(218) and data.get_ydata()[-1] == 218
    assert list(limit.get_ydata()) == [512, 512]
    found = r.findings(leaks=leaks)[0]
    assert found["title"] == "memory leak suspect: container leaky of pod p"
    assert (
        found["root_cause"] is True
        and "reaches its 512Mi limit in about 2.5 h" in (found["detail"])
    )


def test_repeated_metrics_timestamp_is_one_measurement() -> None:
    t0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    same = "2026-11-27T09:00:00Z"
    samples = [(t0 + timedelta(seconds=i), [_pm("p", f"{100 + i}Mi", ts=same)]) for i in range(3)]
    trend = r.memory_trend(samples)
    assert len(trend) == 1
    series = r.container_series(samples)
    assert len(series) == 1
    assert r.leak_suspects(series).empty
    assert r.short_run_note(series, resolution_s=15).startswith(
        "only 1 distinct measurement(s) from the metrics API (it measures every 15 s)"
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
