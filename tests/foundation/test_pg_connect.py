"""The diagnostic session: read-only, timeouts, clear errors, never a password in a message."""

import time

import pytest

from incidentlib.errors import DatabaseError
from incidentlib.pg import session as pg
from incidentlib.sandbox.postgres import SUPERUSER_PASSWORD

pytestmark = pytest.mark.pg


def test_session_settings(pg_dsn):
    with pg.connect(pg_dsn) as conn:
        row = pg.query(
            conn,
            "SELECT current_setting('default_transaction_read_only') ro, "
            "current_setting('statement_timeout') st, "
            "current_setting('lock_timeout') lt, current_setting('application_name') app",
        )[0]
        assert row == {"ro": "on", "st": "5s", "lt": "1s", "app": "incident-runbook"}
        assert pg.server_version(conn).startswith("15")


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
    assert 0.9 <= elapsed < 3


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
