"""Benchmark of the database runbook (issues 4 and 15). Not a test: prints figures and ratios.

Against a throwaway PostgreSQL (the sandbox's default: the system's, else the wheel's; `--version
18` picks one) holding 5,000 distinct statements in pg_stat_statements, 100 open connections and
the dangers of issue 15 (a sequence near its end, an invalid index, a prepared transaction, a
session idle in transaction):
1. the notebook end to end with papermill (median of RUNS), against two baselines in the same run:
   the runbook's own psql commands back to back (connection count, top slow queries, database
   sizes, non-idle activity), one `psql -c` each as an engineer would type them; and the floor, a
   one-cell papermill notebook (`import pandas`: interpreter, papermill, kernel start and stop).
   Target: the notebook within 1.0 s of the floor;
2. the library's diagnostic queries in-process (`database.diagnostics`, no notebook), median;
3. the server-side execution time of the notebook's own diagnostic queries, read from
   pg_stat_statements for the notebook's role (target: under 100 ms).

    .venv/bin/python bench/bench_database.py [--version 15|18]
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

from incidentlib.notebook.run import Run
from incidentlib.pg import session as pg
from incidentlib.sandbox.postgres import SUPERUSER_PASSWORD, Stager, ThrowawayPostgres
from incidentlib.scenarios import database

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_triage import (  # noqa: E402 - the one-cell papermill notebook, measured alike
    compile_library,
    floor,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "database.ipynb"
RUNS = 5  # notebook and floor runs alternate; medians and bests are both printed (others may load
# the machine: the best of each is its cost with the least interference)
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
ORDER BY total_exec_time DESC LIMIT 8"""


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
            [str(server.bin / "psql"), "-X", "-q", "-c", sql],
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
    """Every diagnostic query of the notebook (`database.diagnostics`, as it prefetches them) and
    its frames, in this process."""
    t0 = time.perf_counter()
    cfg = database.Params.check({"dsn": dsn})
    run = Run("database", quiet=True)
    db = database.Facts(target="bench")
    db.conn = pg.connect(dsn)
    db.version = db.conn.info.server_version
    for name, fetch in database.diagnostics(cfg, db).items():
        with run.source(name):
            fetch()
    db.close()
    return time.perf_counter() - t0


def stage_dangers(dsn: str, stager: Stager) -> None:
    """The dangers of issue 15, so their sections have rows to show."""
    stager.sequence_at("bench_orders_seq", 95)
    stager.invalid_index("bench_cards_holder_once")
    stager.prepared_transaction("bench-tx-1")
    stager.idle_in_transaction()


def main() -> int:
    version = sys.argv[sys.argv.index("--version") + 1] if "--version" in sys.argv else None
    compile_library()
    load = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="bench-db-") as tmp,
        ThrowawayPostgres(version=version) as server,
    ):
        print(f"server: {server.install.describe()}; load average {load:.2f}")
        work = Path(tmp)
        stager = Stager(server.superuser_dsn)
        t0 = time.perf_counter()
        distinct_statements(server.superuser_dsn, STATEMENTS)
        stager.slow_statement(0.05, 3)
        stager.idle_connections(CONNECTIONS)
        stage_dangers(server.superuser_dsn, stager)
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
        nb, fl = [], []
        for i in range(RUNS):
            fl.append(floor(work))
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
    f = statistics.median(fl)
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
        f"floor:    a one-cell papermill notebook:            median {f:.2f} s ({RUNS} runs: "
        + ", ".join(f"{x:.2f}" for x in fl)
        + f"); the notebook is {n - f:+.2f} s from it by the medians, "
        + f"{min(nb) - min(fl):+.2f} s by the bests "
        + f"(medians {'meet' if n - f <= 1.0 else 'MISS'}, bests "
        + f"{'meet' if min(nb) - min(fl) <= 1.0 else 'MISS'} the 1.0 s target)"
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
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
