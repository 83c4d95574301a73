"""Pure rows -> DataFrame builders of the database diagnostics, on small fixtures (nothing
started)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from incidentlib.pg import activity as pg_activity
from incidentlib.pg import connections as pg_connections
from incidentlib.pg import locks as pg_locks
from incidentlib.pg import space as pg_space
from incidentlib.pg import statements as pg_statements
from incidentlib.quantity import format_bytes

from .pg_rows import edge, session, statement


def _sessions(*rows):
    return pg_activity.sessions_frame(list(rows))


# ----------------------------------------------------------------------------------------- activity
def test_activity_lists_non_idle_backends_oldest_first_without_our_own_or_hidden_ones():
    s = _sessions(
        session(101, "active", query_s=5, xact_s=5),
        session(102, "idle"),
        session(103, "idle in transaction", query_s=60, xact_s=400, state_s=55),
        session(104, "active", query_s=1, self_=True, app="incident-runbook"),
        session(105, None, hidden=True),
        session(106, None, backend_type="checkpointer", db=None, query=""),
        session(
            107,
            "active",
            query_s=900,
            backend_type="autovacuum worker",
            query="autovacuum: VACUUM public.t",
        ),
    )
    act = pg_activity.activity_frame(s)
    assert list(act["pid"]) == [107, 103, 101]
    assert list(act.columns) == pg_activity.ACTIVITY_COLUMNS
    assert act.loc[act["pid"] == 103, "xact_s"].item() == 400.0


def test_query_text_is_redacted_and_hidden_rows_carry_no_text():
    s = _sessions(
        session(
            1, "active", query="SELECT * FROM cards WHERE card = '4111111111111111' AND n = 42"
        ),
        session(2, None, hidden=True),
    )
    assert s.loc[0, "query"] == "SELECT * FROM cards WHERE card = ? AND n = ?"
    assert pd.isna(s.loc[1, "query"])
    assert pg_activity.hidden_count(s) == 1


def test_long_running_keeps_active_statements_over_the_threshold_longest_first():
    s = _sessions(
        session(1, "active", query_s=400),
        session(2, "active", query_s=299.9),
        session(3, "idle in transaction", query_s=4000, state_s=3000),
        session(4, "active", query_s=7200),
    )
    lr = pg_activity.long_running_frame(pg_activity.activity_frame(s), threshold_s=300)
    assert list(lr["pid"]) == [4, 1]


def test_idle_in_transaction_reports_how_long_each_has_been_idle():
    s = _sessions(
        session(1, "idle in transaction", state_s=42.5, xact_s=50),
        session(2, "idle in transaction (aborted)", state_s=600, xact_s=610),
        session(3, "idle"),
    )
    idle = pg_activity.idle_in_transaction_frame(s)
    assert list(zip(idle["pid"], idle["idle_s"], idle["xact_s"], strict=True)) == [
        (2, 600.0, 610.0),
        (1, 42.5, 50.0),
    ]


def test_empty_snapshot_gives_empty_tables_with_their_columns():
    s = pg_activity.sessions_frame(None)
    assert list(pg_activity.activity_frame(s).columns) == pg_activity.ACTIVITY_COLUMNS
    assert pg_activity.idle_in_transaction_frame(s).empty
    assert list(pg_connections.connections_frame(s).columns) == pg_connections.CONNECTION_COLUMNS


# -------------------------------------------------------------------------------------- connections
def test_connections_group_by_state_and_origin_and_count_hidden_sessions():
    s = _sessions(
        session(1, "active", app="web"),
        session(2, "active", app="web"),
        session(3, "idle", app="web"),
        session(4, "idle in transaction", app="billing", state_s=30),
        session(5, None, hidden=True, app="batch"),
        session(6, None, backend_type="walwriter", db=None, query=""),
    )
    con = pg_connections.connections_frame(s)
    assert con.iloc[0][["state", "application", "count"]].tolist() == ["active", "web", 2]
    assert set(con["state"]) == {
        "active",
        "idle",
        "idle in transaction",
        pg_connections.HIDDEN_STATE,
    }
    assert con["count"].sum() == 5  # walwriter takes no connection slot
    summary = pg_connections.connection_summary(
        con, {"max_connections": 20, "superuser_reserved": 3, "reserved": 2}
    )
    assert summary["used"] == 5 and summary["hidden"] == 1 and summary["reserved"] == 5
    assert summary["available"] == 10 and summary["usage"] == pytest.approx(5 / 15, abs=1e-4)
    by_app = pg_connections.counts_by(con, "application")
    assert by_app.iloc[0].tolist() == ["web", 3]
    overview = pg_connections.counts_overview(con)
    assert set(overview["dimension"]) == {"state", "database", "user", "application", "client"}
    assert overview.groupby("dimension")["count"].sum().unique().tolist() == [5]
    states = overview[overview["dimension"] == "state"].set_index("value")["count"].to_dict()
    assert states == {
        "active": 2,
        "idle": 1,
        "idle in transaction": 1,
        pg_connections.HIDDEN_STATE: 1,
        "idle in transaction (aborted)": 0,
    }


# --------------------------------------------------------------------------------------- statements
def test_statements_of_one_queryid_in_several_databases_merge_with_a_pooled_stddev():
    rows = [
        statement(7, calls=2, mean=2.0, stddev=1.0, db="app", user="a"),  # values 1, 3
        statement(
            7, calls=3, mean=7.0, stddev=math.sqrt(8 / 3), db="reports", user="b"
        ),  # values 5, 7, 9
        statement(8, calls=1, mean=75.0, query="SELECT pg_sleep($1)", hit=0, read=0),
    ]
    df, hidden = pg_statements.statements_frame(rows)
    assert hidden == 0
    merged = df[df["queryid"] == 7].iloc[0]
    assert merged["calls"] == 5 and merged["total_ms"] == pytest.approx(25.0)
    assert merged["mean_ms"] == pytest.approx(5.0)  # total / calls, not the mean of the means (4.5)
    assert merged["stddev_ms"] == pytest.approx(math.sqrt(8), abs=1e-3)  # of 1, 3, 5, 7, 9
    assert merged["databases"] == "app, reports" and merged["users"] == "a, b"
    assert merged["share_pct"] == pytest.approx(25.0)
    assert merged["hit_ratio"] == pytest.approx(0.9)
    assert pd.isna(df[df["queryid"] == 8].iloc[0]["hit_ratio"])


def test_hidden_statements_count_in_the_total_time_only():
    rows = [
        statement(1, calls=1, mean=10.0),
        {**statement(None, calls=1, mean=30.0), "query": "<insufficient privilege>"},
    ]
    df, hidden = pg_statements.statements_frame(rows)
    assert hidden == 1 and list(df["queryid"]) == [1]
    assert df.iloc[0]["share_pct"] == pytest.approx(25.0)


def test_slow_queries_union_top_by_mean_and_by_total_with_both_ranks():
    rows = [
        statement(1, calls=1000, mean=2.0, query="SELECT a FROM t WHERE id = 5"),
        statement(2, calls=3, mean=500.0, query="SELECT pg_sleep(0.5)"),
        statement(3, calls=10, mean=1.0),
        statement(4, calls=1, mean=0.1),
    ]
    df, _ = pg_statements.statements_frame(rows)
    slow = pg_statements.slow_queries_frame(df, top_n=1)
    assert list(slow["queryid"]) == [2, 1]
    assert str(slow["rank_mean"].dtype) == "Int64" and str(slow["rank_total"].dtype) == "Int64"
    assert slow["rank_mean"].iloc[0] == 1 and slow["rank_mean"].iloc[1] is pd.NA
    assert slow["rank_total"].iloc[0] is pd.NA and slow["rank_total"].iloc[1] == 1
    assert slow.iloc[1]["query"] == "SELECT a FROM t WHERE id = ?"
    assert {"query", "calls", "mean_ms", "total_ms", "rows"} <= set(slow.columns)


@pytest.mark.parametrize(
    ("version", "total", "blk", "plan"),
    [
        (120015, "total_time", "blk_read_time", None),
        (150018, "total_exec_time", "blk_read_time", "total_plan_time"),
        (170002, "total_exec_time", "shared_blk_read_time", "total_plan_time"),
    ],
)
def test_statement_columns_follow_the_server_version(version, total, blk, plan):
    cols = pg_statements.version_columns(version)
    assert (cols["total"], cols["blk_read"], cols["plan"]) == (total, blk, plan)
    text = pg_statements.statements_sql(version, schema="monitoring").as_string(None)
    assert f's."{total}" AS total_ms' in text and f's."{blk}" AS blk_read_ms' in text
    assert 'FROM "monitoring".pg_stat_statements' in text
    assert ("NULL::float8 AS plan_ms" in text) == (plan is None)


# ----------------------------------------------------------------------------------------- blocking
def test_a_chain_of_three_names_the_root_for_every_waiter():
    rows = [
        edge(102, 101, wait_s=300, blocking_state="idle in transaction"),
        edge(103, 102, wait_s=200),
    ]
    b = pg_locks.blocking_frame(rows)
    assert b[["blocked_pid", "blocking_pid", "root_blocking_pid", "depth"]].values.tolist() == [
        [102, 101, 101, 1],
        [103, 102, 101, 2],
    ]
    assert b.loc[0, "blocked_query"] == "UPDATE t SET v = ? WHERE id = ?"
    roots = pg_locks.root_blockers(b)
    assert roots[
        ["root_blocking_pid", "blocked_sessions", "longest_wait_s", "state"]
    ].values.tolist() == [[101, 2, 300.0, "idle in transaction"]]


def test_two_independent_chains_and_a_waiter_behind_two_blockers():
    rows = [edge(2, 1), edge(3, 1), edge(4, 3), edge(4, 9), edge(11, 10)]
    b = pg_locks.blocking_frame(rows)
    roots = dict(zip(b["blocked_pid"], b["root_blocking_pid"], strict=True))
    assert roots == {2: 1, 3: 1, 4: 1, 11: 10}  # pid 1 blocks more sessions than 9
    assert sorted(pg_locks.root_blockers(b)["root_blocking_pid"]) == [1, 10]


def test_a_deadlock_cycle_still_gets_a_root():
    b = pg_locks.blocking_frame([edge(5, 6), edge(6, 5)])
    assert set(b["root_blocking_pid"]) == {5}


def test_the_tree_reads_root_first_with_waits_and_redacted_queries():
    rows = [
        edge(102, 101, wait_s=300, blocking_state="idle in transaction"),
        edge(103, 102, wait_s=200),
    ]
    tree = pg_locks.blocking_tree(pg_locks.blocking_frame(rows))
    assert tree.splitlines() == [
        "pid 101 [idle in transaction for 5m50s, user app, app billing] blocks 2: UPDATE t SET v "
        "= ? WHERE id = ?",
        "└─ pid 102 waits 5m0s for ShareLock on t: UPDATE t SET v = ? WHERE id = ?",
        "   └─ pid 103 waits 3m20s for ShareLock on t: UPDATE t SET v = ? WHERE id = ?",
    ]
    assert pg_locks.blocking_tree(pg_locks.blocking_frame([])) == "no session is waiting for a lock"


def test_blocking_sql_uses_waitstart_from_14():
    assert "l.waitstart" in pg_locks.blocking_sql(150000).as_string(None)
    assert "NULL::timestamptz" in pg_locks.blocking_sql(130000).as_string(None)


# -------------------------------------------------------------------------------------------- space
def test_database_sizes_show_readable_sizes_and_wraparound_share():
    df = pg_space.database_sizes_frame(
        [
            {
                "database": "app",
                "size_bytes": 3 * 1024**3,
                "xid_age": 1_073_741_823,
                "connections": 4,
                "cache_hit_ratio": 0.98766,
                "commits": 10,
                "rollbacks": 0,
                "deadlocks": 0,
                "temp_bytes": 0,
            },
            {
                "database": "secret",
                "size_bytes": None,
                "xid_age": 100,
                "connections": 0,
                "cache_hit_ratio": None,
                "commits": 0,
                "rollbacks": 0,
                "deadlocks": 0,
                "temp_bytes": 0,
            },
        ]
    )
    assert df["size"].tolist() == ["3.0 GB", "(no access)"]
    assert df.loc[0, "xid_wraparound_pct"] == 50.0
    assert df.loc[0, "cache_hit_ratio"] == 0.9877


def test_tables_show_dead_tuple_share():
    df = pg_space.tables_frame(
        [
            {
                "schema": "public",
                "table": "orders",
                "total_bytes": 1536,
                "table_bytes": 1024,
                "index_bytes": 512,
                "toast_bytes": 0,
                "live_tuples": 750,
                "dead_tuples": 250,
                "last_vacuum": None,
                "last_autovacuum": None,
                "last_autoanalyze": None,
                "xid_age": 9,
            }
        ],
        estimated=True,
    )
    assert df.loc[0, ["total", "dead_pct", "estimated"]].tolist() == ["1.5 kB", 25.0, True]


def test_format_bytes():
    assert [format_bytes(v, style="postgres") for v in (0, 1023, 1024, 5 * 1024**2, None)] == [
        "0 bytes",
        "1023 bytes",
        "1.0 kB",
        "5.0 MB",
        "",
    ]


def test_keep_text_redacts_only_the_statements_anyone_will_see():
    rows = [
        statement(i, calls=1, mean=float(i), query=f"SELECT {i} FROM t{i}") for i in range(1, 8)
    ]
    rows.append(statement(100, calls=1000, mean=0.5, query="ALTER ROLE x PASSWORD 'hunter22'"))
    df, _ = pg_statements.statements_frame(rows, keep_text=2)
    texts = dict(zip(df["queryid"], df["query"], strict=True))
    assert texts[7] == "SELECT ? FROM t7" and texts[6] == "SELECT ? FROM t6"  # top 2 by mean
    assert texts[100] == "ALTER ROLE x PASSWORD ?"  # top by total
    assert all(pd.isna(texts[i]) for i in range(1, 6))


def test_window_line_says_whether_the_statistics_cover_the_incident_window():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    old = pg_statements.window_line(now - timedelta(hours=3), since=timedelta(minutes=30), now=now)
    assert old.startswith(
        "statement statistics accumulated since 2026-11-27 07:00 UTC (3h ago): much longer than "
        "the incident window (30m)"
    )
    fresh = pg_statements.window_line(
        now - timedelta(minutes=20), since=timedelta(minutes=30), now=now
    )
    assert (
        fresh == "statement statistics accumulated since 2026-11-27 09:40 UTC (20m ago): about the "
        "incident window (30m)"
    )
