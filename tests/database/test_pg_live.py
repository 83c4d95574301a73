"""The fetches and mitigations against the real throwaway PostgreSQL, with real staged incidents."""

from __future__ import annotations

import os
import time

import psycopg
import pytest

from incidentlib.errors import DatabaseError, SourceUnavailable
from incidentlib.pg import activity as pg_activity
from incidentlib.pg import connections as pg_connections
from incidentlib.pg import locks as pg_locks
from incidentlib.pg import session as pg
from incidentlib.pg import space as pg_space
from incidentlib.pg import statements as pg_statements

pytestmark = pytest.mark.pg

CARD = "4111111111111111"


@pytest.fixture(scope="module")
def bare_dsn(pg_server):
    """A database without the pg_stat_statements extension."""
    name = f"bare_{os.getpid()}"
    with psycopg.connect(pg_server.superuser_dsn_for("postgres"), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return pg_server.superuser_dsn_for(name)


def _version(conn) -> int:
    return pg_connections.fetch_server(conn)["server_version_num"]


def test_a_lock_chain_of_three_has_its_first_session_as_root(stager, conn):
    a, b, c = stager.lock_chain(3)
    rows = pg_locks.fetch_blocking(conn, server_version_num=_version(conn))
    frame = pg_locks.blocking_frame(rows)
    mine = frame[frame["blocked_pid"].isin([b, c])]
    assert mine[["blocked_pid", "blocking_pid", "root_blocking_pid", "depth"]].values.tolist() == [
        [b, a, a, 1],
        [c, b, a, 2],
    ]
    assert set(mine["relation"]) == {"stage_accounts"} and set(mine["mode"]) == {"ShareLock"}
    assert (mine["wait_s"] > 0).all()
    roots = pg_locks.root_blockers(frame)
    root = roots[roots["root_blocking_pid"] == a].iloc[0]
    assert (root["blocked_sessions"], root["state"], root["application"]) == (
        2,
        "idle in transaction",
        "billing",
    )
    assert pg_locks.blocking_tree(frame).startswith(f"pid {a} [idle in transaction for ")


def test_long_running_and_idle_in_transaction_sessions_with_redacted_text(stager, conn):
    idle = stager.idle_in_transaction()
    busy = stager.long_query(
        30, sql_text=f"SELECT pg_sleep(30), count(*) FROM stage_cards WHERE card = '{CARD}'"
    )
    time.sleep(1.2)
    sessions = pg_activity.sessions_frame(pg_activity.fetch_sessions(conn))
    long_running = pg_activity.long_running_frame(
        pg_activity.activity_frame(sessions), threshold_s=1.0
    )
    row = long_running[long_running["pid"] == busy].iloc[0]
    assert row["query_s"] >= 1.0 and row["application"] == "analytics"
    assert row["query"] == "SELECT pg_sleep(?), count(*) FROM stage_cards WHERE card = ?"
    assert CARD not in sessions.to_string()
    idle_frame = pg_activity.idle_in_transaction_frame(sessions)
    assert idle_frame.loc[idle_frame["pid"] == idle, "idle_s"].item() >= 1.0
    assert sessions.loc[sessions["self"], "application"].item() == "incident-runbook"


def test_the_repeated_sleep_is_the_slowest_statement_by_mean(stager, pg_dsn, conn):
    with psycopg.connect(pg_dsn, autocommit=True) as su:
        su.execute("SELECT pg_stat_statements_reset()")
    stager.slow_statement(0.2, 3)
    statements, hidden = pg_statements.statements_frame(
        pg_statements.fetch_all(conn, server_version_num=_version(conn))
    )
    top = pg_statements.top_statements(statements, by="mean_ms", n=1).iloc[0]
    assert (top["query"], top["calls"]) == ("SELECT pg_sleep($1)", 3)
    assert 200 <= top["mean_ms"] < 400 and hidden == 0
    assert not statements["query"].str.startswith("/* incident-runbook").any()


@pytest.mark.parametrize("version", [120000, 150000, 170000])
def test_older_and_newer_column_names_read_the_same_figures(pg_dsn, conn, version):
    """A view shaped like another version's pg_stat_statements (12's `total_time`, 15's
    `blk_read_time`, 17's `shared_blk_read_time`), made from the real server's own columns (15's or
    18's, see `version_columns`), in its own schema, read for real."""
    real = _version(conn)
    schema = f"pgss{version // 10000}"
    have, want = pg_statements.version_columns(real), pg_statements.version_columns(version)
    cols = ["userid", "dbid", "queryid", "query", "calls", "rows"]
    cols += ["shared_blks_hit", "shared_blks_read"]
    select = ", ".join(cols)
    for key, name in want.items():
        if name is not None:
            select += f", {have[key]} AS {name}"
    with psycopg.connect(pg_dsn, autocommit=True) as su:
        su.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        su.execute(
            f"CREATE OR REPLACE VIEW {schema}.pg_stat_statements AS SELECT {select} FROM "
            "public.pg_stat_statements"
        )
    old, _ = pg_statements.statements_frame(
        pg_statements.fetch_statements(conn, server_version_num=version, schema=schema)
    )
    now, _ = pg_statements.statements_frame(
        pg_statements.fetch_statements(conn, server_version_num=real)
    )
    assert len(old) > 0
    common = old.merge(now, on="queryid", suffixes=("_old", "_now"))
    assert len(common) > 0 and (common["calls_old"] <= common["calls_now"]).all()


def test_the_real_servers_own_column_names_are_the_ones_read(conn):
    """On PostgreSQL 15 `blk_read_time`, on 18 `shared_blk_read_time` (renamed in 17): the real
    view has exactly the columns `version_columns` names, and the read works."""
    real = _version(conn)
    got = {
        r["name"]
        for r in pg.query(
            conn,
            "SELECT attname AS name FROM pg_attribute WHERE attrelid = "
            "'public.pg_stat_statements'::regclass AND attnum > 0",
        )
    }
    cols = {v for v in pg_statements.version_columns(real).values() if v}
    assert cols <= got
    assert ("shared_blk_read_time" in got) == (real >= 170000)
    assert pg_statements.fetch_all(conn, server_version_num=real)


def test_without_the_extension_one_clear_error_says_how_to_enable_it(bare_dsn):
    c = pg.connect(bare_dsn)
    try:
        with pytest.raises(
            SourceUnavailable,
            match="not installed in this database; enable it: add pg_stat_statements to "
            "shared_preload_libraries",
        ):
            pg_statements.fetch_all(c, server_version_num=150000)
    finally:
        c.close()


def test_without_pg_monitor_other_sessions_are_hidden_and_counted(stager, roles):
    idle = stager.idle_in_transaction()
    for role, expect_hidden in (("plain", True), ("monitor", False)):
        c = pg.connect(roles[role])
        try:
            sessions = pg_activity.sessions_frame(pg_activity.fetch_sessions(c))
            server = pg_connections.fetch_server(c)
        finally:
            c.close()
        row = sessions[sessions["pid"] == idle].iloc[0]
        assert bool(row["hidden"]) is expect_hidden
        summary = pg_connections.connection_summary(
            pg_connections.connections_frame(sessions), server
        )
        assert (summary["hidden"] > 0) is expect_hidden
        assert server["pg_monitor"] is not expect_hidden and server["superuser"] is False
        if expect_hidden:
            assert idle not in set(pg_activity.idle_in_transaction_frame(sessions)["pid"])


def test_access_exclusive_times_out_exact_sizes_but_not_the_estimate_or_the_rest(stager, conn):
    holder = stager.access_exclusive("stage_accounts")
    # lock_timeout, not the statement running until the holder lets go (it never does here)
    with pytest.raises(
        DatabaseError, match=r"largest tables \(exact sizes\): lock_timeout expired"
    ):
        pg_space.fetch_tables(conn, limit=5)
    estimated = pg_space.tables_frame(
        pg_space.fetch_tables(conn, limit=50, exact=False), estimated=True
    )
    assert "stage_accounts" in set(estimated["table"])
    sessions = pg_activity.sessions_frame(pg_activity.fetch_sessions(conn))
    assert holder in set(sessions["pid"])
    assert len(pg_space.database_sizes_frame(pg_space.fetch_database_sizes(conn))) >= 3
    pg_statements.fetch_all(conn, server_version_num=_version(conn))
    pg_locks.fetch_blocking(conn, server_version_num=_version(conn))


def test_statements_of_other_roles_are_hidden_from_a_plain_role_and_counted(stager, roles):
    stager.slow_statement(0.01, 1)
    c = pg.connect(roles["plain"])
    try:
        rows = pg_statements.fetch_all(c, server_version_num=_version(c))
    finally:
        c.close()
    statements, hidden = pg_statements.statements_frame(rows)
    assert hidden > 0 and "SELECT pg_sleep($1)" not in set(statements["query"])
    assert statements["share_pct"].sum() < 100


def test_the_reset_time_of_the_statement_statistics(pg_dsn, conn):
    with psycopg.connect(pg_dsn, autocommit=True) as su:
        su.execute("SELECT pg_stat_statements_reset()")
        expected = su.execute("SELECT now()").fetchone()[0]
    reset = pg_statements.fetch_stats_reset(conn)
    assert abs((reset - expected).total_seconds()) < 5


def test_one_statement_run_in_two_databases_is_one_row_with_both(pg_server, conn):
    marker = f"merge_check_{os.getpid()}"
    for db, times in (("app", 2), ("postgres", 3)):
        with psycopg.connect(pg_server.superuser_dsn_for(db), autocommit=True) as c:
            for _ in range(times):
                c.execute(
                    f"SELECT count(*) AS {marker} FROM pg_class WHERE relname = %s", (marker,)
                )
    rows = pg_statements.fetch_all(conn, server_version_num=_version(conn))
    raw = [r for r in rows if marker in (r["query"] or "")]
    assert sorted(r["database"] for r in raw) == ["app", "postgres"]
    statements, _ = pg_statements.statements_frame(rows)
    [row] = statements[statements["query"].str.contains(marker, na=False)].to_dict("records")
    assert (row["calls"], row["databases"]) == (5, "app, postgres")
    assert row["total_ms"] == pytest.approx(sum(r["total_ms"] for r in raw), abs=1e-2)
    assert row["query"] == f"SELECT count(*) AS {marker} FROM pg_class WHERE relname = $1"
