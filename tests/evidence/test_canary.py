"""The canary test of issue 7: secrets planted in every source an incident touches never reach the
archive.

Planted: a password in the DSN parameter, a bearer token and a password in pod logs of the simulated
cluster (the `demo` scenario's own canaries, plus error lines appended to backend and frontend
pods), and a secret literal in a query running on the real PostgreSQL. Every scenario notebook that
exists runs through `runbook run`; then every archived file (ipynb, html, manifest) is searched for
every canary."""

from __future__ import annotations

import json
import sys
import uuid

import psycopg
import pytest

from incidentlib import cli
from incidentlib.cli.demo import NOT_SCENARIOS, DemoEnvironment, scenario_parameters
from incidentlib.evidence.manifest import load_manifest, read_scraps, verify
from incidentlib.evidence.parameters import inspect_parameters, scenarios
from incidentlib.sandbox.demoapp import DemoApp

from .conftest import SCENARIO_NOTEBOOKS
from .helpers import archived_files, find_canaries

pytestmark = [pytest.mark.sim, pytest.mark.pg, pytest.mark.notebook, pytest.mark.slow]

DSN_PASSWORD = "canary-dsn-pw-8c2f1e"
# planted by the demo scenario (incidentlib/sim/scenarios/demo.yaml)
SIM_BEARER = "sim-canary-token-7f3a9c2e1b4d"
SIM_PASSWORD = "sim-canary-pass-5d8e2a"
LOG_BEARER = "canary-log-bearer-4b7d0e9a1c"
LOG_PASSWORD = "canary-log-pw-0a9b8c"
SQL_LITERAL = "canary-card-4111111111111111"
CANARIES = [DSN_PASSWORD, SIM_BEARER, SIM_PASSWORD, LOG_BEARER, LOG_PASSWORD, SQL_LITERAL]


@pytest.fixture
def planted(sim_cluster, pg_server, stager):
    handle = sim_cluster("demo")
    handle.advance(60)  # the demo scenario writes its canary lines every 20 simulated seconds
    pods = json.loads(handle.kubectl("get", "pods", "-n", "production", "-o", "json").stdout)[
        "items"
    ]
    lines = [
        f"ERROR upstream call failed: Authorization: Bearer {LOG_BEARER}",
        f"ERROR db login failed for dsn host=db user=app password={LOG_PASSWORD}",
    ]
    planted_in = []
    for pod in pods:
        app = pod["metadata"].get("labels", {}).get("app")
        if app in ("backend", "frontend"):
            handle.append_logs(
                "production", pod["metadata"]["name"], pod["spec"]["containers"][0]["name"], lines
            )
            planted_in.append(pod["metadata"]["name"])
    assert planted_in, "no backend/frontend pods in the demo scenario"
    dsn = pg_server.create_role(f"canary_{uuid.uuid4().hex[:12]}", DSN_PASSWORD, monitor=True)
    pid = stager.long_query(
        sql_text=f"SELECT count(*) FROM stage_cards WHERE card = '{SQL_LITERAL}' AND "
        "pg_sleep(600) IS NOT NULL"
    )
    stager.lock_chain(3)
    with psycopg.connect(
        pg_server.dsn, autocommit=True
    ) as c:  # the literal really is in pg_stat_activity
        assert (
            SQL_LITERAL
            in c.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]
        )
    logs = {
        name: handle.kubectl("logs", "-n", "production", name, "--tail=100").stdout
        for name in planted_in
    }
    assert any(LOG_BEARER in text and LOG_PASSWORD in text for text in logs.values())
    assert any(SIM_BEARER in text and SIM_PASSWORD in text for text in logs.values())
    with DemoApp(error_rate=0.08) as app:
        yield DemoEnvironment(
            kubeconfig=handle.kubeconfig,
            context=handle.context,
            dsn=dsn,
            pg_env={},
            service_url=app.url,
            staged={"long_query": pid},
        )


def test_no_canary_reaches_any_archived_file(planted, tmp_path, capsys):
    found = {n: p for n, p in scenarios(SCENARIO_NOTEBOOKS).items() if n not in NOT_SCENARIOS}
    assert sorted(found) == ["database", "outage", "performance", "triage"]
    incident = "INC-canary"
    codes: dict[str, int] = {}
    for name, path in found.items():
        argv = [
            "run",
            name,
            "--notebooks",
            str(SCENARIO_NOTEBOOKS),
            "--outputs",
            str(tmp_path),
            "--incident",
            incident,
            "--cell-timeout",
            "120",
            *scenario_parameters(inspect_parameters(path), planted, incident),
        ]
        code = cli.main(argv)
        codes[name] = code
    # every source the planted environment offers was read: each run ends ok
    assert codes == {"database": 0, "outage": 0, "performance": 0, "triage": 0}
    incident_dir = tmp_path / incident
    manifest = load_manifest(incident_dir)
    assert sorted(r["scenario"] for r in manifest["runs"]) == sorted(found)
    assert verify(incident_dir).ok
    files = archived_files(incident_dir)
    assert len(files) == 2 * len(found) + 1
    assert find_canaries(files, CANARIES) == []
    # the canaries went through the notebooks and came out masked (the test would prove nothing
    # otherwise)
    text = "\n".join(f.read_text(encoding="utf-8") for f in files if f.suffix == ".ipynb")
    if "outage" in found:
        assert "Bearer ***" in text and "password=***" in text
    if "database" in found:
        db = next(r for r in manifest["runs"] if r["scenario"] == "database")
        sources = read_scraps(incident_dir / db["files"][0]["path"]).get("sources")
        assert "WHERE card = ?" in text, (
            f"the staged query is not in the database evidence; sources: {sources}"
        )
    for run in manifest["runs"]:
        assert DSN_PASSWORD not in json.dumps(run["parameters"])
        assert "password=***" in run["parameters"]["dsn"]
    out = capsys.readouterr().out
    print(
        f"canary test: {len(CANARIES)} canaries x {len(files)} archived files = "
        f"{len(CANARIES) * len(files)} "
        f"checks, 0 found ({', '.join(sorted(found))})",
        file=sys.stderr,
    )
    assert f"incident: {incident}" in out
