"""The database runbook's steps, one call per cell: connect read-only, the database's pods,
connections, activity, long-running and slow statements, lock chains, sizes, charts, the findings
with a next step and the severity from the runbook's matrix, and the mitigation (shown; done only
with apply=True).

The findings are pure functions of the tables the diagnostics built (`pg.activity`,
`pg.connections`, `pg.locks`, `pg.space`), so every rule is tested on fixtures. Every read is a
source of the run: skipped with a reason when there is no connection, one clear line when it fails;
the rest goes on."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import DatabaseError, KubeAPIError
from ..kube import actions as kube_actions
from ..kube import exec as kexec
from ..kube import reads
from ..kube.client import Cluster
from ..notebook import charts
from ..notebook.run import Run, show_table
from ..params import (
    Common,
    duration,
    flag,
    format_duration,
    name_of,
    one_of,
    optional,
    param,
    parse_duration,
    validate_selector,
    whole,
)
from ..pg import actions as pg_actions
from ..pg import activity, connections, locks, pods, space, statements
from ..pg import session as pg
from ..severity import LEVELS, Severity, assess
from .common import connect_cluster

CONNECTIONS_SEV2 = 0.90  # share of usable slots: new connections will soon be refused
CONNECTIONS_SEV3 = 0.75
LOCK_WAIT_SEV2_S = (
    5.0  # sessions stuck this long behind a lock: requests are stalled, core features blocked
)
XID_SEV2_PCT = 50.0  # transaction-ID age as a share of the wraparound limit
XID_SEV3_PCT = 25.0
DEAD_PCT = 20.0
DEAD_MIN = 10_000
LAG_S = 60.0
SLOT_BYTES = 1 << 30

Finding = dict[str, Any]
UNREACHABLE = "database unreachable"
LOGIN_REFUSED = "the runbook could not log in to"
# What to fix when the server refused our login, by the SQLSTATE pg.session gave the refusal.
_LOGIN_FIX = {
    "28P01": "fix the password of the dsn's user: PGPASSWORD, ~/.pgpass or the service file",
    "28000": "fix the user in dsn, or add a pg_hba.conf entry for this role from this host "
    "(then SELECT pg_reload_conf())",
    "3D000": "fix dbname in dsn (psql -l lists the databases)",
    "42501": "GRANT CONNECT ON DATABASE to the dsn's role, or use a role that has it",
}
_LOGIN_FIX_ANY = (
    "fix the runbook's login: the password (PGPASSWORD, ~/.pgpass), the user and dbname in dsn, "
    "and a pg_hba.conf entry for this host"
)


def version_num(conn: Any, server: dict[str, Any] | None) -> int:
    """The server's version number (150018), from SERVER_SQL or else from the connection itself."""
    if server and server.get("server_version_num"):
        return int(server["server_version_num"])
    return int(getattr(getattr(conn, "info", None), "server_version", 0) or 0)


def unreachable_findings(
    *,
    reachable: bool,
    target: str,
    error: str | None,
    refused: bool = False,
    sqlstate: str | None = None,
) -> list[Finding]:
    """The SEV1 finding of a database that cannot be reached; or, when the server answered and
    refused our login (`refused`, see `DatabaseError.refused`), the finding that the runbook could
    not log in: a problem of its configuration, with no severity claim about the database
    (severity None)."""
    if reachable:
        return []
    if refused:
        return [
            _finding(
                None,
                f"{LOGIN_REFUSED} {target}",
                (error or "the login was refused")
                + " (the server answered: this says nothing about the database's health, which "
                "was not measured)",
                f"{_LOGIN_FIX.get(sqlstate or '', _LOGIN_FIX_ANY)}; then run this notebook again",
            )
        ]
    return [
        _finding(
            "SEV1",
            f"{UNREACHABLE}: {target}",
            error or "the connection failed",
            "check the database pods and their logs (section above), then `pg_isready` against "
            f"{target}",
        )
    ]


def _clock(ts: Any) -> str:
    try:
        return ts.strftime("%H:%M:%S UTC")
    except (AttributeError, ValueError):
        return "an unknown time"


def _finding(
    severity: str | None, title: str, detail: str, next_step: str, **extra: Any
) -> Finding:
    return {"severity": severity, "title": title, "detail": detail, "next_step": next_step, **extra}


def record_finding(run: Run, finding: Finding) -> None:
    """`run.finding(**finding)`: severity None (a problem of the runbook itself, such as a refused
    login) makes no severity claim."""
    run.finding(**finding)


def blocker_findings(roots: Any) -> list[Finding]:
    """One finding per root blocker: how many it blocks, for how long, what it is doing, terminate
    it."""
    out = []
    for r in roots.to_dict("records") if roots is not None else []:
        pid, n, wait = (
            int(r["root_blocking_pid"]),
            int(r["blocked_sessions"]),
            float(r["longest_wait_s"]),
        )
        sev = "SEV2" if wait >= LOCK_WAIT_SEV2_S or n >= 3 else "SEV3"
        state = r.get("state") or "in an unknown state"
        since = (
            f" since {_clock(r.get('xact_start'))}"
            if r.get("xact_start") is not None and r.get("xact_start") == r.get("xact_start")
            else ""
        )
        detail = (
            f"pid {pid} has blocked {n} session{'s' if n != 1 else ''} for "
            f"{format_duration(wait)}; it is {state} "
            f"from app `{r.get('application') or '-'}` (user {r.get('user') or '?'}){since}; its "
            f"last query: {r.get('query') or '?'}"
        )
        step = (
            f"terminate pid {pid} (mitigation='terminate_blocker', apply=True, or SELECT "
            f"pg_terminate_backend({pid})); "
            f"then ask the owner of app `{r.get('application') or '-'}` why it holds a "
            "transaction open"
        )
        out.append(
            _finding(
                sev,
                f"pid {pid} blocks {n} session{'s' if n != 1 else ''}",
                detail,
                step,
                pid=pid,
                root_cause=True,
            )
        )
    return out


def long_running_findings(
    long_running: Any, *, threshold_s: float, waiting: set[int] | frozenset[int] = frozenset()
) -> list[Finding]:
    """One finding per statement running longer than the threshold; lock waiters (`waiting`) are
    left to the finding about their root blocker."""
    out = []
    for r in long_running.to_dict("records") if long_running is not None else []:
        pid = int(r["pid"])
        if pid in waiting:
            continue
        detail = (
            f"pid {pid} (user {r.get('user')}, app `{r.get('application') or '-'}`) has run one "
            "statement for "
            f"{format_duration(r['query_s'])}, over the {format_duration(threshold_s)} threshold: "
            f"{r.get('query')}"
        )
        step = (
            "cancel it (mitigation='cancel', apply=True) or terminate it "
            "(mitigation='terminate_long'); "
            f"check with the owner of `{r.get('application') or '-'}` first"
        )
        out.append(
            _finding(
                "SEV3",
                f"long-running query: pid {pid} for {format_duration(r['query_s'])}",
                detail,
                step,
                pid=pid,
            )
        )
    return out


def idle_in_transaction_findings(
    idle: Any, *, threshold_s: float, blockers: set[int] | frozenset[int] = frozenset()
) -> list[Finding]:
    """Sessions idle in a transaction longer than the threshold (root blockers are reported as such
    instead)."""
    out = []
    for r in idle.to_dict("records") if idle is not None else []:
        pid = int(r["pid"])
        if pid in blockers or (r.get("idle_s") or 0) < threshold_s:
            continue
        detail = (
            f"pid {pid} (user {r.get('user')}, app `{r.get('application') or '-'}`) is "
            f"{r.get('state')} for "
            f"{format_duration(r['idle_s'])} (transaction open "
            f"{format_duration(r.get('xact_s'))}); it holds its locks "
            f"and keeps vacuum from cleaning up; last query: {r.get('query')}"
        )
        step = (
            f"terminate pid {pid} if its application is not about to commit (pids=[{pid}], "
            "mitigation='terminate_long', "
            "apply=True); set idle_in_transaction_session_timeout for that role"
        )
        out.append(
            _finding(
                "SEV3",
                f"pid {pid} idle in transaction for {format_duration(r['idle_s'])}",
                detail,
                step,
                pid=pid,
            )
        )
    return out


def connection_findings(summary: dict[str, Any], *, role: str | None = None) -> list[Finding]:
    """Connection slots running out, and sessions hidden from this role."""
    out = []
    usage = summary.get("usage")
    if usage is not None and usage >= CONNECTIONS_SEV3:
        sev = "SEV2" if usage >= CONNECTIONS_SEV2 else "SEV3"
        out.append(
            _finding(
                sev,
                f"connections at {usage * 100:.0f}% of the usable slots",
                f"{summary['used']} of {summary['max_connections']} max_connections in use "
                f"({summary['reserved']} reserved for superusers), {summary['available']} left; "
                f"by state: {summary['by_state']}",
                "find the application holding most connections (table above); terminate idle ones "
                "or "
                "restart its pool; consider a pooler (PgBouncer)",
            )
        )
    hidden = int(summary.get("hidden") or 0)
    if hidden:
        out.append(
            _finding(
                "SEV4",
                f"{hidden} sessions hidden from role {role or '(this role)'}",
                f"PostgreSQL shows `<insufficient privilege>` for {hidden} sessions of other "
                "roles: their state, "
                "query and waits are unknown, so counts by state and the activity table are "
                "incomplete",
                f"GRANT pg_monitor TO {role or '<this role>'}; (or run the runbook as a role that "
                "has it)",
            )
        )
    return out


def space_findings(database_sizes: Any, tables: Any) -> list[Finding]:
    """Transaction-ID wraparound coming, and tables with many dead tuples."""
    out = []
    for r in database_sizes.to_dict("records") if database_sizes is not None else []:
        pct = r.get("xid_wraparound_pct")
        if pct is not None and pct == pct and pct >= XID_SEV3_PCT:
            out.append(
                _finding(
                    "SEV2" if pct >= XID_SEV2_PCT else "SEV3",
                    f"database {r['database']}: transaction-ID age at {pct:.0f}% of wraparound",
                    f"age(datfrozenxid) = {r['xid_age']:,}; at 100% PostgreSQL stops accepting "
                    "writes",
                    f"VACUUM (FREEZE) the oldest tables of {r['database']}; look for long "
                    "transactions and "
                    "inactive replication slots holding the xmin back",
                )
            )
    for r in tables.to_dict("records") if tables is not None else []:
        dead, pct = r.get("dead_tuples"), r.get("dead_pct")
        if (
            dead is not None
            and dead == dead
            and pct == pct
            and pct is not None
            and dead >= DEAD_MIN
            and pct >= DEAD_PCT
        ):
            out.append(
                _finding(
                    "SEV4",
                    f"table {r['schema']}.{r['table']}: {pct:.0f}% dead tuples",
                    f"{int(dead):,} dead tuples; last autovacuum: {r.get('last_autovacuum')}",
                    f"VACUUM (ANALYZE) {r['schema']}.{r['table']}; check what keeps autovacuum "
                    "from it",
                )
            )
    return out


def replication_findings(replication: Any, slots: Any) -> list[Finding]:
    """Replicas lagging, slots retaining WAL."""
    out = []
    for r in replication.to_dict("records") if replication is not None else []:
        lag = r.get("replay_lag_s")
        if lag is not None and lag == lag and lag >= LAG_S:
            out.append(
                _finding(
                    "SEV3",
                    f"replica {r['replica']} lags {format_duration(lag)}",
                    f"replay lag {lag:.0f}s, {r.get('lag_bytes')} bytes behind; state "
                    f"{r.get('state')}",
                    "check the replica's disk and CPU; reads from it are stale",
                )
            )
    for r in slots.to_dict("records") if slots is not None else []:
        kept = r.get("retained_bytes")
        if kept is not None and kept == kept and kept >= SLOT_BYTES and not r.get("active"):
            out.append(
                _finding(
                    "SEV3",
                    f"inactive replication slot {r['slot']} retains {kept / (1 << 30):.1f} GB of "
                    "WAL",
                    "an inactive slot keeps WAL until its consumer returns: the disk fills",
                    f"bring its consumer back or SELECT pg_drop_replication_slot('{r['slot']}')",
                )
            )
    return out


def pod_findings(pods: Any) -> list[Finding]:
    """Database pods restarting or not ready."""
    out: list[Finding] = []
    if pods is None or len(pods) == 0:
        return out
    not_ready = [
        r for r in pods.to_dict("records") if r["ready"].split("/")[0] != r["ready"].split("/")[-1]
    ]
    if len(not_ready) == len(pods):
        out.append(
            _finding(
                "SEV1",
                f"no database pod is ready ({len(pods)} pods)",
                "; ".join(f"{r['name']}: {r['status']}" for r in not_ready),
                "read the pods' previous logs below; restart the workload only as a last resort",
            )
        )
    for r in pods.to_dict("records"):
        if int(r["restarts"]) > 0:
            why = r.get("last_termination_reason") or "unknown reason"
            code = r.get("exit_code")
            out.append(
                _finding(
                    "SEV3",
                    f"database pod {r['name']} restarted {int(r['restarts'])} times",
                    f"status {r['status']}, last termination: {why}"
                    + (f" (exit code {code})" if code == code and code is not None else ""),
                    f"kubectl logs {r['name']} --previous; check memory limits (OOMKilled) and "
                    "disk",
                )
            )
    return out


def database_severity(
    *, reachable: bool | None, findings: list[Finding], target: str = "the database"
) -> Severity:
    """The runbook's matrix over what was measured: unreachable SEV1, core blocked SEV2, slow
    SEV3. `reachable=None` (not measured, e.g. our login was refused) claims nothing; a finding
    without a severity (None) counts for nothing."""
    findings = [
        f for f in findings if not str(f["title"]).startswith(UNREACHABLE)
    ]  # that one is `reachable`
    levels = {f["severity"] for f in findings}
    titles = {
        lvl: "; ".join(f["title"] for f in findings if f["severity"] == lvl) for lvl in levels
    }
    return assess(
        database_reachable=reachable,
        service_down="SEV1" in levels or None,
        core_blocked="SEV2" in levels or None,
        slow="SEV3" in levels or None,
        details={
            "database_reachable": f"{target} is unreachable",
            "service_down": titles.get("SEV1", ""),
            "core_blocked": titles.get("SEV2", ""),
            "slow": titles.get("SEV3", ""),
        },
    )


def figures(
    *,
    reachable: bool | None,
    summary: dict[str, Any] | None,
    blocking: Any,
    long_running: Any,
    idle: Any,
    pods: Any,
    login_refused: bool = False,
) -> dict[str, Any]:
    """The measured figures other tools read (notifications, the post-mortem).

    A refused login leaves `database_reachable` None (not measured, never False) and sets
    `database_login_refused`."""
    out: dict[str, Any] = {"database_reachable": None if login_refused else reachable}
    if login_refused:
        out["database_login_refused"] = True
    if summary:
        out.update(
            connections_used=summary.get("used"),
            max_connections=summary.get("max_connections"),
            connections_hidden=summary.get("hidden"),
        )
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
    rank = {level: i for i, level in enumerate(LEVELS)}
    for f in sorted(findings, key=lambda f: rank.get(f["severity"], len(LEVELS))):
        lines += [
            f"{f['severity'] or '----'}  {f['title']}",
            f"      {f['detail']}",
            f"      → {f['next_step']}",
        ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- the notebook
@dataclass(frozen=True)
class Params(Common):
    """The database notebook's parameters, checked."""

    deployment: str = param("postgres", check=name_of("deployment"))
    db_selector: str = param("app in (postgres)", check=lambda v, n: validate_selector(v))
    long_query_threshold: str = param("5min", check=duration)
    top_n: int = param(10, check=whole(1, 1000))
    mitigation: str = param("auto", check=one_of(pg_actions.MITIGATIONS))
    pids: list[int] | None = param(None, check=lambda v, n: pg_actions.parse_pids(v))
    statement_timeout_ms: int = param(5000, check=whole(1, 3_600_000, unit=" of milliseconds"))
    lock_timeout_ms: int = param(1000, check=whole(1, 3_600_000, unit=" of milliseconds"))
    app_deployment: str | None = param("backend", check=optional(name_of("deployment")))
    exec_checks: bool = param(True, check=flag)

    @property
    def threshold_s(self) -> float:
        """`long_query_threshold` in seconds."""
        return parse_duration(
            self.long_query_threshold, what="long_query_threshold"
        ).total_seconds()


@dataclass
class Facts:
    """Everything read and built, for the notebook's sections."""

    target: str = ""
    conn: pg.Connection | None = None
    server: dict[str, Any] = field(default_factory=dict)
    connect_error: str | None = None
    login_refused: bool = False  # the server answered and refused our login: not measured
    connect_sqlstate: str | None = None
    version: int = 0
    cluster: Cluster | None = None
    pod_items: list[dict[str, Any]] | None = None
    db_pods: pd.DataFrame = field(default_factory=lambda: pods.db_pods_frame(None))
    sessions: pd.DataFrame = field(default_factory=lambda: activity.sessions_frame(None))
    connections: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: dict[str, Any] = field(default_factory=dict)
    idle_in_transaction: pd.DataFrame = field(default_factory=pd.DataFrame)
    activity: pd.DataFrame = field(default_factory=pd.DataFrame)
    long_running: pd.DataFrame = field(default_factory=pd.DataFrame)
    statements: pd.DataFrame = field(default_factory=pd.DataFrame)
    slow_queries: pd.DataFrame = field(default_factory=pd.DataFrame)
    blocking: pd.DataFrame = field(default_factory=lambda: locks.blocking_frame(None))
    roots: pd.DataFrame = field(default_factory=pd.DataFrame)
    database_sizes: pd.DataFrame = field(default_factory=pd.DataFrame)
    tables: pd.DataFrame = field(default_factory=pd.DataFrame)
    replication: pd.DataFrame = field(default_factory=pd.DataFrame)
    slots: pd.DataFrame = field(default_factory=pd.DataFrame)
    connectivity: pd.DataFrame = field(default_factory=lambda: kexec.connectivity_frame([]))

    @property
    def reachable(self) -> bool:
        return self.conn is not None

    @property
    def database_reachable(self) -> bool | None:
        """For the severity and the figures: True connected, False cannot reach it, None not
        measured (the server refused our login)."""
        return None if self.login_refused and self.conn is None else self.reachable

    def close(self) -> None:
        """Close the diagnostic session."""
        if self.conn is not None:
            self.conn.close()


def _read(
    run: Run,
    name: str,
    fetch: Callable[..., Any],
    conn: Any,
    *args: Any,
    missing: str = "no database connection (see the connection line above)",
    **kw: Any,
) -> Any:
    """Run `fetch(conn, ...)` as the source `name`; None when it failed or there is no
    connection."""
    if conn is None:
        run.skip(name, missing)
        return None
    result = None
    with run.source(name):
        result = fetch(conn, *args, **kw)
    return result


def connect(run: Run, cfg: Params) -> Facts:
    """The read-only diagnostic session (statement and lock timeouts), and who we are on the
    server."""
    db = Facts(target=pg.describe_target(cfg.dsn))
    with run.source("postgres: connect") as connected:
        try:
            db.conn = pg.connect(
                cfg.dsn,
                statement_timeout_ms=cfg.statement_timeout_ms,
                lock_timeout_ms=cfg.lock_timeout_ms,
            )
        except DatabaseError as e:
            db.login_refused, db.connect_sqlstate = e.refused, e.sqlstate
            raise
        db.server = connections.fetch_server(db.conn)
    db.connect_error = connected.error
    db.version = version_num(db.conn, db.server)
    if connected.ok:
        s = db.server
        print(
            f"✓ connected to {db.target}: PostgreSQL {s['server_version']} as {s['role']} "
            f"(superuser: {s['superuser']}, pg_monitor: {s['pg_monitor']}, standby: "
            f"{s['in_recovery']})"
        )
    return db


def database_pods(run: Run, cfg: Params, db: Facts) -> None:
    """The pods matching `db_selector`: status, restarts, last termination, and their log tails (the
    `db_pods` and `db_logs` scraps)."""
    db.cluster = connect_cluster(run, cfg, optional=True)
    db.pod_items = _read(
        run,
        "kubernetes: database pods",
        lambda c: reads.fetch_pods(c, cfg.namespace, selector=cfg.db_selector),
        db.cluster,
        missing="no cluster",
    )
    db.db_pods = pods.db_pods_frame(db.pod_items)
    show_table(
        db.db_pods,
        empty=f"no pod matches {cfg.db_selector} in {cfg.namespace}"
        if db.pod_items is not None
        else "not read",
    )
    if db.pod_items:
        db_logs = _read(
            run, "kubernetes: database logs", pods.fetch_db_logs, db.cluster, db.pod_items
        )
        if db_logs is not None:
            print(pods.logs_text(db_logs))
            run.glue("db_logs", db_logs)
    run.glue("db_pods", db.db_pods)


LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")


def connectivity_target(
    dsn: str | None,
    services: list[dict[str, Any]],
    db_pods: list[dict[str, Any]],
    *,
    namespace: str,
) -> tuple[str, int] | None:
    """Where the application's pods should reach the database: the DSN's host and port, unless
    that is this machine or a socket (meaningless from a pod); then the Service that selects the
    database's pods. None when neither is known."""
    from psycopg import conninfo

    try:
        d = conninfo.conninfo_to_dict(dsn or "")
    except Exception:  # noqa: BLE001 - a malformed DSN was reported by connect already
        d = {}
    host = str(d.get("host") or os.environ.get("PGHOST") or "").split(",")[0]
    port = str(d.get("port") or os.environ.get("PGPORT") or "5432").split(",")[0]
    if host not in LOCAL_HOSTS and not host.startswith("/") and port.isdigit():
        return host, int(port)
    labels = [(p.get("metadata") or {}).get("labels") or {} for p in db_pods]
    for svc in services:
        sel = (svc.get("spec") or {}).get("selector") or {}
        if sel and any(all(lb.get(k) == v for k, v in sel.items()) for lb in labels):
            ports = (svc.get("spec") or {}).get("ports") or [{}]
            return f"{svc['metadata']['name']}.{namespace}.svc", int(ports[0].get("port", 5432))
    return None


def connectivity_findings(
    frame: pd.DataFrame, *, app: str, database_reachable: bool | None
) -> list[Finding]:
    """A finding when the application's pods cannot open a TCP connection to the database: its
    own finding when the runbook itself reached it ("up, but the backend cannot reach it")."""
    if frame.empty or bool(frame["ok"].all()):
        return []
    bad = frame[~frame["ok"]]
    every = len(bad) == len(frame)
    target = str(frame["target"].iloc[0])
    what = (
        f"the database is up but {app} cannot reach it"
        if database_reachable
        else f"{app} cannot reach the database"
    )
    return [
        _finding(
            "SEV1" if every else "SEV2",
            what,
            f"{len(bad)} of {len(frame)} pod(s) of deployment/{app} failed to connect to {target}: "
            f"{bad['error'].iloc[0]}",
            "check NetworkPolicies, the Service and its endpoints, DNS, and the database's "
            "listen_addresses/pg_hba.conf for the pods' addresses",
        )
    ]


def app_connectivity(run: Run, cfg: Params, db: Facts, *, at_most: int = 3) -> None:
    """The runbook's Recovery Verification from inside the application: a TCP connect from each
    running pod of `app_deployment` to the database (the DSN's host and port, or its Service), with
    the time it took (the `connectivity` scrap)."""
    source = f"kubernetes: exec in pods of deployment/{cfg.app_deployment}"
    if not cfg.exec_checks or not cfg.app_deployment:
        run.skip(source, "exec_checks=False" if not cfg.exec_checks else "no app_deployment")
        return
    if db.cluster is None:
        run.skip(source, "no cluster")
        return
    from .performance import exec_targets

    results: list[tuple[str, kexec.ExecResult]] = []
    with run.source(source):
        services = reads.fetch_services(db.cluster, cfg.namespace)
        target = connectivity_target(cfg.dsn, services, db.pod_items or [], namespace=cfg.namespace)
        if target is None:
            print("– no database address known from the DSN, and no Service selects its pods")
            return
        host, port = target
        app_pods = reads.fetch_pods(db.cluster, cfg.namespace)
        for pod, container in exec_targets(app_pods, cfg.app_deployment, at_most=at_most):
            name = pod["metadata"]["name"]
            why = kexec.not_running(pod, container)
            if why:
                print(f"– {name}: {why}")
                continue
            r = kexec.run_check(
                db.cluster, cfg.namespace, name, container, "tcp", host=host, port=port
            )
            if r.error and r.error.startswith("exec forbidden"):
                raise KubeAPIError(r.error, status=403, reason="Forbidden")
            if r.error:
                print(f"✗ {name}: {r.error}")
            results.append((f"{host}:{port}", r))
    db.connectivity = kexec.connectivity_frame(results)
    show_table(
        db.connectivity,
        caption=f"TCP connect from deployment/{cfg.app_deployment} to the database",
        empty="no pod of the application was checked",
    )
    run.glue("connectivity", db.connectivity)


def show_connections(run: Run, db: Facts) -> None:
    """Counts by state, database, user, application and client against max_connections; idle in
    transaction (the `connections` and `idle_in_transaction` scraps)."""
    db.sessions = activity.sessions_frame(
        _read(run, "postgres: sessions", activity.fetch_sessions, db.conn)
    )
    db.connections = connections.connections_frame(db.sessions)
    db.summary = s = connections.connection_summary(db.connections, db.server)
    if s["max_connections"]:
        print(
            f"{s['used']} connections of max_connections {s['max_connections']} ({s['reserved']} "
            "reserved, "
            f"{s['available']} free, {s['usage']:.0%} of the usable slots)"
        )
    if s["hidden"]:
        print(
            f"⚠ {s['hidden']} sessions belong to other roles and are hidden from "
            f"{db.server.get('role')} "
            "(<insufficient privilege>): their state and query are unknown; GRANT pg_monitor to "
            "see them"
        )
    show_table(
        connections.counts_overview(db.connections), max_rows=40, empty="no connections read"
    )
    db.idle_in_transaction = activity.idle_in_transaction_frame(db.sessions)
    show_table(
        db.idle_in_transaction[activity.IDLE_IN_TX_VIEW],
        caption="idle in transaction:",
        empty="no session is idle in transaction",
    )
    run.glue("connections", db.connections)
    run.glue("idle_in_transaction", db.idle_in_transaction)


def show_activity(run: Run, db: Facts) -> None:
    """Every non-idle backend, oldest transaction first (the `activity` scrap)."""
    db.activity = activity.activity_frame(db.sessions)
    show_table(db.activity[activity.ACTIVITY_VIEW], empty="nothing is running")
    run.glue("activity", db.activity)


def show_long_running(run: Run, cfg: Params, db: Facts) -> None:
    """Statements active longer than the threshold (the `long_running` scrap)."""
    db.long_running = activity.long_running_frame(db.activity, threshold_s=cfg.threshold_s)
    show_table(
        db.long_running[activity.ACTIVITY_VIEW],
        empty=f"no statement has run longer than {format_duration(cfg.threshold_s)}",
    )
    run.glue("long_running", db.long_running)


def show_slow_statements(run: Run, cfg: Params, db: Facts) -> None:
    """pg_stat_statements: the top statements by mean and by total time (the `slow_queries`
    scrap)."""
    rows = _read(
        run,
        "postgres: pg_stat_statements",
        statements.fetch_all,
        db.conn,
        server_version_num=db.version,
    )
    db.statements, hidden = statements.statements_frame(rows, keep_text=cfg.top_n)
    db.slow_queries = statements.slow_queries_frame(db.statements, top_n=cfg.top_n)
    if rows is not None:
        reset = _read(
            run, "postgres: pg_stat_statements reset time", statements.fetch_stats_reset, db.conn
        )
        if reset is not None:
            print(statements.window_line(reset, since=cfg.window))
    if hidden:
        print(
            f"⚠ {hidden} entries of other roles hide their text (<insufficient privilege>): they "
            "count in "
            "the share of total time only; GRANT pg_read_all_stats (part of pg_monitor) to see them"
        )
    for by, caption in (("mean_ms", "top by mean time:"), ("total_ms", "top by total time:")):
        top = statements.top_statements(db.statements, by=by, n=cfg.top_n)
        show_table(top[statements.STATEMENT_VIEW], caption=caption, empty="no statement statistics")
    run.glue("slow_queries", db.slow_queries)


def show_blocking(run: Run, db: Facts) -> None:
    """Every lock wait with its whole chain and its root blocker (the `blocking` scrap)."""
    db.blocking = locks.blocking_frame(
        _read(
            run, "postgres: blocking", locks.fetch_blocking, db.conn, server_version_num=db.version
        )
    )
    db.roots = locks.root_blockers(db.blocking)
    print(locks.blocking_tree(db.blocking))
    show_table(db.blocking[locks.BLOCKING_VIEW], empty="no lock waits")
    run.glue("blocking", db.blocking)


def show_sizes(run: Run, cfg: Params, db: Facts) -> None:
    """Database sizes and wraparound age, the largest tables, replication and slots (the
    `database_sizes` and `tables` scraps)."""
    db.database_sizes = space.database_sizes_frame(
        _read(run, "postgres: database sizes", space.fetch_database_sizes, db.conn)
    )
    show_table(db.database_sizes[space.DATABASE_SIZE_VIEW], empty="no database sizes")
    rows = _read(run, "postgres: largest tables", space.fetch_tables, db.conn, limit=cfg.top_n)
    estimated = rows is None and db.conn is not None
    if estimated:  # the exact sizes wait on locks: pg_class's estimates take none
        rows = _read(
            run,
            "postgres: largest tables (estimated, takes no lock)",
            space.fetch_tables,
            db.conn,
            limit=cfg.top_n,
            exact=False,
        )
    db.tables = space.tables_frame(rows, estimated=estimated)
    show_table(
        db.tables[space.TABLE_VIEW],
        empty="no tables",
        caption="largest tables" + (" (estimated from pg_class):" if estimated else ":"),
    )
    db.replication = space.replication_frame(
        _read(run, "postgres: replication", space.fetch_replication, db.conn)
    )
    db.slots = space.slots_frame(
        _read(run, "postgres: replication slots", space.fetch_slots, db.conn)
    )
    show_table(db.replication, caption="replicas:", empty="no replica streams from this server")
    show_table(db.slots, caption="replication slots:", empty="no replication slots")
    run.glue("database_sizes", db.database_sizes)
    run.glue("tables", db.tables)


def show_charts(db: Facts) -> None:
    """The slowest statements, connections against max_connections, lock waits (those with anything
    to draw)."""
    charts.show(
        charts.slow_statements(db.statements, top_n=5),
        charts.connections(db.summary),
        charts.lock_waits(db.blocking),
    )


def assess_database(run: Run, cfg: Params, db: Facts) -> Severity:
    """Every finding with its next step, the figures other tools read, and the severity."""
    for f in (
        unreachable_findings(
            reachable=db.reachable,
            target=db.target,
            error=db.connect_error,
            refused=db.login_refused,
            sqlstate=db.connect_sqlstate,
        )
        + pod_findings(db.db_pods)
        + blocker_findings(db.roots)
        + connection_findings(db.summary, role=db.server.get("role"))
        + long_running_findings(
            db.long_running, threshold_s=cfg.threshold_s, waiting=set(db.blocking["blocked_pid"])
        )
        + idle_in_transaction_findings(
            db.idle_in_transaction,
            threshold_s=cfg.threshold_s,
            blockers=set(db.roots["root_blocking_pid"]) if len(db.roots) else set(),
        )
        + space_findings(db.database_sizes, db.tables)
        + replication_findings(db.replication, db.slots)
        + connectivity_findings(
            db.connectivity,
            app=cfg.app_deployment or "the application",
            database_reachable=db.database_reachable,
        )
    ):
        record_finding(run, f)
    run.figures.update(
        figures(
            reachable=db.database_reachable,
            summary=db.summary if db.reachable else None,
            blocking=db.blocking,
            long_running=db.long_running,
            idle=db.idle_in_transaction,
            pods=db.db_pods if db.pod_items is not None else None,
            login_refused=db.login_refused,
        )
    )
    severity = run.checked(
        database_severity(reachable=db.database_reachable, findings=run.findings, target=db.target)
    )
    print(f"severity {severity}\n")
    print(findings_text(run.findings))
    return severity


def mitigate(run: Run, cfg: Params, db: Facts) -> dict[str, Any] | None:
    """The mitigation, shown as the exact statements (or the restart); done only with apply=True;
    recorded.

    Sessions: the root blocker, the long-running queries, or the pids asked for. Restart (last
    resort): a rollout restart of the database's workload (`deployment`) through `kube.actions`."""
    chosen = pg_actions.choose(cfg.mitigation, long_running=db.long_running, blocking=db.roots)
    if chosen == "restart":
        return _restart(run, cfg, db)
    if db.sessions is None or len(db.sessions) == 0:
        run.skip("postgres: mitigation", "no session snapshot (the database could not be read)")
        return None
    plan = pg_actions.plan_sessions(
        cfg.mitigation,
        sessions=db.sessions,
        blocking=db.blocking,
        threshold_s=cfg.threshold_s,
        pids=cfg.pids,
        own_pids=[int(db.server["pid"])] if db.server.get("pid") else [],
        target=db.target,
    )
    print(plan.describe())
    outcome = None
    with run.source("postgres: mitigation"):
        outcome = pg_actions.execute(
            plan,
            dsn=cfg.dsn,
            apply=cfg.apply,
            record=run.record_action,
            statement_timeout_ms=cfg.statement_timeout_ms,
            lock_timeout_ms=cfg.lock_timeout_ms,
        )
        print(f"{outcome['status']}: {outcome['detail']}")
    if outcome is not None and outcome["applied"]:
        after = locks.blocking_frame(
            _read(
                run,
                "postgres: blocking after the mitigation",
                locks.fetch_blocking,
                db.conn,
                server_version_num=db.version,
            )
        )
        print("after the mitigation:\n" + locks.blocking_tree(after))
    return outcome


def _restart(run: Run, cfg: Params, db: Facts) -> dict[str, Any] | None:
    if db.cluster is None:
        run.skip("kubernetes: restart", "no cluster configured: the restart cannot even be planned")
        return None
    outcome = None
    with run.source("kubernetes: restart"):
        workload = reads.fetch_workload(db.cluster, cfg.namespace, cfg.deployment)
        plan = kube_actions.plan_restart(
            workload, why="mitigation=restart: the last resort, every database connection drops"
        )
        print(plan.describe())
        outcome = kube_actions.execute(db.cluster, plan, apply=cfg.apply, record=run.record_action)
        print(f"{outcome['status']}: {outcome['detail']}")
    return outcome
