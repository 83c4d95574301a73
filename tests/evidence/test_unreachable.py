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
    assert sorted(found) == ["database", "outage", "performance", "triage"]
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
        printed = capsys.readouterr()
        assert code == 3, f"{name}: {printed.err[-3000:]}"  # ran to the end, could not read
        assert f"⚠ {name}: incomplete" in printed.out
        assert "✗ not read: kubernetes: connect: cannot reach the Kubernetes API" in printed.out
    incident_dir = outputs / "INC-down"
    runs = {r["scenario"]: r for r in load_manifest(incident_dir)["runs"]}
    assert sorted(runs) == sorted(found)
    assert verify(incident_dir).ok
    for name, run in runs.items():
        assert run["status"] == "incomplete" and [f["path"][-5:] for f in run["files"]] == [
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


@pytest.mark.parametrize("kubeconfig", ["missing", "garbage"])
def test_a_missing_or_garbage_kubeconfig_is_never_a_plain_ok(tmp_path, capsys, kubeconfig):
    path = tmp_path / "kubeconfig"
    if kubeconfig == "garbage":
        path.write_text("this: [is not, a kubeconfig")
    code = cli.main(
        [
            "run",
            "outage",
            "--notebooks",
            str(SCENARIO_NOTEBOOKS),
            "--outputs",
            str(tmp_path / "out"),
            "--incident",
            "INC-nokube",
            "-p",
            "kubeconfig",
            str(path),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 3 and "⚠ outage: incomplete" in printed
    reason = "cannot be read: no such file" if kubeconfig == "missing" else "cannot be read"
    assert f"✗ not read: kubernetes: connect: kubeconfig {str(path)!r} {reason}" in printed
    [run] = load_manifest(tmp_path / "out" / "INC-nokube")["runs"]
    assert run["status"] == "incomplete" and run["error"].startswith(
        "not read: kubernetes: connect"
    )
