"""Triage, the runbook's first five minutes: what is broken, how bad, which notebook to run next.

`read_all` reads everything at once (the alerts firing, the cluster, the health endpoint and its
certificate, the database's vital signs) into a `Triage`; the `show_*` steps show each section and
glue its scrap; the pure builders give the figures behind the severity and the scenario notebooks to
run next with the reason and the command."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import DatabaseError
from ..kube import frames, nodes, reads, services
from ..kube.client import Cluster
from ..notebook.run import Run, show_table
from ..params import Common, number, param, whole
from ..redact import redact_value
from ..service import alertmanager
from ..service.probe import (
    ProbeResult,
    health_check,
    latency_frame,
    latency_summary,
    tls_figures,
    tls_findings,
)
from ..service.prometheus import Prometheus
from ..severity import Severity, assess, worst
from . import alerts as firing
from .common import connect_cluster

NEXT_COLUMNS = ["notebook", "reason", "namespace", "deployment", "alerts"]
"""The `next_notebooks` scrap: the notebook, why, the namespace and deployment to run it on, and the
firing alerts that point there (comma-separated; empty when only measured figures do)."""
FAILING_STATES = (
    "CrashLoopBackOff",
    "Error",
    "OOMKilled",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "Init:CrashLoopBackOff",
    "Init:Error",
    "RunContainerError",
)


def health_figures(results: Iterable[ProbeResult]) -> dict[str, Any]:
    """health_ok (a majority of the probes answered 2xx/3xx), error_rate, p50/p95 and the first
    error seen."""
    results = list(results)
    if not results:
        return {}
    summary = latency_summary(latency_frame(results)).iloc[0]
    failed = [r for r in results if not r.ok]
    first = next((r.error or f"HTTP {r.status}" for r in failed), None)
    p95 = float(summary["p95_ms"])
    return {
        **tls_figures(results),
        "health_ok": len(failed) * 2 <= len(results),
        "error_rate": float(summary["error_rate"]),
        "p50_ms": None if pd.isna(summary["p50_ms"]) else round(float(summary["p50_ms"]), 1),
        "p95_ms": None if pd.isna(p95) else round(p95, 1),
        "probes": len(results),
        "probe_failures": len(failed),
        "health_error": first,
    }


# ------------------------------------------------------------------------------------- the database
def check_database(
    dsn: str | None, *, connect_timeout_s: int = 3, statement_timeout_ms: int = 2000
) -> dict[str, Any]:
    """Is the database reachable; its version, connections against max_connections, and who blocks
    whom.

    Raises DatabaseError (a clear line in the notebook) when it cannot connect: `refused` True when
    the server answered and refused our login (a problem of the dsn, not of the database)."""
    from ..pg.activity import fetch_sessions, idle_in_transaction_frame, sessions_frame
    from ..pg.connections import connection_summary, connections_frame, fetch_server
    from ..pg.locks import blocking_frame, fetch_blocking, root_blockers
    from ..pg.session import connect

    conn = connect(
        dsn,
        connect_timeout_s=connect_timeout_s,
        statement_timeout_ms=statement_timeout_ms,
        application_name="incident-runbook triage",
    )
    try:
        server = fetch_server(conn)
        sessions = sessions_frame(fetch_sessions(conn))
        blocking = blocking_frame(
            fetch_blocking(conn, server_version_num=int(server.get("server_version_num") or 150000))
        )
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


# -------------------------------------------------------------------------------------- the verdict
def _deployment_row(
    deployments: pd.DataFrame | None, namespace: str, name: str
) -> Mapping[str, Any] | None:
    if deployments is None or deployments.empty:
        return None
    hit = deployments[(deployments["namespace"] == namespace) & (deployments["name"] == name)]
    return hit.iloc[0].to_dict() if len(hit) else None


def triage_figures(
    *,
    namespace: str,
    deployment: str,
    pods: pd.DataFrame | None = None,
    unhealthy: pd.DataFrame | None = None,
    deployments: pd.DataFrame | None = None,
    health: Mapping[str, Any] | None = None,
    database: Mapping[str, Any] | None = None,
    database_error: str | None = None,
    database_refused: bool = False,
    alerts: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The measured figures the severity and the notifications use (None where a source was not
    read): pods, health (and its certificate), database, the alerts firing.

    `database_refused`: the database answered and refused our login; `database_reachable` is then
    not measured (left out, never False) and `database_login_refused` is True."""
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
        figures.update(
            pods_down=int(len(bad)),
            pods_total=int(len(scope)),
            unhealthy_pods_all_namespaces=int(len(unhealthy)) if unhealthy is not None else None,
        )
    for key in (
        "health_ok",
        "error_rate",
        "p50_ms",
        "p95_ms",
        "health_error",
        "probes",
        "probe_failures",
        "tls_days_left",
        "tls_error",
        "tls_not_after",
    ):
        if health and key in health:
            figures[key] = health[key]
    figures.update(firing.severity_figures(alerts))
    if database is not None:
        s = database.get("summary") or {}
        figures.update(
            database_reachable=True,
            connections_used=s.get("used"),
            max_connections=s.get("max_connections"),
            connection_usage=s.get("usage"),
            blocked_sessions=int(database.get("blocked_sessions") or 0),
        )
    elif database_error is not None and database_refused:
        figures.update(database_login_refused=True, database_error=database_error)
    elif database_error is not None:
        figures.update(database_reachable=False, database_error=database_error)
    return figures


def suggest_severity(figures: Mapping[str, Any], *, namespace: str, deployment: str) -> Severity:
    """The runbook's matrix applied to the triage figures; the reason names the figure and the
    threshold. A refused login (`database_login_refused`) claims nothing: only an unreachable
    database (`database_reachable` False) is SEV1."""
    details: dict[str, str] = {}
    service_down = None
    if figures.get("desired_pods") is not None:
        ready, desired = figures["ready_pods"], figures["desired_pods"]
        service_down = desired > 0 and ready == 0
        details["service_down"] = (
            f"deployment {deployment} in {namespace} has {ready}/{desired} ready pods"
        )
    degraded = None
    if figures.get("pods_down") and not service_down:
        degraded = (
            figures.get("pods_total", 0) and figures["pods_down"] * 2 >= figures["pods_total"]
        )
        details["degraded"] = (
            f"{figures['pods_down']} of {figures['pods_total']} pods of {deployment} are down"
        )
    if figures.get("health_ok") is False:
        details["health_ok"] = (
            f"{figures.get('probe_failures', 'most')} health probes failed"
            f" ({figures.get('health_error') or 'no reply'})"
        )
    if figures.get("database_reachable") is False:
        details["database_reachable"] = (
            f"the database is unreachable ({figures.get('database_error') or 'no reply'})"
        )
    blocked = figures.get("blocked_sessions") or 0
    if blocked:
        details["core_blocked"] = f"{blocked} database sessions wait on a lock"
    error_rate = figures.get("error_rate")
    if error_rate is not None and figures.get("health_ok") is not False:
        details["error_rate"] = f"health-check error rate {float(error_rate) * 100:.1f}%"
    tls_left = figures.get("tls_days_left")
    expired = isinstance(tls_left, int | float) and tls_left < 0
    if isinstance(tls_left, int | float) and expired:
        details["certificate_expired"] = (
            f"the health URL's TLS certificate expired {-tls_left:.1f} days ago (not valid "
            f"after {str(figures.get('tls_not_after') or '?')[:16].replace('T', ' ')} UTC)"
        )
    if figures.get("critical_alert"):
        details["critical_alert"] = str(figures["critical_alert"])
    return assess(
        certificate_expired=expired or None,
        critical_alert=bool(figures.get("critical_alerts")) or None,
        health_ok=figures.get("health_ok"),
        service_down=service_down,
        database_reachable=figures.get("database_reachable"),
        core_blocked=bool(blocked) or None,
        degraded=bool(degraded) or None,
        error_rate=error_rate if figures.get("health_ok") is not False else None,
        details=details,
    )


def _pods(n: int) -> str:
    return f"{n} pod" if n == 1 else f"{n} pods"


def next_notebooks(
    *,
    namespace: str,
    deployment: str,
    unhealthy: pd.DataFrame | None = None,
    figures: Mapping[str, Any] | None = None,
    database: Mapping[str, Any] | None = None,
    nodes: pd.DataFrame | None = None,
    latency_slo_ms: float = 500.0,
) -> pd.DataFrame:
    """The scenario notebooks to run next, each with the reason: outage, database, performance.

    A refused database login suggests no notebook (the database notebook would be refused the same
    way): `record_findings` says what to fix."""
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
            outage.append(
                f"{_pods(len(grp))} of {owner or '(no owner)'} {'is' if len(grp) == 1 else 'are'} "
                f"{status} "
                f"({restarts} restarts{code_txt})"
            )
        other = mine[~mine["status"].isin(FAILING_STATES)]
        if len(other):
            states = ", ".join(f"{n} {s}" for s, n in other["status"].value_counts().items())
            outage.append(
                f"{len(other)} more {'pod' if len(other) == 1 else 'pods'} in {namespace} not "
                f"running: {states}"
            )
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
                db.append(
                    f"lock chain: pid {int(r['root_blocking_pid'])} ({r.get('state') or '?'}, app "
                    f"{r.get('application') or '?'}) blocks {int(r['blocked_sessions'])} "
                    "sessions, the longest "
                    f"for {float(r['longest_wait_s']):.0f} s"
                )
        usage = (database.get("summary") or {}).get("usage")
        if usage is not None and usage >= 0.8:
            db.append(f"{usage * 100:.0f}% of the usable connections are taken")
        idle_tx = database.get("idle_in_transaction")
        if idle_tx is not None and len(idle_tx):
            longest = float(idle_tx["idle_s"].max())
            db.append(
                f"{len(idle_tx)} sessions idle in transaction, the longest for {longest:.0f} s"
            )
    if db:
        out.append({"notebook": "database", "reason": "; ".join(db)})

    perf: list[str] = []
    rate = figures.get("error_rate")
    if rate is not None and rate >= 0.01 and figures.get("health_ok") is not False:
        perf.append(
            f"health-check error rate {rate * 100:.1f}% (the runbook's SEV3 threshold is 1%)"
        )
    p95 = figures.get("p95_ms")
    if p95 is not None and p95 > latency_slo_ms:
        perf.append(f"p95 latency {p95:.0f} ms is above {latency_slo_ms:g} ms")
    if unhealthy is not None and len(unhealthy) and "last_termination_reason" in unhealthy:
        oom = unhealthy[unhealthy["last_termination_reason"] == "OOMKilled"]
        if len(oom):
            perf.append(
                f"{_pods(len(oom))} {'was' if len(oom) == 1 else 'were'} OOMKilled "
                f"({', '.join(oom['name'].head(3))})"
            )
    if nodes is not None and len(nodes) and "pressure" in nodes:
        pressed = nodes[nodes["pressure"].fillna("").astype(str).str.len() > 0]
        for _, n in pressed.iterrows():
            perf.append(f"node {n['name']} reports {n['pressure']}")
    if perf:
        out.append({"notebook": "performance", "reason": "; ".join(perf)})
    for row in out:
        row.update(namespace=namespace, deployment=deployment, alerts="")
    return pd.DataFrame(out, columns=NEXT_COLUMNS)


def with_alerts(measured: pd.DataFrame, alert_rows: pd.DataFrame) -> pd.DataFrame:
    """The notebooks to run next from the figures and from the firing alerts, one row per notebook
    and target: an alert pointing where the figures already point adds its words to that row."""
    rows = measured.to_dict("records")
    for a in alert_rows.to_dict("records"):
        same = next(
            (
                r
                for r in rows
                if (r["notebook"], r["namespace"], r["deployment"])
                == (a["notebook"], a["namespace"], a["deployment"])
            ),
            None,
        )
        if same is None:
            rows.append(dict(a))
        else:
            same["reason"] = f"{same['reason']}; {a['reason']}"
            same["alerts"] = ",".join(x for x in (same["alerts"], a["alerts"]) if x)
    return pd.DataFrame(rows, columns=NEXT_COLUMNS)


def wants_database(dsn: str | None) -> bool:
    """Check the database when a DSN is given, or when libpq's own variables (PGHOST, PGSERVICE...)
    name one."""
    return bool(dsn) or any(
        os.environ.get(v) for v in ("PGHOST", "PGSERVICE", "PGDATABASE", "PGHOSTADDR")
    )


def run_command(
    notebook: str, *, namespace: str, deployment: str, incident_id: str | None = None
) -> str:
    """The command line that runs a scenario notebook next, under the same incident (no
    `deployment` given: the notebook's own default)."""
    inc = f" --incident {incident_id}" if incident_id else ""
    dep = f" -p deployment {deployment}" if deployment else ""
    return f"runbook run {notebook} -p namespace {namespace}{dep}{inc}"


def record_findings(
    run: Run,
    nxt: pd.DataFrame,
    *,
    severity: Severity,
    correlation: Mapping[str, Any] | None = None,
    namespace: str | None = None,
    deployment: str | None = None,
    incident_id: str | None = None,
) -> None:
    """One finding per notebook to run next: what triage saw, and the notebook (with its command) as
    the next step; and, when the database refused our login, the finding that says what to fix
    (`login_finding`)."""
    figures = run.figures
    namespace = namespace or run.params.get("namespace", "production")
    deployment = deployment or run.params.get("deployment", "backend")
    incident_id = incident_id or run.params.get("incident_id")
    if figures.get("database_login_refused"):
        run.finding(**login_finding(figures.get("database_error")))
    for _, row in nxt.iterrows():
        nb, reason = str(row["notebook"]), str(row["reason"])
        command = run_command(
            nb, namespace=namespace, deployment=deployment, incident_id=incident_id
        )
        step = f"run the {nb} notebook: {command}"
        if nb == "outage":
            down = figures.get("health_ok") is False or (
                figures.get("desired_pods") and figures.get("ready_pods") == 0
            )
            cause = bool(correlation)
            if correlation:
                title = (
                    f"{deployment} fails since revision {correlation['revision']} "
                    f"({correlation['image']})"
                )
                reason = f"{correlation['sentence']}; {reason}"
            elif figures.get("desired_pods") and figures.get("ready_pods") == 0:
                title = f"{deployment} has no ready pod"
            else:
                title = f"pods not running in {namespace}"
            run.finding("SEV1" if down else "SEV2", title, reason, step, root_cause=cause)
        elif nb == "database":
            if figures.get("database_reachable") is False:
                run.finding("SEV1", "the database is unreachable", reason, step)
            else:
                run.finding(
                    "SEV2",
                    "database sessions are blocked"
                    if figures.get("blocked_sessions")
                    else "the database needs a look",
                    reason,
                    step,
                    root_cause=bool(figures.get("blocked_sessions")),
                )
        else:
            rate = figures.get("error_rate")
            level = assess(error_rate=rate).level if rate is not None else "SEV3"
            title = (
                f"error rate {rate * 100:.1f}%"
                if rate is not None and rate >= 0.01
                else "performance is degraded"
            )
            run.finding(level if level != "SEV4" else "SEV3", title, reason, step)


LOGIN_REFUSED = "the runbook could not log in to the database"


def login_finding(error: str | None) -> dict[str, Any]:
    """The finding of a database that answered and refused our login: what to fix in the dsn, the
    role or pg_hba.conf; severity None, for it says nothing about the database's health."""
    return {
        "severity": None,
        "title": LOGIN_REFUSED,
        "detail": (error or "the login was refused")
        + " (the server answered: its health was not measured)",
        "next_step": "fix the runbook's login: the password (PGPASSWORD, ~/.pgpass or the service "
        "file), the user and dbname in dsn, a pg_hba.conf entry for this host; then run triage "
        "again",
    }


# ------------------------------------------------------------------------------------- the notebook
@dataclass(frozen=True)
class Params(Common):
    """The triage notebook's parameters, checked."""

    health_probes: int = param(20, check=whole(1, 1000))
    latency_slo_ms: float = param(500.0, check=number(1, 600_000, unit="milliseconds"))
    timeout: float = param(5.0, check=number(0.1, 120, unit="seconds"))


@dataclass
class Triage:
    """Everything triage read (None where a source was not read) and the tables built from it."""

    cluster: Cluster | None = None
    health: list[ProbeResult] | None = None
    health_figures: dict[str, Any] = field(default_factory=dict)
    pods: pd.DataFrame | None = None
    unhealthy: pd.DataFrame | None = None
    nodes: pd.DataFrame | None = None
    top_nodes: pd.DataFrame | None = None
    deployments: pd.DataFrame | None = None
    rollouts: pd.DataFrame | None = None
    correlation: dict[str, Any] | None = None
    events: pd.DataFrame | None = None
    node_details: pd.DataFrame | None = None
    node_failures: list[dict[str, Any]] = field(default_factory=list)
    services: pd.DataFrame | None = None
    routing: list[dict[str, str]] = field(default_factory=list)
    database: dict[str, Any] | None = None
    database_error: str | None = None
    database_refused: bool = False  # the database answered and refused our login
    figures: dict[str, Any] = field(default_factory=dict)
    next: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=NEXT_COLUMNS))
    alerts: pd.DataFrame | None = None  # firing, pending and silenced (None: no source read)
    health_url: str | None = None


def read_all(run: Run, cfg: Params) -> Triage:
    """Connect, then every triage read at once (they are independent): each success is a value, each
    failure one line in `sources`; then the tables, the correlation and the figures behind the
    severity."""
    t = Triage(cluster=connect_cluster(run, cfg))
    k8s, ns, timeout = t.cluster, cfg.namespace, cfg.timeout
    names = {
        "health": "health check",
        "pods": "kubernetes: pods (all namespaces)",
        "replicasets": "kubernetes: replicasets (all namespaces)",
        "deployments": f"kubernetes: deployments in {ns}",
        "nodes": "kubernetes: nodes",
        "node_metrics": "kubernetes: top nodes (metrics API)",
        "events": "kubernetes: events (all namespaces)",
        "services": f"kubernetes: services in {ns}",
        "endpoints": f"kubernetes: endpoints in {ns}",
        "database": "postgresql",
        "prometheus_alerts": "prometheus: alerts",
        "alertmanager_alerts": "alertmanager: alerts",
    }
    tasks: dict[str, Any] = {}
    t.health_url = cfg.health_url
    if cfg.prometheus_url:
        prom = Prometheus(cfg.prometheus_url, timeout=timeout)
        tasks[names["prometheus_alerts"]] = prom.alerts
    else:
        run.skip(names["prometheus_alerts"], "no prometheus_url given")
    if cfg.alertmanager_url:
        am = alertmanager.Alertmanager(cfg.alertmanager_url, timeout=timeout)
        tasks[names["alertmanager_alerts"]] = am.alerts
    else:
        run.skip(names["alertmanager_alerts"], "no alertmanager_url given")
    if cfg.health_url:
        url = cfg.health_url
        tasks[names["health"]] = lambda: health_check(
            url, count=cfg.health_probes, timeout=min(timeout, 3.0), workers=4
        )
    else:
        run.skip(names["health"], "no health_url given")
    if k8s is None:
        for key in (
            "pods",
            "replicasets",
            "deployments",
            "nodes",
            "node_metrics",
            "events",
            "services",
            "endpoints",
        ):
            run.skip(names[key], "no cluster connection")
    else:
        tasks[names["pods"]] = lambda: reads.fetch_pods(k8s, None, timeout=timeout)
        tasks[names["replicasets"]] = lambda: reads.fetch_replicasets(k8s, None, timeout=timeout)
        tasks[names["deployments"]] = lambda: reads.fetch_deployments(k8s, ns, timeout=timeout)
        tasks[names["nodes"]] = lambda: reads.fetch_nodes(k8s, timeout=timeout)
        tasks[names["node_metrics"]] = lambda: reads.fetch_node_metrics(k8s, timeout=timeout)
        tasks[names["events"]] = lambda: reads.fetch_events_wide(k8s, ns, timeout=timeout)
        tasks[names["services"]] = lambda: reads.fetch_services(k8s, ns, timeout=timeout)
        tasks[names["endpoints"]] = lambda: reads.fetch_endpoints(k8s, ns, timeout=timeout)
    if wants_database(cfg.dsn):
        tasks[names["database"]] = lambda: check_database(
            cfg.dsn, connect_timeout_s=max(1, int(min(timeout, 3)))
        )
    else:
        run.skip(names["database"], "no dsn given (nor PGHOST/PGSERVICE)")
    got = run.gather(tasks)
    if k8s is not None and names["events"] in got.errors:  # namespaced roles only
        got.merge(
            run.gather(
                {
                    f"kubernetes: events in {ns}": lambda: reads.fetch_events(
                        k8s, ns, timeout=timeout
                    )
                }
            )
        )
        if f"kubernetes: events in {ns}" in got.values:
            got.values[names["events"]] = got.values[f"kubernetes: events in {ns}"]
    raw = {key: got.values[name] for key, name in names.items() if name in got.values}
    if names["database"] in got.errors:
        error = got.errors[names["database"]]
        t.database_refused = isinstance(error, DatabaseError) and error.refused
        t.database_error = next(
            (s.error for s in reversed(run.sources) if s.source == names["database"] and s.error),
            str(error),
        )
    _build(t, raw, cfg)
    return t


def _build(t: Triage, raw: dict[str, Any], cfg: Params) -> None:
    """The tables, the correlation and the figures from what was read (pure)."""
    ns, dep = cfg.namespace, cfg.deployment
    t.health = raw.get("health")
    t.health_figures = health_figures(t.health or [])
    replicasets = raw.get("replicasets", [])
    if "pods" in raw:
        t.pods = frames.pods_frame(raw["pods"], replicasets=replicasets)
        t.unhealthy = frames.unhealthy_pods(t.pods)
    if "nodes" in raw:
        t.nodes = frames.nodes_frame(raw["nodes"], raw.get("pods", []))
    if "node_metrics" in raw:
        t.top_nodes = frames.top_nodes_frame(raw["node_metrics"], raw.get("nodes", []))
    if "deployments" in raw:
        t.deployments = frames.deployments_frame(raw["deployments"])
    if "replicasets" in raw:
        t.rollouts = frames.recent_rollouts_frame(
            [r for r in replicasets if r["metadata"].get("namespace") == ns],
            deployments=raw.get("deployments", []),
        )
    mine = next((d for d in raw.get("deployments", []) if d["metadata"]["name"] == dep), None)
    if t.pods is not None and mine is not None:
        live = t.pods[t.pods["status"] != "Terminating"]  # evicted by a failed node: no blame
        t.correlation = frames.correlate(
            frames.rollouts_frame(mine, replicasets), live, deployment=dep
        )
    if "events" in raw:
        t.events = frames.events_frame(raw["events"], since=cfg.window)
    if "nodes" in raw:
        t.node_details = redact_value(
            nodes.node_details_frame(raw["nodes"], raw.get("pods", []), raw.get("events", []))
        )
        t.node_failures = [
            nodes.node_failure(n, raw.get("pods", []), raw.get("events", []))
            for n in raw["nodes"]
            if nodes.not_ready(n)
        ]
    if "services" in raw:
        endpoints_raw, slices_raw = raw.get("endpoints") or ([], [])
        t.services = services.services_frame(
            raw["services"],
            [p for p in raw.get("pods", []) if p["metadata"].get("namespace") == ns],
            endpoints=endpoints_raw,
            slices=slices_raw,
        )
        mine_rs = [
            r
            for r in replicasets
            if r["metadata"].get("namespace") == ns
            and any(o.get("name") == dep for o in r["metadata"].get("ownerReferences") or [])
        ]
        t.routing = services.routing_problems(
            t.services,
            relabels={
                s["metadata"]["name"]: services.relabel(
                    (s.get("spec") or {}).get("selector") or {}, mine_rs, deployment=dep
                )
                for s in raw["services"]
            },
        )
    t.database = raw.get("database")
    if "prometheus_alerts" in raw or "alertmanager_alerts" in raw:
        t.alerts = alertmanager.merge(raw.get("prometheus_alerts"), raw.get("alertmanager_alerts"))
    t.figures = triage_figures(
        namespace=ns,
        deployment=dep,
        pods=t.pods,
        unhealthy=t.unhealthy,
        deployments=t.deployments,
        health=t.health_figures,
        database=t.database,
        database_error=t.database_error,
        database_refused=t.database_refused,
        alerts=t.alerts,
    )
    if t.correlation and t.correlation.get("first_failure") is not None:
        t.figures["incident_started"] = str(t.correlation["rolled_out_at"])


def show_alerts(run: Run, t: Triage) -> None:
    """What is firing, first: the alerts of Prometheus and Alertmanager, firing then pending, the
    silenced ones marked (the `alerts` scrap), and where the firing ones point."""
    if t.alerts is None:
        print("(no alert read: give prometheus_url and/or alertmanager_url; see the sources below)")
        return
    print(firing.summary_line(t.alerts))
    show_table(t.alerts.drop(columns=["labels"]), empty="nothing is firing or pending")
    for sentence in (firing.sentence(a) for a in firing.paging(t.alerts).to_dict("records")):
        print(f"▶ {sentence}")
    run.glue("alerts", t.alerts)


def show_health(run: Run, t: Triage) -> None:
    """The health requests in one line, and the server certificate's expiry over HTTPS (the
    `health` scrap: one row per request)."""
    h = t.health_figures
    if not h:
        print("(health check not run: give health_url)")
        return
    for f in tls_findings(t.health or [], url=t.health_url or ""):
        run.finding(**f)
    if h.get("tls_days_left") is not None:
        print(
            f"TLS certificate: {h['tls_days_left']:.1f} days left (not valid after "
            f"{str(h['tls_not_after'])[:16].replace('T', ' ')} UTC), subject {h['tls_subject']}, "
            f"issuer {h['tls_issuer']}"
            + (f"; REFUSED: {h['tls_error']}" if h.get("tls_error") else "")
        )
    run.glue("health", latency_frame(t.health or []))
    times = f"p50 {h['p50_ms']} ms, p95 {h['p95_ms']} ms" if h["p50_ms"] is not None else "no reply"
    print(
        f"{h['probes']} requests to the health URL: {h['probe_failures']} failed "
        f"(error rate {h['error_rate'] * 100:.1f}%), {times}"
        + (f"; first error: {h['health_error']}" if h["health_error"] else "")
    )


def show_unhealthy(run: Run, t: Triage) -> None:
    """Every pod not Running and ready, all namespaces (and the `unhealthy_pods` scrap)."""
    if t.unhealthy is None or t.pods is None:
        print("(pods not read: see the sources below)")
        return
    print(f"{len(t.unhealthy)} of {len(t.pods)} pods are not Running and ready")
    show_table(
        t.unhealthy[
            [
                "namespace",
                "name",
                "ready",
                "status",
                "restarts",
                "last_restart",
                "age",
                "owner",
                "last_termination_reason",
                "exit_code",
                "node",
            ]
        ],
        empty="every pod is Running and ready",
    )
    run.glue("unhealthy_pods", t.unhealthy)


def show_nodes(run: Run, t: Triage) -> None:
    """Nodes with their pressure and requests, and `kubectl top nodes` (the `nodes`, `top_nodes`
    scraps)."""
    if t.nodes is not None:
        show_table(
            t.nodes[
                [
                    "name",
                    "status",
                    "roles",
                    "version",
                    "age",
                    "pressure",
                    "pods",
                    "cpu_requested_pct",
                    "memory_requested_pct",
                ]
            ],
            empty="no nodes",
        )
        run.glue("nodes", t.nodes)
    if t.top_nodes is not None:
        show_table(t.top_nodes, empty="no node metrics", caption="kubectl top nodes")
        run.glue("top_nodes", t.top_nodes)
    if t.node_details is not None:
        show_table(
            t.node_details,
            caption="kubectl describe node: the nodes not Ready or under pressure",
            empty="every node is Ready, none under pressure",
        )
        run.glue("node_details", t.node_details)


def show_services(run: Run, t: Triage) -> None:
    """`kubectl get svc,ep` of the namespace, and each Service that routes nowhere with its cause
    (the `services` scrap)."""
    if t.services is None:
        print("(Services not read: see the sources below)")
        return
    show_table(t.services, empty="no Service in the namespace")
    for r in t.routing:
        print(f"✗ {r['title']}: {r['detail']}")
    run.glue("services", t.services)


def show_changes(run: Run, t: Triage, cfg: Params) -> None:
    """The namespace's deployments, its last rollouts, the correlation sentence, and warning events
    (the `rollouts` and `events` scraps)."""
    ns = cfg.namespace
    if t.deployments is not None:
        show_table(t.deployments, empty=f"no deployment in {ns}", caption=f"deployments in {ns}")
    if t.rollouts is not None:
        show_table(
            t.rollouts, empty=f"no rollout in {ns}", caption=f"last rollouts in {ns}, newest first"
        )
        run.glue("rollouts", t.rollouts)
    if t.correlation:
        print("→ " + t.correlation["sentence"])
    if t.events is not None:
        warnings = t.events[t.events["type"] == "Warning"]
        print(
            f"{len(warnings)} kinds of warning event in {ns} within {cfg.since} "
            f"({int(warnings['count'].sum())} in all)"
        )
        show_table(
            redact_value(
                warnings[["reason", "object", "count", "first_seen", "last_seen", "message"]]
            ),
            max_rows=10,
            empty="no warning event",
        )
        run.glue("events", t.events)


def show_database(run: Run, t: Triage) -> None:
    """Reachable, connections against max_connections, root blockers (the `connections`, `blocking`
    scraps)."""
    if t.database is not None:
        s = t.database["summary"]
        print(
            f"PostgreSQL {t.database['server_version']}: {s['used']} connections of "
            f"{s['max_connections']} "
            f"({s['reserved']} reserved), by state: {s['by_state']}"
        )
        show_table(
            t.database["root_blockers"], empty="no session waits on a lock", caption="root blockers"
        )
        run.glue("connections", t.database["connections"])
        run.glue("blocking", t.database["blocking"])
    elif t.database_error and t.database_refused:
        print(f"✗ the runbook could not log in to the database (it answered): {t.database_error}")
    elif t.database_error:
        print(f"✗ the database is unreachable: {t.database_error}")
    else:
        print("(database not checked: give dsn, or set PGHOST/PGSERVICE)")


def suggest(run: Run, t: Triage, cfg: Params) -> Severity:
    """The suggested severity from the runbook's matrix, printed with the figures behind it."""
    run.figures.update(t.figures)
    severity = suggest_severity(t.figures, namespace=cfg.namespace, deployment=cfg.deployment)
    for r in t.routing:  # a Service that routes nowhere: its callers see an outage
        level = services.routing_level(r, deployment=cfg.deployment)
        run.finding(level, r["title"], r["detail"], r["next_step"])
        severity = worst(severity, Severity(level, "service-routes-nowhere", r["title"]))
    for f in t.node_failures:
        title = f"node {f['node']} is {'NotReady' if f['status'] == 'False' else 'unreachable'}"
        run.finding(
            "SEV2",
            title,
            f"Ready={f['status']} ({f['reason']}: {f['message']}) since {f['since']}; pods taken "
            f"down: {', '.join(f['taken_down'][:8]) or 'none'}"
            + (f"; Pending: {', '.join(p for p, _ in f['pending'])}" if f["pending"] else ""),
            "run the outage notebook; `kubectl describe node " + f["node"] + "`",
        )
        severity = worst(severity, Severity("SEV2", "node", title))
    severity = run.checked(severity)
    print(f"Suggested severity: {severity.level}  (rule: {severity.rule})")
    print(f"Why: {severity.reason}")
    show_table(
        pd.DataFrame(
            [{"figure": k, "value": str(v)} for k, v in t.figures.items() if v is not None]
        ),
        caption="figures behind it",
    )
    return severity


def show_next(run: Run, t: Triage, cfg: Params, severity: Severity) -> None:
    """The scenario notebooks to run next, with the reason and the command, from the figures and
    the firing alerts (the `next_notebooks` scrap)."""
    measured = next_notebooks(
        namespace=cfg.namespace,
        deployment=cfg.deployment,
        unhealthy=t.unhealthy,
        figures=t.figures,
        database=t.database,
        nodes=t.nodes,
        latency_slo_ms=cfg.latency_slo_ms,
    )
    alert_rows = firing.alert_notebooks(
        t.alerts, namespace=cfg.namespace, deployment=cfg.deployment
    )
    t.next = with_alerts(measured, alert_rows)
    record_findings(
        run,
        measured,
        severity=severity,
        correlation=t.correlation,
        namespace=cfg.namespace,
        deployment=cfg.deployment,
        incident_id=cfg.incident_id,
    )
    for f in firing.findings(
        alert_rows,
        t.alerts,
        command=lambda r: run_command(
            r["notebook"],
            namespace=r["namespace"],
            deployment=r["deployment"],
            incident_id=cfg.incident_id,
        ),
    ):
        run.finding(**f)
    for _, row in t.next.iterrows():
        print(f"▶ {row['notebook']}: {row['reason']}")
        print(
            "    "
            + run_command(
                row["notebook"],
                namespace=row["namespace"],
                deployment=row["deployment"],
                incident_id=cfg.incident_id,
            )
        )
    if t.next.empty and severity.rule == "not-assessed":
        print(
            "nothing could be read, so nothing points anywhere yet: fix what failed above "
            "(kubeconfig/context, "
            "dsn, health_url) and run triage again"
        )
    elif t.next.empty:
        print(
            "nothing points at a scenario: re-run triage in a few minutes, or start with the "
            "performance notebook"
        )
    run.glue("next_notebooks", t.next)
