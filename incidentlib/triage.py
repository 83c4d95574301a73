"""Triage, the runbook's first five minutes: what is broken, how bad, which notebook to run next.

Thin fetches the other modules lack (every deployment and ReplicaSet at once), the database's vital signs
through the pg_* modules, and pure builders: the last rollouts, the figures behind the severity, and the
scenario notebooks to run next with the reason. Everything else comes from `cluster.py` and `probe.py`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from .cluster import CHANGE_CAUSE, REVISION, _template_images
from .probe import ProbeResult, latency_frame, latency_summary, probe
from .severity import Severity, assess

__all__ = [
    "DEPLOYMENT_COLUMNS",
    "ROLLOUT_COLUMNS",
    "NEXT_COLUMNS",
    "fetch_deployments",
    "fetch_replicasets",
    "deployments_frame",
    "recent_rollouts_frame",
    "health_check",
    "health_figures",
    "check_database",
    "triage_figures",
    "suggest_severity",
    "next_notebooks",
    "wants_database",
    "read_all",
    "run_command",
    "record_findings",
]

DEPLOYMENT_COLUMNS = ["namespace", "name", "replicas", "ready", "available", "updated", "revision", "images"]
ROLLOUT_COLUMNS = ["namespace", "deployment", "revision", "images", "change_cause", "created", "replicas", "ready",
                   "current"]
NEXT_COLUMNS = ["notebook", "reason"]
FAILING_STATES = ("CrashLoopBackOff", "Error", "OOMKilled", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                  "Init:CrashLoopBackOff", "Init:Error", "RunContainerError")


def _apps(namespace: str | None, resource: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/{resource}" if namespace else f"/apis/apps/v1/{resource}"


def fetch_deployments(cluster: Any, namespace: str | None, *, timeout: float = 5) -> list[dict[str, Any]]:
    """Every deployment of a namespace (all namespaces when None), raw JSON."""
    return cluster.list_items(_apps(namespace, "deployments"), timeout=timeout)


def fetch_replicasets(cluster: Any, namespace: str | None, *, timeout: float = 5) -> list[dict[str, Any]]:
    """Every ReplicaSet of a namespace (all namespaces when None): the rollout history of every deployment."""
    return cluster.list_items(_apps(namespace, "replicasets"), timeout=timeout)


def deployments_frame(items: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """`kubectl get deployments`: desired, ready, available and updated replicas, revision and images."""
    rows = []
    for d in items:
        meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
        rev = (meta.get("annotations") or {}).get(REVISION)
        rows.append({
            "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
            "replicas": 1 if spec.get("replicas") is None else int(spec["replicas"]),  # the API's default
            "ready": int(status.get("readyReplicas") or 0), "available": int(status.get("availableReplicas") or 0),
            "updated": int(status.get("updatedReplicas") or 0),
            "revision": int(rev) if rev and str(rev).isdigit() else None,
            "images": ", ".join(_template_images(spec.get("template") or {})),
        })
    df = pd.DataFrame(rows, columns=DEPLOYMENT_COLUMNS)
    for col in ("replicas", "ready", "available", "updated"):
        df[col] = df[col].astype("int64")
    df["revision"] = df["revision"].astype("Int64")
    return df.sort_values(["namespace", "name"], kind="stable").reset_index(drop=True)


def _controller(meta: Mapping[str, Any], kind: str) -> str | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return str(ref.get("name"))
    return None


def recent_rollouts_frame(replicasets: Iterable[Mapping[str, Any]], *, deployments: Iterable[Mapping[str, Any]] = (),
                          limit: int = 10) -> pd.DataFrame:
    """The last rollouts (one row per ReplicaSet revision of a deployment), newest first, at most `limit`."""
    current = {((d.get("metadata") or {}).get("namespace"), (d.get("metadata") or {}).get("name")):
               ((d.get("metadata") or {}).get("annotations") or {}).get(REVISION) for d in deployments}
    rows = []
    for rs in replicasets:
        meta, spec, status = rs.get("metadata") or {}, rs.get("spec") or {}, rs.get("status") or {}
        owner = _controller(meta, "Deployment")
        rev = (meta.get("annotations") or {}).get(REVISION)
        if owner is None or not rev or not str(rev).isdigit():
            continue
        ns = meta.get("namespace", "")
        rows.append({
            "namespace": ns, "deployment": owner, "revision": int(rev),
            "images": ", ".join(_template_images(spec.get("template") or {})),
            "change_cause": (meta.get("annotations") or {}).get(CHANGE_CAUSE) or "<none>",
            "created": meta.get("creationTimestamp"), "replicas": int(spec.get("replicas") or 0),
            "ready": int(status.get("readyReplicas") or 0),
            "current": current.get((ns, owner)) == str(rev) if (ns, owner) in current else None,
        })
    df = pd.DataFrame(rows, columns=ROLLOUT_COLUMNS)
    df["created"] = pd.to_datetime(df["created"], utc=True)
    for col in ("revision", "replicas", "ready"):
        df[col] = df[col].astype("int64")
    df["current"] = df["current"].astype("boolean")
    df = df.sort_values(["created", "revision"], ascending=False, kind="stable", na_position="last")
    return df.head(limit).reset_index(drop=True)


# ------------------------------------------------------------------------------------ health check
def health_check(url: str, *, count: int = 20, timeout: float = 3.0, workers: int = 4) -> list[ProbeResult]:
    """`count` GETs of the health URL, `workers` at a time, each with its own deadline (the runbook's loop, faster)."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, count))) as pool:
        return list(pool.map(lambda _: probe(url, timeout=timeout), range(count)))


def health_figures(results: Iterable[ProbeResult]) -> dict[str, Any]:
    """health_ok (a majority of the probes answered 2xx/3xx), error_rate, p50/p95 and the first error seen."""
    results = list(results)
    if not results:
        return {}
    summary = latency_summary(latency_frame(results)).iloc[0]
    failed = [r for r in results if not r.ok]
    first = next((r.error or f"HTTP {r.status}" for r in failed), None)
    p95 = float(summary["p95_ms"])
    return {
        "health_ok": len(failed) * 2 <= len(results),
        "error_rate": float(summary["error_rate"]),
        "p50_ms": None if pd.isna(summary["p50_ms"]) else round(float(summary["p50_ms"]), 1),
        "p95_ms": None if pd.isna(p95) else round(p95, 1),
        "probes": len(results),
        "probe_failures": len(failed),
        "health_error": first,
    }


# ---------------------------------------------------------------------------------- the database
def check_database(dsn: str | None, *, connect_timeout_s: int = 3, statement_timeout_ms: int = 2000) -> dict[str, Any]:
    """Is the database reachable; its version, connections against max_connections, and who blocks whom.

    Raises DatabaseError (a clear line in the notebook) when it cannot connect."""
    from .pg import connect
    from .pg_activity import fetch_sessions, idle_in_transaction_frame, sessions_frame
    from .pg_connections import connection_summary, connections_frame, fetch_server
    from .pg_locks import blocking_frame, fetch_blocking, root_blockers

    conn = connect(dsn, connect_timeout_s=connect_timeout_s, statement_timeout_ms=statement_timeout_ms,
                   application_name="incident-runbook triage")
    try:
        server = fetch_server(conn)
        sessions = sessions_frame(fetch_sessions(conn))
        blocking = blocking_frame(fetch_blocking(conn, server_version_num=int(server.get("server_version_num") or 150000)))
    finally:
        conn.close()
    connections = connections_frame(sessions)
    summary = connection_summary(connections, server)
    roots = root_blockers(blocking)
    return {
        "server_version": server.get("server_version"),
        "connections": connections,
        "summary": summary,
        "blocking": blocking,
        "root_blockers": roots,
        "idle_in_transaction": idle_in_transaction_frame(sessions),
        "blocked_sessions": int(blocking["blocked_pid"].nunique()) if len(blocking) else 0,
    }


# ------------------------------------------------------------------------------------ the verdict
def _deployment_row(deployments: pd.DataFrame | None, namespace: str, name: str) -> Mapping[str, Any] | None:
    if deployments is None or deployments.empty:
        return None
    hit = deployments[(deployments["namespace"] == namespace) & (deployments["name"] == name)]
    return hit.iloc[0].to_dict() if len(hit) else None


def triage_figures(*, namespace: str, deployment: str, pods: pd.DataFrame | None = None,
                   unhealthy: pd.DataFrame | None = None, deployments: pd.DataFrame | None = None,
                   health: Mapping[str, Any] | None = None, database: Mapping[str, Any] | None = None,
                   database_error: str | None = None) -> dict[str, Any]:
    """The measured figures the severity and the notifications use (None where a source was not read)."""
    figures: dict[str, Any] = {}
    dep = _deployment_row(deployments, namespace, deployment)
    if dep is not None:
        figures.update(ready_pods=int(dep["ready"]), desired_pods=int(dep["replicas"]))
    if pods is not None:
        in_ns = pods[pods["namespace"] == namespace]
        mine = in_ns[in_ns["owner"] == deployment] if "owner" in in_ns else in_ns.iloc[0:0]
        scope = mine if len(mine) else in_ns
        bad = unhealthy if unhealthy is not None else scope.iloc[0:0]
        bad = bad[bad["namespace"] == namespace]
        if len(mine):
            bad = bad[bad["owner"] == deployment]
        figures.update(pods_down=int(len(bad)), pods_total=int(len(scope)),
                       unhealthy_pods_all_namespaces=int(len(unhealthy)) if unhealthy is not None else None)
    for key in ("health_ok", "error_rate", "p50_ms", "p95_ms", "health_error"):
        if health and key in health:
            figures[key] = health[key]
    if database is not None:
        s = database.get("summary") or {}
        figures.update(database_reachable=True, connections_used=s.get("used"), max_connections=s.get("max_connections"),
                       connection_usage=s.get("usage"), blocked_sessions=int(database.get("blocked_sessions") or 0))
    elif database_error is not None:
        figures.update(database_reachable=False, database_error=database_error)
    return figures


def suggest_severity(figures: Mapping[str, Any], *, namespace: str, deployment: str) -> Severity:
    """The runbook's matrix applied to the triage figures; the reason names the figure and the threshold."""
    details: dict[str, str] = {}
    service_down = None
    if figures.get("desired_pods") is not None:
        ready, desired = figures["ready_pods"], figures["desired_pods"]
        service_down = desired > 0 and ready == 0
        details["service_down"] = f"deployment {deployment} in {namespace} has {ready}/{desired} ready pods"
    degraded = None
    if figures.get("pods_down") and not service_down:
        degraded = figures.get("pods_total", 0) and figures["pods_down"] * 2 >= figures["pods_total"]
        details["degraded"] = f"{figures['pods_down']} of {figures['pods_total']} pods of {deployment} are down"
    if figures.get("health_ok") is False:
        details["health_ok"] = (f"{figures.get('probe_failures', 'most')} health probes failed"
                                f" ({figures.get('health_error') or 'no reply'})")
    if figures.get("database_reachable") is False:
        details["database_reachable"] = f"the database is unreachable ({figures.get('database_error') or 'no reply'})"
    blocked = figures.get("blocked_sessions") or 0
    if blocked:
        details["core_blocked"] = f"{blocked} database sessions wait on a lock"
    error_rate = figures.get("error_rate")
    if error_rate is not None and figures.get("health_ok") is not False:
        details["error_rate"] = f"health-check error rate {float(error_rate) * 100:.1f}%"
    return assess(
        health_ok=figures.get("health_ok"), service_down=service_down,
        database_reachable=figures.get("database_reachable"), core_blocked=bool(blocked) or None,
        degraded=bool(degraded) or None,
        error_rate=error_rate if figures.get("health_ok") is not False else None, details=details,
    )


def _pods(n: int) -> str:
    return f"{n} pod" if n == 1 else f"{n} pods"


def next_notebooks(*, namespace: str, deployment: str, unhealthy: pd.DataFrame | None = None,
                   figures: Mapping[str, Any] | None = None, database: Mapping[str, Any] | None = None,
                   nodes: pd.DataFrame | None = None, latency_slo_ms: float = 500.0) -> pd.DataFrame:
    """The scenario notebooks to run next, each with the reason: outage, database, performance."""
    figures = figures or {}
    out: list[dict[str, str]] = []
    outage: list[str] = []
    if unhealthy is not None and len(unhealthy):
        mine = unhealthy[unhealthy["namespace"] == namespace]
        failing = mine[mine["status"].isin(FAILING_STATES)]
        for (owner, status), grp in failing.groupby(["owner", "status"], sort=False):
            restarts = int(grp["restarts"].sum())
            code = grp["exit_code"].dropna()
            code_txt = f", exit code {int(code.iloc[0])}" if len(code) else ""
            outage.append(f"{_pods(len(grp))} of {owner or '(no owner)'} {'is' if len(grp) == 1 else 'are'} {status} "
                          f"({restarts} restarts{code_txt})")
        other = mine[~mine["status"].isin(FAILING_STATES)]
        if len(other):
            states = ", ".join(f"{n} {s}" for s, n in other["status"].value_counts().items())
            outage.append(f"{len(other)} more {'pod' if len(other) == 1 else 'pods'} in {namespace} not running: {states}")
    if figures.get("desired_pods") and figures.get("ready_pods") == 0:
        outage.insert(0, f"deployment {deployment} has 0/{figures['desired_pods']} ready pods")
    if figures.get("health_ok") is False:
        outage.insert(0, f"the health check fails ({figures.get('health_error') or 'no reply'})")
    if outage:
        out.append({"notebook": "outage", "reason": "; ".join(outage)})

    db: list[str] = []
    if figures.get("database_reachable") is False:
        db.append(f"the database is unreachable ({figures.get('database_error') or 'no reply'})")
    if database is not None:
        roots = database.get("root_blockers")
        if roots is not None and len(roots):
            for _, r in roots.iterrows():
                db.append(f"lock chain: pid {int(r['root_blocking_pid'])} ({r.get('state') or '?'}, app "
                          f"{r.get('application') or '?'}) blocks {int(r['blocked_sessions'])} sessions, the longest "
                          f"for {float(r['longest_wait_s']):.0f} s")
        usage = (database.get("summary") or {}).get("usage")
        if usage is not None and usage >= 0.8:
            db.append(f"{usage * 100:.0f}% of the usable connections are taken")
        idle_tx = database.get("idle_in_transaction")
        if idle_tx is not None and len(idle_tx):
            longest = float(idle_tx["idle_s"].max())
            db.append(f"{len(idle_tx)} sessions idle in transaction, the longest for {longest:.0f} s")
    if db:
        out.append({"notebook": "database", "reason": "; ".join(db)})

    perf: list[str] = []
    rate = figures.get("error_rate")
    if rate is not None and rate >= 0.01 and figures.get("health_ok") is not False:
        perf.append(f"health-check error rate {rate * 100:.1f}% (the runbook's SEV3 threshold is 1%)")
    p95 = figures.get("p95_ms")
    if p95 is not None and p95 > latency_slo_ms:
        perf.append(f"p95 latency {p95:.0f} ms is above {latency_slo_ms:g} ms")
    if unhealthy is not None and len(unhealthy) and "last_termination_reason" in unhealthy:
        oom = unhealthy[unhealthy["last_termination_reason"] == "OOMKilled"]
        if len(oom):
            perf.append(f"{_pods(len(oom))} {'was' if len(oom) == 1 else 'were'} OOMKilled ({', '.join(oom['name'].head(3))})")
    if nodes is not None and len(nodes) and "pressure" in nodes:
        pressed = nodes[nodes["pressure"].fillna("").astype(str).str.len() > 0]
        for _, n in pressed.iterrows():
            perf.append(f"node {n['name']} reports {n['pressure']}")
    if perf:
        out.append({"notebook": "performance", "reason": "; ".join(perf)})
    return pd.DataFrame(out, columns=NEXT_COLUMNS)


def wants_database(dsn: str | None) -> bool:
    """Check the database when a DSN is given, or when libpq's own variables (PGHOST, PGSERVICE...) name one."""
    import os

    return bool(dsn) or any(os.environ.get(v) for v in ("PGHOST", "PGSERVICE", "PGDATABASE", "PGHOSTADDR"))


def read_all(run: Any, *, k8s: Any | None, namespace: str, health_url: str | None, dsn: str | None,
             health_probes: int = 20, timeout: float = 5.0) -> dict[str, Any]:
    """Every triage read at once (they are independent): each success is a value, each failure one line in `sources`."""
    from . import cluster as kd

    tasks: dict[str, Any] = {}
    if health_url:
        tasks["health check"] = lambda: health_check(health_url, count=health_probes, timeout=min(timeout, 3.0))
    else:
        run.skip("health check", "no health_url given")
    if k8s is not None:
        tasks["kubernetes: pods (all namespaces)"] = lambda: kd.fetch_pods(k8s, None, timeout=timeout)
        tasks["kubernetes: replicasets (all namespaces)"] = lambda: fetch_replicasets(k8s, None, timeout=timeout)
        tasks[f"kubernetes: deployments in {namespace}"] = lambda: fetch_deployments(k8s, namespace, timeout=timeout)
        tasks["kubernetes: nodes"] = lambda: kd.fetch_nodes(k8s, timeout=timeout)
        tasks["kubernetes: top nodes (metrics API)"] = lambda: kd.fetch_node_metrics(k8s, timeout=timeout)
        tasks[f"kubernetes: events in {namespace}"] = lambda: kd.fetch_events(k8s, namespace, timeout=timeout)
    if wants_database(dsn):
        tasks["postgresql"] = lambda: check_database(dsn, connect_timeout_s=max(1, int(min(timeout, 3))))
    else:
        run.skip("postgresql", "no dsn given (nor PGHOST/PGSERVICE)")
    got = kd.gather(tasks, run=run)
    keys = {"health check": "health", "kubernetes: pods (all namespaces)": "pods",
            "kubernetes: replicasets (all namespaces)": "replicasets", f"kubernetes: deployments in {namespace}": "deployments",
            "kubernetes: nodes": "nodes", "kubernetes: top nodes (metrics API)": "node_metrics", "postgresql": "database",
            f"kubernetes: events in {namespace}": "events"}
    out: dict[str, Any] = {keys[name]: value for name, value in got.values.items()}
    if "postgresql" in got.errors:
        out["database_error"] = next((s.error for s in reversed(run.sources) if s.source == "postgresql" and s.error),
                                     str(got.errors["postgresql"]))
    return out


def run_command(notebook: str, *, namespace: str, deployment: str, incident_id: str | None = None) -> str:
    """The command line that runs a scenario notebook next, under the same incident."""
    inc = f" --incident {incident_id}" if incident_id else ""
    return f"runbook run {notebook} -p namespace {namespace} -p deployment {deployment}{inc}"


def record_findings(run: Any, nxt: pd.DataFrame, *, severity: Severity, correlation: Mapping[str, Any] | None = None,
                    namespace: str | None = None, deployment: str | None = None, incident_id: str | None = None) -> None:
    """One finding per notebook to run next: what triage saw, and the notebook (with its command) as the next step."""
    figures = run.figures
    namespace = namespace or run.params.get("namespace", "production")
    deployment = deployment or run.params.get("deployment", "backend")
    incident_id = incident_id or run.params.get("incident_id")
    for _, row in nxt.iterrows():
        nb, reason = str(row["notebook"]), str(row["reason"])
        step = f"run the {nb} notebook: {run_command(nb, namespace=namespace, deployment=deployment, incident_id=incident_id)}"
        if nb == "outage":
            down = figures.get("health_ok") is False or (figures.get("desired_pods") and figures.get("ready_pods") == 0)
            if correlation:
                title = f"{deployment} fails since revision {correlation['revision']} ({correlation['image']})"
                reason = f"{correlation['sentence']}; {reason}"
            elif figures.get("desired_pods") and figures.get("ready_pods") == 0:
                title = f"{deployment} has no ready pod"
            else:
                title = f"pods not running in {namespace}"
            run.finding("SEV1" if down else "SEV2", title, reason, step)
        elif nb == "database":
            if figures.get("database_reachable") is False:
                run.finding("SEV1", "the database is unreachable", reason, step)
            else:
                run.finding("SEV2", "database sessions are blocked" if figures.get("blocked_sessions") else
                            "the database needs a look", reason, step)
        else:
            rate = figures.get("error_rate")
            level = assess(error_rate=rate).level if rate is not None else "SEV3"
            title = f"error rate {rate * 100:.1f}%" if rate is not None and rate >= 0.01 else "performance is degraded"
            run.finding(level if level != "SEV4" else "SEV3", title, reason, step)
