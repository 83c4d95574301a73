"""Database session mitigations: terminate long-running queries, terminate every session stuck in a
non-idle state (idle in transaction included: the runbook's second form), terminate a root blocker,
cancel instead of terminate. (Restarting the database's workload or the application, and giving
the database more CPU and memory, are Kubernetes changes: `kube.actions`.)

Each mitigation is first a `Plan` (`plan_sessions`) naming exactly which backends and queries it
would signal; nothing happens unless `apply=True`. Chosen automatically, it never touches our own
sessions, replication, autovacuum or any other non-client backend: those only when asked for by pid.
`execute` uses a session of its own that is not read-only, checks that each pid still belongs to the
same backend (a reused pid is left alone), waits for the result, and records one outcome like every
other mitigation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseError, InvalidParameter
from ..plan import CANCELS_STATEMENTS, DROPS_SESSIONS, Plan, Signal, now_iso
from .session import connect, query

if TYPE_CHECKING:
    import pandas as pd

MITIGATIONS = (
    "auto",
    "terminate_long",
    "terminate_stale",
    "terminate_blocker",
    "cancel",
    "restart",
    "restart_app",
    "resources",
    "none",
)
KUBE_MITIGATIONS = ("restart", "restart_app", "resources")
"""Mitigations that change Kubernetes objects, not sessions (planned with `kube.actions`)."""
MITIGATION_APP = "incident-runbook-mitigation"

# Signal one backend, only if the pid still belongs to the backend we planned for (same start time)
# and is not this session. {function} is pg_terminate_backend or pg_cancel_backend. Source:
# PostgreSQL 15 docs, 9.27.2 "Server Signaling Functions"; pghero `kill.rb`.
SIGNAL_SQL = """/* incident-runbook: mitigation */
SELECT {function}(pid) AS signalled
FROM pg_stat_activity
WHERE pid = %(pid)s AND backend_start = %(backend_start)s AND pid <> pg_backend_pid()"""

# Is the planned backend still there, and is it still running the statement we signalled?
STILL_RUNNING_SQL = """/* incident-runbook: mitigation check */
SELECT state, query_start = %(query_start)s AS same_query
FROM pg_stat_activity
WHERE pid = %(pid)s AND backend_start = %(backend_start)s"""

_FUNCTIONS = {"terminate": "pg_terminate_backend", "cancel": "pg_cancel_backend"}


def parse_pids(value: Any) -> list[int] | None:
    """The `pids` parameter: None, one pid, a list of pids, or text like '4711, 4712'."""
    if value is None or value == "" or value == []:
        return None
    items = value if isinstance(value, list | tuple) else str(value).replace(",", " ").split()
    out = []
    for item in items:
        try:
            if isinstance(item, bool):
                raise ValueError(item)  # pragma: no mutate (caught below: any value)
            pid = int(item)
        except (TypeError, ValueError):
            raise InvalidParameter(
                f"pids {value!r}: {item!r} is not a process id; expected whole numbers "
                "like [4711, 4712]"
            ) from None
        if pid <= 0:
            raise InvalidParameter(f"pids {value!r}: {pid} is not a process id (must be positive)")
        out.append(pid)
    return out


def choose(mitigation: str, *, long_running: Any, blocking: Any) -> str:
    """`auto` picks terminate_blocker when a lock chain exists, else terminate_long, else none."""
    if mitigation not in MITIGATIONS:
        raise InvalidParameter(f"mitigation {mitigation!r} is not one of {', '.join(MITIGATIONS)}")
    if mitigation != "auto":
        return mitigation
    if blocking is not None and len(blocking):
        return "terminate_blocker"
    if long_running is not None and len(long_running):
        return "terminate_long"
    return "none"


def _signal_of(r: dict[str, Any], function: str, why: str) -> Signal:
    def py(v: Any) -> Any:  # pandas Timestamps -> datetimes for psycopg
        return v.to_pydatetime() if hasattr(v, "to_pydatetime") and v == v else v

    return Signal(
        function=function,
        pid=int(r["pid"]),
        backend_start=py(r.get("backend_start")),
        query_start=py(r.get("query_start")),
        user=r.get("user"),
        application=r.get("application"),
        state=r.get("state"),
        backend_type=r.get("backend_type"),
        query_s=None if r.get("query_s") != r.get("query_s") else r.get("query_s"),
        query=r.get("query"),
        why=why,
    )


def _stale(sessions: pd.DataFrame | None, stale_s: float) -> pd.DataFrame | None:
    """The runbook's second form: `state != 'idle' AND query_start < now() - interval '10
    minutes'`: any non-idle client session (idle in transaction included) whose last statement
    began longer ago than `stale_s`."""
    if sessions is None or len(sessions) == 0:
        return None
    mask = (
        sessions["state"].notna()
        & (sessions["state"] != "idle")
        & (sessions["query_s"] >= stale_s)
        & ~sessions["self"]
    )
    return sessions[mask].sort_values("query_s", ascending=False)


def _long_running(sessions: pd.DataFrame | None, threshold_s: float) -> pd.DataFrame | None:
    if sessions is None or len(sessions) == 0:
        return None
    mask = (
        (sessions["state"] == "active") & (sessions["query_s"] >= threshold_s) & ~sessions["self"]
    )
    return sessions[mask].sort_values("query_s", ascending=False)


def plan_sessions(
    mitigation: str,
    *,
    sessions: pd.DataFrame | None,
    blocking: pd.DataFrame | None,
    threshold_s: float,
    pids: list[int] | None = None,
    own_pids: Iterable[int] = (),
    target: str = "the database",
    stale_s: float = 600.0,
) -> Plan:
    """Plan a session mitigation (auto, terminate_long, terminate_stale, terminate_blocker, cancel,
    none) on one snapshot.

    With `pids`, exactly those pids are targeted (any backend type, as asked), never our own
    sessions."""
    long_running = _long_running(sessions, threshold_s)
    roots = (
        sorted({int(p) for p in blocking["root_blocking_pid"]})
        if blocking is not None and len(blocking)
        else []
    )
    action = choose(mitigation, long_running=long_running, blocking=roots)
    if action in KUBE_MITIGATIONS:
        raise InvalidParameter(f"{action} is not a session mitigation: plan it with kube.actions")
    kind = "cancel" if action == "cancel" else "terminate"
    function = _FUNCTIONS[kind]
    by_pid = (
        {int(r["pid"]): r for r in sessions.to_dict("records")}
        if sessions is not None and len(sessions)
        else {}
    )
    own = {int(p) for p in own_pids} | {p for p, r in by_pid.items() if r.get("self")}
    wanted: list[tuple[int, str]] = [(p, "asked for by pid") for p in pids or []]
    if not pids and action in ("terminate_blocker", "cancel") and blocking is not None:
        for root in roots:
            n = int(blocking[blocking["root_blocking_pid"] == root]["blocked_pid"].nunique())
            wanted.append((root, f"root blocker of {n} waiting session(s)"))
    stale = _stale(sessions, stale_s) if action == "terminate_stale" else None
    if not pids and stale is not None:
        for r in stale.to_dict("records"):
            wanted.append(
                (
                    int(r["pid"]),
                    f"{r['state']} since a statement begun {r['query_s']:.0f}s ago, over the "
                    f"{stale_s:g}s threshold",
                )
            )
    if not pids and action in ("terminate_long", "cancel") and long_running is not None:
        for r in long_running.to_dict("records"):
            if int(r["pid"]) not in {p for p, _ in wanted}:
                wanted.append(
                    (
                        int(r["pid"]),
                        f"active for {r['query_s']:.0f}s, over the {threshold_s:g}s threshold",
                    )
                )
    signals, left = [], []
    for pid, why in wanted:
        r = by_pid.get(pid)
        refusal = _refusal(pid, r, own=own, asked=bool(pids), kind=kind)
        if refusal:
            left.append({"pid": pid, "why": refusal})
        else:
            assert r is not None
            signals.append(_signal_of(r, function, why))
    verb = "terminate" if kind == "terminate" else "cancel the statement of"
    if action == "none" or not signals:
        reason = (
            "no lock chain and no query over the threshold"
            if mitigation == "auto" and action == "none"
            else f"no non-idle session older than {stale_s:g}s"
            if action == "terminate_stale" and not pids and not left
            else "mitigation=none"
            if action == "none"
            else "no session left to touch"
        )
        summary = f"nothing to do ({reason})"
    else:
        summary = f"{verb} {len(signals)} session(s) with {function}"
    statements = "\n".join(
        f"  SELECT {s.function}({s.pid});  -- {s.state}, user {s.user}, app "
        f"{s.application or '-'}: {s.why}; query: {s.query}"
        for s in signals
    )
    plan = Plan(
        action,
        f"{len(signals)} session(s) on {target}",
        summary,
        "; ".join(f"SELECT {function}({s.pid})" for s in signals) or "(none)",
        change=statements,
        safety=CANCELS_STATEMENTS if kind == "cancel" else DROPS_SESSIONS,
        signals=signals,
        left_alone=left,
    )
    if action == "none" or not signals:
        plan.skipped = summary.removeprefix("nothing to do (").removesuffix(")")
    return plan


def _refusal(
    pid: int, r: dict[str, Any] | None, *, own: set[int], asked: bool, kind: str
) -> str | None:
    """Why a wanted backend is left alone, or None when it may be signalled."""
    if pid in own:
        return "this runbook's own session"
    if r is None:
        return "no such backend (it ended, or the pid is wrong)"
    if r.get("hidden"):
        return "hidden from this role (<insufficient privilege>): cannot check what it runs"
    if not asked and r.get("backend_type") != "client backend":
        return f"{r.get('backend_type')}: only touched when asked for by pid"
    if kind == "cancel" and r.get("state") != "active":
        return f"{r.get('state')}: no statement to cancel; terminate it instead"
    return None


def execute(
    plan: Plan,
    *,
    dsn: str | None,
    apply: bool,
    record: Callable[[dict[str, Any]], None] | None = None,
    wait_s: float = 5.0,  # pragma: no mutate (a default: any few seconds; tests pass their own)
    statement_timeout_ms: int = 5000,  # pragma: no mutate (a default limit, like wait_s)
    lock_timeout_ms: int = 1000,  # pragma: no mutate (a default limit, like wait_s)
) -> dict[str, Any]:
    """Do the plan when `apply` is True (else only say it was not done); the outcome per pid in
    `results`."""
    if plan.skipped or not apply or not plan.signals:
        outcome = plan.shown()
        outcome["results"] = [
            {"pid": s.pid, "function": s.function, "outcome": "not done (apply=False)"}
            for s in plan.signals
        ]
    else:
        at = now_iso()

        def session() -> Any:
            return connect(
                dsn,
                # read-only or not (an equivalent mutant): `query` runs each statement in a
                # read-only transaction, which signalling needs no more than (session.connect)
                read_only=False,  # pragma: no mutate
                application_name=MITIGATION_APP,
                statement_timeout_ms=statement_timeout_ms,
                lock_timeout_ms=lock_timeout_ms,
            )

        conn = session()
        results: list[dict[str, Any]] = []
        try:
            for s in plan.signals:
                said = ""
                if conn.broken or conn.closed:  # ended under us (killed, server restarted)
                    conn.close()
                    try:
                        conn = session()
                    except DatabaseError as e:
                        said = f"not done: no new mitigation session ({e})"
                said = said or _signal(conn, s, wait_s=wait_s)
                results.append({"pid": s.pid, "function": s.function, "outcome": said})
        finally:
            conn.close()
        done = sum(r["outcome"].startswith(("terminated", "cancelled")) for r in results)
        status = "applied" if done == len(results) else "partly applied" if done else "nothing done"
        outcome = plan.outcome(
            applied=done > 0,
            status=status,
            at=at,
            results=results,
            detail=", ".join(f"pid {r['pid']}: {r['outcome']}" for r in results),
        )
    if record is not None:
        record(outcome)
    return outcome


def _signal(conn: Any, s: Signal, *, wait_s: float) -> str:
    from psycopg import sql

    params = {"pid": s.pid, "backend_start": s.backend_start}
    try:
        rows = query(
            conn,
            sql.SQL(SIGNAL_SQL).format(function=sql.Identifier(s.function)),
            params,
            what=s.function,
        )
    except DatabaseError as e:
        if e.sqlstate == "42501":
            return (
                f"refused: {e}; grant pg_signal_backend to this role, or connect as the "
                "session's owner"
            )
        return f"failed: {e}"
    if not rows:
        return "gone already (the backend ended or its pid was reused): nothing done"
    if not rows[0]["signalled"]:
        return f"{s.function} returned false: the backend could not be signalled"
    deadline = time.monotonic() + wait_s
    check = {**params, "query_start": s.query_start}
    while True:
        try:
            left = query(conn, STILL_RUNNING_SQL, check, what="mitigation check")
        except DatabaseError as e:  # the signal went out: say so, and go on with the others
            return f"signalled, but whether it took effect could not be checked: {e}"
        if not left:
            return (
                "terminated"
                if s.function == "pg_terminate_backend"
                else "cancelled (the session ended)"
            )
        if s.function == "pg_cancel_backend" and (
            left[0]["state"] != "active" or not left[0]["same_query"]
        ):
            return f"cancelled: the session is now {left[0]['state']}"
        # >= or >: the same on a clock that moves between two reads
        if time.monotonic() >= deadline:  # pragma: no mutate
            return f"signalled, but still there after {wait_s:g}s ({left[0]['state']})"
        time.sleep(0.05)  # pragma: no mutate (the pause between checks: any short one will do)
