"""How big, how healthy: database sizes, the largest tables, cache hit ratio, transaction-ID age,
dead tuples, replication lag and slots.

Exact table sizes (pg_total_relation_size) take an ACCESS SHARE lock per table, so they wait behind
an ACCESS EXCLUSIVE lock until lock_timeout; the estimate (pg_class.relpages) takes no lock and
stands in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..quantity import format_bytes
from .session import query

if TYPE_CHECKING:
    import pandas as pd

    from .session import Connection

XID_LIMIT = 2**31 - 1  # transaction IDs before wraparound

# Every database: size (needs CONNECT on it or pg_read_all_stats, else NULL), frozen-XID age against
# wraparound, cache hit ratio, connections. Source: PostgreSQL 15 docs, 9.27.7 "Database Object
# Management Functions", 25.1.5 "Preventing Transaction ID Wraparound Failures", 28.2.15
# "pg_stat_database"; pghero `space.rb`, `maintenance.rb`.
DATABASE_SIZES_SQL = """/* incident-runbook: database sizes */
SELECT d.datname AS database,
       CASE WHEN has_database_privilege(d.oid, 'CONNECT')
                 OR pg_has_role('pg_read_all_stats', 'USAGE')
            THEN pg_database_size(d.oid) END AS size_bytes,
       age(d.datfrozenxid)::bigint AS xid_age,
       s.numbackends AS connections,
       CASE WHEN s.blks_hit + s.blks_read > 0
            THEN s.blks_hit::float8 / (s.blks_hit + s.blks_read) END AS cache_hit_ratio,
       s.xact_commit AS commits,
       s.xact_rollback AS rollbacks,
       s.deadlocks AS deadlocks,
       s.temp_bytes AS temp_bytes
FROM pg_database AS d
LEFT JOIN pg_stat_database AS s ON s.datid = d.oid
ORDER BY size_bytes DESC NULLS LAST, d.datname"""

# The largest tables of this database, and those with the most dead tuples, with their indexes and
# TOAST, dead tuples, the last (auto)vacuum and how many autovacuums ran: a table whose dead tuples
# pile up while autovacuum has not run for long is what to look at. `rank_size` and `rank_dead` say
# why a table is listed. Source: PostgreSQL 15 docs, 9.27.7 (pg_relation_size, pg_indexes_size,
# pg_total_relation_size), 28.2.18 "pg_stat_all_tables"; pghero `space.rb` (relation_sizes) and
# `maintenance.rb`; check_postgres `bloat`, `last_autovacuum`. {sizes} is EXACT_SIZES or
# ESTIMATED_SIZES.
TABLES_SQL = """/* incident-runbook: largest tables ({kind}) */
SELECT * FROM (
  SELECT s.*,
         row_number() OVER (ORDER BY s.total_bytes DESC, s.table_oid) AS rank_size,
         row_number() OVER (ORDER BY coalesce(s.dead_tuples, 0) DESC, s.table_oid) AS rank_dead
  FROM (
    SELECT c.oid AS table_oid,
           n.nspname AS schema,
           c.relname AS "table",
           {sizes},
           st.n_live_tup AS live_tuples,
           st.n_dead_tup AS dead_tuples,
           st.n_mod_since_analyze AS modified_since_analyze,
           st.last_vacuum AS last_vacuum,
           st.last_autovacuum AS last_autovacuum,
           st.last_autoanalyze AS last_autoanalyze,
           st.autovacuum_count AS autovacuum_count,
           age(c.relfrozenxid)::bigint AS xid_age
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_all_tables AS st ON st.relid = c.oid
    WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
  ) AS s
) AS t
WHERE rank_size <= {limit} OR (rank_dead <= {limit} AND dead_tuples > 0)
ORDER BY rank_size"""

EXACT_SIZES = """pg_relation_size(c.oid) AS table_bytes,
       pg_indexes_size(c.oid) AS index_bytes,
       coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast_bytes,
       pg_total_relation_size(c.oid) AS total_bytes"""

ESTIMATED_SIZES = """c.relpages::bigint * current_setting('block_size')::bigint AS table_bytes,
       coalesce((SELECT sum(i.relpages)::bigint
                 FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid
                 WHERE x.indrelid = c.oid), 0)
         * current_setting('block_size')::bigint AS index_bytes,
       coalesce((SELECT t.relpages::bigint FROM pg_class AS t WHERE t.oid = c.reltoastrelid), 0)
         * current_setting('block_size')::bigint AS toast_bytes,
       (c.relpages::bigint
        + coalesce((SELECT sum(i.relpages)::bigint
                    FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid
                    WHERE x.indrelid = c.oid), 0)
        + coalesce((SELECT t.relpages::bigint FROM pg_class AS t WHERE t.oid = c.reltoastrelid), 0))
         * current_setting('block_size')::bigint AS total_bytes"""

# Replicas streaming from this server, with their lag. Source: PostgreSQL 15 docs, 28.2.4
# "pg_stat_replication", 9.27.4 pg_wal_lsn_diff; pghero `replication.rb`.
REPLICATION_SQL = """/* incident-runbook: replication */
SELECT application_name AS replica,
       coalesce(host(client_addr), 'local') AS client,
       state,
       sync_state,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 END AS lag_bytes,
       extract(epoch FROM write_lag)::float8 AS write_lag_s,
       extract(epoch FROM flush_lag)::float8 AS flush_lag_s,
       extract(epoch FROM replay_lag)::float8 AS replay_lag_s
FROM pg_stat_replication
ORDER BY application_name"""

# Replication slots: an inactive slot keeps WAL (and, with an xmin, dead rows) until its consumer
# returns; `wal_status` (13+) says whether the WAL it needs is still there ('lost': the consumer
# can never catch up). {wal_status} is `wal_status` from 13 on, else NULL. Source: PostgreSQL 15
# docs, 54.19 "pg_replication_slots"; check_postgres `replication_slots`.
SLOTS_SQL = """/* incident-runbook: replication slots */
SELECT slot_name,
       slot_type,
       database,
       active,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 END AS retained_bytes,
       {wal_status} AS wal_status,
       greatest(age(xmin), age(catalog_xmin))::bigint AS xmin_age
FROM pg_replication_slots
ORDER BY slot_name"""

DATABASE_SIZE_COLUMNS = [
    "database",
    "size_bytes",
    "size",
    "xid_age",
    "xid_wraparound_pct",
    "connections",
    "cache_hit_ratio",
    "commits",
    "rollbacks",
    "deadlocks",
    "temp_bytes",
]
REPLICATION_COLUMNS = [
    "replica",
    "client",
    "state",
    "sync_state",
    "lag_bytes",
    "write_lag_s",
    "flush_lag_s",
    "replay_lag_s",
]
SLOT_COLUMNS = [
    "slot_name",
    "slot_type",
    "database",
    "active",
    "retained_bytes",
    "retained",
    "wal_status",
    "xmin_age",
]
TABLE_VIEW = [
    "schema",
    "table",
    "total",
    "table_bytes",
    "index_bytes",
    "toast_bytes",
    "live_tuples",
    "dead_tuples",
    "dead_pct",
    "last_autovacuum",
    "autovacuum_count",
]
DEAD_VIEW = [
    "schema",
    "table",
    "dead_tuples",
    "dead_pct",
    "modified_since_analyze",
    "last_autovacuum",
    "autovacuum_count",
    "last_vacuum",
]
DATABASE_SIZE_VIEW = [
    "database",
    "size",
    "xid_age",
    "xid_wraparound_pct",
    "connections",
    "cache_hit_ratio",
    "deadlocks",
]
TABLE_COLUMNS = [
    "schema",
    "table",
    "total_bytes",
    "total",
    "table_bytes",
    "index_bytes",
    "toast_bytes",
    "live_tuples",
    "dead_tuples",
    "dead_pct",
    "modified_since_analyze",
    "last_vacuum",
    "last_autovacuum",
    "last_autoanalyze",
    "autovacuum_count",
    "xid_age",
    "rank_size",
    "rank_dead",
    "estimated",
]


def fetch_database_sizes(conn: Connection) -> list[dict[str, Any]]:
    """Every database's size, XID age, cache hit ratio (raw rows)."""
    return query(conn, DATABASE_SIZES_SQL, what="database sizes")


def fetch_tables(conn: Connection, *, limit: int = 10, exact: bool = True) -> list[dict[str, Any]]:
    """The `limit` largest tables of this database (exact sizes lock each table briefly; estimates
    do not)."""
    from psycopg import sql

    stmt = sql.SQL(TABLES_SQL).format(
        kind=sql.SQL("exact" if exact else "estimated"),
        sizes=sql.SQL(EXACT_SIZES if exact else ESTIMATED_SIZES),
        limit=sql.Placeholder("limit"),
    )
    what = "largest tables (exact sizes)" if exact else "largest tables (estimated from pg_class)"
    return query(conn, stmt, {"limit": int(limit)}, what=what)


def fetch_replication(conn: Connection) -> list[dict[str, Any]]:
    """Replicas streaming from this server with their lag (raw rows; empty without replicas)."""
    return query(conn, REPLICATION_SQL, what="replication")


def fetch_slots(conn: Connection, *, server_version_num: int = 150000) -> list[dict[str, Any]]:
    """Replication slots, the WAL each retains and whether it is still there (raw rows)."""
    from psycopg import sql

    wal = sql.SQL("wal_status" if server_version_num >= 130000 else "NULL::text")
    return query(conn, sql.SQL(SLOTS_SQL).format(wal_status=wal), what="replication slots")


def database_sizes_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of DATABASE_SIZES_SQL -> sizes with a readable column and XID age as a share of the
    limit."""
    import pandas as pd

    df = pd.DataFrame(
        list(rows or []),
        columns=[c for c in DATABASE_SIZE_COLUMNS if c not in ("size", "xid_wraparound_pct")],
    )
    df["size_bytes"] = pd.to_numeric(df["size_bytes"]).astype("Int64")
    df["size"] = [
        format_bytes(v, style="postgres") if pd.notna(v) else "(no access)"
        for v in df["size_bytes"]
    ]
    df["xid_age"] = pd.to_numeric(df["xid_age"]).astype("Int64")
    df["xid_wraparound_pct"] = (df["xid_age"].astype("float64") * 100.0 / XID_LIMIT).round(2)
    df["cache_hit_ratio"] = pd.to_numeric(df["cache_hit_ratio"]).astype("float64").round(4)
    return df[DATABASE_SIZE_COLUMNS]


def tables_frame(rows: list[dict[str, Any]] | None, *, estimated: bool = False) -> pd.DataFrame:
    """Rows of TABLES_SQL -> sizes, dead-tuple share, last vacuum; `estimated` says where sizes came
    from."""
    import pandas as pd

    df = pd.DataFrame(
        list(rows or []),
        columns=[c for c in TABLE_COLUMNS if c not in ("total", "dead_pct", "estimated")],
    )
    for col in (
        "total_bytes",
        "table_bytes",
        "index_bytes",
        "toast_bytes",
        "live_tuples",
        "dead_tuples",
        "modified_since_analyze",
        "autovacuum_count",
        "xid_age",
        "rank_size",
        "rank_dead",
    ):
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    for col in ("last_vacuum", "last_autovacuum", "last_autoanalyze"):
        df[col] = pd.to_datetime(df[col], utc=True)
    df["total"] = [
        format_bytes(v, style="postgres") if pd.notna(v) else "" for v in df["total_bytes"]
    ]
    live = df["live_tuples"].astype("float64").fillna(0)
    dead = df["dead_tuples"].astype("float64").fillna(0)
    df["dead_pct"] = (100.0 * dead / (live + dead).where(live + dead > 0)).round(1)
    df["estimated"] = bool(estimated)
    return df[TABLE_COLUMNS]


def replication_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of REPLICATION_SQL -> one row per replica with its lag."""
    import pandas as pd

    return pd.DataFrame(list(rows or []), columns=REPLICATION_COLUMNS)


def slots_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of SLOTS_SQL -> one row per replication slot with the WAL it retains (and readable)."""
    import pandas as pd

    df = pd.DataFrame(list(rows or []), columns=[c for c in SLOT_COLUMNS if c != "retained"])
    df["retained_bytes"] = pd.to_numeric(df["retained_bytes"]).astype("float64")
    df["retained"] = [format_bytes(v, style="postgres") for v in df["retained_bytes"]]
    df["xmin_age"] = pd.to_numeric(df["xmin_age"]).astype("Int64")
    return df[SLOT_COLUMNS]
