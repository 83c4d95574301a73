"""The database pods' CPU and memory, and the Kubernetes mitigations of the database runbook
(resources, restart_app, restart), against the simulated cluster (`database` scenario): planned,
shown, done with apply=True, waited for, and the database restart verified against the real
PostgreSQL."""

from __future__ import annotations

import json
import threading

import pytest

from incidentlib.kube import actions, reads
from incidentlib.kube import client as kube
from incidentlib.notebook.run import Run
from incidentlib.scenarios import database

pytestmark = pytest.mark.sim

DEPLOYMENTS = "/apis/apps/v1/namespaces/production/deployments"


@pytest.fixture
def sim(sim_cluster):
    return sim_cluster("database")


def _facts(sim, cfg, run):
    db = database.Facts(target="test")
    database.database_pods(run, cfg, db)
    return db


def _cfg(sim, **given):
    return database.Params.check({"kubeconfig": str(sim.kubeconfig), **given})


def test_the_database_pods_cpu_and_memory_against_their_limits(sim, capsys):
    cfg = _cfg(sim)
    run = Run("database", quiet=True)
    db = _facts(sim, cfg, run)
    database.show_db_resources(run, cfg, db)
    [row] = db.resources.to_dict("records")
    assert row["pod"].startswith("postgres-") and row["container"] == "postgres"
    assert (row["cpu_millicores"], row["cpu_request_millicores"]) == (850.0, 1000.0)
    assert row["memory_bytes"] == 1800 * 2**20 and row["memory_limit_bytes"] == 4 * 2**30
    assert (
        row["memory_pct_of_limit"] == 43.9
        and row["cpu_limit_millicores"] != row["cpu_limit_millicores"]
    )
    assert database.pods.resource_findings(db.resources) == []
    logs = [s for s in run.sources if s.source == "kubernetes: database logs"]
    assert logs and logs[0].ok
    sim.set_metrics("production", row["pod"], "postgres", memory_bytes=3900 * 2**20)
    run2 = Run("database", quiet=True)
    database.show_db_resources(run2, cfg, db)
    [f] = database.pods.resource_findings(db.resources)
    assert f["title"] == f"database container {row['pod']}/postgres at 95% of its memory limit"
    assert "mitigation='resources'" in f["next_step"]


def test_the_connectivity_check_leaves_reads_on_the_same_cluster_plain(sim):
    """The check runs in a thread of its own while another reads the cluster: an exec must not
    turn the other thread's API calls into WebSocket requests (kubernetes.stream swaps the client's
    call_api while an exec starts)."""
    cfg = _cfg(sim)
    cluster = kube.connect(kubeconfig=str(sim.kubeconfig))
    try:
        db_pods = reads.fetch_pods(cluster, "production", selector=cfg.db_selector)
        out: dict = {}

        def check() -> None:
            out["frame"], out["notes"] = database.check_connectivity(cluster, cfg, db_pods)

        t = threading.Thread(target=check)
        t.start()
        read = 0
        while t.is_alive() or not read:
            again = reads.fetch_pods(cluster, "production", selector=cfg.db_selector)
            assert [p["metadata"]["name"] for p in again] == [db_pods[0]["metadata"]["name"]]
            read += 1
        t.join()
    finally:
        cluster.close()
    frame = out["frame"]
    assert len(frame) == 3 and frame["ok"].all(), (frame, out["notes"])
    assert set(frame["target"]) == {"postgres.production.svc:5432"}


def test_resources_is_shown_then_applied_and_waited_for(sim):
    run = Run("database", quiet=True)
    shown_cfg = _cfg(sim, mitigation="resources", db_memory="6Gi", db_cpu="2")
    db = _facts(sim, shown_cfg, run)
    shown = database.mitigate(run, shown_cfg, db)
    assert (shown["action"], shown["status"], shown["applied"]) == ("resources", "shown", False)
    c = kube.connect(kubeconfig=str(sim.kubeconfig))
    try:
        before = c.get_json(f"{DEPLOYMENTS}/postgres")["spec"]["template"]["spec"]["containers"]
        assert before[0]["resources"]["limits"] == {"memory": "4Gi"}
        cfg = _cfg(sim, mitigation="resources", db_memory="6Gi", db_cpu="2", apply=True)
        done = database.mitigate(run, cfg, db)
        assert (done["status"], done["applied"]) == ("rolled out", True), done
        after = c.get_json(f"{DEPLOYMENTS}/postgres")["spec"]["template"]["spec"]["containers"]
    finally:
        c.close()
    assert after[0]["resources"] == {
        "requests": {"cpu": "2", "memory": "6Gi"},
        "limits": {"memory": "6Gi"},  # no CPU limit before: none added
    }
    assert done["command"] == (
        "kubectl set resources deployment/postgres -n production -c postgres "
        "--limits=memory=6Gi --requests=cpu=2,memory=6Gi"
    )
    assert [a["status"] for a in run.actions] == ["shown", "rolled out"]


def test_restart_app_restarts_the_application_not_the_database(sim):
    run = Run("database", quiet=True)
    cfg = _cfg(sim, mitigation="restart_app", apply=True)
    db = _facts(sim, cfg, run)
    done = database.mitigate(run, cfg, db)
    assert (done["action"], done["target"], done["status"]) == (
        "restart_app",
        "deployment/backend in production",
        "rolled out",
    ), done
    got = json.loads(sim.kubectl("get", "deploy", "-n", "production", "-o", "json").stdout)
    stamped = {
        d["metadata"]["name"]
        for d in got["items"]
        if actions.RESTARTED_AT in (d["spec"]["template"]["metadata"].get("annotations") or {})
    }
    assert stamped == {"backend"}


@pytest.mark.pg
def test_the_database_restart_is_waited_for_and_verified(sim, pg_dsn):
    run = Run("database", quiet=True)
    cfg = _cfg(sim, mitigation="restart", apply=True, dsn=pg_dsn)
    db = _facts(sim, cfg, run)
    done = database.mitigate(run, cfg, db)
    assert (done["target"], done["status"], done["applied"]) == (
        "deployment/postgres in production",
        "rolled out",
        True,
    ), done
    assert done["verified"].startswith("1 of 1 pods from the new template, 1 ready; ")
    assert (
        done["verified"].endswith(")") and "the database answers (PostgreSQL " in done["verified"]
    )
    assert run.actions[-1]["verified"] == done["verified"]
