"""Thin fetches and mitigations against the simulated cluster (real REST API over a socket)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from incidentlib.errors import KubeAPIError, SourceUnavailable
from incidentlib.kube import actions as ka
from incidentlib.kube import client as kube
from incidentlib.kube import frames as cl
from incidentlib.kube import owners, reads
from incidentlib.notebook.run import Run

pytestmark = pytest.mark.sim


@pytest.fixture
def bad(sim_cluster: Any) -> Iterator[tuple[Any, Any]]:
    sim = sim_cluster("bad-rollout")
    c = kube.connect(kubeconfig=str(sim.kubeconfig))
    yield sim, c
    c.close()


def test_fetches_and_their_errors(bad: tuple[Any, Any]) -> None:
    sim, c = bad
    dep = reads.fetch_deployment(c, "production", "backend")
    rs = reads.fetch_replicasets(c, "production", selector=owners.deployment_selector(dep))
    assert sorted(cl.revision_of(r) for r in cl.owned_replicasets(dep, rs)) == [1, 2, 3]
    pod = next(
        p for p in reads.fetch_pods(c, "production") if p["metadata"]["name"].startswith("backend-")
    )
    prev = reads.fetch_log(c, "production", pod["metadata"]["name"], "backend", previous=True)
    assert prev.rstrip().endswith(
        "FATAL backend exiting: ConfigError: DATABASE_POOL_SIZE must be set"
    )
    with pytest.raises(
        KubeAPIError, match="deployment 'nope' not found in namespace 'production'"
    ) as e:
        reads.fetch_deployment(c, "production", "nope")
    assert e.value.status == 404
    with pytest.raises(
        KubeAPIError, match=r"namespace 'nope' does not exist; namespaces: .*production"
    ):
        reads.fetch_namespace(c, "nope")
    assert len(reads.fetch_pod_metrics(c, "production")) == 5


def test_metrics_api_missing_is_source_unavailable(sim_cluster: Any) -> None:
    sim = sim_cluster("healthy", metrics=False)
    c = kube.connect(kubeconfig=str(sim.kubeconfig))
    with pytest.raises(SourceUnavailable, match="metrics API"):
        reads.fetch_node_metrics(c)


def test_gather_records_each_source_and_goes_on(bad: tuple[Any, Any]) -> None:
    _, c = bad
    run = Run("outage", quiet=True)
    g = run.gather(
        {
            "nodes": lambda: reads.fetch_nodes(c),
            "missing": lambda: reads.fetch_deployment(c, "production", "nope"),
            "pods": lambda: reads.fetch_pods(c, None),
        }
    )
    assert [s.source for s in run.sources] == ["nodes", "missing", "pods"]
    assert [s.status for s in run.sources] == ["ok", "failed", "ok"]
    assert "not found" in run.sources[1].error and isinstance(g.errors["missing"], KubeAPIError)
    assert len(g.values["nodes"]) == 3 and len(g.values["pods"]) > 5


def test_mitigations_show_without_writing_then_apply(bad: tuple[Any, Any]) -> None:
    sim, c = bad
    dep = reads.fetch_deployment(c, "production", "frontend")
    run = Run("outage", quiet=True)
    sim.clear_requests()
    for plan in (ka.plan_scale(dep, 3), ka.plan_restart(dep), ka.plan_memory_limit(dep, "1Gi")):
        out = ka.execute(c, plan, apply=False, record=run.record_action)
        assert (out["status"], out["applied"]) == ("shown", False)
    assert {r["method"] for r in sim.requests()} <= {"GET"}
    out = ka.execute(
        c, ka.plan_scale(dep, 3), apply=True, record=run.record_action, timeout_s=30, poll_s=0.2
    )
    assert (out["status"], out["applied"]) == ("rolled out", True)
    assert (
        c.get_json("/apis/apps/v1/namespaces/production/deployments/frontend")["spec"]["replicas"]
        == 3
    )
    dep = reads.fetch_deployment(c, "production", "frontend")
    out = ka.execute(
        c,
        ka.plan_memory_limit(dep, "1Gi"),
        apply=True,
        record=run.record_action,
        timeout_s=30,
        poll_s=0.2,
    )
    assert out["status"] == "rolled out", out
    now = c.get_json("/apis/apps/v1/namespaces/production/deployments/frontend")
    assert (
        now["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1Gi"
    )
    writes = [
        (r["method"], r["path"], r.get("content_type"))
        for r in sim.requests()
        if r["method"] != "GET"
    ]
    assert writes == [
        (
            "PATCH",
            "/apis/apps/v1/namespaces/production/deployments/frontend/scale",
            "application/merge-patch+json",
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/production/deployments/frontend",
            "application/strategic-merge-patch+json",
        ),
    ]
    assert [a["status"] for a in run.actions] == [
        "shown",
        "shown",
        "shown",
        "rolled out",
        "rolled out",
    ]


def test_undo_to_revision_1_through_the_api(bad: tuple[Any, Any]) -> None:
    _, c = bad
    dep = reads.fetch_deployment(c, "production", "backend")
    plan = ka.plan_undo(
        dep,
        reads.fetch_replicasets(c, "production", selector=owners.deployment_selector(dep)),
        to_revision=1,
    )
    out = ka.execute(c, plan, apply=True, timeout_s=30, poll_s=0.2)
    assert out["status"] == "rolled out" and out["images"] == "registry.example.com/backend:2.2.0"
    pods = cl.pods_frame(reads.fetch_pods(c, "production"))
    backend = pods[pods["owner"] == "backend"]
    assert set(backend["status"]) == {"Running"} and len(backend) == 3


def test_log_tail_reads_the_pod_kubectl_logs_reads(bad: tuple[Any, Any]) -> None:
    sim, c = bad
    for name in ("backend", "frontend"):
        found = reads.deployment_log_tail(c, "production", name, tail=20)
        assert found is not None
        pod, text = found
        out = sim.kubectl("logs", f"deployment/{name}", "-n", "production", "--tail=20")
        assert out.returncode == 0, out.stderr
        assert f"using pod/{pod['metadata']['name']}" in out.stderr
        # the crash-looping backend prints the same 12 lines each start; the frontend's log moves
        # on between the two reads: the same tail length
        assert (
            len(text.splitlines())
            == len(out.stdout.splitlines())
            == (12 if name == "backend" else 20)
        )
        if name == "backend":
            assert text == out.stdout and text.rstrip().endswith("DATABASE_POOL_SIZE must be set")
    assert reads.deployment_log_tail(c, "production", "nope") is None  # 404: nothing to read


def test_history_and_log_tails_come_with_the_first_reads(bad: tuple[Any, Any]) -> None:
    """The reads that need the deployment (its ReplicaSets, the log tails of `kubectl logs
    deployment/...`) are in the first round's answer: the tables are built without another round
    trip, except for the failing pods' previous logs, which need the namespace's pods."""
    from incidentlib.scenarios import outage
    from incidentlib.scenarios.outage_reading import first_round

    sim, c = bad
    cfg = outage.Params.check({"kubeconfig": str(sim.kubeconfig), "app_deployment": "backend"})
    run = Run("outage", quiet=True)
    first = first_round(c, run, cfg)
    assert {
        "kubernetes: replicasets of backend",
        "kubernetes: logs deployment/backend",
        "kubernetes: logs deployment/frontend",
    } <= set(first.values)
    sim.clear_requests()
    ev = outage.collect(c, run, cfg, first=first)
    after = sim.requests()
    assert after and all(
        r["path"].endswith("/log") and "previous=true" in r["query"] for r in after
    ), after
    assert sorted(ev.rollouts["revision"]) == [1, 2, 3]
    assert set(ev.logs) == {"backend", "frontend"}
    for name, df in ev.logs.items():
        picked = sim.kubectl("logs", f"deployment/{name}", "-n", "production", "--tail=1")
        assert f"using pod/{df['pod'].iloc[0]}" in picked.stderr
    assert ev.log_notes == []


def test_the_tables_come_before_the_charts_values_and_the_helper_draws_them(
    bad: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`result()` hands over the evidence as soon as the tables are built; the charts' values go to
    the helper from the reading thread afterwards, and `show_charts` waits for that rather than
    drawing them itself. A chart whose values cannot be made fails in the charts' cell."""
    import threading

    from incidentlib.notebook.chartworker import ChartWorker
    from incidentlib.scenarios import outage

    sim, _ = bad
    cfg = outage.Params.check({"kubeconfig": str(sim.kubeconfig), "app_deployment": "backend"})
    sent = threading.Event()
    real_specs = outage.chart_specs

    def slow_specs(ev: Any, cfg: Any) -> Any:
        assert sent.wait(30)  # held until the test has seen result() return
        return real_specs(ev, cfg)

    monkeypatch.setattr(outage, "chart_specs", slow_specs)
    reading = outage.start_reading(Run("outage", quiet=True), cfg, charts=ChartWorker.start())
    _, ev = reading.result(timeout=60)
    assert ev.charts is None and ev.charting is not None and ev.charting.is_alive()
    assert "backend-" in " ".join(ev.pods["name"])  # the tables are there already
    sent.set()
    outage.show_charts(ev, cfg)
    assert ev.charts is not None and ev.charts.drawn_here == 0  # the helper drew both
    assert [p[:4] for p in ev.charts.pngs()] == [b"\x89PNG"] * 2

    def broken(ev: Any, cfg: Any) -> Any:
        raise ValueError("no timeline today")

    monkeypatch.setattr(outage, "chart_specs", broken)
    reading = outage.start_reading(Run("outage", quiet=True), cfg, charts=ChartWorker.start())
    _, ev = reading.result(timeout=60)
    with pytest.raises(ValueError, match="no timeline today"):
        outage.show_charts(ev, cfg)
    assert ev.charts is None
