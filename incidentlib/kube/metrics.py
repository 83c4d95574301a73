"""Resource use from the metrics API and the kubelet: the runbook's `kubectl top`, leak and pressure
checks.

Thin fetches (`sample_pods`, `fetch_disk`; pod, node and metrics lists come from
`incidentlib.kube.frames`) beside pure frame builders tested on JSON fixtures: `pod_usage_frame`,
`node_usage_frame`, `leak_suspects`, `oom_kills`, `pressure_nodes`, `pending_pods`, `disk_frame`.
CPU in millicores, memory and disk in bytes.

Leaks are fitted per container on a series of (time, working set): hours of history from Prometheus
(`service.prometheus.container_memory`), or, without it, the few distinct measurements the metrics
API gives in a short run (`container_series`), which only a fast leak shows in (`short_run_note`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..params import parse_time
from ..quantity import cpu_millicores, format_bytes, memory_bytes

NEAR_LIMIT = 0.90  # usage at 90% of the limit or more

POD_USAGE_COLUMNS = [
    "namespace",
    "pod",
    "node",
    "cpu_m",
    "memory_bytes",
    "cpu_request_m",
    "cpu_limit_m",
    "memory_request_bytes",
    "memory_limit_bytes",
    "cpu_pct_limit",
    "memory_pct_limit",
    "restarts",
    "near_limit",
]
NODE_USAGE_COLUMNS = [
    "node",
    "cpu_m",
    "memory_bytes",
    "cpu_allocatable_m",
    "memory_allocatable_bytes",
    "cpu_pct",
    "memory_pct",
    "ready",
    "pressure",
]
TREND_COLUMNS = ["sample", "time", "namespace", "pod", "memory_bytes", "cpu_m"]
SERIES_COLUMNS = ["namespace", "pod", "container", "time", "memory_bytes"]
LEAK_COLUMNS = [
    "namespace",
    "pod",
    "container",
    "growth_bytes_per_hour",
    "memory_bytes",
    "limit_bytes",
    "hours_to_limit",
    "points",
    "span_s",
    "fit_r2",
    "source",
]
"""The `leak_suspects` scrap: one row per container whose working set rises steadily (a linear fit
over the points since its last restart) and would reach its limit within the horizon; `source` says
where the points came from (prometheus or metrics API)."""
LEAK_HORIZON_H = 24.0  # a steady rise that reaches the limit within this many hours is a suspect
LEAK_MIN_R2 = 0.8  # how well a straight line must fit the points for the rise to count as steady
RESTART_DROP = 0.7  # a point below 70% of the one before starts a new container (a restart)
OOM_COLUMNS = [
    "namespace",
    "pod",
    "container",
    "restarts",
    "exit_code",
    "finished_at",
    "memory_limit_bytes",
]
DISK_COLUMNS = [
    "kind",
    "node",
    "namespace",
    "pod",
    "used_bytes",
    "capacity_bytes",
    "available_bytes",
    "used_pct",
    "volume",
]
DISK_FULL_PCT = 90.0
PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def quantity(value: str | int | float | None, *, cpu: bool = False) -> float:
    """A Kubernetes quantity as a float: bytes, or millicores when `cpu` ("250m" -> 250.0). Absent
    -> NaN."""
    v = cpu_millicores(value) if cpu else memory_bytes(value)
    return math.nan if v is None else v


# -- fetches (pods, nodes and metrics lists are the outage module's: incidentlib.kube.frames) ------


# -- pure frames ---------------------------------------------------------------------------------


def _sum(containers: Iterable[Mapping[str, Any]], section: str, key: str, *, cpu: bool) -> float:
    """Sum a resource over containers; NaN when any container lacks it (no total limit then)."""
    total = 0.0
    for c in containers:
        value = ((c.get("resources") or {}).get(section) or {}).get(key)
        if value is None:
            return math.nan
        total += quantity(value, cpu=cpu)
    return total


def _restarts(pod: Mapping[str, Any]) -> int:
    return sum(
        int(cs.get("restartCount") or 0)
        for cs in (pod.get("status") or {}).get("containerStatuses") or []
    )


def total_restarts(pods: Iterable[Mapping[str, Any]]) -> int:
    """Container restarts summed over the pods (the RESTARTS column of `kubectl get pods`, added
    up)."""
    return sum(_restarts(p) for p in pods)


def _usage(containers: Iterable[Mapping[str, Any]]) -> tuple[float, float]:
    cpu = mem = 0.0
    for c in containers:
        u = c.get("usage") or {}
        cpu += quantity(u.get("cpu", "0"), cpu=True)
        mem += quantity(u.get("memory", "0"))
    return cpu, mem


def _pct(used: float, limit: float) -> float:
    return used / limit * 100 if limit and not math.isnan(limit) and limit > 0 else math.nan


def pod_usage_frame(
    pod_metrics: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    *,
    threshold: float = NEAR_LIMIT,
) -> pd.DataFrame:
    """`kubectl top pods` against requests and limits; `near_limit` when CPU or memory use is >=
    threshold of the limit."""
    spec = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    rows = []
    for m in pod_metrics:
        ns, name = m["metadata"].get("namespace", ""), m["metadata"]["name"]
        pod = spec.get((ns, name), {})
        containers = (pod.get("spec") or {}).get("containers") or []
        cpu, mem = _usage(m.get("containers") or [])
        cpu_lim = _sum(containers, "limits", "cpu", cpu=True) if containers else math.nan
        mem_lim = _sum(containers, "limits", "memory", cpu=False) if containers else math.nan
        cpu_pct, mem_pct = _pct(cpu, cpu_lim), _pct(mem, mem_lim)
        rows.append(
            {
                "namespace": ns,
                "pod": name,
                "node": (pod.get("spec") or {}).get("nodeName", ""),
                "cpu_m": cpu,
                "memory_bytes": mem,
                "cpu_request_m": _sum(containers, "requests", "cpu", cpu=True)
                if containers
                else math.nan,
                "cpu_limit_m": cpu_lim,
                "memory_request_bytes": _sum(containers, "requests", "memory", cpu=False)
                if containers
                else math.nan,
                "memory_limit_bytes": mem_lim,
                "cpu_pct_limit": cpu_pct,
                "memory_pct_limit": mem_pct,
                "restarts": _restarts(pod),
                "near_limit": bool((cpu_pct >= threshold * 100) or (mem_pct >= threshold * 100)),
            }
        )
    df = pd.DataFrame(rows, columns=POD_USAGE_COLUMNS).astype(
        {"restarts": "int64", "near_limit": "bool"}
    )
    return df.sort_values(
        ["memory_pct_limit", "memory_bytes"], ascending=False, na_position="last", kind="stable"
    ).reset_index(drop=True)


def near_limit(top_pods: pd.DataFrame) -> pd.DataFrame:
    """The pods at 90% of a limit or more."""
    return top_pods[top_pods["near_limit"]].reset_index(drop=True)


def _conditions(node: Mapping[str, Any]) -> dict[str, str]:
    return {
        c["type"]: c.get("status", "Unknown")
        for c in (node.get("status") or {}).get("conditions") or []
    }


def node_usage_frame(
    node_metrics: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]]
) -> pd.DataFrame:
    """`kubectl top nodes` (percentages of allocatable), readiness and the pressure conditions that
    are True."""
    usage = {m["metadata"]["name"]: _usage([m]) for m in node_metrics}
    rows = []
    for n in nodes:
        name = n["metadata"]["name"]
        alloc = (n.get("status") or {}).get("allocatable") or {}
        cpu_a, mem_a = quantity(alloc.get("cpu"), cpu=True), quantity(alloc.get("memory"))
        cpu, mem = usage.get(name, (math.nan, math.nan))
        cond = _conditions(n)
        rows.append(
            {
                "node": name,
                "cpu_m": cpu,
                "memory_bytes": mem,
                "cpu_allocatable_m": cpu_a,
                "memory_allocatable_bytes": mem_a,
                "cpu_pct": _pct(cpu, cpu_a),
                "memory_pct": _pct(mem, mem_a),
                "ready": cond.get("Ready") == "True",
                "pressure": ",".join(c for c in PRESSURE_CONDITIONS if cond.get(c) == "True"),
            }
        )
    return pd.DataFrame(rows, columns=NODE_USAGE_COLUMNS).astype({"ready": "bool"})


def pressure_nodes(nodes: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Nodes with a pressure condition True (or not Ready), with the condition's reason and
    message."""
    rows = []
    for n in nodes:
        for c in (n.get("status") or {}).get("conditions") or []:
            bad = (c["type"] in PRESSURE_CONDITIONS and c.get("status") == "True") or (
                c["type"] == "Ready" and c.get("status") != "True"
            )
            if bad:
                rows.append(
                    {
                        "node": n["metadata"]["name"],
                        "condition": c["type"],
                        "status": c.get("status"),
                        "reason": c.get("reason", ""),
                        "message": c.get("message", ""),
                        "since": c.get("lastTransitionTime", ""),
                    }
                )
    return pd.DataFrame(rows, columns=["node", "condition", "status", "reason", "message", "since"])


def memory_trend(samples: Iterable[tuple[datetime, Iterable[Mapping[str, Any]]]]) -> pd.DataFrame:
    """Long frame of memory per pod per sample. The metrics' own `timestamp` is the time when
    present (metrics-server refreshes every ~15 s; a repeated timestamp is the same measurement and
    is dropped)."""
    rows = []
    for i, (read_at, items) in enumerate(samples):
        for m in items:
            ts = parse_time(m.get("timestamp")) or read_at
            cpu, mem = _usage(m.get("containers") or [])
            rows.append(
                {
                    "sample": i,
                    "time": pd.Timestamp(ts).tz_convert("UTC")
                    if pd.Timestamp(ts).tzinfo
                    else pd.Timestamp(ts, tz="UTC"),
                    "namespace": m["metadata"].get("namespace", ""),
                    "pod": m["metadata"]["name"],
                    "memory_bytes": mem,
                    "cpu_m": cpu,
                }
            )
    df = pd.DataFrame(rows, columns=TREND_COLUMNS)
    if df.empty:
        return df.astype({"sample": "int64", "memory_bytes": "float64", "cpu_m": "float64"})
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.drop_duplicates(["namespace", "pod", "time"]).reset_index(drop=True)


def container_series(
    samples: Iterable[tuple[datetime, Iterable[Mapping[str, Any]]]],
) -> pd.DataFrame:
    """Each container's working set per distinct measurement of the metrics API (SERIES_COLUMNS):
    the metrics' own `timestamp` is the time (the read time when absent), and a repeated timestamp
    is the same measurement, kept once."""
    rows = []
    for read_at, items in samples:
        for m in items:
            ts = pd.Timestamp(parse_time(m.get("timestamp")) or read_at)
            for c in m.get("containers") or []:
                rows.append(
                    {
                        "namespace": m["metadata"].get("namespace", ""),
                        "pod": m["metadata"]["name"],
                        "container": c.get("name", ""),
                        "time": ts if ts.tzinfo else ts.tz_localize("UTC"),
                        "memory_bytes": quantity((c.get("usage") or {}).get("memory", "0")),
                    }
                )
    df = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df["memory_bytes"] = df["memory_bytes"].astype("float64")
    return df.drop_duplicates(["namespace", "pod", "container", "time"]).reset_index(drop=True)


def container_limits(pods: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], float]:
    """{(namespace, pod, container): memory limit in bytes} from the pods' specs (a container
    without a limit is left out)."""
    out = {}
    for p in pods:
        meta = p.get("metadata") or {}
        for c in (p.get("spec") or {}).get("containers") or []:
            limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
            if limit is not None:
                out[(meta.get("namespace", ""), meta.get("name", ""), c.get("name", ""))] = (
                    quantity(limit)
                )
    return out


KEYS = ["namespace", "pod", "container"]


def _since_restart(series: pd.DataFrame) -> pd.DataFrame:
    """Each container's points since its last restart (a point below RESTART_DROP of the one
    before starts a new container), sorted by time, one per time."""
    df = series.dropna(subset=["memory_bytes"]).sort_values([*KEYS, "time"], kind="stable")
    df = df.drop_duplicates([*KEYS, "time"])
    groups = [df[k] for k in KEYS]
    prev = df.groupby(groups, sort=False)["memory_bytes"].shift()
    restart = (df["memory_bytes"] < RESTART_DROP * prev).astype("int64")
    segment = restart.groupby(groups, sort=False).cumsum()
    return df[segment == segment.groupby(groups, sort=False).transform("max")]


def growth_fits(series: pd.DataFrame) -> pd.DataFrame:
    """A least-squares line per container through (seconds, bytes) over its points since its last
    restart, vectorized: points, span_s, growth_bytes_per_hour, fit_r2 (R², 0 for a flat line) and
    memory_bytes (the last point), indexed by namespace, pod, container."""
    df = _since_restart(series)
    if df.empty:
        return pd.DataFrame(
            columns=["points", "span_s", "memory_bytes", "growth_bytes_per_hour", "fit_r2"]
        )
    df = df.assign(time=pd.to_datetime(df["time"], utc=True))
    groups = [df[k] for k in KEYS]
    by = df.groupby(groups, sort=True)
    secs = (df["time"] - by["time"].transform("min")).dt.total_seconds()
    tc = secs - secs.groupby(groups, sort=True).transform("mean")
    yc = df["memory_bytes"] - by["memory_bytes"].transform("mean")
    sums = pd.DataFrame({"tt": tc * tc, "ty": tc * yc, "yy": yc * yc}).groupby(groups).sum()
    out = pd.DataFrame(
        {
            "points": by.size(),
            "span_s": secs.groupby(groups, sort=True).max(),
            "memory_bytes": by["memory_bytes"].last(),
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(sums["tt"] > 0, sums["ty"] / sums["tt"], 0.0)
        r2 = np.where(
            (sums["tt"] > 0) & (sums["yy"] > 0),
            sums["ty"] ** 2 / (sums["tt"] * sums["yy"]),
            0.0,
        )
    out["growth_bytes_per_hour"] = slope * 3600
    out["fit_r2"] = r2
    return out


def leak_suspects(
    series: pd.DataFrame,
    limits: Mapping[tuple[str, str, str], float] | None = None,
    *,
    horizon_h: float = LEAK_HORIZON_H,
    min_points: int = 3,
    min_r2: float = LEAK_MIN_R2,
    source: str = "",
) -> pd.DataFrame:
    """Containers whose working set rises steadily (a straight line fits the points since their
    last restart with R² >= `min_r2`, growing at least 1 MiB and 1% of its size per hour) and would
    reach its limit within `horizon_h` hours at that pace; one without a limit counts when it grows
    5% of its size per hour or more. LEAK_COLUMNS, soonest at the limit first."""
    fits = growth_fits(series)
    if fits.empty:
        return pd.DataFrame(columns=LEAK_COLUMNS).astype(_LEAK_TYPES)
    fits["limit_bytes"] = [float((limits or {}).get(k, math.nan)) for k in fits.index]
    per_hour, now, limit = fits["growth_bytes_per_hour"], fits["memory_bytes"], fits["limit_bytes"]
    fits["hours_to_limit"] = ((limit - now) / per_hour.where(per_hour > 0)).clip(lower=0.0)
    steady = (
        (fits["points"] >= min_points)
        & (per_hour > 0)
        & (fits["fit_r2"] >= min_r2)
        & (per_hour >= np.maximum(float(1 << 20), 0.01 * now))
    )
    soon = fits["hours_to_limit"] <= horizon_h
    fast = limit.isna() & (per_hour >= 0.05 * now)
    found = fits[steady & (soon | fast)].reset_index()
    found["source"] = source
    found["fit_r2"] = found["fit_r2"].round(4)
    found["span_s"] = found["span_s"].astype("float64")
    return (
        found[LEAK_COLUMNS]
        .astype(_LEAK_TYPES)
        .sort_values("hours_to_limit", na_position="last", kind="stable")
        .reset_index(drop=True)
    )


_LEAK_TYPES = {
    "growth_bytes_per_hour": "float64",
    "memory_bytes": "float64",
    "limit_bytes": "float64",
    "hours_to_limit": "float64",
    "points": "int64",
    "span_s": "float64",
    "fit_r2": "float64",
}


def short_run_note(series: pd.DataFrame, *, resolution_s: float) -> str:
    """What a short run of the metrics API can tell about leaks, in numbers: how many distinct
    measurements over how long, and the smallest growth per hour that shows in so short a span."""
    if series.empty:
        return "no memory measurement from the metrics API: no leak can be judged"
    per = series.groupby(["namespace", "pod", "container"])["time"]
    points = int(per.nunique().max())
    span = float((per.max() - per.min()).dt.total_seconds().max())
    if points < 2 or span <= 0:
        return (
            f"only {points} distinct measurement(s) from the metrics API (it measures every "
            f"{resolution_s:g} s): no growth can be judged; give prometheus_url to fit the "
            "containers' memory over the incident window"
        )
    smallest = (1 << 20) / span * 3600  # 1 MiB over the span, per hour
    return (
        f"{points} distinct measurements over {span:.0f} s from the metrics API (it measures every "
        f"{resolution_s:g} s): only a fast leak shows in so short a run (about "
        f"{format_bytes(smallest)}/h or more); give prometheus_url to fit the containers' memory "
        "over the incident window"
    )


def oom_kills(pods: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Containers whose current or last state was terminated by OOMKilled, with restarts and
    limit."""
    rows = []
    for p in pods:
        limits = {
            c["name"]: ((c.get("resources") or {}).get("limits") or {}).get("memory")
            for c in (p.get("spec") or {}).get("containers") or []
        }
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            for state in (
                (cs.get("lastState") or {}).get("terminated"),
                (cs.get("state") or {}).get("terminated"),
            ):
                if state and state.get("reason") == "OOMKilled":
                    rows.append(
                        {
                            "namespace": p["metadata"]["namespace"],
                            "pod": p["metadata"]["name"],
                            "container": cs["name"],
                            "restarts": int(cs.get("restartCount") or 0),
                            "exit_code": int(state.get("exitCode", 137)),
                            "finished_at": state.get("finishedAt", ""),
                            "memory_limit_bytes": quantity(limits.get(cs["name"])),
                        }
                    )
                    break
    return pd.DataFrame(rows, columns=OOM_COLUMNS)


def pending_pods(pods: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Pods stuck Pending with the scheduler's reason (e.g. `0/3 nodes are available: Insufficient
    memory`)."""
    rows = []
    for p in pods:
        st = p.get("status") or {}
        if st.get("phase") != "Pending":
            continue
        cond: Mapping[str, Any] = next(
            (c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled"), {}
        )
        rows.append(
            {
                "namespace": p["metadata"]["namespace"],
                "pod": p["metadata"]["name"],
                "reason": cond.get("reason", ""),
                "message": cond.get("message", ""),
            }
        )
    return pd.DataFrame(rows, columns=["namespace", "pod", "reason", "message"])


def _fs(
    kind: str, node: str, ns: str, pod: str, fs: Mapping[str, Any] | None, volume: str = ""
) -> dict[str, Any]:
    fs = fs or {}
    used, cap, avail = (
        float(fs.get(k, math.nan)) for k in ("usedBytes", "capacityBytes", "availableBytes")
    )
    return {
        "kind": kind,
        "node": node,
        "namespace": ns,
        "pod": pod,
        "used_bytes": used,
        "capacity_bytes": cap,
        "available_bytes": avail,
        "used_pct": _pct(used, cap),
        "volume": volume,
    }


def disk_frame(
    summaries: Iterable[Mapping[str, Any]], *, namespace: str | None = None
) -> pd.DataFrame:
    """Disk per node (root fs) and per pod (ephemeral storage) from kubelet summaries; pods of
    `namespace` only."""
    rows = []
    for s in summaries:
        node = (s.get("node") or {}).get("nodeName", "")
        rows.append(_fs("node", node, "", "", (s.get("node") or {}).get("fs")))
        for p in s.get("pods") or []:
            ref = p.get("podRef") or {}
            if namespace and ref.get("namespace") != namespace:
                continue
            rows.append(
                _fs(
                    "pod",
                    node,
                    ref.get("namespace", ""),
                    ref.get("name", ""),
                    p.get("ephemeral-storage"),
                )
            )
            for v in p.get("volume") or []:  # persistent volumes (and others the kubelet measures)
                pvc = (v.get("pvcRef") or {}).get("name")
                name = f"pvc/{pvc}" if pvc else str(v.get("name", ""))
                rows.append(
                    _fs("volume", node, ref.get("namespace", ""), ref.get("name", ""), v, name)
                )
    return pd.DataFrame(rows, columns=DISK_COLUMNS)


def disk_findings(disk: pd.DataFrame, *, threshold: float = DISK_FULL_PCT) -> list[dict[str, str]]:
    """A finding for each node file system, pod ephemeral storage or volume above `threshold`%."""
    out = []
    for _, r in disk[disk["used_pct"] > threshold].iterrows():
        where = (
            f"node {r['node']}"
            if r["kind"] == "node"
            else f"{r['volume'] or 'ephemeral storage'} of pod {r['namespace']}/{r['pod']}"
        )
        out.append(
            {
                "severity": "SEV2" if r["used_pct"] >= 97 else "SEV3",
                "title": f"{where} is {r['used_pct']:.0f}% full",
                "detail": f"{r['used_bytes'] / 2**30:.1f} GiB used of "
                f"{r['capacity_bytes'] / 2**30:.1f} GiB (kubelet stats/summary)",
                "next_step": "free space (old logs, WAL, temp files) or grow the volume before "
                "writes fail",
            }
        )
    return out


def findings(
    *,
    top_pods: pd.DataFrame | None = None,
    leaks: pd.DataFrame | None = None,
    ooms: pd.DataFrame | None = None,
    pressure: pd.DataFrame | None = None,
    pending: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Findings (severity, title, detail, next_step; root_cause for a leak or an OOM kill) from the
    resource frames, worst first."""
    out: list[dict[str, Any]] = []
    for r in (pressure if pressure is not None else pd.DataFrame()).itertuples():
        out.append(
            {
                "severity": "SEV2",
                "title": f"node {r.node} under {r.condition}",
                "detail": f"{r.condition}={r.status} since {r.since}: {r.message or r.reason}",
                "next_step": f"kubectl describe node {r.node}; move or stop the heaviest pods, "
                "add capacity",
            }
        )
    for r in (ooms if ooms is not None else pd.DataFrame()).itertuples():
        out.append(
            {
                "severity": "SEV2",
                "title": f"pod {r.pod} OOMKilled ({r.restarts} restarts)",
                "detail": f"container {r.container} was killed by the kernel (exit {r.exit_code}) "
                "at "
                f"{r.finished_at}; memory limit {format_bytes(r.memory_limit_bytes) or 'none'}",
                "next_step": "check for a leak (memory trend below); raise the memory limit if "
                "the load is real",
                "root_cause": True,
            }
        )
    for r in (leaks if leaks is not None else pd.DataFrame()).itertuples():
        at_limit = (
            "no memory limit: it grows until the node runs short"
            if math.isnan(r.limit_bytes)
            else f"at this pace it reaches its {format_bytes(r.limit_bytes)} limit in about "
            f"{r.hours_to_limit:.1f} h"
        )
        out.append(
            {
                "severity": "SEV3",
                "title": f"memory leak suspect: container {r.container} of pod {r.pod}",
                "detail": "its working set rose steadily by "
                f"{format_bytes(r.growth_bytes_per_hour)}/h to {format_bytes(r.memory_bytes)} "
                f"({r.points} points over "
                f"{r.span_s / 60:.0f} min from {r.source or 'the metrics'}, fit R² "
                f"{r.fit_r2:.2f}); {at_limit}",
                "next_step": "take a heap profile of that container; a rollout restart or a "
                "higher limit buys time, not a fix",
                "root_cause": True,
            }
        )
    if top_pods is not None:
        for r in top_pods[top_pods["near_limit"]].itertuples():
            what, using = [], []
            if r.memory_pct_limit >= NEAR_LIMIT * 100:
                what.append(f"memory {r.memory_pct_limit:.0f}%")
                using.append(
                    f"{format_bytes(r.memory_bytes)} of {format_bytes(r.memory_limit_bytes)} memory"
                )
            if r.cpu_pct_limit >= NEAR_LIMIT * 100:
                what.append(f"CPU {r.cpu_pct_limit:.0f}%")
                using.append(f"{r.cpu_m:.0f}m of {r.cpu_limit_m:.0f}m CPU")
            out.append(
                {
                    "severity": "SEV3",
                    "title": f"pod {r.pod} near its limit ({', '.join(what)})",
                    "detail": f"using {', '.join(using)} (threshold {NEAR_LIMIT:.0%} of the limit)",
                    "next_step": "scale out, or raise the limit after checking it is not a leak",
                }
            )
    if pending is not None and len(pending):
        reasons = "; ".join(sorted(set(pending["message"].fillna("").astype(str)) - {""}))[:300]
        out.append(
            {
                "severity": "SEV3",
                "title": f"{len(pending)} pod(s) Pending",
                "detail": f"{', '.join(pending['pod'][:5])}: {reasons or 'not scheduled'}",
                "next_step": "free or add capacity (requests do not fit the nodes)",
            }
        )
    return out


def _pct_text(v: float) -> str:
    return "" if math.isnan(v) else f"{v:.0f}%"


def top_pods_view(top_pods: pd.DataFrame) -> pd.DataFrame:
    """`kubectl top pods` as a person reads it: CPU in m, memory in Mi, percentages of the
    limits."""
    return pd.DataFrame(
        {
            "pod": top_pods["pod"],
            "node": top_pods["node"],
            "cpu": top_pods["cpu_m"].map(lambda v: f"{v:.0f}m"),
            "cpu_of_limit": top_pods["cpu_pct_limit"].map(_pct_text),
            "memory": top_pods["memory_bytes"].map(format_bytes),
            "memory_of_limit": top_pods["memory_pct_limit"].map(_pct_text),
            "restarts": top_pods["restarts"],
            "near_limit": top_pods["near_limit"].map({True: "YES", False: ""}),
        }
    )


def top_nodes_view(top_nodes: pd.DataFrame) -> pd.DataFrame:
    """`kubectl top nodes` as a person reads it, with readiness and pressure."""
    return pd.DataFrame(
        {
            "node": top_nodes["node"],
            "cpu": top_nodes["cpu_m"].map(lambda v: "" if math.isnan(v) else f"{v:.0f}m"),
            "cpu%": top_nodes["cpu_pct"].map(_pct_text),
            "memory": top_nodes["memory_bytes"].map(format_bytes),
            "memory%": top_nodes["memory_pct"].map(_pct_text),
            "ready": top_nodes["ready"],
            "pressure": top_nodes["pressure"],
        }
    )
