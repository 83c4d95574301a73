"""The outage notebook's steps on fixtures (pure): parameter checks, findings and severity, the plan
chosen."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.kube import frames as cluster
from incidentlib.notebook.run import Run
from incidentlib.scenarios import outage

from .api_payloads import DEPLOYMENT, EVENTS, NODES, NOW, PODS, REPLICASETS, pending_pod


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"namespace": "Prod_NS"}, "invalid namespace 'Prod_NS'"),
        ({"app_deployment": "Back End"}, "invalid app_deployment 'Back End'"),
        ({"since": "soon"}, "since 'soon' is not a duration"),
        ({"replicas": -2}, "invalid replicas -2"),
        ({"memory_limit": "lots"}, "invalid memory_limit 'lots'"),
        ({"to_revision": 0}, "invalid to_revision 0"),
        (
            {"mitigation": "rollback"},
            "invalid mitigation 'rollback': one of auto, undo, scale, restart, memory, none",
        ),
        ({"apply": "yes"}, "invalid apply 'yes'"),
        ({"rollout_timeout_s": 0}, "invalid rollout_timeout_s 0"),
        ({"health_url": "localhost/health"}, "invalid health_url 'localhost/health'"),
    ],
)
def test_validate_refuses_bad_parameters(params: dict, message: str) -> None:
    base = {"namespace": "production", "app_deployment": "backend", "since": "30m"}
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        outage.Params.check({**base, **params})


def test_validate_keeps_secrets_out_of_params() -> None:
    cfg = outage.Params.check(
        dict(
            namespace="production",
            app_deployment="backend",
            since="2h",
            to_revision="2",
            health_url="https://user:s3cr3t-pw@api.example.com/health",
            dsn="postgresql://sre:db-pw-77@db/app",
        )
    )
    assert cfg.window == timedelta(hours=2) and cfg.to_revision == 2 and cfg.since == "2h"
    assert "s3cr3t-pw" not in str(cfg.recorded()) and "db-pw-77" not in str(cfg.recorded())


def _evidence(pods: list) -> outage.Facts:
    ev = outage.Facts(
        now=NOW,
        deployment=DEPLOYMENT,
        replicasets=REPLICASETS,
        read={"kubernetes: pods in production", "kubernetes: pods (all namespaces)"},
    )
    ev.pods = cluster.pods_frame(pods, now=NOW, replicasets=REPLICASETS)
    ev.unhealthy = cluster.unhealthy_pods(ev.pods)
    ev.nodes = cluster.nodes_frame(NODES, pods, now=NOW)
    ev.events = cluster.events_frame(EVENTS, since=timedelta(minutes=30), now=NOW)
    ev.pending = cluster.pending_frame(pods, [])
    ev.rollouts = cluster.rollouts_frame(DEPLOYMENT, REPLICASETS)
    ev.correlation = cluster.correlate(
        ev.rollouts, ev.pods, deployment="backend", events=ev.events, now=NOW
    )
    return ev


def test_assess_bad_rollout_is_sev1_with_rollback() -> None:
    cfg = outage.Params.check(dict(namespace="production", app_deployment="backend", since="30m"))
    run = Run("outage", quiet=True)
    ev = _evidence(PODS + [pending_pod("big", "0/3 nodes are available: 3 Insufficient memory.")])
    sev = outage.assess(ev, run, cfg)
    assert (sev.level, sev.rule) == ("SEV1", "outage")
    assert "deployment/backend has no ready pods (0/3 pods ready)" in sev.reason
    titles = {f["title"]: f for f in run.findings}
    assert titles["revision 3 of deployment/backend is failing"]["next_step"].startswith(
        "roll back: `kubectl rollout undo deployment/backend -n production --to-revision=2`"
    )
    assert "scheduler: insufficient memory" in titles["1 pod(s) Pending"]["detail"]
    assert {"node node-2 MemoryPressure", "node node-3 NotReady"} <= set(titles)
    assert run.figures["pods_down"] == 3
    plan, why = outage.plan_mitigation(ev, cfg)
    assert plan.action == "undo" and "revision 3 fails" in why


def test_assess_healthy_is_sev4_and_no_mitigation() -> None:
    cfg = outage.Params.check(dict(namespace="production", app_deployment="frontend", since="30m"))
    run = Run("outage", quiet=True)
    ev = _evidence([p for p in PODS if p["metadata"]["name"].startswith("frontend")])
    ev.deployment, ev.rollouts, ev.correlation, ev.nodes = (
        None,
        ev.rollouts.iloc[0:0],
        None,
        ev.nodes.iloc[0:1],
    )
    sev = outage.assess(ev, run, cfg)
    assert sev.level == "SEV4" and run.findings == []
    assert outage.plan_mitigation(ev, cfg) == (None, "no mitigation is suggested by the findings")
    assert outage.unhealthy_note(ev).startswith("every pod in every namespace is Running")
    ev.read = set()
    assert (
        outage.plan_mitigation(ev, cfg)[1]
        == "the cluster could not be read, so no mitigation can be chosen"
    )


def test_show_failures_prints_the_kubelets_image_pull_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import copy

    pod = copy.deepcopy(PODS[3])
    pod["metadata"]["name"] = "frontend-fff000-b"
    pod["status"]["containerStatuses"][0].update(
        ready=False,
        state={
            "waiting": {
                "reason": "ImagePullBackOff",
                "message": 'Back-off pulling image "registry.example.com/frontend:9.9": not found',
            }
        },
    )
    ev = _evidence(PODS + [pod])
    ev.details = [cluster.pod_details(pod, [], now=NOW)]
    import pandas as pd

    with pd.option_context(
        "display.max_colwidth", None, "display.width", 10_000, "display.max_columns", None
    ):
        outage.show_failures(ev)
    out = capsys.readouterr().out
    assert "image pull failures (the kubelet's message)" in out
    assert 'Back-off pulling image "registry.example.com/frontend:9.9": not found' in out
    assert "Waiting, reason=ImagePullBackOff" in out
