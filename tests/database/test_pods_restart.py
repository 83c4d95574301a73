"""The database pods section and the restart mitigation against the simulated cluster (`database`
scenario)."""

from __future__ import annotations

import pytest

from incidentlib.errors import KubeAPIError
from incidentlib.kube import actions, reads
from incidentlib.kube import client as kube
from incidentlib.notebook.run import Run
from incidentlib.pg import pods as pg_pods
from incidentlib.scenarios import database as pgdiag
from incidentlib.scenarios.common import connect_cluster

pytestmark = pytest.mark.sim


@pytest.fixture
def cluster(sim_cluster):
    sim = sim_cluster("database")
    c = kube.connect(kubeconfig=str(sim.kubeconfig))
    yield c
    c.close()


def _template_annotations(cluster) -> dict:
    dep = cluster.get_json("/apis/apps/v1/namespaces/production/deployments/postgres")
    return dep["spec"]["template"]["metadata"].get("annotations") or {}


def test_database_pods_with_restarts_and_their_previous_logs(cluster):
    items = reads.fetch_pods(cluster, "production", selector="app=postgres")
    pods = pg_pods.db_pods_frame(items)
    assert len(pods) == 1 and pods.loc[0, "name"].startswith("postgres-")
    assert (
        pods.loc[0, "restarts"] >= 4
        and pods.loc[0, "last_termination_reason"] == "Error"
        and pods.loc[0, "exit_code"] == 1
    )
    logs = pg_pods.fetch_db_logs(cluster, items, tail=20)
    previous = logs[logs["previous"]]["line"].tolist()
    assert previous[-1] == "LOG:  database system is shut down"
    assert (~logs["previous"]).sum() > 0
    text = pg_pods.logs_text(logs)
    assert f"--- {pods.loc[0, 'name']}/postgres (previous run)" in text
    assert reads.fetch_pods(cluster, "production", selector="app=nothing-here") == []


def test_restart_is_planned_shown_and_only_done_with_apply(cluster):
    workload = reads.fetch_workload(cluster, "production", "postgres")
    plan = actions.plan_restart(workload)
    assert (workload["kind"], workload["spec"]["replicas"]) == ("Deployment", 1)
    assert plan.summary.startswith("restart every pod of deployment/postgres (1 replica(s)")
    assert plan.command == "kubectl rollout restart deployment/postgres -n production"
    run = Run("database", quiet=True)
    shown = actions.execute(cluster, plan, apply=False, record=run.record_action)
    assert shown["status"] == "shown" and actions.RESTARTED_AT not in _template_annotations(cluster)
    done = actions.execute(
        cluster, plan, apply=True, record=run.record_action, timeout_s=30, poll_s=0.2
    )
    assert (done["status"], done["applied"]) == ("rolled out", True), done
    stamp = plan.requests[0].body["spec"]["template"]["metadata"]["annotations"][
        actions.RESTARTED_AT
    ]
    assert _template_annotations(cluster)[actions.RESTARTED_AT] == stamp
    assert [a["applied"] for a in run.actions] == [False, True]


def test_a_missing_workload_says_which_parameter_to_set(cluster):
    with pytest.raises(
        KubeAPIError,
        match="no Deployment or StatefulSet 'pg-main' in namespace 'production'.*set the "
        "`db_deployment` parameter",
    ):
        reads.fetch_workload(cluster, "production", "pg-main")


def test_no_cluster_at_all_is_skipped_and_a_bad_kubeconfig_is_a_failure(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    run = Run("database", quiet=True)
    assert connect_cluster(run, pgdiag.Params.check({}), optional=True) is None
    assert (run.sources[-1].status, run.sources[-1].error) == (
        "skipped",
        "no cluster configured (no kubeconfig parameter, no $KUBECONFIG, no ~/.kube/config)",
    )
    assert (
        connect_cluster(
            run, pgdiag.Params.check({"kubeconfig": str(tmp_path / "missing.yaml")}), optional=True
        )
        is None
    )
    assert (
        run.sources[-1].status == "failed"
        and "cannot be read: no such file" in run.sources[-1].error
    )


def test_an_unknown_context_names_the_ones_that_exist(sim_cluster):
    sim = sim_cluster("database")
    run = Run("database", quiet=True)
    assert (
        connect_cluster(
            run,
            pgdiag.Params.check({"kubeconfig": str(sim.kubeconfig), "context": "prod-eu"}),
            optional=True,
        )
        is None
    )
    assert (
        "context 'prod-eu' is not in kubeconfig" in run.sources[-1].error
        and "sim" in run.sources[-1].error
    )
