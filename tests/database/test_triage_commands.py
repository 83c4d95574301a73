"""Every command triage suggests runs as printed and does what it says: triage on the demo cluster
(a bad rollout of `backend`, a flapping `postgres`), the real PostgreSQL with a lock chain and the
demo service; then each printed `runbook run ...` is run exactly as printed (split like a shell
would), and its archived evidence checked: the outage notebook looked at the application, the
database notebook at the database triage looked at, its restart planned on the database's own
workload, never on the application."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from incidentlib.evidence.manifest import load_manifest, read_scraps
from incidentlib.notebook.run import Run
from incidentlib.sandbox.demoapp import DemoApp
from incidentlib.scenarios import database

TRIAGE = Path(__file__).resolve().parents[2] / "notebooks" / "triage.ipynb"

pytestmark = [pytest.mark.notebook, pytest.mark.sim, pytest.mark.pg, pytest.mark.slow]
RUNBOOK = str(Path(sys.executable).with_name("runbook"))


def triage(tmp_path: Path, **parameters) -> tuple[dict, str]:
    import papermill as pm
    import scrapbook as sb

    out = tmp_path / "triage-out.ipynb"
    pm.execute_notebook(
        str(TRIAGE), str(out), parameters=parameters, kernel_name="python3", progress_bar=False
    )
    return {n: s.data for n, s in sb.read_notebook(str(out)).scraps.items()}, out.read_text()


def parameters_of(argv: list[str]) -> dict[str, str]:
    """The `-p NAME VALUE` pairs of a runbook command line."""
    out, i = {}, 0
    while i < len(argv):
        if argv[i] == "-p":
            out[argv[i + 1]] = argv[i + 2]
            i += 3
        else:
            i += 1
    return out


def test_each_suggested_command_runs_as_printed_and_does_what_it_says(
    sim_cluster, stager, pg_dsn, tmp_path, monkeypatch
):
    sim = sim_cluster("demo")
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(pg_dsn)
    monkeypatch.setenv("PGPASSWORD", str(parts.pop("password")))  # never a parameter
    dsn = make_conninfo(**parts)
    root, *waiting = stager.lock_chain(3)
    app = DemoApp(error_rate=0.08).start()
    try:
        scraps, text = triage(
            tmp_path,
            kubeconfig=str(sim.kubeconfig),
            dsn=dsn,
            health_url=app.url + "/health",
            incident_id="INC-CMD",
        )
        commands = {}
        for f in scraps["findings"]:
            m = re.fullmatch(r"run the (\w+) notebook: (runbook run .+)", f["next_step"])
            if m:
                commands[m.group(1)] = m.group(2)
        assert {"outage", "database"} <= set(commands), scraps["findings"]
        for name, command in commands.items():
            assert command in text  # printed in the notebook as in the finding
            argv = shlex.split(command)
            assert argv[:3] == ["runbook", "run", name] and "--incident" in argv
            done = subprocess.run(
                [RUNBOOK, *argv[1:]],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ},
            )
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    finally:
        app.stop()

    runs = {r["scenario"]: r for r in load_manifest(tmp_path / "outputs" / "INC-CMD")["runs"]}
    assert set(runs) == set(commands)
    db_params = runs["database"]["parameters"]
    assert (db_params["app_deployment"], db_params["db_deployment"]) == ("backend", "postgres")
    assert db_params["kubeconfig"] == str(sim.kubeconfig) and "password" not in db_params["dsn"]
    db = read_scraps(tmp_path / "outputs" / "INC-CMD" / runs["database"]["files"][0]["path"])
    assert set(db["blocking"]["root_blocking_pid"]) == {root}  # the database triage looked at
    assert set(db["blocking"]["blocked_pid"]) == set(waiting)
    assert list(db["db_pods"]["name"].str.startswith("postgres-")) == [True]  # its own pods
    assert db["db_resources"]["pod"].str.startswith("postgres-").all()
    assert len(db["db_resources"]) == 1
    outage = read_scraps(tmp_path / "outputs" / "INC-CMD" / runs["outage"]["files"][0]["path"])
    assert runs["outage"]["parameters"]["app_deployment"] == "backend"
    assert (outage["pods"]["owner"] == "backend").sum() == 3
    assert any("backend" in f["title"] for f in outage["findings"])

    # the defect this guards against: the database notebook's restart, as triage sends you there,
    # targets the database's own workload (planned from the printed parameters, not applied)
    given = parameters_of(shlex.split(commands["database"]))
    assert given["app_deployment"] == "backend" and given["db_deployment"] == "postgres"
    cfg = database.Params.check({**given, "mitigation": "restart"})
    run = Run("database", quiet=True)
    facts = database.Facts(target="test")
    database.database_pods(run, cfg, facts)
    action = database.mitigate(run, cfg, facts)
    assert (action["action"], action["target"], action["status"]) == (
        "restart",
        "deployment/postgres in production",
        "shown",
    )
