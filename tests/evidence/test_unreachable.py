"""Every scenario notebook with the cluster and the database both unreachable: complete evidence
that says so."""

from __future__ import annotations

import pytest

from incidentlib import cli
from incidentlib.cli.demo import NOT_SCENARIOS
from incidentlib.evidence.manifest import load_manifest, read_scraps, verify
from incidentlib.evidence.parameters import inspect_parameters, scenarios

from .conftest import SCENARIO_NOTEBOOKS

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

DOWN_KUBECONFIG = """apiVersion: v1
kind: Config
current-context: down
clusters: [{name: down, cluster: {server: 'https://127.0.0.1:9'}}]
contexts: [{name: down, context: {cluster: down, user: u}}]
users: [{name: u, user: {token: not-a-secret}}]
"""
DOWN_DSN = "host=127.0.0.1 port=9 dbname=app user=sre connect_timeout=2"


def test_cluster_and_database_down_still_leave_complete_evidence(tmp_path, capsys):
    found = {n: p for n, p in scenarios(SCENARIO_NOTEBOOKS).items() if n not in NOT_SCENARIOS}
    if not found:
        pytest.skip("no scenario notebooks in notebooks/ yet")
    kubeconfig = tmp_path / "down.yaml"
    kubeconfig.write_text(DOWN_KUBECONFIG)
    outputs = tmp_path / "out"
    for name, path in found.items():
        declared = inspect_parameters(path)
        params = ["-p", "kubeconfig", str(kubeconfig)] + (
            ["-p", "dsn", DOWN_DSN] if "dsn" in declared else []
        )
        code = cli.main(
            [
                "run",
                name,
                "--notebooks",
                str(SCENARIO_NOTEBOOKS),
                "--outputs",
                str(outputs),
                "--incident",
                "INC-down",
                "--cell-timeout",
                "120",
                *params,
            ]
        )
        assert code == 0, f"{name}: {capsys.readouterr().err[-3000:]}"
    incident_dir = outputs / "INC-down"
    runs = {r["scenario"]: r for r in load_manifest(incident_dir)["runs"]}
    assert sorted(runs) == sorted(found)
    assert verify(incident_dir).ok
    for name, run in runs.items():
        assert run["status"] == "ok" and [f["path"][-5:] for f in run["files"]] == [
            "ipynb",
            ".html",
        ]
        assert (
            run["kubernetes"]["context"] == "down" and run["kubernetes"]["server_version"] is None
        )
        scraps = read_scraps(incident_dir / run["files"][0]["path"])
        assert (
            scraps["severity"]["level"] in ("SEV1", "SEV2", "SEV3", "SEV4")
            and scraps["severity"]["reason"]
        )
        failed = [s for s in scraps["sources"] if s["status"] == "failed"]
        kube_failed = [
            s
            for s in failed
            if "cannot reach the Kubernetes API at https://127.0.0.1:9" in (s["error"] or "")
        ]
        assert kube_failed, (
            f"{name}: no source says the cluster is unreachable: {scraps['sources']}"
        )
        html = (incident_dir / run["files"][1]["path"]).read_text()
        assert f"✗ {kube_failed[0]['source']}: cannot reach the Kubernetes API" in html
        if name in ("database", "triage"):
            assert run["postgres"]["server_version"] is None
            assert any("cannot connect to PostgreSQL" in (s["error"] or "") for s in failed), name
            assert "cannot connect to PostgreSQL at host=127.0.0.1 port=9" in html
