"""The dangers DBAs check at incident time (pghero, check_postgres, postgres_dba), each one named
SQL query, version aware, read through the one read-only path (`session.query`, with its statement
and lock timeouts), beside a pure `rows -> DataFrame` builder:

sequences        sequences near exhaustion, against their own maximum and the column they feed
invalid indexes  left behind by a failed CREATE INDEX CONCURRENTLY: written to, never read
prepared xacts   PREPARE TRANSACTION leftovers: they hold locks and the xmin like a session would
xmin holders     who keeps vacuum from cleaning: a long transaction, a slot, a prepared
                 transaction, a replica's hot_standby_feedback
checkpoints      requested against timed checkpoints (pg_stat_bgwriter up to 16,
                 pg_stat_checkpointer from 17), and the WAL written (pg_stat_wal, 14+)
progress         running vacuums and index builds with how far they got

None of them takes a lock on a user table: sizes come from pg_class, names from the catalogs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..quantity import format_bytes
from .session import query

if TYPE_CHECKING:
    import pandas as pd

    from .session import Connection

# Sequences with how much of their range is used, against the smaller of the sequence's own maximum
# and the maximum of the integer column it is owned by (a `serial` int column fed by a bigint
# sequence fails at 2^31 - 1, not at the sequence's end). last_value is NULL for a sequence never
# used, or one this role may not read (`readable`). Source: PostgreSQL 15 docs, 54.23
# "pg_sequences", 53.17 "pg_depend"; pghero `sequences.rb`; check_postgres `sequence`.
SEQUENCES_SQL = """/* incident-runbook: sequences */
SELECT s.schemaname AS schema,
       s.sequencename AS sequence,
       s.data_type::text AS data_type,
       s.last_value AS last_value,
       s.min_value AS min_value,
       s.max_value AS sequence_max,
       s.increment_by AS increment_by,
       s.cycle AS cycle,
       t.relname || '.' || a.attname AS owned_by,
       a.atttypid::regtype::text AS column_type,
       CASE a.atttypid WHEN 'int2'::regtype THEN 32767
                       WHEN 'int4'::regtype THEN 2147483647 END AS column_max,
       has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable
FROM pg_sequences AS s
JOIN pg_namespace AS n ON n.nspname = s.schemaname
JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = s.sequencename
LEFT JOIN pg_depend AS d
       ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class AS t ON t.oid = d.refobjid
LEFT JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
ORDER BY s.schemaname, s.sequencename"""

# Indexes marked invalid: a CREATE INDEX CONCURRENTLY (or REINDEX CONCURRENTLY) that failed or was
# cancelled leaves one behind; it is updated on every write and never used for reads. Size from
# pg_class (no lock). Source: PostgreSQL 15 docs, 11.9 "CREATE INDEX ... CONCURRENTLY" ("the index
# is left in an invalid state"), 53.26 "pg_index"; pghero `indexes.rb` (invalid_indexes).
INVALID_INDEXES_SQL = """/* incident-runbook: invalid indexes */
SELECT n.nspname AS schema,
       t.relname AS "table",
       c.relname AS index,
       pg_get_indexdef(i.indexrelid) AS definition,
       c.relpages::bigint * current_setting('block_size')::bigint AS size_bytes,
       i.indisready AS ready
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_class AS t ON t.oid = i.indrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
ORDER BY n.nspname, t.relname, c.relname"""

# Prepared transactions (two-phase commit) and how old they are: until COMMIT PREPARED or ROLLBACK
# PREPARED they hold their locks and their xmin, across restarts. Source: PostgreSQL 15 docs, 54.16
# "pg_prepared_xacts"; check_postgres `prepared_txns`.
PREPARED_XACTS_SQL = """/* incident-runbook: prepared transactions */
SELECT gid,
       owner,
       database,
       prepared,
       extract(epoch FROM clock_timestamp() - prepared)::float8 AS age_s,
       age(transaction)::bigint AS xid_age
FROM pg_prepared_xacts
ORDER BY prepared"""

# Everything that holds back the xmin horizon (the oldest transaction vacuum must keep rows for),
# oldest first: sessions with a snapshot or a transaction ID (but ours), replication slots,
# prepared transactions, replicas reporting their xmin (hot_standby_feedback). Source: PostgreSQL
# 15 docs, 25.1.5 "Preventing Transaction ID Wraparound Failures", 28.2.3 "pg_stat_activity"
# (backend_xmin), 54.19 "pg_replication_slots" (xmin, catalog_xmin); postgres_dba `r1`.
XMIN_HOLDERS_SQL = """/* incident-runbook: xmin holders */
SELECT kind, holder, pid, "user", state, xmin_age, age_s
FROM (
  SELECT 'session' AS kind, a.pid::text AS holder, a.pid AS pid, a.usename AS "user",
         a.state AS state,
         greatest(age(a.backend_xmin), age(a.backend_xid))::bigint AS xmin_age,
         extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS age_s
  FROM pg_stat_activity AS a
  WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL) AND a.pid <> pg_backend_pid()
  UNION ALL
  SELECT 'replication slot', r.slot_name::text, r.active_pid, NULL,
         CASE WHEN r.active THEN 'active' ELSE 'inactive' END,
         greatest(age(r.xmin), age(r.catalog_xmin))::bigint, NULL
  FROM pg_replication_slots AS r
  WHERE r.xmin IS NOT NULL OR r.catalog_xmin IS NOT NULL
  UNION ALL
  SELECT 'prepared transaction', p.gid, NULL, p.owner::text, 'prepared',
         age(p.transaction)::bigint, extract(epoch FROM clock_timestamp() - p.prepared)::float8
  FROM pg_prepared_xacts AS p
  UNION ALL
  SELECT 'replica (hot_standby_feedback)', coalesce(s.application_name, s.pid::text), s.pid,
         s.usename::text, s.state, age(s.backend_xmin)::bigint, NULL
  FROM pg_stat_replication AS s
  WHERE s.backend_xmin IS NOT NULL
) AS h
ORDER BY xmin_age DESC NULLS LAST, age_s DESC NULLS LAST
LIMIT 20"""

# Checkpoints: timed (checkpoint_timeout) against requested (max_wal_size reached, or CHECKPOINT):
# many requested ones mean WAL volume forces them, each followed by a burst of full-page writes.
# PostgreSQL 17 moved the counters from pg_stat_bgwriter to pg_stat_checkpointer and renamed them.
# Source: PostgreSQL 15 docs, 28.2.13 "pg_stat_bgwriter"; PostgreSQL 17 docs, 27.2.15
# "pg_stat_checkpointer" and its release notes (E.9.3.1.6); pghero `maintenance.rb`.
CHECKPOINTS_BGWRITER_SQL = """/* incident-runbook: checkpoints (pg_stat_bgwriter) */
SELECT checkpoints_timed AS timed,
       checkpoints_req AS requested,
       checkpoint_write_time AS write_ms,
       checkpoint_sync_time AS sync_ms,
       buffers_checkpoint AS buffers_written,
       stats_reset,
       extract(epoch FROM clock_timestamp() - stats_reset)::float8 AS since_reset_s,
       current_setting('checkpoint_timeout') AS checkpoint_timeout,
       current_setting('max_wal_size') AS max_wal_size,
       'pg_stat_bgwriter' AS source
FROM pg_stat_bgwriter"""

CHECKPOINTS_CHECKPOINTER_SQL = """/* incident-runbook: checkpoints (pg_stat_checkpointer) */
SELECT num_timed AS timed,
       num_requested AS requested,
       write_time AS write_ms,
       sync_time AS sync_ms,
       buffers_written AS buffers_written,
       stats_reset,
       extract(epoch FROM clock_timestamp() - stats_reset)::float8 AS since_reset_s,
       current_setting('checkpoint_timeout') AS checkpoint_timeout,
       current_setting('max_wal_size') AS max_wal_size,
       'pg_stat_checkpointer' AS source
FROM pg_stat_checkpointer"""

# WAL written since the statistics were reset (PostgreSQL 14+; 18 moved the write and sync timings
# to pg_stat_io, so only the columns every version has are read). Source: PostgreSQL 15 docs,
# 28.2.14 "pg_stat_wal".
WAL_SQL = """/* incident-runbook: wal */
SELECT wal_records, wal_fpi, wal_bytes::float8 AS wal_bytes, wal_buffers_full,
       extract(epoch FROM clock_timestamp() - stats_reset)::float8 AS wal_since_reset_s
FROM pg_stat_wal"""

# Running vacuums (autovacuum's and manual ones) and index builds, with their phase and how far
# they got, and the statement's age. Source: PostgreSQL 15 docs, 28.4.3 "VACUUM Progress
# Reporting", 28.4.2 "CREATE INDEX Progress Reporting" (12+); only the columns 12 to 18 share.
PROGRESS_SQL = """/* incident-runbook: progress */
SELECT 'vacuum' AS kind, p.pid, p.datname AS database, p.relid::regclass::text AS relation,
       p.phase,
       round(100.0 * p.heap_blks_scanned / nullif(p.heap_blks_total, 0), 1)::float8 AS pct_done,
       p.heap_blks_total AS blocks_total, p.heap_blks_scanned AS blocks_done,
       extract(epoch FROM clock_timestamp() - a.query_start)::float8 AS running_s,
       a.wait_event_type, a.query
FROM pg_stat_progress_vacuum AS p
LEFT JOIN pg_stat_activity AS a ON a.pid = p.pid
UNION ALL
SELECT 'create index', p.pid, p.datname, p.relid::regclass::text, p.phase,
       round(100.0 * p.blocks_done / nullif(p.blocks_total, 0), 1)::float8,
       p.blocks_total, p.blocks_done,
       extract(epoch FROM clock_timestamp() - a.query_start)::float8,
       a.wait_event_type, a.query
FROM pg_stat_progress_create_index AS p
LEFT JOIN pg_stat_activity AS a ON a.pid = p.pid
ORDER BY running_s DESC NULLS LAST"""

SEQUENCE_COLUMNS = [
    "schema",
    "sequence",
    "data_type",
    "last_value",
    "max_value",
    "pct_used",
    "owned_by",
    "column_type",
    "sequence_max",
    "increment_by",
    "cycle",
    "readable",
]
INVALID_INDEX_COLUMNS = ["schema", "table", "index", "definition", "size_bytes", "ready"]
PREPARED_XACT_COLUMNS = ["gid", "owner", "database", "prepared", "age_s", "xid_age"]
XMIN_HOLDER_COLUMNS = ["kind", "holder", "pid", "user", "state", "xmin_age", "age_s"]
CHECKPOINT_COLUMNS = [
    "timed",
    "requested",
    "requested_pct",
    "write_ms",
    "sync_ms",
    "buffers_written",
    "stats_reset",
    "since_reset_s",
    "checkpoint_timeout",
    "max_wal_size",
    "wal_bytes",
    "wal",
    "wal_fpi",
    "wal_buffers_full",
    "source",
]
CHECKPOINT_VIEW = [
    "timed",
    "requested",
    "requested_pct",
    "checkpoint_timeout",
    "max_wal_size",
    "wal",
    "write_ms",
    "sync_ms",
    "stats_reset",
    "source",
]
PROGRESS_COLUMNS = [
    "kind",
    "pid",
    "database",
    "relation",
    "phase",
    "pct_done",
    "blocks_total",
    "blocks_done",
    "running_s",
    "wait_event_type",
    "query",
]
SEQUENCE_VIEW = ["schema", "sequence", "data_type", "last_value", "max_value", "pct_used"]


def checkpoints_sql(server_version_num: int) -> str:
    """The checkpoint counters' query for a server version (pg_stat_checkpointer from 17 on)."""
    return (
        CHECKPOINTS_CHECKPOINTER_SQL if server_version_num >= 170000 else CHECKPOINTS_BGWRITER_SQL
    )


# ------------------------------------------------------------------------------------------ fetches
def fetch_sequences(conn: Connection) -> list[dict[str, Any]]:
    """Every sequence of this database with its last value and the column it feeds (raw rows)."""
    return query(conn, SEQUENCES_SQL, what="sequences")


def fetch_invalid_indexes(conn: Connection) -> list[dict[str, Any]]:
    """Indexes left invalid by a failed concurrent build (raw rows)."""
    return query(conn, INVALID_INDEXES_SQL, what="invalid indexes")


def fetch_prepared_xacts(conn: Connection) -> list[dict[str, Any]]:
    """Prepared transactions of the whole server, oldest first (raw rows)."""
    return query(conn, PREPARED_XACTS_SQL, what="prepared transactions")


def fetch_xmin_holders(conn: Connection) -> list[dict[str, Any]]:
    """What holds back the xmin horizon, oldest first (raw rows)."""
    return query(conn, XMIN_HOLDERS_SQL, what="xmin holders")


def fetch_checkpoints(conn: Connection, *, server_version_num: int) -> dict[str, Any]:
    """The checkpoint counters (and, on 14+, the WAL written) as one row."""
    rows = query(conn, checkpoints_sql(server_version_num), what="checkpoints")
    row = dict(rows[0]) if rows else {}
    if server_version_num >= 140000:
        wal = query(conn, WAL_SQL, what="wal statistics")
        row.update(wal[0] if wal else {})
    return row


def fetch_progress(conn: Connection) -> list[dict[str, Any]]:
    """Running vacuums and index builds (raw rows)."""
    return query(conn, PROGRESS_SQL, what="vacuum and index build progress")


# ----------------------------------------------------------------------------------------- frames
def sequences_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of SEQUENCES_SQL -> one row per sequence: `max_value` is the limit that bites first (the
    sequence's, or its column's), `pct_used` how much of the range up to it is gone (a descending
    sequence counts down to its minimum; unknown when never used or unreadable), fullest first."""
    import pandas as pd

    out = []
    for r in rows or []:
        col_max, seq_max = r.get("column_max"), r.get("sequence_max")
        limit = min(v for v in (col_max, seq_max) if v is not None) if seq_max is not None else None
        last, low, inc = r.get("last_value"), r.get("min_value"), r.get("increment_by") or 1
        pct = None
        if last is not None and limit is not None and low is not None:
            span = (limit - low) if inc > 0 else (seq_max - low)
            used = (last - low) if inc > 0 else (seq_max - last)
            pct = round(100.0 * used / span, 2) if span > 0 else None
        out.append({**r, "max_value": limit if inc > 0 else low, "pct_used": pct})
    df = pd.DataFrame(out, columns=SEQUENCE_COLUMNS)
    for col in ("last_value", "max_value", "sequence_max", "increment_by"):
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    df["pct_used"] = pd.to_numeric(df["pct_used"]).astype("float64")
    return df.sort_values(
        "pct_used", ascending=False, na_position="last", kind="stable"
    ).reset_index(drop=True)


def invalid_indexes_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of INVALID_INDEXES_SQL -> one row per invalid index."""
    import pandas as pd

    df = pd.DataFrame(list(rows or []), columns=INVALID_INDEX_COLUMNS)
    df["size_bytes"] = pd.to_numeric(df["size_bytes"]).astype("Int64")
    return df


def prepared_xacts_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of PREPARED_XACTS_SQL -> one row per prepared transaction, oldest first."""
    import pandas as pd

    df = pd.DataFrame(list(rows or []), columns=PREPARED_XACT_COLUMNS)
    df["prepared"] = pd.to_datetime(df["prepared"], utc=True)
    df["age_s"] = pd.to_numeric(df["age_s"]).astype("float64").round(1)
    df["xid_age"] = pd.to_numeric(df["xid_age"]).astype("Int64")
    return df


def xmin_holders_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of XMIN_HOLDERS_SQL -> the holders of the xmin horizon, oldest first."""
    import pandas as pd

    df = pd.DataFrame(list(rows or []), columns=XMIN_HOLDER_COLUMNS)
    df["pid"] = pd.to_numeric(df["pid"]).astype("Int64")
    df["xmin_age"] = pd.to_numeric(df["xmin_age"]).astype("Int64")
    df["age_s"] = pd.to_numeric(df["age_s"]).astype("float64").round(1)
    return df


def checkpoints_frame(row: dict[str, Any] | None) -> pd.DataFrame:
    """The checkpoint row -> one row with the share of requested checkpoints (none when no
    checkpoint ran yet)."""
    import pandas as pd

    rows = [dict(row)] if row else []
    for r in rows:
        total = int(r.get("timed") or 0) + int(r.get("requested") or 0)
        r["requested_pct"] = (
            round(100.0 * int(r.get("requested") or 0) / total, 1) if total else None
        )
    for r in rows:
        r["wal"] = format_bytes(r.get("wal_bytes"), style="postgres")  # written since the reset
    df = pd.DataFrame(rows, columns=CHECKPOINT_COLUMNS)
    for col in ("timed", "requested", "buffers_written", "wal_fpi", "wal_buffers_full"):
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    df["stats_reset"] = pd.to_datetime(df["stats_reset"], utc=True)
    return df


def progress_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Rows of PROGRESS_SQL -> running vacuums and index builds, longest running first, query text
    redacted."""
    import pandas as pd

    from ..redact import redact_sql

    df = pd.DataFrame(list(rows or []), columns=PROGRESS_COLUMNS)
    df["pid"] = pd.to_numeric(df["pid"]).astype("Int64")
    df["running_s"] = pd.to_numeric(df["running_s"]).astype("float64").round(1)
    df["query"] = [redact_sql(q) if isinstance(q, str) else None for q in df["query"]]
    return df


# --------------------------------------------------------------------------------------- findings
SEQUENCE_SEV3_PCT = 90.0  # the threshold: plan the change now
SEQUENCE_SEV2_PCT = 99.0  # inserts are about to fail
XMIN_AGE_SEV3 = 100_000_000  # transactions: a twentieth of the way to wraparound
CHECKPOINT_REQUESTED_PCT = 50.0
CHECKPOINT_MIN_REQUESTED = 3

Finding = dict[str, Any]


def _finding(
    severity: str | None, title: str, detail: str, next_step: str, **extra: Any
) -> Finding:
    return {"severity": severity, "title": title, "detail": detail, "next_step": next_step, **extra}


def _present(v: Any) -> bool:
    return v is not None and v == v  # neither None nor NaN/NA


def sequence_findings(sequences: pd.DataFrame | None) -> list[Finding]:
    """A sequence at 90% of its range or more (SEV3; 99%: SEV2, inserts fail at 100%), with the
    change that buys room: the column's type when the column is the limit, else the sequence's."""
    out = []
    for r in sequences.to_dict("records") if sequences is not None else []:
        pct = r.get("pct_used")
        if not _present(pct) or pct < SEQUENCE_SEV3_PCT:
            continue
        name = f"{r['schema']}.{r['sequence']}"
        col_limit = (
            _present(r.get("owned_by"))
            and r.get("column_type") in ("smallint", "integer")
            and _present(r.get("sequence_max"))
            and int(r["max_value"]) < int(r["sequence_max"])
        )
        if col_limit:
            table, _, column = str(r["owned_by"]).rpartition(".")
            step = (
                f"the column {r['owned_by']} ({r['column_type']}) is the limit: ALTER TABLE "
                f"{r['schema']}.{table} ALTER COLUMN {column} TYPE bigint (rewrites the table: "
                "plan a window) before it runs out"
            )
        else:
            step = f"ALTER SEQUENCE {name} AS bigint (and the columns it feeds), before it runs out"
        out.append(
            _finding(
                "SEV2" if pct >= SEQUENCE_SEV2_PCT else "SEV3",
                f"sequence {name} at {pct:.1f}% of its range",
                f"last value {int(r['last_value']):,} of {int(r['max_value']):,} "
                f"({r.get('data_type')}); at 100% nextval() fails and every insert that needs it "
                "fails with it",
                step,
            )
        )
    return out


def invalid_index_findings(
    invalid: pd.DataFrame | None, progress: pd.DataFrame | None = None
) -> list[Finding]:
    """Invalid indexes left by a failed concurrent build (SEV4): written to on every change, never
    read. Those of a table with an index build running right now are that build's, not leftovers."""
    building = set()
    if progress is not None and len(progress):
        building = set(progress[progress["kind"] == "create index"]["relation"].dropna())
    out = []
    for r in invalid.to_dict("records") if invalid is not None else []:
        table = f"{r['schema']}.{r['table']}"
        if table in building or r["table"] in building:
            continue
        name = f"{r['schema']}.{r['index']}"
        out.append(
            _finding(
                "SEV4",
                f"invalid index {name} on {table}",
                f"left by a failed CREATE INDEX CONCURRENTLY: every write to {table} still "
                f"updates it and no query uses it; definition: {r.get('definition')}",
                f"DROP INDEX CONCURRENTLY {name}; then build it again (CREATE INDEX CONCURRENTLY), "
                f"or REINDEX INDEX CONCURRENTLY {name}",
            )
        )
    return out


def prepared_xact_findings(prepared: pd.DataFrame | None, *, threshold_s: float) -> list[Finding]:
    """Prepared transactions older than the threshold (SEV3): they hold their locks and the xmin,
    across restarts, until their transaction manager finishes them."""
    from ..params import format_duration

    out = []
    for r in prepared.to_dict("records") if prepared is not None else []:
        age = r.get("age_s")
        if not _present(age) or age < threshold_s:
            continue
        gid = str(r["gid"]).replace("'", "''")
        out.append(
            _finding(
                "SEV3",
                f"prepared transaction {r['gid']!r} open for {format_duration(age)}",
                f"prepared by {r.get('owner')} in {r.get('database')} at {r.get('prepared')}: it "
                "holds its row and table locks and keeps vacuum from cleaning, like a session idle "
                "in transaction, and survives a restart",
                "ask the application or transaction manager that prepared it; if it is abandoned: "
                f"ROLLBACK PREPARED '{gid}' (or COMMIT PREPARED '{gid}' if it must be kept), "
                f"connected to {r.get('database')}",
            )
        )
    return out


def xmin_findings(holders: pd.DataFrame | None, *, threshold_s: float) -> list[Finding]:
    """The oldest holder of the xmin horizon, when it is old (age over the threshold, or its xmin
    100 million transactions back: SEV3): vacuum keeps every row version newer than it."""
    from ..params import format_duration

    if holders is None or len(holders) == 0:
        return []
    r = holders.iloc[0].to_dict()
    age, xmin_age = r.get("age_s"), r.get("xmin_age")
    old_age = _present(age) and age >= threshold_s
    old_xmin = _present(xmin_age) and int(xmin_age) >= XMIN_AGE_SEV3
    if not (old_age or old_xmin):
        return []
    steps = {
        "session": f"finish or terminate pid {r.get('pid')} (pids=[{r.get('pid')}], "
        "mitigation='terminate_long', apply=True)",
        "replication slot": f"bring the slot's consumer back, or SELECT "
        f"pg_drop_replication_slot('{r.get('holder')}')",
        "prepared transaction": f"COMMIT PREPARED or ROLLBACK PREPARED '{r.get('holder')}'",
    }
    kind = str(r.get("kind"))
    return [
        _finding(
            "SEV3" if old_xmin else "SEV4",
            f"vacuum is held back by {kind} {r.get('holder')}",
            f"the oldest xmin is {int(xmin_age or 0):,} transactions old"
            + (f", held for {format_duration(age)}" if _present(age) else "")
            + f" ({r.get('state')}): no row version deleted or updated since can be cleaned, "
            "tables and indexes bloat, and freezing waits",
            steps.get(kind, "make the replica release its xmin (hot_standby_feedback)"),
            holder=str(r.get("holder")),
        )
    ]


def checkpoint_findings(checkpoints: pd.DataFrame | None) -> list[Finding]:
    """Most checkpoints requested rather than timed (SEV4): WAL volume forces them (each one a
    burst of writes and full-page images)."""
    if checkpoints is None or len(checkpoints) == 0:
        return []
    r = checkpoints.iloc[0].to_dict()
    pct, requested = r.get("requested_pct"), r.get("requested")
    if (
        not _present(pct)
        or pct < CHECKPOINT_REQUESTED_PCT
        or int(requested) < CHECKPOINT_MIN_REQUESTED
    ):
        return []
    return [
        _finding(
            "SEV4",
            f"{pct:.0f}% of checkpoints were requested, not timed",
            f"{int(requested)} requested against {int(r.get('timed') or 0)} timed since "
            f"{r.get('stats_reset')} ({r.get('source')}): the WAL reaches max_wal_size "
            f"({r.get('max_wal_size')}) before checkpoint_timeout ({r.get('checkpoint_timeout')}), "
            "or someone runs CHECKPOINT; each one writes every dirty buffer and is followed by "
            "full-page images in the WAL",
            f"raise max_wal_size (now {r.get('max_wal_size')}) so checkpoints come from "
            "checkpoint_timeout; look for bulk writes (slow statements by total time, above)",
        )
    ]


def progress_findings(progress: pd.DataFrame | None, *, threshold_s: float) -> list[Finding]:
    """An index build waiting on other transactions longer than the threshold (SEV4): it cannot
    finish until they do, and holds its own lock meanwhile."""
    from ..params import format_duration

    out = []
    for r in progress.to_dict("records") if progress is not None else []:
        running = r.get("running_s")
        if (
            r.get("kind") != "create index"
            or not str(r.get("phase") or "").startswith("waiting")
            or not _present(running)
            or running < threshold_s
        ):
            continue
        out.append(
            _finding(
                "SEV4",
                f"index build on {r.get('relation')} waits ({r.get('phase')})",
                f"pid {r.get('pid')} has run {format_duration(running)}: a concurrent index build "
                "waits for every older transaction that could see the table",
                "end the old transactions (the xmin holders above), or cancel the build "
                f"(pids=[{r.get('pid')}], mitigation='cancel') and DROP the invalid index it "
                "leaves",
                pid=r.get("pid"),
            )
        )
    return out
