"""The database's pods on Kubernetes: status, restarts, last termination, and the tail of their
logs.

Pods are listed by a label selector (`app=postgres`) and shown with the outage runbook's
`pods_frame` (kubectl's columns); log lines are redacted before they reach a table."""

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


def db_pods_frame(items: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Raw pods -> kubectl's columns plus the last termination (reason, exit code)."""
    return pods_frame(items or [])[DB_POD_COLUMNS]


def fetch_db_logs(
    cluster: Cluster, pods: list[dict[str, Any]], *, tail: int = 20, timeout: float = 10
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
