"""Shared pytest fixtures. Nothing here is autouse: a pure test starts nothing.

- `pg_server`: one throwaway PostgreSQL 15 for the session (pg_stat_statements preloaded), started
  on first use.
- `pg_dsn`: its superuser DSN to the `app` database (carries a password, on purpose).
- `stager`: stages real incidents on it; every staged session ends at teardown.
- `sim_cluster`: (from incidentlib.sim.testing) a factory of simulated clusters, stopped at
  teardown.
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

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
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
