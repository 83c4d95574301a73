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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import DatabaseError, KubeAPIError
from ..kube import exec as kexec
from ..kube import reads
from ..kube.client import freeze_heap
from ..notebook import charts
from ..notebook.chartworker import ChartJob, ChartWorker
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
from ..pg import activity, connections, dangers, locks, pods, space, statements
from ..pg import session as pg
from ..quantity import validate_resource
from ..severity import LEVELS, Severity, assess
from .common import connect_cluster, describe_cluster

if TYPE_CHECKING:
    from ..kube.client import Cluster

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
        title = f"pid {pid} blocks {n} session{'s' if n != 1 else ''}"
        if pid == locks.PREPARED_PID:  # no backend to terminate
            title = f"a prepared transaction blocks {n} session{'s' if n != 1 else ''}"
            detail = (
                f"a prepared transaction (no session: pg_blocking_pids reports pid 0) has blocked "
                f"{n} session{'s' if n != 1 else ''} for {format_duration(wait)}"
            )
            step = (
                "find it in the prepared transactions table (Dangers DBAs check) and COMMIT "
                "PREPARED or ROLLBACK PREPARED it, after asking the transaction manager that "
                "prepared it"
            )
        out.append(_finding(sev, title, detail, step, pid=pid, root_cause=True))
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
        kept, name, status = r.get("retained_bytes"), r["slot_name"], r.get("wal_status")
        drop = f"bring its consumer back or SELECT pg_drop_replication_slot('{name}')"
        if status in ("lost", "unreserved"):
            out.append(
                _finding(
                    "SEV3",
                    f"replication slot {name}: its WAL is {status}",
                    "the WAL its consumer needs is gone"
                    if status == "lost"
                    else "its WAL is beyond max_slot_wal_keep_size and goes at the next checkpoint",
                    f"rebuild the consumer from a new base backup; SELECT "
                    f"pg_drop_replication_slot('{name}')"
                    if status == "lost"
                    else drop,
                )
            )
        elif kept is not None and kept == kept and kept >= SLOT_BYTES and not r.get("active"):
            out.append(
                _finding(
                    "SEV3",
                    f"inactive replication slot {name} retains {kept / (1 << 30):.1f} GB of WAL",
                    "an inactive slot keeps WAL until its consumer returns: the disk fills",
                    drop,
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

    db_selector: str = param("app in (postgres)", check=lambda v, n: validate_selector(v))
    long_query_threshold: str = param("5min", check=duration)
    top_n: int = param(10, check=whole(1, 1000))
    mitigation: str = param("auto", check=one_of(pg_actions.MITIGATIONS))
    pids: list[int] | None = param(None, check=lambda v, n: pg_actions.parse_pids(v))
    stale_threshold: str = param("10min", check=duration)
    db_container: str | None = param(None, check=optional(name_of("db_container")))
    db_memory: str = param("2Gi", check=lambda v, n: validate_resource(v, n, cpu=False))
    db_cpu: str = param("1000m", check=lambda v, n: validate_resource(v, n, cpu=True))
    rollout_timeout_s: int = param(120, check=whole(1, 3600, unit=" of seconds"))
    statement_timeout_ms: int = param(5000, check=whole(1, 3_600_000, unit=" of milliseconds"))
    lock_timeout_ms: int = param(1000, check=whole(1, 3_600_000, unit=" of milliseconds"))
    exec_checks: bool = param(True, check=flag)

    @property
    def threshold_s(self) -> float:
        """`long_query_threshold` in seconds."""
        return parse_duration(
            self.long_query_threshold, what="long_query_threshold"
        ).total_seconds()

    @property
    def stale_s(self) -> float:
        """`stale_threshold` in seconds."""
        return parse_duration(self.stale_threshold, what="stale_threshold").total_seconds()


class Prefetch:
    """The diagnostic queries, run one after the other on the session by a background thread as
    soon as it is open (while the notebook reads and shows the pods); each section then takes its
    result by the source's name and records it as its source, its failure line printed there.

    Nothing else uses the session until `wait()` says the thread is done."""

    def __init__(self, tasks: dict[str, Callable[[], Any]]) -> None:
        self._tasks = tasks
        self._results: dict[str, tuple[Any, BaseException | None, float]] = {}
        self._taken: set[str] = set()
        self._ready = {name: threading.Event() for name in tasks}
        self._thread = threading.Thread(target=self._work, name="database-reads", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        for name, fetch in self._tasks.items():
            t0 = time.perf_counter()
            try:
                self._results[name] = (fetch(), None, time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 - re-raised in the notebook's thread by take()
                self._results[name] = (None, e, time.perf_counter() - t0)
            self._ready[name].set()

    def __contains__(self, name: str) -> bool:
        return name in self._tasks

    def take(self, run: Run, name: str) -> Any:
        """The named read's rows, recorded as a source of `run` (None when it failed). Taken again
        (a section re-run by hand, live), it reads afresh: a person re-runs a cell to see now."""
        self._ready[name].wait()
        if name in self._taken:
            self.wait()
            value = None
            with run.source(name):
                value = self._tasks[name]()
            return value
        self._taken.add(name)
        value, error, seconds = self._results[name]
        with run.source(name):
            if error is not None:
                raise error
        if run.sources and run.sources[-1].source == name:
            run.sources[-1].seconds = round(seconds, 3)
        return value if error is None else None

    def wait(self) -> None:
        """Until every read is done: the session is free again."""
        self._thread.join()


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
    resources: pd.DataFrame = field(default_factory=lambda: pods.db_resources_frame(None, None))
    sequences: pd.DataFrame = field(default_factory=lambda: dangers.sequences_frame(None))
    invalid_indexes: pd.DataFrame = field(
        default_factory=lambda: dangers.invalid_indexes_frame(None)
    )
    prepared_xacts: pd.DataFrame = field(default_factory=lambda: dangers.prepared_xacts_frame(None))
    xmin_holders: pd.DataFrame = field(default_factory=lambda: dangers.xmin_holders_frame(None))
    progress: pd.DataFrame = field(default_factory=lambda: dangers.progress_frame(None))
    checkpoints: pd.DataFrame = field(default_factory=lambda: dangers.checkpoints_frame(None))
    prefetch: Prefetch | None = None
    kube: KubeReading | None = None
    painter: ChartWorker | None = None  # the chart helper process, when the notebook started one
    charts: ChartJob | None = None
    connectivity: pd.DataFrame = field(default_factory=lambda: kexec.connectivity_frame([]))

    @property
    def reachable(self) -> bool:
        return self.conn is not None

    @property
    def database_reachable(self) -> bool | None:
        """For the severity and the figures: True connected, False cannot reach it, None not
        measured (the server refused our login)."""
        return None if self.login_refused and self.conn is None else self.reachable

    def read(self, run: Run, name: str) -> Any:
        """The prefetched read `name` (see `diagnostics`), recorded as a source of `run`; None when
        it failed or there is no connection."""
        if self.conn is None or self.prefetch is None:
            run.skip(name, "no database connection (see the connection line above)")
            return None
        return self.prefetch.take(run, name)

    def close(self) -> None:
        """Close the diagnostic session (once its reads are done) and let the chart helper go."""
        if self.prefetch is not None:
            self.prefetch.wait()
        if self.painter is not None:
            self.painter.close()
        if self.conn is not None:
            self.conn.close()


def _read(
    run: Run,
    name: str,
    fetch: Callable[..., Any],
    conn: Any,
    *args: Any,
    missing: str = "no database connection (see the connection line above)",
    prefetch: Prefetch | None = None,
    **kw: Any,
) -> Any:
    """Run `fetch(conn, ...)` as the source `name`; None when it failed or there is no
    connection."""
    if conn is None:
        run.skip(name, missing)
        return None
    if prefetch is not None:
        prefetch.wait()  # the session is the prefetch thread's until it is done
    result = None
    with run.source(name):
        result = fetch(conn, *args, **kw)
    return result


def diagnostics(cfg: Params, db: Facts) -> dict[str, Callable[[], Any]]:
    """Every diagnostic query of the notebook, by its source's name, in the order the sections
    show them (run ahead by `Prefetch`); pg_stat_statements' thousands of entries are merged there
    too, while the notebook's own thread shows the sections before."""
    conn, version = db.conn, db.version
    assert conn is not None
    return {
        "postgres: sessions": lambda: activity.fetch_sessions(conn),
        "postgres: pg_stat_statements": lambda: statements.statements_frame(  # merged here too
            statements.fetch_all(conn, server_version_num=version), keep_text=cfg.top_n
        ),
        "postgres: pg_stat_statements reset time": lambda: statements.fetch_stats_reset(conn),
        "postgres: blocking": lambda: locks.fetch_blocking(conn, server_version_num=version),
        "postgres: database sizes": lambda: space.fetch_database_sizes(conn),
        "postgres: largest tables": lambda: space.fetch_tables(conn, limit=cfg.top_n),
        "postgres: replication": lambda: space.fetch_replication(conn),
        "postgres: replication slots": lambda: space.fetch_slots(conn, server_version_num=version),
        "postgres: xmin holders": lambda: dangers.fetch_xmin_holders(conn),
        "postgres: vacuum and index build progress": lambda: dangers.fetch_progress(conn),
        "postgres: sequences": lambda: dangers.fetch_sequences(conn),
        "postgres: invalid indexes": lambda: dangers.fetch_invalid_indexes(conn),
        "postgres: prepared transactions": lambda: dangers.fetch_prepared_xacts(conn),
        "postgres: checkpoints": lambda: dangers.fetch_checkpoints(
            conn, server_version_num=version
        ),
    }


def connect(run: Run, cfg: Params, *, charts: ChartWorker | None = None) -> Facts:
    """The read-only diagnostic session (statement and lock timeouts), and who we are on the
    server. Meanwhile the cluster is read in the background (`KubeReading`), and once connected
    every diagnostic query starts in the background too (`Prefetch`). `charts`: the chart helper
    the notebook started first, which draws the charts while the tables are shown."""
    db = Facts(target=pg.describe_target(cfg.dsn), painter=charts, kube=KubeReading(cfg))
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
    freeze_heap()  # the libraries are loaded: no full collection walks them again
    if connected.ok:
        db.prefetch = Prefetch(diagnostics(cfg, db))
        s = db.server
        print(
            f"✓ connected to {db.target}: PostgreSQL {s['server_version']} as {s['role']} "
            f"(superuser: {s['superuser']}, pg_monitor: {s['pg_monitor']}, standby: "
            f"{s['in_recovery']})"
        )
    return db


class KubeReading:
    """The database's pods, their log tails and their metrics, read from the cluster by a
    background thread from the first cell on (the cluster is reached while the database is read),
    and the application's connectivity check by a second one once the pods are known; the pods',
    resources' and connectivity cells take what they show, with the sources and their one-line
    messages, in the notebook's order."""

    PODS = ("kubernetes: connect", "kubernetes: database pods", "kubernetes: database logs")
    METRICS = ("kubernetes: database pod metrics",)

    @staticmethod
    def connectivity_sources(cfg: Params) -> tuple[str]:
        """The application's connectivity check, a thread of its own once the database's pods are
        known (exec in pods takes its time: the logs and metrics do not wait for it)."""
        return (f"kubernetes: exec in pods of deployment/{cfg.app_deployment}",)

    def __init__(self, cfg: Params) -> None:
        self._cfg = cfg
        self._quiet = Run("database", quiet=True)
        self._checks = Run("database", quiet=True)  # the connectivity thread's sources
        self.connectivity: pd.DataFrame | None = None
        self.connectivity_notes: list[str] = []
        self._connect_thread: threading.Thread | None = None
        self._connect_error: BaseException | None = None
        self.cluster: Cluster | None = None
        self.line = ""  # which context, API server and version
        self.pod_items: list[dict[str, Any]] | None = None
        self.logs: pd.DataFrame | None = None
        self.metrics: list[dict[str, Any]] | None = None
        self._error: BaseException | None = None
        self._taken: set[str] = set()
        self._thread = threading.Thread(target=self._work, name="database-cluster", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        q, cfg = self._quiet, self._cfg
        try:
            self.cluster = connect_cluster(q, cfg, optional=True)
            if self.cluster is not None:
                self.line = describe_cluster(self.cluster)
            self.pod_items = _read(
                q,
                "kubernetes: database pods",
                lambda c: reads.fetch_pods(c, cfg.namespace, selector=cfg.db_selector),
                self.cluster,
                missing="no cluster",
            )
            self._start_connectivity()
            if self.pod_items:
                self.logs = _read(
                    q, "kubernetes: database logs", pods.fetch_db_logs, self.cluster, self.pod_items
                )
                self.metrics = _read(
                    q,
                    "kubernetes: database pod metrics",
                    lambda c: reads.fetch_pod_metrics(c, cfg.namespace),
                    self.cluster,
                )
            elif self.pod_items is not None:
                q.skip("kubernetes: database pod metrics", f"no pod matches {cfg.db_selector}")
            else:
                q.skip("kubernetes: database pod metrics", "the database pods were not read")
        except BaseException as e:  # noqa: BLE001 - re-raised in the notebook's thread by take()
            self._error = e

    def _start_connectivity(self) -> None:
        cfg, (source,) = self._cfg, self.connectivity_sources(self._cfg)
        if not cfg.exec_checks:
            self._checks.skip(source, "exec_checks=False")
        elif self.cluster is None:
            self._checks.skip(source, "no cluster")
        else:
            cluster, db_pods = self.cluster, self.pod_items or []

            def check() -> None:
                try:
                    if why := kexec.not_permitted(cluster, cfg.namespace):
                        self._checks.skip(source, why)
                        return
                    with self._checks.source(source):
                        self.connectivity, self.connectivity_notes = check_connectivity(
                            cluster, cfg, db_pods
                        )
                except BaseException as e:  # noqa: BLE001 - re-raised by take(), as above
                    self._connect_error = e

            self._connect_thread = threading.Thread(
                target=check, name="database-connectivity", daemon=True
            )
            self._connect_thread.start()

    @classmethod
    def fresh(cls, reading: KubeReading | None, cfg: Params, names: tuple[str, ...]) -> KubeReading:
        """`reading` when these sources are still to be taken from it, else a new reading (a cell
        re-run by hand, live, shows the cluster as it is now)."""
        if reading is None or reading._taken & set(names):
            return cls(cfg)
        return reading

    def take(self, run: Run, names: tuple[str, ...]) -> None:
        """Wait for the reads; move the sources named `names` into `run`, saying what they say."""
        self._taken |= set(names)
        self._thread.join()
        if self._error is not None:
            raise self._error
        quiet = self._quiet
        if set(names) == set(self.connectivity_sources(self._cfg)):
            quiet = self._checks
            if self._connect_thread is not None:
                self._connect_thread.join()
            if self._connect_error is not None:
                raise self._connect_error
        keep = []
        for rec in quiet.sources:
            if rec.source not in names:
                keep.append(rec)
                continue
            run.sources.append(rec)
            if rec.source == "kubernetes: connect" and rec.ok and self.line:
                print(self.line)
            elif rec.status == "failed":
                print(f"✗ {rec.source}: {rec.error}")
            elif rec.status == "skipped":
                print(f"– {rec.source}: skipped: {rec.error}")
        quiet.sources = keep


def database_pods(run: Run, cfg: Params, db: Facts) -> None:
    """The pods matching `db_selector`: status, restarts, last termination, and their log tails (the
    `db_pods` and `db_logs` scraps), as the background reading found them."""
    db.kube = KubeReading.fresh(db.kube, cfg, KubeReading.PODS)
    db.kube.take(run, KubeReading.PODS)
    db.cluster, db.pod_items = db.kube.cluster, db.kube.pod_items
    db.db_pods = pods.db_pods_frame(db.pod_items)
    show_table(
        db.db_pods,
        empty=f"no pod matches {cfg.db_selector} in {cfg.namespace}"
        if db.pod_items is not None
        else "not read",
    )
    if db.kube.logs is not None:
        print(pods.logs_text(db.kube.logs))
        run.glue("db_logs", db.kube.logs)
    run.glue("db_pods", db.db_pods)


def show_db_resources(run: Run, cfg: Params, db: Facts) -> None:
    """The database pods' CPU and memory against their requests and limits, per container, from the
    metrics API (the `db_resources` scrap)."""
    db.kube = KubeReading.fresh(db.kube, cfg, KubeReading.METRICS)
    db.kube.take(run, KubeReading.METRICS)
    metrics = db.kube.metrics
    db.resources = pods.db_resources_frame(metrics, db.pod_items)
    show_table(
        pods.resources_view(db.resources),
        empty="no metrics for the database pods" if metrics is not None else "not read",
    )
    run.glue("db_resources", db.resources)


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


def check_connectivity(
    cluster: Cluster, cfg: Params, db_pods: list[dict[str, Any]], *, at_most: int = 3
) -> tuple[pd.DataFrame | None, list[str]]:
    """A TCP connect from each running pod of `app_deployment` (at most `at_most`) to the database
    (the DSN's host and port, or its Service): the `connectivity` frame (None: no address to try)
    and the lines to print about what was not checked. Exec refused raises (the source fails with
    that reason)."""
    from .performance import exec_targets

    notes: list[str] = []
    results: list[tuple[str, kexec.ExecResult]] = []
    services = reads.fetch_services(cluster, cfg.namespace)
    target = connectivity_target(cfg.dsn, services, db_pods, namespace=cfg.namespace)
    if target is None:
        notes.append("– no database address known from the DSN, and no Service selects its pods")
        return None, notes
    host, port = target
    app_pods = reads.fetch_pods(cluster, cfg.namespace)
    # kubernetes.stream swaps the API client's call_api while an exec starts: a client of its own,
    # so the reads the other thread makes meanwhile on `cluster` stay plain HTTP
    from kubernetes.client import ApiClient

    own = ApiClient(cluster.api_client.configuration)
    execs = replace(cluster, api_client=own)
    try:
        for pod, container in exec_targets(app_pods, cfg.app_deployment, at_most=at_most):
            name = pod["metadata"]["name"]
            why = kexec.not_running(pod, container)
            if why:
                notes.append(f"– {name}: {why}")
                continue
            r = kexec.run_check(execs, cfg.namespace, name, container, "tcp", host=host, port=port)
            if r.error and r.error.startswith("exec forbidden"):
                raise KubeAPIError(r.error, status=403, reason="Forbidden")
            if r.error:
                notes.append(f"✗ {name}: {r.error}")
            results.append((f"{host}:{port}", r))
    finally:
        own.close()
    return kexec.connectivity_frame(results), notes


def app_connectivity(run: Run, cfg: Params, db: Facts) -> None:
    """The runbook's Recovery Verification from inside the application: a TCP connect from each
    running pod of `app_deployment` to the database (the DSN's host and port, or its Service), with
    the time it took (the `connectivity` scrap), as the background reading found it."""
    names = KubeReading.connectivity_sources(cfg)
    db.kube = KubeReading.fresh(db.kube, cfg, names)
    db.kube.take(run, names)
    for line in db.kube.connectivity_notes:
        print(line)
    if db.kube.connectivity is None:  # skipped, failed or no address: the line above says why
        return
    db.connectivity = db.kube.connectivity
    show_table(
        db.connectivity,
        caption=f"TCP connect from deployment/{cfg.app_deployment} to the database",
        empty="no pod of the application was checked",
    )
    run.glue("connectivity", db.connectivity)


def show_connections(run: Run, db: Facts) -> None:
    """Counts by state, database, user, application and client against max_connections; idle in
    transaction (the `connections` and `idle_in_transaction` scraps)."""
    db.sessions = activity.sessions_frame(db.read(run, "postgres: sessions"))
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
    merged = db.read(run, "postgres: pg_stat_statements")  # (one row per statement, hidden)
    db.statements, hidden = merged if merged is not None else statements.statements_frame(None)
    db.slow_queries = statements.slow_queries_frame(db.statements, top_n=cfg.top_n)
    if merged is not None:
        reset = db.read(run, "postgres: pg_stat_statements reset time")
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
    db.blocking = locks.blocking_frame(db.read(run, "postgres: blocking"))
    db.roots = locks.root_blockers(db.blocking)
    if db.painter is not None:  # every chart's data is read: the helper draws while we go on
        db.charts = db.painter.submit(chart_specs(db))
        db.painter.close()
    print(locks.blocking_tree(db.blocking))
    show_table(db.blocking[locks.BLOCKING_VIEW], empty="no lock waits")
    run.glue("blocking", db.blocking)


def show_sizes(run: Run, cfg: Params, db: Facts) -> None:
    """Database sizes and wraparound age, the largest tables, replication and slots (the
    `database_sizes` and `tables` scraps)."""
    db.database_sizes = space.database_sizes_frame(db.read(run, "postgres: database sizes"))
    show_table(db.database_sizes[space.DATABASE_SIZE_VIEW], empty="no database sizes")
    rows = db.read(run, "postgres: largest tables")
    estimated = rows is None and db.conn is not None
    if estimated:  # the exact sizes wait on locks: pg_class's estimates take none
        rows = _read(
            run,
            "postgres: largest tables (estimated, takes no lock)",
            space.fetch_tables,
            db.conn,
            limit=cfg.top_n,
            exact=False,
            prefetch=db.prefetch,
        )
    db.tables = space.tables_frame(rows, estimated=estimated)
    show_table(
        db.tables[space.TABLE_VIEW],
        empty="no tables",
        caption="largest tables" + (" (estimated from pg_class):" if estimated else ":"),
    )
    db.replication = space.replication_frame(db.read(run, "postgres: replication"))
    db.slots = space.slots_frame(db.read(run, "postgres: replication slots"))
    show_table(db.replication, caption="replicas:", empty="no replica streams from this server")
    show_table(db.slots, caption="replication slots:", empty="no replication slots")
    run.glue("database_sizes", db.database_sizes)
    run.glue("tables", db.tables)
    run.glue("slots", db.slots)


def show_dangers(run: Run, db: Facts) -> None:
    """Sequences near exhaustion, invalid indexes, prepared transactions (the `sequences`,
    `invalid_indexes` and `prepared_xacts` scraps)."""
    db.sequences = dangers.sequences_frame(db.read(run, "postgres: sequences"))
    hidden = int((~db.sequences["readable"].fillna(True).astype(bool)).sum())
    if hidden:
        print(
            f"⚠ {hidden} sequences cannot be read by role {db.server.get('role')}: how full they "
            "are is unknown; GRANT pg_read_all_data (PostgreSQL 14+) or SELECT on them"
        )
    near = db.sequences[db.sequences["pct_used"] >= dangers.SEQUENCE_SEV3_PCT - 40]
    show_table(
        near[dangers.SEQUENCE_VIEW],
        caption=f"sequences past half their range, of {len(db.sequences)} in this database:",
        empty=f"no sequence past half its range ({len(db.sequences)} sequences)",
    )
    db.invalid_indexes = dangers.invalid_indexes_frame(db.read(run, "postgres: invalid indexes"))
    show_table(db.invalid_indexes, caption="invalid indexes:", empty="no invalid index")
    db.prepared_xacts = dangers.prepared_xacts_frame(
        db.read(run, "postgres: prepared transactions")
    )
    show_table(db.prepared_xacts, caption="prepared transactions:", empty="no prepared transaction")
    run.glue("sequences", db.sequences)
    run.glue("invalid_indexes", db.invalid_indexes)
    run.glue("prepared_xacts", db.prepared_xacts)


def show_vacuum(run: Run, db: Facts) -> None:
    """What keeps vacuum from cleaning (the oldest xmin holders), the tables with the most dead
    tuples and their last autovacuum, running vacuums and index builds (the `xmin_holders` and
    `progress` scraps)."""
    db.xmin_holders = dangers.xmin_holders_frame(db.read(run, "postgres: xmin holders"))
    show_table(
        db.xmin_holders, caption="holding back vacuum, oldest first:", empty="nothing holds an xmin"
    )
    if len(db.tables) and "rank_dead" in db.tables:
        dead = db.tables[db.tables["dead_tuples"].fillna(0) > 0].sort_values("rank_dead")
        show_table(
            dead[space.DEAD_VIEW],
            caption="most dead tuples:",
            empty="no table has dead tuples",
        )
    db.progress = dangers.progress_frame(db.read(run, "postgres: vacuum and index build progress"))
    show_table(
        db.progress, caption="running vacuums and index builds:", empty="no vacuum or index build"
    )
    run.glue("xmin_holders", db.xmin_holders)
    run.glue("progress", db.progress)


def show_checkpoints(run: Run, db: Facts) -> None:
    """Requested against timed checkpoints and the WAL written since the statistics were reset (the
    `checkpoints` scrap)."""
    db.checkpoints = dangers.checkpoints_frame(db.read(run, "postgres: checkpoints"))
    show_table(db.checkpoints[dangers.CHECKPOINT_VIEW], empty="no checkpoint statistics")
    run.glue("checkpoints", db.checkpoints)


def chart_specs(db: Facts, *, top_n: int = 5) -> list[tuple[str, dict[str, Any]]]:
    """The database charts as `figures.RECIPES` requests, their plain values taken out of the frames
    here: the slowest statements, connections against max_connections, lock waits."""
    top = db.statements
    if len(top):
        keep = set(statements.top_statements(top, by="mean_ms", n=top_n)["queryid"])
        keep |= set(statements.top_statements(top, by="total_ms", n=top_n)["queryid"])
        top = top[top["queryid"].isin(keep)][["queryid", "query", "mean_ms", "total_ms"]]
    return [
        ("slow_statements", charts.slow_statements_data(top, top_n=top_n)),
        ("connections", {"summary": dict(db.summary)}),
        ("lock_waits", charts.lock_waits_data(db.blocking)),
    ]


def show_charts(db: Facts) -> None:
    """The slowest statements, connections against max_connections, lock waits (those with anything
    to draw): drawn by the chart helper while the tables were shown, or here without one."""
    job = db.charts if db.charts is not None else ChartJob(chart_specs(db), None)
    charts.show(*job.pngs())


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
        + pods.resource_findings(db.resources)
        + dangers.sequence_findings(db.sequences)
        + dangers.invalid_index_findings(db.invalid_indexes, db.progress)
        + dangers.prepared_xact_findings(db.prepared_xacts, threshold_s=cfg.threshold_s)
        + dangers.xmin_findings(db.xmin_holders, threshold_s=cfg.threshold_s)
        + dangers.progress_findings(db.progress, threshold_s=cfg.threshold_s)
        + dangers.checkpoint_findings(db.checkpoints)
        + connectivity_findings(
            db.connectivity,
            app=cfg.app_deployment,
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
    """The mitigation, shown as the exact statements (or the exact change to the workload); done
    only with apply=True; recorded.

    Sessions: the root blocker, the long-running queries, every non-idle session older than
    `stale_threshold` (terminate_stale), or the pids asked for. Kubernetes (`kube.actions`): more
    CPU and memory for the database's container (resources), a rollout restart of the application
    (restart_app) or, as a last resort, of the database's own workload (restart), each waited for,
    and the database restart verified: its pods replaced and ready, the database answering."""
    chosen = pg_actions.choose(cfg.mitigation, long_running=db.long_running, blocking=db.roots)
    if chosen in pg_actions.KUBE_MITIGATIONS:
        return _kube_mitigation(run, cfg, db, chosen)
    if db.sessions is None or len(db.sessions) == 0:
        run.skip("postgres: mitigation", "no session snapshot (the database could not be read)")
        return None
    plan = pg_actions.plan_sessions(
        cfg.mitigation,
        sessions=db.sessions,
        blocking=db.blocking,
        threshold_s=cfg.threshold_s,
        stale_s=cfg.stale_s,
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
                prefetch=db.prefetch,
            )
        )
        print("after the mitigation:\n" + locks.blocking_tree(after))
    return outcome


_WHY = {
    "restart": "mitigation=restart: the last resort, every database connection drops",
    "restart_app": "mitigation=restart_app: the runbook's 'restart backend connections' (the "
    "application's pools reconnect)",
    "resources": "mitigation=resources: the runbook's 'scale database resources'",
}


def _kube_mitigation(run: Run, cfg: Params, db: Facts, action: str) -> dict[str, Any] | None:
    """resources, restart_app or restart: planned from the workload read now, shown, done with
    apply=True and waited for (`rollout_timeout_s`); a database restart is then verified."""
    from ..kube import actions as kube_actions  # (PyYAML for the diffs: only when it is planned)

    if db.cluster is None:
        run.skip(f"kubernetes: {action}", "no cluster configured: it cannot even be planned")
        return None
    outcome = None
    with run.source(f"kubernetes: {action}"):
        if action == "restart_app":
            workload = {
                **reads.fetch_deployment(db.cluster, cfg.namespace, cfg.app_deployment),
                "kind": "Deployment",
            }
        else:
            workload = reads.fetch_workload(db.cluster, cfg.namespace, cfg.db_deployment)
        if action == "resources":
            plan = kube_actions.plan_resources(
                workload,
                cpu=cfg.db_cpu,
                memory=cfg.db_memory,
                container=cfg.db_container,
                why=_WHY[action],
            )
        else:
            plan = kube_actions.plan_restart(workload, why=_WHY[action])
            plan.action = action
        print(plan.describe())
        outcome = kube_actions.execute(
            db.cluster, plan, apply=cfg.apply, timeout_s=cfg.rollout_timeout_s
        )
        if action == "restart" and outcome["applied"]:
            outcome["verified"] = _verify_restart(run, cfg, db, plan)
            outcome["detail"] += f"; {outcome['verified']}"
        run.record_action(outcome)
        print(f"{outcome['status']}: {outcome['detail']}")
    return outcome


def _verify_restart(run: Run, cfg: Params, db: Facts, plan: Any) -> str:
    """After a database restart: every pod matching `db_selector` carries the new template and is
    ready, and the database answers again (three tries, a second apart)."""
    import time

    from ..kube import actions as kube_actions

    assert db.cluster is not None
    stamp = plan.requests[0].body["spec"]["template"]["metadata"]["annotations"][
        kube_actions.RESTARTED_AT
    ]
    items = reads.fetch_pods(db.cluster, cfg.namespace, selector=cfg.db_selector)
    frame = pods.db_pods_frame(items)
    new = [
        p["metadata"]["name"]
        for p in items
        if ((p["metadata"].get("annotations") or {}).get(kube_actions.RESTARTED_AT) == stamp)
    ]
    ready = [
        r["name"]
        for r in frame.to_dict("records")
        if r["ready"].split("/")[0] == r["ready"].split("/")[-1]
    ]
    show_table(frame, caption="the database's pods after the restart:", empty="no pod matches")
    pods_line = (
        f"{len(new)} of {len(items)} pods from the new template, {len(ready)} ready"
        if items
        else f"no pod matches {cfg.db_selector}"
    )
    for attempt in range(3):  # the pods are ready: the server should answer at once
        try:
            conn = pg.connect(
                cfg.dsn, connect_timeout_s=3, statement_timeout_ms=cfg.statement_timeout_ms
            )
        except DatabaseError as e:
            if attempt == 2:
                return f"{pods_line}; the database does not answer: {e}"
            time.sleep(1)
            continue
        version = pg.server_version(conn)
        conn.close()
        return f"{pods_line}; the database answers (PostgreSQL {version})"
    raise AssertionError("unreachable")
