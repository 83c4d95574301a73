"""The database runbook's judgement: findings with a next step, and the severity from the runbook's matrix.

Pure functions of the tables the diagnostics built (pg_activity, pg_connections, pg_locks, pg_space), so
every rule is tested on fixtures. `read` is the notebook's one way to call a fetch: skipped with a reason
when there is no connection, recorded in `sources` either way."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .errors import InvalidParameter
from .params import format_duration, parse_duration, validate_name, validate_selector
from .severity import Severity, assess

__all__ = [
    "CONNECTIONS_SEV2",
    "CONNECTIONS_SEV3",
    "LOCK_WAIT_SEV2_S",
    "XID_SEV2_PCT",
    "XID_SEV3_PCT",
    "read",
    "validate_params",
    "connect_cluster",
    "version_num",
    "unreachable_findings",
    "blocker_findings",
    "long_running_findings",
    "idle_in_transaction_findings",
    "connection_findings",
    "space_findings",
    "replication_findings",
    "pod_findings",
    "database_severity",
    "findings_text",
    "figures",
]

CONNECTIONS_SEV2 = 0.90  # share of usable slots: new connections will soon be refused
CONNECTIONS_SEV3 = 0.75
LOCK_WAIT_SEV2_S = 5.0  # sessions stuck this long behind a lock: requests are stalled, core features blocked
XID_SEV2_PCT = 50.0  # transaction-ID age as a share of the wraparound limit
XID_SEV3_PCT = 25.0
DEAD_PCT = 20.0
DEAD_MIN = 10_000
LAG_S = 60.0
SLOT_BYTES = 1 << 30

Finding = dict[str, Any]
UNREACHABLE = "database unreachable"


def read(run: Any, name: str, fetch: Callable[..., Any], conn: Any, *args: Any,
         missing: str = "no database connection (see the connection line above)", **kw: Any) -> Any:
    """Run `fetch(conn, ...)` as the source `name`; None when it failed or there is no connection."""
    if conn is None:
        run.skip(name, missing)
        return None
    result = None
    with run.source(name):
        result = fetch(conn, *args, **kw)
    return result


def validate_params(*, namespace: Any, context: Any, kubeconfig: Any, deployment: Any, db_selector: Any,
                    since: Any, dsn: Any, apply: Any, long_query_threshold: Any, top_n: Any, mitigation: Any,
                    pids: Any, statement_timeout_ms: Any, lock_timeout_ms: Any) -> dict[str, Any]:
    """Check every parameter before anything is touched; InvalidParameter names the value and the rule."""
    from .pg_actions import MITIGATIONS, parse_pids

    validate_name(namespace, what="namespace")
    validate_name(deployment, what="deployment")
    validate_selector(db_selector)
    for name, value in (("context", context), ("kubeconfig", kubeconfig), ("dsn", dsn)):
        if value is not None and not isinstance(value, str):
            raise InvalidParameter(f"{name} {value!r} must be text or None")
    if not isinstance(apply, bool):
        raise InvalidParameter(f"apply {apply!r} must be True or False")
    if isinstance(top_n, bool) or not isinstance(top_n, int) or not 1 <= top_n <= 1000:
        raise InvalidParameter(f"top_n {top_n!r} must be a whole number from 1 to 1000")
    if mitigation not in MITIGATIONS:
        raise InvalidParameter(f"mitigation {mitigation!r} is not one of {', '.join(MITIGATIONS)}")
    for name, value in (("statement_timeout_ms", statement_timeout_ms), ("lock_timeout_ms", lock_timeout_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidParameter(f"{name} {value!r} must be a positive whole number of milliseconds")
    return {
        "since": parse_duration(since, what="since"),
        "threshold_s": parse_duration(long_query_threshold, what="long_query_threshold").total_seconds(),
        "pids": parse_pids(pids),
    }


def connect_cluster(run: Any, *, kubeconfig: str | None, context: str | None) -> Any:
    """The cluster, like kubectl finds it; skipped with a clear line when none is configured at all."""
    from .kube import connect, resolve_kubeconfig

    if resolve_kubeconfig(kubeconfig) is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        run.skip("kubernetes: connect", "no cluster configured (no kubeconfig parameter, no $KUBECONFIG, no ~/.kube/config)")
        return None
    cluster = None
    with run.source("kubernetes: connect"):
        cluster = connect(kubeconfig=kubeconfig, context=context)
    return cluster


def version_num(conn: Any, server: dict[str, Any] | None) -> int:
    """The server's version number (150018), from SERVER_SQL or else from the connection itself."""
    if server and server.get("server_version_num"):
        return int(server["server_version_num"])
    return int(getattr(getattr(conn, "info", None), "server_version", 0) or 0)


def unreachable_findings(*, reachable: bool, target: str, error: str | None) -> list[Finding]:
    """The SEV1 finding of a database that cannot be reached."""
    if reachable:
        return []
    return [_finding("SEV1", f"{UNREACHABLE}: {target}", error or "the connection failed",
                     f"check the database pods and their logs (section above), then `pg_isready` against {target}; "
                     "a refused password or a missing database is a configuration problem, not an outage")]


def _clock(ts: Any) -> str:
    try:
        return ts.strftime("%H:%M:%S UTC")
    except (AttributeError, ValueError):
        return "an unknown time"


def _finding(severity: str, title: str, detail: str, next_step: str, **extra: Any) -> Finding:
    return {"severity": severity, "title": title, "detail": detail, "next_step": next_step, **extra}


def blocker_findings(roots: Any) -> list[Finding]:
    """One finding per root blocker: how many it blocks, for how long, what it is doing, terminate it."""
    out = []
    for r in roots.to_dict("records") if roots is not None else []:
        pid, n, wait = int(r["root_blocking_pid"]), int(r["blocked_sessions"]), float(r["longest_wait_s"])
        sev = "SEV2" if wait >= LOCK_WAIT_SEV2_S or n >= 3 else "SEV3"
        state = r.get("state") or "in an unknown state"
        since = f" since {_clock(r.get('xact_start'))}" if r.get("xact_start") is not None and r.get("xact_start") == r.get("xact_start") else ""
        detail = (f"pid {pid} has blocked {n} session{'s' if n != 1 else ''} for {format_duration(wait)}; it is {state} "
                  f"from app `{r.get('application') or '-'}` (user {r.get('user') or '?'}){since}; its last query: {r.get('query') or '?'}")
        step = (f"terminate pid {pid} (mitigation='terminate_blocker', apply=True, or SELECT pg_terminate_backend({pid})); "
                f"then ask the owner of app `{r.get('application') or '-'}` why it holds a transaction open")
        out.append(_finding(sev, f"pid {pid} blocks {n} session{'s' if n != 1 else ''}", detail, step, pid=pid))
    return out


def long_running_findings(long_running: Any, *, threshold_s: float,
                          waiting: set[int] | frozenset[int] = frozenset()) -> list[Finding]:
    """One finding per statement running longer than the threshold; lock waiters (`waiting`) are left to the
    finding about their root blocker."""
    out = []
    for r in long_running.to_dict("records") if long_running is not None else []:
        pid = int(r["pid"])
        if pid in waiting:
            continue
        detail = (f"pid {pid} (user {r.get('user')}, app `{r.get('application') or '-'}`) has run one statement for "
                  f"{format_duration(r['query_s'])}, over the {format_duration(threshold_s)} threshold: {r.get('query')}")
        step = (f"cancel it (mitigation='cancel', apply=True) or terminate it (mitigation='terminate_long'); "
                f"check with the owner of `{r.get('application') or '-'}` first")
        out.append(_finding("SEV3", f"long-running query: pid {pid} for {format_duration(r['query_s'])}", detail, step, pid=pid))
    return out


def idle_in_transaction_findings(idle: Any, *, threshold_s: float, blockers: set[int] | frozenset[int] = frozenset()) -> list[Finding]:
    """Sessions idle in a transaction longer than the threshold (root blockers are reported as such instead)."""
    out = []
    for r in idle.to_dict("records") if idle is not None else []:
        pid = int(r["pid"])
        if pid in blockers or (r.get("idle_s") or 0) < threshold_s:
            continue
        detail = (f"pid {pid} (user {r.get('user')}, app `{r.get('application') or '-'}`) is {r.get('state')} for "
                  f"{format_duration(r['idle_s'])} (transaction open {format_duration(r.get('xact_s'))}); it holds its locks "
                  f"and keeps vacuum from cleaning up; last query: {r.get('query')}")
        step = (f"terminate pid {pid} if its application is not about to commit (pids=[{pid}], mitigation='terminate_long', "
                "apply=True); set idle_in_transaction_session_timeout for that role")
        out.append(_finding("SEV3", f"pid {pid} idle in transaction for {format_duration(r['idle_s'])}", detail, step, pid=pid))
    return out


def connection_findings(summary: dict[str, Any], *, role: str | None = None) -> list[Finding]:
    """Connection slots running out, and sessions hidden from this role."""
    out = []
    usage = summary.get("usage")
    if usage is not None and usage >= CONNECTIONS_SEV3:
        sev = "SEV2" if usage >= CONNECTIONS_SEV2 else "SEV3"
        out.append(_finding(sev, f"connections at {usage * 100:.0f}% of the usable slots",
                            f"{summary['used']} of {summary['max_connections']} max_connections in use "
                            f"({summary['reserved']} reserved for superusers), {summary['available']} left; by state: {summary['by_state']}",
                            "find the application holding most connections (table above); terminate idle ones or "
                            "restart its pool; consider a pooler (PgBouncer)"))
    hidden = int(summary.get("hidden") or 0)
    if hidden:
        out.append(_finding("SEV4", f"{hidden} sessions hidden from role {role or '(this role)'}",
                            f"PostgreSQL shows `<insufficient privilege>` for {hidden} sessions of other roles: their state, "
                            "query and waits are unknown, so counts by state and the activity table are incomplete",
                            f"GRANT pg_monitor TO {role or '<this role>'}; (or run the runbook as a role that has it)"))
    return out


def space_findings(database_sizes: Any, tables: Any) -> list[Finding]:
    """Transaction-ID wraparound coming, and tables with many dead tuples."""
    out = []
    for r in database_sizes.to_dict("records") if database_sizes is not None else []:
        pct = r.get("xid_wraparound_pct")
        if pct is not None and pct == pct and pct >= XID_SEV3_PCT:
            out.append(_finding("SEV2" if pct >= XID_SEV2_PCT else "SEV3",
                                f"database {r['database']}: transaction-ID age at {pct:.0f}% of wraparound",
                                f"age(datfrozenxid) = {r['xid_age']:,}; at 100% PostgreSQL stops accepting writes",
                                f"VACUUM (FREEZE) the oldest tables of {r['database']}; look for long transactions and "
                                "inactive replication slots holding the xmin back"))
    for r in tables.to_dict("records") if tables is not None else []:
        dead, pct = r.get("dead_tuples"), r.get("dead_pct")
        if dead is not None and dead == dead and pct == pct and pct is not None and dead >= DEAD_MIN and pct >= DEAD_PCT:
            out.append(_finding("SEV4", f"table {r['schema']}.{r['table']}: {pct:.0f}% dead tuples",
                                f"{int(dead):,} dead tuples; last autovacuum: {r.get('last_autovacuum')}",
                                f"VACUUM (ANALYZE) {r['schema']}.{r['table']}; check what keeps autovacuum from it"))
    return out


def replication_findings(replication: Any, slots: Any) -> list[Finding]:
    """Replicas lagging, slots retaining WAL."""
    out = []
    for r in replication.to_dict("records") if replication is not None else []:
        lag = r.get("replay_lag_s")
        if lag is not None and lag == lag and lag >= LAG_S:
            out.append(_finding("SEV3", f"replica {r['replica']} lags {format_duration(lag)}",
                                f"replay lag {lag:.0f}s, {r.get('lag_bytes')} bytes behind; state {r.get('state')}",
                                "check the replica's disk and CPU; reads from it are stale"))
    for r in slots.to_dict("records") if slots is not None else []:
        kept = r.get("retained_bytes")
        if kept is not None and kept == kept and kept >= SLOT_BYTES and not r.get("active"):
            out.append(_finding("SEV3", f"inactive replication slot {r['slot']} retains {kept / (1 << 30):.1f} GB of WAL",
                                "an inactive slot keeps WAL until its consumer returns: the disk fills",
                                f"bring its consumer back or SELECT pg_drop_replication_slot('{r['slot']}')"))
    return out


def pod_findings(pods: Any) -> list[Finding]:
    """Database pods restarting or not ready."""
    out: list[Finding] = []
    if pods is None or len(pods) == 0:
        return out
    not_ready = [r for r in pods.to_dict("records") if r["ready"].split("/")[0] != r["ready"].split("/")[-1]]
    if len(not_ready) == len(pods):
        out.append(_finding("SEV1", f"no database pod is ready ({len(pods)} pods)",
                            "; ".join(f"{r['name']}: {r['status']}" for r in not_ready),
                            "read the pods' previous logs below; restart the workload only as a last resort"))
    for r in pods.to_dict("records"):
        if int(r["restarts"]) > 0:
            why = r.get("last_termination_reason") or "unknown reason"
            code = r.get("exit_code")
            out.append(_finding("SEV3", f"database pod {r['name']} restarted {int(r['restarts'])} times",
                                f"status {r['status']}, last termination: {why}" + (f" (exit code {code})" if code == code and code is not None else ""),
                                f"kubectl logs {r['name']} --previous; check memory limits (OOMKilled) and disk"))
    return out


def database_severity(*, reachable: bool | None, findings: list[Finding], target: str = "the database") -> Severity:
    """The runbook's matrix over what was measured: unreachable SEV1, core blocked SEV2, slow SEV3."""
    findings = [f for f in findings if not str(f["title"]).startswith(UNREACHABLE)]  # that one is `reachable`
    levels = {f["severity"] for f in findings}
    titles = {lvl: "; ".join(f["title"] for f in findings if f["severity"] == lvl) for lvl in levels}
    return assess(
        database_reachable=reachable,
        service_down="SEV1" in levels or None,
        core_blocked="SEV2" in levels or None,
        slow="SEV3" in levels or None,
        details={"database_reachable": f"{target} is unreachable",
                 "service_down": titles.get("SEV1", ""),
                 "core_blocked": titles.get("SEV2", ""),
                 "slow": titles.get("SEV3", "")},
    )


def figures(*, reachable: bool | None, summary: dict[str, Any] | None, blocking: Any, long_running: Any,
            idle: Any, pods: Any) -> dict[str, Any]:
    """The measured figures other tools read (notifications, the post-mortem)."""
    out: dict[str, Any] = {"database_reachable": reachable}
    if summary:
        out.update(connections_used=summary.get("used"), max_connections=summary.get("max_connections"),
                   connections_hidden=summary.get("hidden"))
    if blocking is not None:
        out["blocked_sessions"] = int(blocking["blocked_pid"].nunique()) if len(blocking) else 0
        out["longest_lock_wait_s"] = float(blocking["wait_s"].max()) if len(blocking) else 0.0
    if long_running is not None:
        out["long_running_queries"] = len(long_running)
    if idle is not None:
        out["idle_in_transaction"] = len(idle)
    if pods is not None and len(pods):
        out["pods_total"] = len(pods)
        out["pods_down"] = int(sum(1 for r in pods["ready"] if r.split("/")[0] != r.split("/")[-1]))
    return out


def findings_text(findings: list[Finding]) -> str:
    """The findings as a person reads them: worst first, each with its detail and the next step."""
    if not findings:
        return "no problem found"
    lines = []
    for f in sorted(findings, key=lambda f: f["severity"]):
        lines += [f"{f['severity']}  {f['title']}", f"      {f['detail']}", f"      → {f['next_step']}"]
    return "\n".join(lines)
