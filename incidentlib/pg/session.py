"""PostgreSQL diagnostic sessions: read-only, with statement and lock timeouts, and a name that says
who we are.

A diagnostic must never queue behind the lock it is investigating, nor load a sick database, nor
write: every session opened here is `default_transaction_read_only`, has `statement_timeout` and
`lock_timeout`, and connects with a `connect_timeout`; and `query`, the one path every diagnostic
takes, runs each statement alone in a `BEGIN TRANSACTION READ ONLY` transaction of its own, so a
statement that turned the session's default back to read-write (`SET SESSION CHARACTERISTICS AS
TRANSACTION READ WRITE`, a library bug) still cannot write. The true boundary is the role's
privileges: run the runbook as a role with pg_monitor and no write grants. Passwords never appear
in an error message or a repr."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseError
from ..redact import dsn_password, redact_dsn, redact_text, register_secret

if TYPE_CHECKING:
    import psycopg
    from psycopg.sql import SQL, Composed

    Connection = psycopg.Connection[dict[str, Any]]

APPLICATION_NAME = "incident-runbook"

_HINTS = {
    "28P01": "the password was refused: check PGPASSWORD, ~/.pgpass or the service file",
    "28000": "this role may not connect: check pg_hba.conf and the user name",
    "3D000": "the database does not exist: check dbname (psql -l lists them)",
    "42501": "this role may not connect to that database: GRANT CONNECT ON DATABASE to it",
    "53300": "the server is out of connection slots (max_connections): connect as a superuser to "
    "use the reserved slots",
    "57P03": "the server is starting up or shutting down",
}
# The server was reached and refused our login: the runbook's configuration (DSN, role, pg_hba.conf)
# is wrong; nothing is known about the database's health.
REFUSED_LOGIN = frozenset({"28P01", "28000", "3D000", "42501"})

_BEGIN = b"BEGIN TRANSACTION READ ONLY"
_COMMIT = b"COMMIT"
_ROLLBACK = b"ROLLBACK"


def describe_target(dsn: str | None) -> str:
    """Where a DSN points, for messages: host, port, dbname, user, never the password."""
    from psycopg import conninfo

    try:
        d = conninfo.conninfo_to_dict(dsn or "")
    except Exception:
        return redact_dsn(dsn) or "(libpq defaults)"
    parts = [f"{k}={d[k]}" for k in ("host", "port", "dbname", "user", "service") if d.get(k)]
    return " ".join(parts) if parts else "(libpq defaults: PG* variables, service file)"


def connect(
    dsn: str | None = None,
    *,
    statement_timeout_ms: int = 5000,
    lock_timeout_ms: int = 1000,
    connect_timeout_s: int = 5,
    application_name: str = APPLICATION_NAME,
    read_only: bool = True,
) -> Connection:
    """Open a diagnostic session: autocommit, read-only by default, with statement and lock
    timeouts.

    `dsn` is a libpq conninfo string or URI; None uses libpq's own PG* variables, service file and
    .pgpass. `read_only=False` (the mitigation session of `pg.actions`) only leaves the session's
    default read-write: `query` still runs each statement in a read-only transaction of its own,
    which pg_terminate_backend and pg_cancel_backend need no more than (they write nothing). A
    mitigation that must write would need a path of its own, outside `query`.

    A failure to connect raises DatabaseError with `refused=True` when the server answered and
    refused the login (password, pg_hba.conf, role, database), else `refused=False` (cannot
    reach it)."""
    import psycopg
    from psycopg import conninfo
    from psycopg.rows import dict_row

    register_secret(dsn_password(dsn))
    target = describe_target(dsn)
    try:
        conninfo.conninfo_to_dict(dsn or "")
    except psycopg.ProgrammingError as e:
        raise DatabaseError(
            f"malformed DSN {redact_dsn(dsn)!r}: {redact_text(str(e))}; expected a libpq conninfo "
            "string "
            "('host=db.example.com dbname=app user=sre') or a URI "
            "('postgresql://sre@db.example.com/app')"
        ) from None
    for name, value in (
        ("statement_timeout_ms", statement_timeout_ms),
        ("lock_timeout_ms", lock_timeout_ms),
        ("connect_timeout_s", connect_timeout_s),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise DatabaseError(f"{name}={value!r} must be a positive whole number")
    options = (
        f"-c default_transaction_read_only={'on' if read_only else 'off'} "
        f"-c statement_timeout={int(statement_timeout_ms)} -c lock_timeout={int(lock_timeout_ms)} "
        f"-c idle_in_transaction_session_timeout=60000"
    )
    try:
        conn = psycopg.connect(
            dsn or "",
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=int(connect_timeout_s),
            application_name=application_name,
            options=options,
        )
    except psycopg.Error as e:
        state = getattr(e, "sqlstate", None) or _connect_state(str(e))
        hint = _HINTS.get(
            state or "", "check that the server is up and reachable, and the host and port"
        )
        text = redact_text(str(e).strip())
        if state in REFUSED_LOGIN:
            raise DatabaseError(
                f"PostgreSQL at {target} refused the runbook's login: {text}; {hint}",
                sqlstate=state,
                refused=True,
            ) from None
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {target}: {text}; {hint}", sqlstate=state
        ) from None
    return conn


def _connect_state(text: str) -> str | None:
    """psycopg reports connection failures without a SQLSTATE: recognise the usual ones by libpq's
    text."""
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return "28P01"
    if "no pg_hba.conf entry" in low or "role" in low and "does not exist" in low:
        return "28000"
    if "database" in low and "does not exist" in low:
        return "3D000"
    if "permission denied for database" in low:
        return "42501"
    if "too many clients" in low or "remaining connection slots" in low:
        return "53300"
    if "starting up" in low or "shutting down" in low:
        return "57P03"
    return None


def query(
    conn: Connection,
    sql: str | SQL | Composed,
    params: Mapping[str, Any] | None = None,
    *,
    what: str = "query",
) -> list[dict[str, Any]]:
    """Run one diagnostic statement and return its rows as dicts; errors become DatabaseError
    (timeouts explained).

    The guard: the statement runs alone in a `BEGIN TRANSACTION READ ONLY` transaction of its own
    (a new one per statement, so each sees a fresh pg_stat_activity snapshot), whatever the
    session's default has become, and is sent with the extended protocol, which takes one statement
    only: `COMMIT; INSERT ...` or `BEGIN READ WRITE; INSERT ...` in one text is refused by the
    server. A transaction left open on the connection by anything else is rolled back first.
    BEGIN, the statement and COMMIT go in one round trip (a libpq pipeline)."""
    import psycopg

    try:
        _rollback_open_transaction(conn)
        with conn.cursor() as control, conn.cursor() as cur:
            if psycopg.Pipeline.is_supported():
                with conn.pipeline():
                    control.execute(_BEGIN, prepare=False)
                    cur.execute(sql, params, prepare=False)
                    control.execute(_COMMIT, prepare=False)
            else:  # libpq < 14: three round trips; prepare=True still sends one statement only
                control.execute(_BEGIN, prepare=False)
                cur.execute(sql, params, prepare=True)
                control.execute(_COMMIT, prepare=False)
            return list(cur.fetchall()) if cur.description else []
    except psycopg.Error as e:
        _rollback_open_transaction(conn, quiet=True)
        state = getattr(e, "sqlstate", None)
        text = redact_text(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        if state == "55P03":
            msg = (
                f"{what}: lock_timeout expired ({text}); another session holds a lock on an "
                "object it reads: see the blocking section"
            )
        elif state == "57014":
            msg = (
                f"{what}: statement_timeout expired ({text}); the database is slow or the "
                "query too heavy for now"
            )
        elif state == "25006":
            msg = f"{what}: refused, the diagnostic session is read-only ({text})"
        elif state == "42601" and "multiple commands" in text:
            msg = f"{what}: refused, a diagnostic query is one statement ({text})"
        elif state == "42501":
            msg = f"{what}: permission denied ({text}); grant pg_monitor to this role"
        else:
            msg = f"{what} failed: {text}"
        raise DatabaseError(msg, sqlstate=state) from None


def _rollback_open_transaction(conn: Connection, *, quiet: bool = False) -> None:
    """End a transaction left open on the connection (ours after an error, or one begun outside
    `query`) by rolling it back: whatever it did is never committed. `quiet` swallows a failure
    (the connection is broken: the caller's error says so)."""
    import psycopg
    from psycopg import pq

    if conn.info.transaction_status not in (
        pq.TransactionStatus.INTRANS,
        pq.TransactionStatus.INERROR,
    ):
        return
    try:
        with conn.cursor() as cur:
            cur.execute(_ROLLBACK, prepare=False)
    except psycopg.Error:
        if not quiet:
            raise


def server_version(conn: Connection) -> str:
    """The server's version string, e.g. '15.18'."""
    return str(conn.info.parameter_status("server_version") or "unknown").split(" ")[0]
