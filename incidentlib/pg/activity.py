"""What the database is doing right now: one snapshot of pg_stat_activity, and the tables built from
it.

One fetch (`fetch_sessions`) feeds the connection counts, the activity table, the long-running
queries and the sessions idle in transaction, so every section of a notebook describes the same
instant. Query text is redacted (`redact_sql`: every literal becomes `?`) before it reaches a table.
Rows PostgreSQL hides from a role without pg_monitor (`<insufficient privilege>`) are flagged
`hidden`, counted, never shown as garbage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..redact import redact_sql
from .session import query

if TYPE_CHECKING:
    import pandas as pd

    from .session import Connection

HIDDEN_QUERY = "<insufficient privilege>"

# Every backend, one row each, with its ages computed by the server (clock_timestamp(): the instant
# of the read). Source: PostgreSQL 15 docs, 28.2.3 "pg_stat_activity"; pghero
# `connections.rb`/`queries.rb`. client_port = -1 means a Unix-socket connection. The marker comment
# lets pg_stat_statements readers tell the runbook's own statements apart.
SESSIONS_SQL = """/* incident-runbook: sessions */
SELECT pid,
       datname AS database,
       usename AS "user",
       application_name AS application,
       coalesce(host(client_addr), CASE WHEN client_port = -1 THEN 'local' END) AS client,
       backend_type,
       state,
       wait_event_type,
       wait_event,
       backend_start,
       xact_start,
       query_start,
       state_change,
       extract(epoch FROM clock_timestamp() - query_start)::float8 AS query_s,
       extract(epoch FROM clock_timestamp() - xact_start)::float8 AS xact_s,
       extract(epoch FROM clock_timestamp() - state_change)::float8 AS state_s,
       query = '<insufficient privilege>' AS hidden,
       pid = pg_backend_pid() AS self,
       query
FROM pg_stat_activity
ORDER BY pid"""

SESSION_COLUMNS = [
    "pid",
    "database",
    "user",
    "application",
    "client",
    "backend_type",
    "state",
    "wait_event_type",
    "wait_event",
    "backend_start",
    "xact_start",
    "query_start",
    "state_change",
    "query_s",
    "xact_s",
    "state_s",
    "hidden",
    "self",
    "query",
]

ACTIVITY_COLUMNS = [
    "pid",
    "database",
    "user",
    "application",
    "client",
    "state",
    "query_s",
    "xact_s",
    "wait_event_type",
    "wait_event",
    "backend_type",
    "query_start",
    "xact_start",
    "backend_start",
    "query",
]

# The columns a person reads first (the scraps keep every column).
ACTIVITY_VIEW = [
    "pid",
    "user",
    "application",
    "client",
    "backend_type",
    "state",
    "query_s",
    "xact_s",
    "wait_event_type",
    "wait_event",
    "query",
]
IDLE_IN_TX_VIEW = ["pid", "user", "application", "client", "state", "idle_s", "xact_s", "query"]

IDLE_IN_TX_COLUMNS = [
    "pid",
    "database",
    "user",
    "application",
    "client",
    "state",
    "idle_s",
    "xact_s",
    "xact_start",
    "state_change",
    "query",
]

_TIME_COLUMNS = ("backend_start", "xact_start", "query_start", "state_change")


def fetch_sessions(conn: Connection) -> list[dict[str, Any]]:
    """One snapshot of every backend (pg_stat_activity), raw rows."""
    return query(conn, SESSIONS_SQL, what="sessions (pg_stat_activity)")


def sessions_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of SESSIONS_SQL -> a DataFrame with fixed columns, times in UTC and query text
    redacted."""
    import pandas as pd

    df = pd.DataFrame(list(rows or []), columns=SESSION_COLUMNS)
    for col in _TIME_COLUMNS:
        df[col] = pd.to_datetime(df[col], utc=True)
    for col in ("query_s", "xact_s", "state_s"):
        df[col] = pd.to_numeric(df[col]).astype("float64").round(3)
    df["hidden"] = df["hidden"].fillna(False).astype(bool)
    df["self"] = df["self"].fillna(False).astype(bool)
    df["pid"] = df["pid"].astype("int64")
    df["query"] = [
        None if h else redact_sql(q) for q, h in zip(df["query"], df["hidden"], strict=True)
    ]
    return df


def hidden_count(sessions: pd.DataFrame) -> int:
    """How many sessions connected to a database PostgreSQL hides from this role (no pg_monitor)."""
    if sessions is None or len(sessions) == 0:
        return 0
    return int((sessions["hidden"] & sessions["database"].notna()).sum())


def activity_frame(sessions: pd.DataFrame) -> pd.DataFrame:
    """Every non-idle backend but our own, oldest first (transaction start, else query start)."""
    if sessions is None or len(sessions) == 0:
        import pandas as pd

        return pd.DataFrame(columns=ACTIVITY_COLUMNS)
    busy = sessions[
        ~sessions["self"]
        & ~sessions["hidden"]
        & sessions["state"].notna()
        & (sessions["state"] != "idle")
    ]
    started = busy["xact_start"].fillna(busy["query_start"])
    order = started.sort_values(kind="stable").index
    return busy.loc[order, ACTIVITY_COLUMNS].reset_index(drop=True)


def long_running_frame(activity: pd.DataFrame, *, threshold_s: float) -> pd.DataFrame:
    """Active statements that started more than `threshold_s` ago (the runbook's 'long-running
    queries')."""
    out = activity[(activity["state"] == "active") & (activity["query_s"] >= threshold_s)]
    return out.sort_values("query_s", ascending=False, kind="stable").reset_index(drop=True)


def idle_in_transaction_frame(sessions: pd.DataFrame) -> pd.DataFrame:
    """Sessions idle inside an open transaction, longest idle first: they hold locks and block
    vacuum."""
    import pandas as pd

    if sessions is None or len(sessions) == 0:
        return pd.DataFrame(columns=IDLE_IN_TX_COLUMNS)
    idle = sessions[
        ~sessions["self"]
        & sessions["state"].isin(["idle in transaction", "idle in transaction (aborted)"])
    ]
    idle = idle.rename(columns={"state_s": "idle_s"})
    return idle.sort_values("idle_s", ascending=False, kind="stable")[
        IDLE_IN_TX_COLUMNS
    ].reset_index(drop=True)
