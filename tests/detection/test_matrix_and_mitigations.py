"""The whole matrix (pure): declared SEV1 conditions, an expired certificate, a paging alert; the
alerts table and where alerts point; the performance parameters checked together; scale_down
honouring `replicas`; the memory-limit patch on the right container (performance and outage)."""

from __future__ import annotations

import pandas as pd
import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.kube import actions, frames
from incidentlib.scenarios import alerts as firing
from incidentlib.scenarios import outage, performance
from incidentlib.service import alertmanager
from incidentlib.service import prometheus as prom
from incidentlib.severity import DECLARED, assess, declared, with_declared


def test_each_declared_condition_is_sev1_with_its_reason() -> None:
    assert declared() is None
    for flag, words in DECLARED.items():
        got = assess(**{flag: True})
        assert got.level == "SEV1" and got.reason == f"{words} (rule: {words}, SEV1)"
        decl = declared(**{flag: True})
        assert decl is not None and decl.reason.startswith(f"declared: {words} ({flag}=True)")
    outage_sev = assess(health_ok=False)
    combined = with_declared(outage_sev, {"security_incident": True, "data_loss": "yes"})
    assert combined.reason.startswith("declared: a security breach (security_incident=True) (")
    assert "data_loss=" not in combined.reason  # only True counts


def test_an_expired_certificate_and_a_paging_alert_in_the_matrix() -> None:
    got = assess(
        health_ok=False,
        certificate_expired=True,
        details={"certificate_expired": "the certificate expired 3.0 days ago"},
    )
    assert (got.level, got.rule) == ("SEV1", "certificate-expired")  # the cause named first
    assert got.reason.startswith("the certificate expired 3.0 days ago (rule: an expired")
    alert = assess(critical_alert=True, error_rate=0.02, details={"critical_alert": "X fires"})
    assert (alert.level, alert.rule) == ("SEV2", "alert")
    assert alert.reason.startswith("X fires (rule: a firing critical or page alert is a SEV1/SEV2")


AM_PAYLOAD = [
    {
        "labels": {"alertname": "PostgresDown", "severity": "page", "namespace": "data"},
        "annotations": {"description": "primary does not answer"},
        "startsAt": "2026-11-27T09:01:00Z",
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
    },
    {
        "labels": {"alertname": "KubePodCrashLooping", "severity": "warning", "pod": "api-1"},
        "annotations": {"summary": "api-1 restarts"},
        "startsAt": "2026-11-27T09:02:00Z",
        "status": {"state": "suppressed", "silencedBy": [], "inhibitedBy": ["abc"]},
    },
    {
        "labels": {
            "alertname": "HighLatency",
            "severity": "critical",
            "namespace": "production",
            "app": "checkout",
        },
        "annotations": {"summary": "p99 2.3 s"},
        "startsAt": "2026-11-27T09:03:00Z",
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
    },
]


def test_alertmanager_alerts_and_where_they_point() -> None:
    df = alertmanager.alerts_frame(AM_PAYLOAD)
    assert list(df.columns) == prom.ALERT_COLUMNS
    assert df[["alertname", "state", "silenced", "service", "summary"]].values.tolist() == [
        ["HighLatency", "firing", False, "checkout", "p99 2.3 s"],
        ["PostgresDown", "firing", False, "", "primary does not answer"],
        ["KubePodCrashLooping", "inhibited", False, "", "api-1 restarts"],
    ]
    assert str(df["active_at"].iloc[1]) == "2026-11-27 09:01:00+00:00"
    nxt = firing.alert_notebooks(df, namespace="production", deployment="backend")
    assert nxt[["notebook", "namespace", "deployment"]].values.tolist() == [
        ["performance", "production", "checkout"],
        ["database", "data", ""],  # the database notebook's own deployment default
    ]
    assert nxt["reason"].iloc[1] == (
        'alert PostgresDown is firing, severity=page since 09:01 UTC (alertmanager): "primary '
        'does not answer"'
    )
    assert firing.notebook_for({"alertname": "KubeDeploymentReplicasMismatch"}) == "outage"
    rows = firing.findings(nxt, df, command=lambda r: f"runbook run {r['notebook']}")
    assert [(f["severity"], f["title"], f["next_step"]) for f in rows] == [
        (
            "SEV2",
            "alert HighLatency firing for checkout in production",
            "run the performance notebook: runbook run performance",
        ),
        (
            "SEV2",
            "alert PostgresDown firing for data",
            "run the database notebook: runbook run database",
        ),
    ]
    # the same alert from Prometheus and Alertmanager is listed once, as Alertmanager sees it
    from_prom = prom.alerts_frame(
        {
            "alerts": [
                {
                    "labels": AM_PAYLOAD[1]["labels"],
                    "annotations": {},
                    "state": "firing",
                    "activeAt": "2026-11-27T09:02:00Z",
                }
            ]
        }
    )
    merged = alertmanager.merge(from_prom, df)
    assert len(merged) == 3 and set(merged["source"]) == {"alertmanager"}
    assert firing.paging(merged)["alertname"].tolist() == ["HighLatency", "PostgresDown"]


def test_performance_parameters_are_checked_together() -> None:
    with pytest.raises(InvalidParameter, match="both scale_out and scale_down"):
        performance.Params.check({"mitigations": "scale_out,scale_down"})
    with pytest.raises(InvalidParameter, match="mitigations names memory but memory_limit is"):
        performance.Params.check({"mitigations": "memory"})
    with pytest.raises(InvalidParameter, match="invalid container 'Side_Car'"):
        performance.Params.check({"container": "Side_Car"})
    with pytest.raises(InvalidParameter, match="invalid leak_horizon_h 0"):
        performance.Params.check({"leak_horizon_h": 0})
    cfg = performance.Params.check({"mitigations": "memory,restart", "memory_limit": "1Gi"})
    assert cfg.selected == {"memory", "restart"}


def deployment(replicas: int = 4) -> dict:
    return {
        "kind": "Deployment",
        "metadata": {"namespace": "production", "name": "backend"},
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "resources": {"limits": {"memory": "512Mi"}}},
                        {"name": "log-shipper", "resources": {"limits": {"memory": "128Mi"}}},
                    ]
                }
            },
        },
    }


def test_scale_down_honours_replicas() -> None:
    to_one = actions.plan_scale_down(deployment(4), 1)
    assert to_one.command == "kubectl scale deployment/backend -n production --replicas=1"
    assert to_one.requests[0].body == {"spec": {"replicas": 1}}
    assert actions.plan_scale_down(deployment(4)).command.endswith("--replicas=2")  # half
    with pytest.raises(InvalidParameter, match="scale down to 5 replicas is more than the current"):
        actions.plan_scale_down(deployment(4), 5)


def test_the_memory_patch_goes_to_the_leaking_container_or_the_one_named() -> None:
    leaks = pd.DataFrame(
        [["production", "backend-5c9d-abcde", "log-shipper", 3.2]],
        columns=["namespace", "pod", "container", "hours_to_limit"],
    )
    facts = performance.Facts(leaks=leaks)
    cfg = performance.Params.check({"memory_limit": "256Mi"})
    assert performance.memory_container(cfg, facts, deployment()) == "log-shipper"
    named = performance.Params.check({"memory_limit": "1Gi", "container": "app"})
    assert performance.memory_container(named, facts, deployment()) == "app"
    assert performance.memory_container(cfg, performance.Facts(), deployment()) is None
    plan = actions.plan_memory_limit(deployment(), "256Mi", container="log-shipper")
    assert plan.command.endswith("-c log-shipper --limits=memory=256Mi")
    # the outage notebook's memory mitigation takes `container` too (it used to patch the first)
    ocfg = outage.Params.check(
        {"mitigation": "memory", "memory_limit": "1Gi", "container": "log-shipper"}
    )
    ev = outage.Facts(
        now=pd.Timestamp("2026-11-27T09:40:00Z").to_pydatetime(),
        deployment=deployment(),
        pods=pd.DataFrame(columns=frames.POD_COLUMNS),
        read={"pods"},
    )
    oplan, why = outage.plan_mitigation(ev, ocfg)
    assert oplan is not None and oplan.summary == (
        "raise the memory limit of container log-shipper in deployment/backend from 128Mi to 1Gi"
    )
