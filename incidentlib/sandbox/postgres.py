"""A throwaway PostgreSQL and real staged incidents on it: test and demo infrastructure.

`ThrowawayPostgres` runs Debian's PostgreSQL (15 preferred) on a free loopback port with
pg_stat_statements preloaded; as root it runs the server as the `postgres` user (initdb and pg_ctl
refuse root). `Stager` makes real incidents: slow statements, long queries, lock chains of any depth
(A blocks B blocks C), sessions idle in transaction, piles of idle connections, many distinct
statements."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunbookError

SUPERUSER_PASSWORD = "sandbox-superuser-pw"
APP_DB = "app"


def find_pg_bin(preferred: str = "15") -> Path:
    """The bin directory of the installed PostgreSQL server (15 preferred, else the newest)."""
    env = os.environ.get("PG_BIN")
    if env:
        return Path(env)
    cand = Path(f"/usr/lib/postgresql/{preferred}/bin")
    if (cand / "initdb").exists():
        return cand
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    if found:
        return Path(found[-1]).parent
    raise RunbookError(
        "no PostgreSQL server found in /usr/lib/postgresql/*/bin: install it with "
        "`apt-get install -y postgresql postgresql-contrib` (or set PG_BIN)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """Start a private PostgreSQL server in a temp directory; stop and delete it afterwards."""

    def __init__(
        self,
        *,
        port: int | None = None,
        max_connections: int = 300,
        preload_pgss: bool = True,
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.bin = find_pg_bin()
        self.port = port or _free_port()
        self.max_connections = max_connections
        self.preload_pgss = preload_pgss
        self._own_dir = workdir is None
        self.base = Path(tempfile.mkdtemp(prefix="incident-pg-") if workdir is None else workdir)
        self.datadir = self.base / "data"
        self.logfile = self.base / "server.log"
        self.running = False

    # -- process control ----------------------------------------------------------------------
    def _as_server_user(self, args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)

    def _prepare_dirs(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
            os.chmod(self.base, 0o700)
            p = self.base.parent  # make the parents traversable for the postgres user
            while p != p.parent:
                mode = p.stat().st_mode
                if not mode & 0o001:
                    os.chmod(p, mode | 0o011)
                p = p.parent

    def start(self) -> ThrowawayPostgres:
        """initdb, start, create the `app` database and pg_stat_statements; about a second."""
        self._prepare_dirs()
        pwfile = self.base / "pw"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        r = self._as_server_user(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--pwfile",
                str(pwfile),
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]
        )
        pwfile.unlink()
        if r.returncode != 0:
            raise RunbookError(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.base} "
            f"-c max_connections={self.max_connections} -c fsync=off -c synchronous_commit=off "
            f"-c full_page_writes=off -c track_io_timing=on -c shared_buffers=32MB"
        )
        if self.preload_pgss:
            opts += (
                " -c shared_preload_libraries=pg_stat_statements -c "
                "pg_stat_statements.track=all -c pg_stat_statements.max=10000"
            )
        self._opts = opts
        self._pg_ctl_start()
        self._bootstrap()
        return self

    def _pg_ctl_start(self) -> None:
        r = self._as_server_user(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-w",
                "-t",
                "30",
                "-o",
                self._opts,
                "start",
            ]
        )
        if r.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            raise RunbookError(f"PostgreSQL did not start: {r.stderr.strip()} {log[-2000:]}")
        self.running = True

    def _bootstrap(self) -> None:
        import psycopg

        with psycopg.connect(self.superuser_dsn_for("postgres"), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {APP_DB}")
            if self.preload_pgss:
                c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        with psycopg.connect(self.superuser_dsn, autocommit=True) as c:
            if self.preload_pgss:
                c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            c.execute(
                "CREATE TABLE stage_accounts (id int PRIMARY KEY, owner text, balance numeric NOT "
                "NULL DEFAULT 0)"
            )
            c.execute(
                "INSERT INTO stage_accounts SELECT g, 'owner' || g, g * 10 FROM "
                "generate_series(1, 1000) g"
            )
            c.execute("CREATE TABLE stage_cards (id serial PRIMARY KEY, card text, holder text)")
            c.execute(
                "INSERT INTO stage_cards (card, holder) SELECT '4000' || lpad(g::text, 12, '0'), "
                "'h' || g FROM generate_series(1, 200) g"
            )
            c.execute("ANALYZE")

    def stop(self) -> None:
        """Stop the server (fast shutdown); its data stays until cleanup()."""
        if self.running:
            self._as_server_user(
                [str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"]
            )
            self.running = False

    def restart(self) -> None:
        """Start a stopped server again."""
        if not self.running:
            self._pg_ctl_start()

    def cleanup(self) -> None:
        """Stop and delete everything."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- addresses ----------------------------------------------------------------------------
    def superuser_dsn_for(self, dbname: str) -> str:
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user=postgres "
            f"password={SUPERUSER_PASSWORD}"
        )

    @property
    def superuser_dsn(self) -> str:
        """Superuser DSN to the `app` database (has a password: tests of redaction rely on it)."""
        return self.superuser_dsn_for(APP_DB)

    @property
    def dsn(self) -> str:
        return self.superuser_dsn

    def create_role(self, name: str, password: str, *, monitor: bool = False) -> str:
        """Create a login role (optionally with pg_monitor) and return its DSN to `app`."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.superuser_dsn, autocommit=True) as c:
            c.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
            c.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                    sql.Identifier(name)
                )
            )
            if monitor:
                c.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(name)))
        return f"host=127.0.0.1 port={self.port} dbname={APP_DB} user={name} password={password}"


@dataclass
class StagedSession:
    """One connection the stager holds open, and the statement it may be blocked in."""

    pid: int
    conn: Any
    label: str
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


class Stager:
    """Stage real database incidents through ordinary sessions (superuser DSN)."""

    def __init__(self, dsn: str, *, application_name: str = "stager") -> None:
        self.dsn = dsn
        self.application_name = application_name
        self.sessions: dict[int, StagedSession] = {}

    def _connect(self, *, autocommit: bool = True, app: str | None = None) -> Any:
        import psycopg

        return psycopg.connect(
            self.dsn, autocommit=autocommit, application_name=app or self.application_name
        )

    def _hold(self, conn: Any, label: str) -> StagedSession:
        pid = conn.info.backend_pid
        s = StagedSession(pid=pid, conn=conn, label=label)
        self.sessions[pid] = s
        return s

    def _run_in_thread(
        self, s: StagedSession, statements: list[tuple[str, Any]], *, commit: bool
    ) -> None:
        def work() -> None:
            try:
                for q, p in statements:
                    s.conn.execute(q, p)
                if commit:
                    s.conn.commit()
            except Exception as e:  # the session may be terminated on purpose
                s.error = f"{type(e).__name__}: {e}"
            finally:
                s.done.set()

        s.thread = threading.Thread(target=work, name=f"stager-{s.label}", daemon=True)
        s.thread.start()

    def _wait_state(
        self,
        pid: int,
        *,
        waiting: bool | None = None,
        state: str | None = None,
        timeout: float = 10,
    ) -> None:
        deadline = time.monotonic() + timeout
        with self._connect(app="stager-probe") as c:
            while time.monotonic() < deadline:
                row = c.execute(
                    "SELECT state, wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                if (
                    row
                    and (state is None or row[0] == state)
                    and (waiting is None or (row[1] == "Lock") == waiting)
                ):
                    return
                time.sleep(0.02)
        raise RunbookError(
            f"staged session {pid} did not reach state={state} waiting={waiting} within {timeout}s"
        )

    # -- incidents ----------------------------------------------------------------------------
    def slow_statement(self, seconds: float = 0.2, times: int = 3) -> None:
        """Run `SELECT pg_sleep(seconds)` `times` times: the top statement by mean time."""
        with self._connect(app="billing-report") as c:
            for _ in range(times):
                c.execute("SELECT pg_sleep(%s)", (seconds,))

    def long_query(
        self, seconds: float = 30.0, *, app: str = "analytics", sql_text: str | None = None
    ) -> int:
        """Start a statement that runs for `seconds` in the background; returns its pid once
        active."""
        conn = self._connect(app=app)
        s = self._hold(conn, "long-query")
        q = sql_text or f"SELECT pg_sleep({float(seconds)}) /* long report */"
        self._run_in_thread(s, [(q, None)], commit=False)
        self._wait_state(s.pid, state="active")
        return s.pid

    def lock_chain(self, depth: int = 3, *, app: str = "billing") -> list[int]:
        """A blocks B blocks C...: session i holds row i and waits for row i-1. Returns the pids,
        root first.

        The root is idle in transaction; each waiter commits as soon as its statement gets through,
        so terminating the root lets the whole chain drain."""
        if depth < 2:
            raise ValueError("a lock chain needs depth >= 2")
        pids: list[int] = []
        root = self._connect(autocommit=False, app=app)
        root.execute("UPDATE stage_accounts SET balance = balance + 1 WHERE id = %s", (1,))
        pids.append(self._hold(root, "chain-0").pid)
        for i in range(1, depth):
            conn = self._connect(autocommit=False, app=app)
            conn.execute("UPDATE stage_accounts SET balance = balance + 1 WHERE id = %s", (i + 1,))
            s = self._hold(conn, f"chain-{i}")
            self._run_in_thread(
                s,
                [("UPDATE stage_accounts SET balance = balance - 1 WHERE id = %s", (i,))],
                commit=True,
            )
            self._wait_state(s.pid, waiting=True)
            pids.append(s.pid)
        return pids

    def access_exclusive(self, table: str = "stage_accounts") -> int:
        """Hold ACCESS EXCLUSIVE on a table in an open transaction; returns the holder's pid."""
        from psycopg import sql

        conn = self._connect(autocommit=False, app="migration")
        conn.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table))
        )
        return self._hold(conn, "access-exclusive").pid

    def idle_in_transaction(self, *, app: str = "billing") -> int:
        """A session that began a transaction, read a row, and went idle; returns its pid."""
        conn = self._connect(autocommit=False, app=app)
        conn.execute("SELECT balance FROM stage_accounts WHERE id = %s", (500,))
        return self._hold(conn, "idle-in-tx").pid

    def idle_connections(self, n: int, *, app: str = "web") -> list[int]:
        """Open `n` idle connections; returns their pids."""
        return [self._hold(self._connect(app=app), "idle").pid for _ in range(n)]

    def distinct_statements(self, n: int, *, columns: int = 50) -> None:
        """Execute `n` statements that stay distinct after normalization (pg_stat_statements ignores
        constants and aliases, so each one reads a different column of a different filler table)."""
        from psycopg import sql

        with self._connect(app="statement-filler") as c:
            for t in range(-(-n // columns)):
                c.execute(
                    sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                        sql.Identifier(f"stage_filler_{t}"),
                        sql.SQL(", ").join(
                            sql.SQL("{} int").format(sql.Identifier(f"c{i}"))
                            for i in range(columns)
                        ),
                    )
                )
            for k in range(n):
                c.execute(
                    sql.SQL("SELECT {} FROM {} WHERE c0 = {}").format(
                        sql.Identifier(f"c{k % columns}"),
                        sql.Identifier(f"stage_filler_{k // columns}"),
                        sql.Literal(k),
                    )
                )

    def finished(self, pid: int, timeout: float = 5.0) -> bool:
        """Whether the staged session's blocked statement completed (True) within `timeout`."""
        s = self.sessions[pid]
        return s.done.wait(timeout) and s.error is None

    def close(self) -> None:
        """End every staged session and connection."""
        for s in list(self.sessions.values()):
            try:
                s.conn.cancel_safe(timeout=1) if hasattr(s.conn, "cancel_safe") else s.conn.cancel()
            except Exception:
                pass
            try:
                s.conn.close()
            except Exception:
                pass
            if s.thread is not None:
                s.thread.join(timeout=5)
        self.sessions.clear()
