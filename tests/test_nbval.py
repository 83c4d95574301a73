"""nbval: every committed notebook runs top to bottom with its default parameters (`--nbval-lax`),
pointed at the simulated `demo` cluster and the throwaway PostgreSQL the way a user points them at
real ones: $KUBECONFIG and libpq's PG* variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(
    p.name for p in (ROOT / "notebooks").glob("*.ipynb") if p.name != "postmortem.ipynb"
)

pytestmark = [pytest.mark.notebook, pytest.mark.sim, pytest.mark.pg, pytest.mark.slow]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_clean_under_nbval(name, sim_cluster, pg_server, tmp_path):
    sim = sim_cluster("demo")
    env = {
        **os.environ,
        **sim.env,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg_server.port),
        "PGUSER": "postgres",
        "PGDATABASE": "app",
        "PGPASSWORD": pg_server.dsn.split("password=")[1].split()[0],
        "PYTHONWARNINGS": "ignore",
    }
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ini),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            "-q",
            "--nbval-lax",
            "--nbval-current-env",
            str(ROOT / "notebooks" / name),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout
