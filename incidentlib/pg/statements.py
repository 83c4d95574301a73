"""Which statements are slow: pg_stat_statements, version aware, merged across databases and users.

The view spans the whole cluster and keeps one row per (userid, dbid, queryid[, toplevel]); a
statement is one `queryid`, so rows are merged: calls, rows, times and blocks add up, the mean is
total/calls and the standard deviation is pooled (never an average of means). Column names follow
the server version: PostgreSQL 12 and older `total_time`/`mean_time`; 13+ `*_exec_time` and plan
times; 17 renamed `blk_read_time` to `shared_blk_read_time`. When the extension is missing,
SourceUnavailable says how to enable it."""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseError, SourceUnavailable
from ..redact import redact_sql
from .session import query

if TYPE_CHECKING:
    import pandas as pd

    from .session import Connection

ENABLE_HINT = (
    "enable it: add pg_stat_statements to shared_preload_libraries in postgresql.conf, restart "
    "PostgreSQL, "
    "then run CREATE EXTENSION pg_stat_statements; in this database (managed services: set it in "
    "the "
    "parameter group)"
)

# Is the extension installed in this database, and in which schema. Source: PostgreSQL 15 docs, F.32
# "pg_stat_statements" and 53.18 "pg_extension".
EXTENSION_SQL = """/* incident-runbook: pg_stat_statements extension */
SELECT e.extversion AS version, n.nspname AS schema
FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'"""

# One row per entry of the view; {total}... are the version's column names (see version_columns).
# Source: PostgreSQL docs F.32 for 12, 13 and 17; pghero `query_stats.rb`. Our own statements
# (marked with the leading comment) are left out. Hidden entries keep their figures but not their
# text.
STATEMENTS_SQL = """/* incident-runbook: statements */
SELECT s.queryid AS queryid, s.userid AS userid, r.rolname AS "user", s.dbid AS dbid,
       d.datname AS database,
       s.query AS query, s.calls AS calls, s.rows AS rows,
       s.{total} AS total_ms, s.{mean} AS mean_ms, s.{stddev} AS stddev_ms,
       s.{min} AS min_ms, s.{max} AS max_ms, {plan} AS plan_ms,
       s.shared_blks_hit AS shared_blks_hit, s.shared_blks_read AS shared_blks_read,
       s.{blk_read} AS blk_read_ms
FROM {schema}.pg_stat_statements AS s
LEFT JOIN pg_roles AS r ON r.oid = s.userid
LEFT JOIN pg_database AS d ON d.oid = s.dbid
WHERE left(s.query, 19) <> '/* incident-runbook'"""

# When the statistics were last reset (extension 1.9+, PostgreSQL 14+): the figures cover the time
# since. Source: PostgreSQL 15 docs, F.32.2 "The pg_stat_statements_info View".
STATS_RESET_SQL = """/* incident-runbook: statements reset */
SELECT stats_reset FROM {schema}.pg_stat_statements_info"""

STATEMENT_COLUMNS = [
    "queryid",
    "query",
    "calls",
    "rows",
    "mean_ms",
    "total_ms",
    "stddev_ms",
    "min_ms",
    "max_ms",
    "plan_ms",
    "share_pct",
    "hit_ratio",
    "blk_read_ms",
    "databases",
    "users",
]
STATEMENT_VIEW = [
    "query",
    "calls",
    "rows",
    "mean_ms",
    "total_ms",
    "stddev_ms",
    "share_pct",
    "hit_ratio",
    "databases",
]
SLOW_QUERY_COLUMNS = ["rank_mean", "rank_total", *STATEMENT_COLUMNS]

_HIDDEN = "<insufficient privilege>"


def version_columns(server_version_num: int) -> dict[str, str | None]:
    """The pg_stat_statements column names of a server version (None: the version has no such
    column)."""
    if server_version_num < 130000:
        return {
            "total": "total_time",
            "mean": "mean_time",
            "stddev": "stddev_time",
            "min": "min_time",
            "max": "max_time",
            "plan": None,
            "blk_read": "blk_read_time",
        }
    cols: dict[str, str | None] = {
        "total": "total_exec_time",
        "mean": "mean_exec_time",
        "stddev": "stddev_exec_time",
        "min": "min_exec_time",
        "max": "max_exec_time",
        "plan": "total_plan_time",
        "blk_read": "blk_read_time",
    }
    if server_version_num >= 170000:
        cols["blk_read"] = "shared_blk_read_time"
    return cols


def statements_sql(server_version_num: int, *, schema: str = "public") -> Any:
    """STATEMENTS_SQL for a server version and the extension's schema (identifiers quoted by
    psycopg)."""
    from psycopg import sql

    cols = version_columns(server_version_num)
    plan = (
        sql.SQL("s.{}").format(sql.Identifier(cols["plan"]))
        if cols["plan"]
        else sql.SQL("NULL::float8")
    )
    names = {k: sql.Identifier(v) for k, v in cols.items() if k != "plan" and v}
    return sql.SQL(STATEMENTS_SQL).format(schema=sql.Identifier(schema), plan=plan, **names)


def fetch_extension(conn: Connection) -> dict[str, Any]:
    """The installed extension's version and schema; SourceUnavailable (with how to enable it) when
    absent."""
    rows = query(conn, EXTENSION_SQL, what="pg_stat_statements extension")
    if not rows:
        raise SourceUnavailable(
            f"pg_stat_statements is not installed in this database; {ENABLE_HINT}"
        )
    return dict(rows[0])


def fetch_statements(
    conn: Connection, *, server_version_num: int, schema: str = "public"
) -> list[dict[str, Any]]:
    """Every pg_stat_statements entry (raw rows); SourceUnavailable when the library is not
    preloaded."""
    try:
        return query(
            conn, statements_sql(server_version_num, schema=schema), what="pg_stat_statements"
        )
    except DatabaseError as e:
        if (
            e.sqlstate == "55000"
        ):  # "pg_stat_statements must be loaded via shared_preload_libraries"
            raise SourceUnavailable(
                f"pg_stat_statements is installed but not loaded; {ENABLE_HINT}"
            ) from None
        raise


def fetch_all(conn: Connection, *, server_version_num: int) -> list[dict[str, Any]]:
    """Check the extension, then read every entry; SourceUnavailable (with how to enable it) when
    missing."""
    ext = fetch_extension(conn)
    return fetch_statements(conn, server_version_num=server_version_num, schema=str(ext["schema"]))


def fetch_stats_reset(conn: Connection) -> Any:
    """When pg_stat_statements was last reset (a datetime), or None when the extension is older than
    1.9."""
    from psycopg import sql

    ext = fetch_extension(conn)
    if tuple(int(x) for x in str(ext["version"]).split(".")[:2]) < (1, 9):
        return None
    rows = query(
        conn,
        sql.SQL(STATS_RESET_SQL).format(schema=sql.Identifier(str(ext["schema"]))),
        what="pg_stat_statements reset time",
    )
    return rows[0]["stats_reset"] if rows else None


def window_line(stats_reset: Any, *, since: Any, now: Any = None) -> str:
    """Say what period the statement figures cover, against the incident window (`since`, a
    timedelta)."""
    from datetime import UTC, datetime

    from ..params import format_duration

    now = now or datetime.now(UTC)
    age = (now - stats_reset).total_seconds()
    head = (
        f"statement statistics accumulated since {stats_reset.astimezone(UTC):%Y-%m-%d %H:%M} "
        f"UTC ({format_duration(age)} ago)"
    )
    if age > since.total_seconds() * 2:
        return (
            f"{head}: much longer than the incident window ({format_duration(since)}), so means "
            "and totals mix normal "
            "load with the incident; for figures of the incident alone, note them, run "
            "SELECT pg_stat_statements_reset(); and read them again in a few minutes"
        )
    return f"{head}: about the incident window ({format_duration(since)})"


def _num(v: Any) -> float:
    return 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _merge(qid: int, grp: list[dict[str, Any]], grand_total: float) -> dict[str, Any]:
    """One statement from its entries (one per user and database): calls, rows, times and blocks
    add up, the mean is total/calls, the standard deviation pooled, the text the most called one's.
    A statement seen once (the common case) takes a shorter path to the same figures."""
    if len(grp) == 1:
        r = grp[0]
        calls, total = int(r.get("calls") or 0), _num(r.get("total_ms"))
        ex2 = calls * (_num(r.get("stddev_ms")) ** 2 + _num(r.get("mean_ms")) ** 2)
        hit, read = int(r.get("shared_blks_hit") or 0), int(r.get("shared_blks_read") or 0)
        plan = r.get("plan_ms")
        plan_ms = None if plan is None else _num(plan)
        text, rows = r.get("query"), int(r.get("rows") or 0)
        low, high, blk = _num(r.get("min_ms")), _num(r.get("max_ms")), _num(r.get("blk_read_ms"))
        databases = str(r.get("database") or r.get("dbid"))
        users = str(r.get("user") or r.get("userid"))
    else:
        calls = sum(int(r.get("calls") or 0) for r in grp)
        total = sum(_num(r.get("total_ms")) for r in grp)
        # pooled population variance: E[x^2] - mean^2, with E[x^2] = sum(n_i * (sd_i^2 +
        # mean_i^2)) / N
        ex2 = sum(
            int(r.get("calls") or 0) * (_num(r.get("stddev_ms")) ** 2 + _num(r.get("mean_ms")) ** 2)
            for r in grp
        )
        hit = sum(int(r.get("shared_blks_hit") or 0) for r in grp)
        read = sum(int(r.get("shared_blks_read") or 0) for r in grp)
        plans = [r.get("plan_ms") for r in grp if r.get("plan_ms") is not None]
        plan_ms = sum(_num(p) for p in plans) if plans else None
        text = max(grp, key=lambda r: int(r.get("calls") or 0)).get("query")
        rows = sum(int(r.get("rows") or 0) for r in grp)
        low = min(_num(r.get("min_ms")) for r in grp)
        high = max(_num(r.get("max_ms")) for r in grp)
        blk = sum(_num(r.get("blk_read_ms")) for r in grp)
        databases = ", ".join(sorted({str(r.get("database") or r.get("dbid")) for r in grp}))
        users = ", ".join(sorted({str(r.get("user") or r.get("userid")) for r in grp}))
    mean = total / calls if calls else 0.0
    stddev = math.sqrt(max(ex2 / calls - mean * mean, 0.0)) if calls else 0.0
    return {
        "queryid": qid,
        "query": text,
        "calls": calls,
        "rows": rows,
        "mean_ms": round(mean, 3),
        "total_ms": round(total, 3),
        "stddev_ms": round(stddev, 3),
        "min_ms": round(low, 3),
        "max_ms": round(high, 3),
        "plan_ms": None if plan_ms is None else round(plan_ms, 3),
        "share_pct": round(100.0 * total / grand_total, 2) if grand_total else 0.0,
        "hit_ratio": round(hit / (hit + read), 4) if hit + read else None,
        "blk_read_ms": round(blk, 3),
        "databases": databases,
        "users": users,
    }


def statements_frame(
    rows: list[dict[str, Any]] | None, *, keep_text: int | None = None
) -> tuple[Any, int]:
    """Merge raw entries by queryid -> (one row per statement, number of hidden entries).

    Hidden entries (no privilege to read their text) count in the total time behind `share_pct`
    only. Query text is redacted; with `keep_text=N` only the top N by mean and by total keep it
    (the rest get None), which spares redacting thousands of texts nobody will see."""
    import pandas as pd

    rows = list(rows or [])
    grand_total = sum(_num(r.get("total_ms")) for r in rows)
    visible = [r for r in rows if r.get("query") != _HIDDEN and r.get("queryid") is not None]
    hidden = len(rows) - len(visible)
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in visible:
        groups.setdefault(int(r["queryid"]), []).append(r)
    merged = [_merge(qid, grp, grand_total) for qid, grp in groups.items()]
    if keep_text is not None:
        shown = {
            m["queryid"]
            for key in ("mean_ms", "total_ms")
            for m in heapq.nsmallest(keep_text, merged, key=lambda m: (-m[key], m["queryid"]))
        }
        for m in merged:
            m["query"] = redact_sql(m["query"]) if m["queryid"] in shown else None
    else:
        for m in merged:
            m["query"] = redact_sql(m["query"])
    df = pd.DataFrame(merged, columns=STATEMENT_COLUMNS)
    df = df.astype(
        {
            "queryid": "int64",
            "calls": "int64",
            "rows": "int64",
            "mean_ms": "float64",
            "total_ms": "float64",
            "stddev_ms": "float64",
            "plan_ms": "float64",
            "hit_ratio": "float64",
        }
    )
    return df.sort_values("total_ms", ascending=False, kind="stable").reset_index(drop=True), hidden


def top_statements(statements: pd.DataFrame, *, by: str = "mean_ms", n: int = 10) -> pd.DataFrame:
    """The `n` statements with the largest `by` (mean_ms or total_ms)."""
    if by not in ("mean_ms", "total_ms", "calls", "rows"):
        raise ValueError(f"cannot rank statements by {by!r}: use mean_ms, total_ms, calls or rows")
    return (
        statements.sort_values([by, "queryid"], ascending=[False, True], kind="stable")
        .head(n)
        .reset_index(drop=True)
    )


def slow_queries_frame(statements: pd.DataFrame, *, top_n: int = 10) -> pd.DataFrame:
    """The union of the top `top_n` by mean and by total time, slowest mean first, with both
    ranks."""
    import pandas as pd

    if statements is None or len(statements) == 0:
        return pd.DataFrame(columns=SLOW_QUERY_COLUMNS)
    by_mean = top_statements(statements, by="mean_ms", n=top_n)
    by_total = top_statements(statements, by="total_ms", n=top_n)
    rank_mean = {q: i + 1 for i, q in enumerate(by_mean["queryid"])}
    rank_total = {q: i + 1 for i, q in enumerate(by_total["queryid"])}
    keep = statements[statements["queryid"].isin(set(rank_mean) | set(rank_total))].copy()
    keep["rank_mean"] = keep["queryid"].map(rank_mean).astype("Int64")
    keep["rank_total"] = keep["queryid"].map(rank_total).astype("Int64")
    keep = keep.sort_values(["mean_ms", "queryid"], ascending=[False, True], kind="stable")
    return keep[SLOW_QUERY_COLUMNS].reset_index(drop=True)
