"""Benchmark of the database runbook (issue 4). Not a test: prints figures and ratios.

Against a throwaway PostgreSQL holding 5,000 distinct statements in pg_stat_statements and 100 open
connections:
1. the notebook end to end with papermill (median of RUNS), against a baseline in the same run: a
   shell script running the runbook's own psql commands back to back (connection count, top slow
   queries, database sizes, non-idle activity), one `psql -c` each as an engineer would type them;
2. the library's diagnostics in-process (fetch + frames, no notebook), median of RUNS;
3. the server-side execution time of the notebook's own diagnostic queries, read from
   pg_stat_statements for the notebook's role (target: under 100 ms).

    .venv/bin/python bench/bench_database.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from incidentlib.pg import activity as pg_activity
from incidentlib.pg import connections as pg_connections
from incidentlib.pg import locks as pg_locks
from incidentlib.pg import session as pg
from incidentlib.pg import space as pg_space
from incidentlib.pg import statements as pg_statements
from incidentlib.sandbox.postgres import SUPERUSER_PASSWORD, Stager, ThrowawayPostgres

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "database.ipynb"
RUNS = 3
STATEMENTS = 5000
CONNECTIONS = 100
ROLE, ROLE_PW = "bench_runbook", "bench-runbook-pw"

# The runbook's own commands (its "Database Issues" section), one psql invocation each.
BASELINE = [
    "SELECT count(*) FROM pg_stat_activity;",
    "SELECT query, calls, total_exec_time, mean_exec_time FROM pg_stat_statements ORDER BY "
    "mean_exec_time DESC LIMIT 10;",
    "SELECT datname, pg_size_pretty(pg_database_size(datname)) FROM pg_database;",
    "SELECT pid, now() - pg_stat_activity.query_start AS duration, query, state FROM "
    "pg_stat_activity "
    "WHERE state != 'idle' ORDER BY duration DESC;",
]

OWN_TIME_SQL = """SELECT count(*) AS statements, sum(calls) AS calls,
       sum(total_exec_time) AS exec_ms, sum(total_plan_time) AS plan_ms
FROM pg_stat_statements WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = %(role)s)"""
OWN_TOP_SQL = """SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS query, calls,
       total_exec_time AS ms
FROM pg_stat_statements WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
ORDER BY total_exec_time DESC LIMIT 6"""


def distinct_statements(dsn: str, n: int) -> None:
    """`n` statements distinct after normalization: a column of one of many tables each (the query
    jumble ignores column aliases and constants, so `SELECT 1 AS col_1`, `SELECT 2 AS col_2`...
    would all be one)."""
    from psycopg import sql

    cols = 50
    tables = -(-n // cols)
    with psycopg.connect(dsn, autocommit=True) as c:
        for t in range(tables):
            c.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                    sql.Identifier(f"bench_t{t}"),
                    sql.SQL(", ").join(
                        sql.SQL("{} int").format(sql.Identifier(f"c{i}")) for i in range(cols)
                    ),
                )
            )
        for k in range(n):
            c.execute(
                sql.SQL("SELECT {} FROM {} WHERE c0 = {}").format(
                    sql.Identifier(f"c{k % cols}"),
                    sql.Identifier(f"bench_t{k // cols}"),
                    sql.Literal(k),
                )
            )


def baseline(server: ThrowawayPostgres) -> float:
    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(server.port),
        "PGUSER": "postgres",
        "PGDATABASE": "app",
        "PGPASSWORD": SUPERUSER_PASSWORD,
    }
    t0 = time.perf_counter()
    for sql in BASELINE:
        subprocess.run(
            ["/usr/bin/psql", "-X", "-q", "-c", sql],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    return time.perf_counter() - t0


def notebook(dsn: str, workdir: Path) -> float:
    out = workdir / "bench-database.ipynb"
    t0 = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "papermill"),
            "--no-progress-bar",
            str(NOTEBOOK),
            str(out),
            "-p",
            "dsn",
            dsn,
            "-p",
            "long_query_threshold",
            "5min",
        ],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "PGPASSWORD": ROLE_PW},
    )
    return time.perf_counter() - t0


def in_process(dsn: str) -> float:
    t0 = time.perf_counter()
    conn = pg.connect(dsn)
    server = pg_connections.fetch_server(conn)
    v = server["server_version_num"]
    sessions = pg_activity.sessions_frame(pg_activity.fetch_sessions(conn))
    pg_connections.connections_frame(sessions)
    pg_activity.activity_frame(sessions)
    stmts, _ = pg_statements.statements_frame(
        pg_statements.fetch_all(conn, server_version_num=v), keep_text=10
    )
    pg_statements.slow_queries_frame(stmts, top_n=10)
    pg_locks.blocking_frame(pg_locks.fetch_blocking(conn, server_version_num=v))
    pg_space.database_sizes_frame(pg_space.fetch_database_sizes(conn))
    pg_space.tables_frame(pg_space.fetch_tables(conn, limit=10))
    pg_space.fetch_replication(conn)
    pg_space.fetch_slots(conn)
    conn.close()
    return time.perf_counter() - t0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp, ThrowawayPostgres() as server:
        work = Path(tmp)
        stager = Stager(server.superuser_dsn)
        t0 = time.perf_counter()
        distinct_statements(server.superuser_dsn, STATEMENTS)
        stager.slow_statement(0.05, 3)
        stager.idle_connections(CONNECTIONS)
        staged = time.perf_counter() - t0
        server.create_role(ROLE, ROLE_PW, monitor=True)
        dsn = f"host=127.0.0.1 port={server.port} dbname=app user={ROLE}"
        with psycopg.connect(server.superuser_dsn, autocommit=True) as su:
            entries = su.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0]
            conns = su.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchone()[0]
        print(
            f"staged in {staged:.1f} s: {entries} pg_stat_statements entries, {conns} client "
            "connections"
        )

        base = [baseline(server) for _ in range(RUNS)]
        os.environ["PGPASSWORD"] = ROLE_PW
        lib = [in_process(dsn) for _ in range(RUNS)]
        nb = []
        for i in range(RUNS):
            if i == RUNS - 1:  # measure the last run's own queries alone
                with psycopg.connect(server.superuser_dsn, autocommit=True) as su:
                    su.execute(
                        "SELECT pg_stat_statements_reset((SELECT oid FROM pg_roles WHERE rolname "
                        "= %s), 0, 0)",
                        (ROLE,),
                    )
            nb.append(notebook(dsn, work))
        with psycopg.connect(server.superuser_dsn, autocommit=True) as su:
            own = su.execute(OWN_TIME_SQL, {"role": ROLE}).fetchone()
            top = su.execute(OWN_TOP_SQL, {"role": ROLE}).fetchall()
        stager.close()

    b, n, li = statistics.median(base), statistics.median(nb), statistics.median(lib)
    print(
        f"baseline: the runbook's 4 psql commands back to back: median {b * 1000:.0f} ms ({RUNS} "
        "runs)"
    )
    print(
        f"notebook: papermill end to end:                     median {n:.2f} s ({RUNS} runs: "
        + ", ".join(f"{x:.2f}" for x in nb)
        + f") = {n / b:.1f}x the baseline"
    )
    print(
        f"library:  every diagnostic in-process (no notebook): median {li * 1000:.0f} ms = "
        f"{li / b:.2f}x the baseline"
    )
    exec_ms, plan_ms = float(own[2] or 0), float(own[3] or 0)
    verdict = "meets" if exec_ms + plan_ms < 100 else "MISSES"
    print(
        f"the notebook's own queries (one run, role {ROLE}): {own[0]} statements, {own[1]} calls, "
        f"{exec_ms:.1f} ms execution + {plan_ms:.1f} ms planning = {exec_ms + plan_ms:.1f} ms "
        f"({verdict} the 100 ms target)"
    )
    for q, calls, ms in top:
        print(f"  {ms:8.2f} ms  {calls:3d}x  {q}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
