"""The database pods section and the restart mitigation against the simulated cluster (`database` scenario)."""

from __future__ import annotations

import pytest

from incidentlib import kube, pg_actions, pg_pods
from incidentlib.errors import KubeAPIError
from incidentlib.runbook import Run

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
    items = pg_pods.fetch_db_pods(cluster, namespace="production", selector="app=postgres")
    pods = pg_pods.db_pods_frame(items)
    assert len(pods) == 1 and pods.loc[0, "name"].startswith("postgres-")
    assert pods.loc[0, "restarts"] >= 4 and pods.loc[0, "last_termination_reason"] == "Error" and pods.loc[0, "exit_code"] == 1
    logs = pg_pods.fetch_db_logs(cluster, items, tail=20)
    previous = logs[logs["previous"]]["line"].tolist()
    assert previous[-1] == "LOG:  database system is shut down"
    assert (~logs["previous"]).sum() > 0
    text = pg_pods.logs_text(logs)
    assert f"--- {pods.loc[0, 'name']}/postgres (previous run)" in text
    assert pg_pods.fetch_db_pods(cluster, namespace="production", selector="app=nothing-here") == []


def test_restart_is_planned_shown_and_only_done_with_apply(cluster):
    plan = pg_actions.plan_restart(cluster, namespace="production", name="postgres")
    assert (plan["kind"], plan["replicas"]) == ("Deployment", 1)
    assert plan["describe"].startswith("mitigation restart: would restart deployment production/postgres (1 replica(s)")
    run = Run("database", quiet=True)
    shown = pg_actions.apply_restart(cluster, plan, apply=False, run=run)
    assert shown["outcome"] == "not done (apply=False)" and pg_actions.RESTART_ANNOTATION not in _template_annotations(cluster)
    done = pg_actions.apply_restart(cluster, plan, apply=True, run=run)
    assert done["outcome"].startswith("restarted: deployment production/postgres patched")
    assert _template_annotations(cluster)[pg_actions.RESTART_ANNOTATION] == done["at"]
    assert [a["applied"] for a in run.actions] == [False, True]


def test_a_missing_workload_says_which_parameter_to_set(cluster):
    with pytest.raises(KubeAPIError, match="no Deployment or StatefulSet 'pg-main' in namespace 'production'.*set the `deployment` parameter"):
        pg_actions.plan_restart(cluster, namespace="production", name="pg-main")


def test_no_cluster_at_all_is_skipped_and_a_bad_kubeconfig_is_a_failure(tmp_path, monkeypatch):
    from incidentlib import pgdiag

    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    run = Run("database", quiet=True)
    assert pgdiag.connect_cluster(run, kubeconfig=None, context=None) is None
    assert (run.sources[-1].status, run.sources[-1].error) == (
        "skipped", "no cluster configured (no kubeconfig parameter, no $KUBECONFIG, no ~/.kube/config)")
    assert pgdiag.connect_cluster(run, kubeconfig=str(tmp_path / "missing.yaml"), context=None) is None
    assert run.sources[-1].status == "failed" and "cannot be read: no such file" in run.sources[-1].error


def test_an_unknown_context_names_the_ones_that_exist(sim_cluster):
    from incidentlib import pgdiag

    sim = sim_cluster("database")
    run = Run("database", quiet=True)
    assert pgdiag.connect_cluster(run, kubeconfig=str(sim.kubeconfig), context="prod-eu") is None
    assert "context 'prod-eu' is not in kubeconfig" in run.sources[-1].error and "sim" in run.sources[-1].error
