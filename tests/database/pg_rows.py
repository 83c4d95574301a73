"""Small rows shaped like the database diagnostics' raw rows (what psycopg's dict_row
returns)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def session(
    pid: int,
    state: str | None,
    *,
    query_s: float = 1.0,
    xact_s: float | None = None,
    state_s: float = 1.0,
    app: str = "web",
    user: str = "app",
    db: str | None = "app",
    backend_type: str | None = "client backend",
    hidden: bool = False,
    self_: bool = False,
    query: str = "SELECT 1",
    wait: str | None = None,
    client: str | None = "10.0.0.7",
) -> dict[str, Any]:
    """One row of SESSIONS_SQL; times derived from the ages against NOW."""
    xact_s = query_s if xact_s is None else xact_s
    return {
        "pid": pid,
        "database": db,
        "user": None if hidden else user,
        "application": app,
        "client": None if hidden else client,
        "backend_type": None if hidden else backend_type,
        "state": None if hidden else state,
        "wait_event_type": "Lock" if wait else None,
        "wait_event": wait,
        "backend_start": None if hidden else NOW - timedelta(hours=1),
        "xact_start": None
        if hidden or state in ("idle", None)
        else NOW - timedelta(seconds=xact_s),
        "query_start": None if hidden else NOW - timedelta(seconds=query_s),
        "state_change": None if hidden else NOW - timedelta(seconds=state_s),
        "query_s": None if hidden else query_s,
        "xact_s": None if hidden or state in ("idle", None) else xact_s,
        "state_s": None if hidden else state_s,
        "hidden": hidden,
        "self": self_,
        "query": "<insufficient privilege>" if hidden else query,
    }


def edge(
    blocked: int,
    blocking: int,
    *,
    wait_s: float = 10.0,
    blocking_state: str = "active",
    query: str = "UPDATE t SET v = 1 WHERE id = 7",
    blocking_query: str = "UPDATE t SET v = 2 WHERE id = 7",
    app: str = "billing",
) -> dict[str, Any]:
    """One row of BLOCKING_SQL."""
    return {
        "blocked_pid": blocked,
        "blocking_pid": blocking,
        "wait_s": wait_s,
        "locktype": "transactionid",
        "mode": "ShareLock",
        "relation": "t",
        "blocked_user": "app",
        "blocked_application": app,
        "blocked_query": query,
        "blocking_state": blocking_state,
        "blocking_user": "app",
        "blocking_application": app,
        "blocking_backend_type": "client backend",
        "blocking_query": blocking_query,
        "blocking_xact_start": NOW - timedelta(minutes=6),
        "blocking_xact_s": 360.0,
        "blocking_state_s": 350.0,
    }


def statement(
    queryid: int | None,
    *,
    calls: int,
    mean: float,
    stddev: float = 0.0,
    db: str = "app",
    user: str = "app",
    query: str = "SELECT * FROM t WHERE id = $1",
    hit: int = 90,
    read: int = 10,
    rows: int | None = None,
) -> dict[str, Any]:
    """One row of STATEMENTS_SQL."""
    return {
        "queryid": queryid,
        "userid": 10,
        "user": user,
        "dbid": 5,
        "database": db,
        "query": query,
        "calls": calls,
        "rows": calls if rows is None else rows,
        "total_ms": calls * mean,
        "mean_ms": mean,
        "stddev_ms": stddev,
        "min_ms": max(mean - stddev, 0),
        "max_ms": mean + stddev,
        "plan_ms": 0.5,
        "shared_blks_hit": hit,
        "shared_blks_read": read,
        "blk_read_ms": 1.0,
    }
