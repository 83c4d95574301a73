"""The diagnostic session: read-only, timeouts, clear errors, never a password in a message."""

import time

import psycopg
import pytest

from incidentlib.errors import DatabaseError
from incidentlib.pg import session as pg
from incidentlib.sandbox.postgres import SUPERUSER_PASSWORD

pytestmark = pytest.mark.pg


def test_session_settings(pg_server, pg_dsn):
    with pg.connect(pg_dsn) as conn:
        row = pg.query(
            conn,
            "SELECT current_setting('default_transaction_read_only') ro, "
            "current_setting('statement_timeout') st, "
            "current_setting('lock_timeout') lt, current_setting('application_name') app",
        )[0]
        assert row == {"ro": "on", "st": "5s", "lt": "1s", "app": "incident-runbook"}
        assert pg.server_version(conn).split(".")[0] == pg_server.install.major


def test_cannot_write(pg_dsn):
    with pg.connect(pg_dsn) as conn, pytest.raises(DatabaseError, match="read-only") as e:
        pg.query(conn, "INSERT INTO stage_accounts (id) VALUES (99999)")
    assert e.value.sqlstate == "25006"


def test_lock_timeout_instead_of_hanging(pg_dsn, stager):
    stager.access_exclusive("stage_cards")
    with pg.connect(pg_dsn, lock_timeout_ms=1000) as conn:
        t0 = time.monotonic()
        with pytest.raises(DatabaseError, match="lock_timeout expired") as e:
            pg.query(conn, "SELECT count(*) FROM stage_cards")
        elapsed = time.monotonic() - t0
    assert e.value.sqlstate == "55P03"
    assert elapsed >= 0.9  # it waited lock_timeout (load can only make that longer)


def test_statement_timeout(pg_dsn):
    with (
        pg.connect(pg_dsn, statement_timeout_ms=200) as conn,
        pytest.raises(DatabaseError, match="statement_timeout"),
    ):
        pg.query(conn, "SELECT pg_sleep(2)")


def test_malformed_dsn_no_password_in_message():
    with pytest.raises(DatabaseError) as e:
        pg.connect("host=db password=hunter2secret dbname")
    assert "malformed DSN" in str(e.value) and "hunter2secret" not in str(e.value)


def test_unreachable_database(pg_server):
    port = pg_server.port + 1 if pg_server.port < 65000 else 1
    with pytest.raises(
        DatabaseError, match="cannot connect to PostgreSQL at host=127.0.0.1 port="
    ) as e:
        pg.connect(
            f"host=127.0.0.1 port={port} dbname=app user=x password=unreach-pw-1",
            connect_timeout_s=2,
        )
    assert "unreach-pw-1" not in str(e.value)


def test_wrong_password_and_missing_database(pg_server):
    with pytest.raises(DatabaseError, match="password was refused") as e:
        pg.connect(
            f"host=127.0.0.1 port={pg_server.port} dbname=app user=postgres password=wrong-pw-42"
        )
    assert "wrong-pw-42" not in str(e.value) and e.value.sqlstate == "28P01"
    with pytest.raises(DatabaseError, match="does not exist"):
        pg.connect(
            f"host=127.0.0.1 port={pg_server.port} dbname=nope user=postgres "
            f"password={SUPERUSER_PASSWORD}"
        )


def test_libpq_environment_is_used(pg_server, monkeypatch):
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(pg_server.port))
    monkeypatch.setenv("PGUSER", "postgres")
    monkeypatch.setenv("PGDATABASE", "app")
    monkeypatch.setenv("PGPASSWORD", SUPERUSER_PASSWORD)
    with pg.connect(None) as conn:
        assert pg.query(conn, "SELECT current_database() db")[0]["db"] == "app"


# ------------------------------------------------------------- read-only is a guard, not a default
def _accounts(pg_dsn: str) -> int:
    """The rows of stage_accounts, counted by a separate superuser connection."""
    with psycopg.connect(pg_dsn, autocommit=True) as su:
        return su.execute("SELECT count(*) FROM stage_accounts").fetchone()[0]


def test_a_session_turned_read_write_through_query_still_cannot_write(pg_dsn, stager):
    before = _accounts(pg_dsn)
    with pg.connect(pg_dsn) as conn:
        assert pg.query(conn, "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE") == []
        assert pg.query(conn, "SHOW default_transaction_read_only") == [
            {"default_transaction_read_only": "off"}
        ]  # the session's default is read-write now: the guard is what refuses
        with pytest.raises(DatabaseError) as e:
            pg.query(conn, "INSERT INTO stage_accounts (id) VALUES (990001)", what="sneaky write")
        assert e.value.sqlstate == "25006"
        assert str(e.value) == (
            "sneaky write: refused, the diagnostic session is read-only (cannot execute INSERT "
            "in a read-only transaction)"
        )
        assert pg.query(conn, "SELECT 1 AS one") == [{"one": 1}]  # the session goes on
    assert _accounts(pg_dsn) == before


def test_a_session_turned_read_write_directly_on_the_connection_still_cannot_write(pg_dsn, stager):
    before = _accounts(pg_dsn)
    with pg.connect(pg_dsn) as conn:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        with pytest.raises(DatabaseError) as e:
            pg.query(conn, "INSERT INTO stage_accounts (id) VALUES (990002)")
        assert e.value.sqlstate == "25006"
        # a read-write transaction begun outside query() (and its write) is rolled back first
        conn.execute("BEGIN READ WRITE")
        conn.execute("INSERT INTO stage_accounts (id) VALUES (990003)")
        with pytest.raises(DatabaseError) as e:
            pg.query(conn, "INSERT INTO stage_accounts (id) VALUES (990004)")
        assert e.value.sqlstate == "25006"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert _accounts(pg_dsn) == before


@pytest.mark.parametrize(
    "text",
    [
        "BEGIN READ WRITE; INSERT INTO stage_accounts (id) VALUES (990005)",
        "COMMIT; INSERT INTO stage_accounts (id) VALUES (990006)",
        "COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; "
        "INSERT INTO stage_accounts (id) VALUES (990007)",
    ],
    ids=["begin-read-write", "commit-then-insert", "commit-set-insert"],
)
@pytest.mark.parametrize("pipeline", [True, False], ids=["pipeline", "no-pipeline"])
def test_several_statements_in_one_text_are_refused(pg_dsn, stager, monkeypatch, text, pipeline):
    if not pipeline:  # libpq < 14 has no pipeline mode: the guard must hold without it
        monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
    before = _accounts(pg_dsn)
    with pg.connect(pg_dsn) as conn:
        pg.query(conn, "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        with pytest.raises(DatabaseError) as e:
            pg.query(conn, text, what="several")
        assert e.value.sqlstate == "42601"
        assert str(e.value) == (
            "several: refused, a diagnostic query is one statement (cannot insert multiple "
            "commands into a prepared statement)"
        )
        with pytest.raises(DatabaseError) as e:
            pg.query(conn, "INSERT INTO stage_accounts (id) VALUES (990008)")
        assert e.value.sqlstate == "25006"
        assert pg.query(conn, "SELECT %(n)s::int AS n", {"n": 7}) == [{"n": 7}]
    assert _accounts(pg_dsn) == before


def test_each_query_sees_a_fresh_snapshot_and_leaves_no_transaction_open(pg_dsn):
    sql = "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'snapshot-probe'"
    with pg.connect(pg_dsn) as conn:
        assert pg.query(conn, sql) == [{"n": 0}]
        with psycopg.connect(pg_dsn, application_name="snapshot-probe"):
            assert pg.query(conn, sql) == [{"n": 1}]
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        [me] = pg.query(
            conn, "SELECT state, backend_xid FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
        assert me == {"state": "active", "backend_xid": None}  # no write, no xid taken


def test_the_timeouts_still_hold_inside_the_read_only_transaction(pg_dsn, stager):
    stager.access_exclusive("stage_cards")
    with pg.connect(pg_dsn, lock_timeout_ms=300, statement_timeout_ms=1000) as conn:
        with pytest.raises(DatabaseError, match="lock_timeout expired"):
            pg.query(conn, "SELECT count(*) FROM stage_cards")
        with pytest.raises(DatabaseError, match="statement_timeout expired"):
            pg.query(conn, "SELECT pg_sleep(2)")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert pg.query(conn, "SELECT 1 AS one") == [{"one": 1}]


def test_the_mitigation_session_signals_through_the_guard_and_cannot_write(pg_dsn, stager):
    idle = stager.idle_in_transaction(app="guard-test")
    before = _accounts(pg_dsn)
    with pg.connect(pg_dsn, read_only=False) as conn:
        assert pg.query(conn, "SHOW default_transaction_read_only") == [
            {"default_transaction_read_only": "off"}
        ]
        rows = pg.query(conn, "SELECT pg_terminate_backend(%(pid)s) AS done", {"pid": idle})
        assert rows == [{"done": True}]
        with pytest.raises(DatabaseError) as e:
            pg.query(conn, "INSERT INTO stage_accounts (id) VALUES (990009)")
        assert e.value.sqlstate == "25006"
    with psycopg.connect(pg_dsn, autocommit=True) as su:
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        deadline = time.monotonic() + 5
        while su.execute(gone, (idle,)).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert su.execute(gone, (idle,)).fetchone()[0] == 0
    assert _accounts(pg_dsn) == before


# ----------------------------------------------- cannot reach it, or reached and refused our login
def test_unreachable_is_not_a_refused_login(pg_server):
    port = pg_server.port + 1 if pg_server.port < 65000 else 1
    with pytest.raises(DatabaseError) as e:
        pg.connect(f"host=127.0.0.1 port={port} dbname=app user=x", connect_timeout_s=2)
    assert e.value.refused is False
    assert str(e.value).startswith(f"cannot connect to PostgreSQL at host=127.0.0.1 port={port} ")


@pytest.mark.parametrize(
    ("dbname", "user", "password", "sqlstate", "hint"),
    [
        ("app", "postgres", "wrong-pw-43", "28P01", "the password was refused"),
        ("app", "nobody_here", "any-pw-44", "28P01", "the password was refused"),
        ("nope", "postgres", SUPERUSER_PASSWORD, "3D000", "the database does not exist"),
    ],
    ids=["password", "unknown-role", "database"],
)
def test_a_refused_login_says_so(pg_server, dbname, user, password, sqlstate, hint):
    with pytest.raises(DatabaseError) as e:
        pg.connect(
            f"host=127.0.0.1 port={pg_server.port} dbname={dbname} user={user} password={password}"
        )
    assert (e.value.refused, e.value.sqlstate) == (True, sqlstate)
    target = f"host=127.0.0.1 port={pg_server.port} dbname={dbname} user={user}"
    assert str(e.value).startswith(f"PostgreSQL at {target} refused the runbook's login: ")
    assert hint in str(e.value) and password not in str(e.value)


def test_a_role_without_connect_on_the_database_is_a_refused_login(pg_server):
    import os

    name = f"noconnect_{os.getpid()}"
    with psycopg.connect(pg_server.superuser_dsn_for("postgres"), autocommit=True) as su:
        su.execute(f'CREATE DATABASE "{name}"')
        su.execute(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
    dsn = pg_server.create_role(f"{name}_role", "noconnect-pw").replace(
        "dbname=app", f"dbname={name}"
    )
    with pytest.raises(DatabaseError) as e:
        pg.connect(dsn)
    assert (e.value.refused, e.value.sqlstate) == (True, "42501")
    assert "GRANT CONNECT ON DATABASE" in str(e.value) and "noconnect-pw" not in str(e.value)
