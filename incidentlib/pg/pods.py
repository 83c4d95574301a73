"""The database's pods on Kubernetes: status, restarts, last termination, CPU and memory against
their requests and limits, and the tail of their logs.

Pods are listed by a label selector (`app=postgres`) and shown with the outage runbook's
`pods_frame` (kubectl's columns); resource use comes from the metrics API (`kubectl top`), per
container; log lines are redacted before they reach a table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import KubeAPIError
from ..kube.frames import pods_frame
from ..kube.reads import fetch_log
from ..redact import redact_text

if TYPE_CHECKING:
    import pandas as pd

    from ..kube.client import Cluster

DB_POD_COLUMNS = [
    "name",
    "ready",
    "status",
    "restarts",
    "last_restart",
    "age",
    "node",
    "last_termination_reason",
    "exit_code",
    "waiting_reason",
    "images",
]
LOG_COLUMNS = ["pod", "container", "previous", "line"]
LOG_TAIL = 50  # the runbook's `kubectl logs -l app=postgres --tail=50`
RESOURCE_COLUMNS = [
    "pod",
    "container",
    "cpu_millicores",
    "cpu_request_millicores",
    "cpu_limit_millicores",
    "cpu_pct_of_limit",
    "memory_bytes",
    "memory_request_bytes",
    "memory_limit_bytes",
    "memory_pct_of_limit",
]
NEAR_LIMIT_PCT = 90.0  # use at 90% of a limit or more: throttled (CPU) or about to be OOMKilled


def db_resources_frame(
    pod_metrics: list[dict[str, Any]] | None, pods: list[dict[str, Any]] | None
) -> pd.DataFrame:
    """The database pods' containers: CPU (millicores) and memory (bytes) in use, from the metrics
    API, against their requests and limits from the pod spec (NaN where none is set), and the use
    as a percentage of the limit. Only the pods in `pods` (the database's); fullest memory first."""
    import math

    import pandas as pd

    from ..quantity import cpu_millicores, memory_bytes

    def number(v: float | None) -> float:
        return math.nan if v is None else float(v)

    specs = {
        (p.get("metadata") or {}).get("name"): {
            c.get("name"): c.get("resources") or {}
            for c in (p.get("spec") or {}).get("containers") or []
        }
        for p in pods or []
    }
    rows = []
    for m in pod_metrics or []:
        name = (m.get("metadata") or {}).get("name")
        if name not in specs:
            continue
        for c in m.get("containers") or []:
            res = specs[name].get(c.get("name"), {})
            req, lim, use = res.get("requests") or {}, res.get("limits") or {}, c.get("usage") or {}
            cpu, mem = (
                number(cpu_millicores(use.get("cpu"))),
                number(memory_bytes(use.get("memory"))),
            )
            cpu_lim = number(cpu_millicores(lim.get("cpu")))
            mem_lim = number(memory_bytes(lim.get("memory")))
            rows.append(
                {
                    "pod": name,
                    "container": c.get("name"),
                    "cpu_millicores": cpu,
                    "cpu_request_millicores": number(cpu_millicores(req.get("cpu"))),
                    "cpu_limit_millicores": cpu_lim,
                    "cpu_pct_of_limit": round(100 * cpu / cpu_lim, 1) if cpu_lim > 0 else math.nan,
                    "memory_bytes": mem,
                    "memory_request_bytes": number(memory_bytes(req.get("memory"))),
                    "memory_limit_bytes": mem_lim,
                    "memory_pct_of_limit": round(100 * mem / mem_lim, 1)
                    if mem_lim > 0
                    else math.nan,
                }
            )
    df = pd.DataFrame(rows, columns=RESOURCE_COLUMNS)
    df = df.astype({c: "float64" for c in RESOURCE_COLUMNS[2:]})
    return df.sort_values(
        "memory_pct_of_limit", ascending=False, na_position="last", kind="stable"
    ).reset_index(drop=True)


def resources_view(resources: pd.DataFrame) -> pd.DataFrame:
    """The resources as `kubectl top` shows them (millicores, Mi/Gi), with the limits beside."""
    import pandas as pd

    from ..quantity import format_bytes

    def cpu(v: float) -> str:
        return "" if v != v else f"{v:.0f}m"

    def pct(v: float) -> str:
        return "" if v != v else f"{v:.0f}%"

    return pd.DataFrame(
        {
            "pod": resources["pod"],
            "container": resources["container"],
            "cpu": [cpu(v) for v in resources["cpu_millicores"]],
            "cpu request": [cpu(v) for v in resources["cpu_request_millicores"]],
            "cpu limit": [cpu(v) or "none" for v in resources["cpu_limit_millicores"]],
            "cpu of limit": [pct(v) for v in resources["cpu_pct_of_limit"]],
            "memory": [format_bytes(v) for v in resources["memory_bytes"]],
            "memory request": [format_bytes(v) for v in resources["memory_request_bytes"]],
            "memory limit": [format_bytes(v) or "none" for v in resources["memory_limit_bytes"]],
            "memory of limit": [pct(v) for v in resources["memory_pct_of_limit"]],
        }
    )


def db_pods_frame(items: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Raw pods -> kubectl's columns plus the last termination (reason, exit code)."""
    return pods_frame(items or [])[DB_POD_COLUMNS]


def fetch_db_logs(
    cluster: Cluster, pods: list[dict[str, Any]], *, tail: int = LOG_TAIL, timeout: float = 10
) -> pd.DataFrame:
    """The last `tail` lines of each container (and of its previous run when it restarted),
    redacted."""
    import pandas as pd

    rows = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        restarted = {
            cs.get("name") for cs in status.get("containerStatuses") or [] if cs.get("restartCount")
        }
        for c in (pod.get("spec") or {}).get("containers") or []:
            for previous in (False, True) if c["name"] in restarted else (False,):
                try:
                    text = fetch_log(
                        cluster,
                        meta.get("namespace", ""),
                        meta.get("name", ""),
                        c["name"],
                        tail=tail,
                        previous=previous,
                        timeout=timeout,
                    )
                except KubeAPIError as e:
                    if previous:  # the previous container's log may be gone already
                        continue
                    text = f"(logs unavailable: {e})"
                rows += [
                    {
                        "pod": meta.get("name"),
                        "container": c["name"],
                        "previous": previous,
                        "line": redact_text(ln),
                    }
                    for ln in text.splitlines()
                    if ln.strip()
                ]
    return pd.DataFrame(rows, columns=LOG_COLUMNS)


def logs_text(logs: pd.DataFrame) -> str:
    """The log tails as a person reads them: a header per container (and previous run), then its
    lines."""
    if logs is None or len(logs) == 0:
        return "(no log lines)"
    out: list[str] = []
    for (pod, container, previous), grp in logs.groupby(
        ["pod", "container", "previous"], sort=False
    ):
        out.append(f"--- {pod}/{container}{' (previous run)' if previous else ''}")
        out.extend(str(line) for line in grp["line"])
    return "\n".join(out)


def resource_findings(resources: pd.DataFrame | None) -> list[dict[str, Any]]:
    """A database container at 90% of its memory limit (SEV3: the next spike is an OOM kill, every
    connection drops) or of its CPU limit (SEV3: throttled, every query slower)."""
    out: list[dict[str, Any]] = []
    for r in resources.to_dict("records") if resources is not None else []:
        where = f"{r['pod']}/{r['container']}"
        mem, cpu = r.get("memory_pct_of_limit"), r.get("cpu_pct_of_limit")
        if mem == mem and mem is not None and mem >= NEAR_LIMIT_PCT:
            out.append(
                {
                    "severity": "SEV3",
                    "title": f"database container {where} at {mem:.0f}% of its memory limit",
                    "detail": f"{r['memory_bytes'] / 2**20:.0f}Mi of "
                    f"{r['memory_limit_bytes'] / 2**20:.0f}Mi: the next spike gets it OOMKilled "
                    "and every connection drops",
                    "next_step": "give it more memory (mitigation='resources', db_memory=..., "
                    "apply=True), or find what holds memory (connections, work_mem)",
                }
            )
        if cpu == cpu and cpu is not None and cpu >= NEAR_LIMIT_PCT:
            out.append(
                {
                    "severity": "SEV3",
                    "title": f"database container {where} at {cpu:.0f}% of its CPU limit",
                    "detail": f"{r['cpu_millicores']:.0f}m of {r['cpu_limit_millicores']:.0f}m: "
                    "it is throttled, every query waits for CPU",
                    "next_step": "give it more CPU (mitigation='resources', db_cpu=..., "
                    "apply=True), or find the statements that burn it (slow statements by total "
                    "time)",
                }
            )
    return out
