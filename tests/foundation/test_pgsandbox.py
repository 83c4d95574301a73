"""The stager makes real incidents: what it stages is what PostgreSQL reports."""

import psycopg
import pytest

pytestmark = pytest.mark.pg


def _activity(dsn, pids):
    with psycopg.connect(dsn, autocommit=True) as c:
        rows = c.execute(
            "SELECT pid, state, wait_event_type, pg_blocking_pids(pid) FROM pg_stat_activity "
            "WHERE pid = ANY(%s)",
            (pids,),
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_lock_chain_of_depth_four(pg_dsn, stager):
    a, b, c, d = stager.lock_chain(4)
    act = _activity(pg_dsn, [a, b, c, d])
    assert act[a][0] == "idle in transaction" and act[a][2] == []
    assert act[b] == ("active", "Lock", [a])
    assert act[c] == ("active", "Lock", [b])
    assert act[d] == ("active", "Lock", [c])
    with psycopg.connect(pg_dsn, autocommit=True) as su:
        su.execute("SELECT pg_terminate_backend(%s)", (a,))
    assert stager.finished(b) and stager.finished(c) and stager.finished(d)


def test_idle_in_transaction_and_idle_connections(pg_dsn, stager):
    pid = stager.idle_in_transaction()
    idle = stager.idle_connections(5)
    act = _activity(pg_dsn, [pid, *idle])
    assert act[pid][0] == "idle in transaction"
    assert [act[p][0] for p in idle] == ["idle"] * 5


def test_distinct_statements_are_distinct_in_pg_stat_statements(pg_dsn, stager):
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        c.execute("SELECT pg_stat_statements_reset()")
    stager.distinct_statements(120)
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        n = c.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE query LIKE %s",
            ('SELECT "c%" FROM "stage_filler_%',),
        ).fetchone()[0]
    assert n == 120


def test_long_query_and_slow_statement(pg_dsn, stager):
    pid = stager.long_query(20)
    assert _activity(pg_dsn, [pid])[pid][0] == "active"
    stager.slow_statement(0.05, times=3)
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        calls = c.execute(
            "SELECT sum(calls) FROM pg_stat_statements WHERE query = 'SELECT pg_sleep($1)'"
        ).fetchone()[0]
    assert calls >= 3
