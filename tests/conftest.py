"""Shared pytest fixtures. Nothing here is autouse: a pure test starts nothing.

- `pg_server`: one throwaway PostgreSQL 15 for the session (pg_stat_statements preloaded), started
  on first use.
- `pg_dsn`: its superuser DSN to the `app` database (carries a password, on purpose).
- `stager`: stages real incidents on it; every staged session ends at teardown.
- `sim_cluster`: (from incidentlib.sim.testing) a factory of simulated clusters, stopped at
  teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from incidentlib.sandbox.postgres import Stager, ThrowawayPostgres

pytest_plugins = ["incidentlib.sim.testing"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
    except Exception as e:  # a missing server is a setup problem: say so plainly
        server.cleanup()
        pytest.fail(f"cannot start the throwaway PostgreSQL: {e}", pytrace=False)
    yield server
    server.cleanup()


@pytest.fixture
def pg_dsn(pg_server: ThrowawayPostgres) -> str:
    if not pg_server.running:
        pg_server.restart()
    return pg_server.dsn


@pytest.fixture
def stager(pg_dsn: str) -> Iterator[Stager]:
    s = Stager(pg_dsn)
    yield s
    s.close()
