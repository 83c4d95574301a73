"""Who blocks whom: every lock wait with its whole chain, its root blocker, and a tree a person
reads at once.

The waiting sessions come from pg_locks (visible to every role) and their blockers from
pg_blocking_pids; the root of a chain (the session that blocks without waiting itself) is found in
Python, so it is tested on fixtures. Both queries of each pair are redacted with `redact_sql`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..params import format_duration
from ..redact import redact_sql
from .session import query

if TYPE_CHECKING:
    import pandas as pd

    from .session import Connection

# One row per (waiting pid, pid it waits for). Source: PostgreSQL 15 docs, 54.12 "pg_locks"
# (waitstart is 14+, older servers use the state change), 9.26 pg_blocking_pids(); pghero
# `blocked_queries`. A row-lock wait is on a transactionid: the relation then comes from the tuple
# lock the waiter holds. Relations of another database cannot be named from here: their OID is shown
# instead. A lock held by a prepared transaction has no backend: pg_blocking_pids reports it as pid
# 0 (PREPARED_PID), named here as such.
BLOCKING_SQL = """/* incident-runbook: blocking */
SELECT w.pid AS blocked_pid,
       bp.pid AS blocking_pid,
       extract(epoch FROM clock_timestamp() - coalesce({waitstart}, w.state_change))::float8
           AS wait_s,
       l.locktype AS locktype,
       l.mode AS mode,
       CASE WHEN rel.relation IS NULL THEN NULL
            WHEN rel.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 THEN rel.relation::regclass::text
            ELSE 'oid ' || rel.relation::text END AS relation,
       w.usename AS blocked_user,
       w.application_name AS blocked_application,
       w.query AS blocked_query,
       CASE WHEN bp.pid = 0 THEN 'prepared transaction' ELSE b.state END AS blocking_state,
       b.usename AS blocking_user,
       b.application_name AS blocking_application,
       b.backend_type AS blocking_backend_type,
       CASE WHEN bp.pid = 0 THEN 'a prepared transaction (see pg_prepared_xacts)'
            ELSE b.query END AS blocking_query,
       b.xact_start AS blocking_xact_start,
       extract(epoch FROM clock_timestamp() - b.xact_start)::float8 AS blocking_xact_s,
       extract(epoch FROM clock_timestamp() - b.state_change)::float8 AS blocking_state_s
FROM pg_stat_activity AS w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
LEFT JOIN pg_stat_activity AS b ON b.pid = bp.pid
LEFT JOIN LATERAL (
    SELECT * FROM pg_locks AS x WHERE x.pid = w.pid AND NOT x.granted LIMIT 1
) AS l ON true
LEFT JOIN LATERAL (
    SELECT x.relation, x.database FROM pg_locks AS x
    WHERE x.pid = w.pid AND x.relation IS NOT NULL AND (NOT x.granted OR x.locktype = 'tuple')
    ORDER BY x.granted LIMIT 1) AS rel ON true
WHERE w.pid IN (SELECT pid FROM pg_locks WHERE NOT granted)
ORDER BY w.pid, bp.pid"""

BLOCKING_COLUMNS = [
    "blocked_pid",
    "blocking_pid",
    "root_blocking_pid",
    "depth",
    "wait_s",
    "locktype",
    "mode",
    "relation",
    "blocked_user",
    "blocked_application",
    "blocked_query",
    "blocking_state",
    "blocking_user",
    "blocking_application",
    "blocking_backend_type",
    "blocking_query",
    "blocking_xact_start",
    "blocking_xact_s",
    "blocking_state_s",
]
BLOCKING_VIEW = [
    "blocked_pid",
    "blocking_pid",
    "root_blocking_pid",
    "wait_s",
    "mode",
    "locktype",
    "relation",
    "blocked_application",
    "blocked_query",
    "blocking_state",
    "blocking_query",
]
PREPARED_PID = 0  # pg_blocking_pids' pid for a lock held by a prepared transaction
ROOT_COLUMNS = [
    "root_blocking_pid",
    "blocked_sessions",
    "longest_wait_s",
    "state",
    "user",
    "application",
    "xact_s",
    "state_s",
    "xact_start",
    "query",
]


def blocking_sql(server_version_num: int) -> Any:
    """BLOCKING_SQL for a server version (pg_locks.waitstart exists from PostgreSQL 14)."""
    from psycopg import sql

    waitstart = (
        sql.SQL("l.waitstart") if server_version_num >= 140000 else sql.SQL("NULL::timestamptz")
    )
    return sql.SQL(BLOCKING_SQL).format(waitstart=waitstart)


def fetch_blocking(conn: Connection, *, server_version_num: int) -> list[dict[str, Any]]:
    """Every (waiting pid, blocking pid) pair with the lock, both sessions and both queries (raw
    rows)."""
    return query(
        conn, blocking_sql(server_version_num), what="blocking (pg_locks, pg_blocking_pids)"
    )


def _roots(edges: dict[int, list[int]]) -> dict[int, tuple[int, int]]:
    """For each waiting pid: (root blocker, depth). A root blocks without waiting itself; in a cycle
    (a deadlock about to be broken) the smallest pid of the cycle stands in as root."""
    reach: dict[int, dict[int, int]] = {}  # pid -> {root: depth}
    for start in edges:
        found: dict[int, int] = {}
        seen = {start}
        frontier = [start]
        depth = 0
        while frontier:
            depth += 1
            nxt = []
            for p in frontier:
                for b in edges.get(p, []):
                    if b not in edges:
                        found.setdefault(b, depth)
                    elif b not in seen:
                        seen.add(b)
                        nxt.append(b)
            frontier = nxt
        if not found:  # a cycle
            found = {min(seen): 1}
        reach[start] = found
    weight: dict[int, int] = {}
    for found in reach.values():
        for r in found:
            weight[r] = weight.get(r, 0) + 1
    out = {}
    for pid, found in reach.items():
        root = min(found, key=lambda r: (-weight[r], r))
        out[pid] = (root, found[root])
    return out


def blocking_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of BLOCKING_SQL -> one row per waiting pair, with the chain's root blocker and the
    depth."""
    import pandas as pd

    rows = [dict(r) for r in rows or []]
    edges: dict[int, list[int]] = {}
    for r in rows:
        edges.setdefault(int(r["blocked_pid"]), []).append(int(r["blocking_pid"]))
    roots = _roots(edges)
    for r in rows:
        r["root_blocking_pid"], r["depth"] = roots[int(r["blocked_pid"])]
        r["blocked_query"] = redact_sql(r.get("blocked_query"))
        r["blocking_query"] = redact_sql(r.get("blocking_query"))
    df = pd.DataFrame(rows, columns=BLOCKING_COLUMNS)
    for col in ("blocked_pid", "blocking_pid", "root_blocking_pid", "depth"):
        df[col] = df[col].astype("int64")
    for col in ("wait_s", "blocking_xact_s", "blocking_state_s"):
        df[col] = pd.to_numeric(df[col]).astype("float64").round(3)
    df["blocking_xact_start"] = pd.to_datetime(df["blocking_xact_start"], utc=True)
    return df.sort_values(["root_blocking_pid", "depth", "blocked_pid"], kind="stable").reset_index(
        drop=True
    )


def root_blockers(blocking: pd.DataFrame) -> pd.DataFrame:
    """One row per root blocker: how many sessions wait behind it, for how long, and what it is
    doing."""
    import pandas as pd

    if blocking is None or len(blocking) == 0:
        return pd.DataFrame(columns=ROOT_COLUMNS)
    out = []
    for root, grp in blocking.groupby("root_blocking_pid", sort=False):
        own = blocking[blocking["blocking_pid"] == root]
        info = own.iloc[0] if len(own) else grp.iloc[0]
        out.append(
            {
                "root_blocking_pid": int(root),
                "blocked_sessions": int(grp["blocked_pid"].nunique()),
                "longest_wait_s": float(grp["wait_s"].max()),
                "state": info["blocking_state"] if len(own) else None,
                "user": info["blocking_user"] if len(own) else None,
                "application": info["blocking_application"] if len(own) else None,
                "xact_s": info["blocking_xact_s"] if len(own) else None,
                "state_s": info["blocking_state_s"] if len(own) else None,
                "xact_start": info["blocking_xact_start"] if len(own) else None,
                "query": info["blocking_query"] if len(own) else None,
            }
        )
    df = pd.DataFrame(out, columns=ROOT_COLUMNS)
    return df.sort_values(
        ["blocked_sessions", "longest_wait_s"], ascending=False, kind="stable"
    ).reset_index(drop=True)


def _short(text: Any, width: int = 90) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


def blocking_tree(blocking: pd.DataFrame) -> str:
    """The chains as an indented tree, root blockers first: who holds, who waits behind, for how
    long."""
    if blocking is None or len(blocking) == 0:
        return "no session is waiting for a lock"
    children: dict[int, list[Any]] = {}
    for _, r in blocking.iterrows():
        children.setdefault(int(r["blocking_pid"]), []).append(r)
    lines: list[str] = []

    def walk(pid: int, prefix: str, seen: set[int]) -> None:
        kids = sorted(children.get(pid, []), key=lambda r: int(r["blocked_pid"]))
        for i, r in enumerate(kids):
            last = i == len(kids) - 1
            child = int(r["blocked_pid"])
            relation = r["relation"] if isinstance(r["relation"], str) else None  # NaN: none
            lock = " on ".join(str(x) for x in (r["mode"], relation or r["locktype"]) if x)
            lines.append(
                f"{prefix}{'└─ ' if last else '├─ '}pid {child} waits "
                f"{format_duration(r['wait_s'])}"
                f" for {lock or 'a lock'}: {_short(r['blocked_query'])}"
            )
            if child not in seen:
                walk(child, prefix + ("   " if last else "│  "), seen | {child})

    for _, root in root_blockers(blocking).iterrows():
        pid = int(root["root_blocking_pid"])
        state = root["state"] or "unknown state"
        known = root["state_s"] is not None and root["state_s"] == root["state_s"]
        since = f" for {format_duration(root['state_s'])}" if known else ""
        user = root["user"] if isinstance(root["user"], str) else "?"
        app = root["application"] if isinstance(root["application"], str) else "-"
        lines.append(
            f"pid {pid} [{state}{since}, user {user}, app {app or '-'}]"
            f" blocks {root['blocked_sessions']}: {_short(root['query'])}"
        )
        walk(pid, "", {pid})
    return "\n".join(lines)
