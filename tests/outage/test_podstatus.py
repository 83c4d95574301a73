"""kubectl's READY / STATUS / RESTARTS computed from raw pod JSON (pure, nothing started)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incidentlib.kube.podstatus import human_duration, parse_time, pod_row

from .podstates import cases, pod_object

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("case", cases(NOW), ids=lambda c: c["name"])
def test_status_ready_restarts_match_kubectl(case: dict) -> None:
    row = pod_row(pod_object(case, namespace="states", now=NOW), now=NOW)
    assert (row.ready, row.status, row.restarts_text) == case["expect"]


def test_crashloop_restart_count_and_time() -> None:
    case = next(c for c in cases(NOW) if c["name"] == "st-crashloop")
    row = pod_row(pod_object(case, namespace="states", now=NOW), now=NOW)
    assert row.restarts == 7
    assert row.last_restart == NOW - timedelta(minutes=5)
    assert row.age == "60m"
    assert row.ip == "10.244.1.7" and row.node == "node-1"


def test_init_restarts_count_only_until_initialized() -> None:
    """Init containers' restarts are shown while initializing; afterwards only sidecars' are
    kept."""
    case = next(c for c in cases(NOW) if c["name"] == "st-init-crash")
    assert pod_row(pod_object(case, namespace="s", now=NOW), now=NOW).restarts == 5
    sidecar = next(c for c in cases(NOW) if c["name"] == "st-sidecar")
    assert pod_row(pod_object(sidecar, namespace="s", now=NOW), now=NOW).restarts == 2


def test_wide_columns_for_unscheduled_pod() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "a"}],
            "readinessGates": [{"conditionType": "example.com/lb"}],
        },
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "example.com/lb", "status": "True"}],
        },
    }
    row = pod_row(pod, now=NOW)
    assert (row.ip, row.node, row.nominated_node, row.readiness_gates, row.age) == (
        "<none>",
        "<none>",
        "<none>",
        "1/1",
        "<unknown>",
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (330, "5m30s"),
        (600, "10m"),
        (10799, "179m"),
        (10800, "3h"),
        (3 * 3600 + 240, "3h4m"),
        (8 * 3600 + 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 5 * 3600, "3d5h"),
        (8 * 86400, "8d"),
        (400 * 86400, "400d"),
        (731 * 86400, "2y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_like_apimachinery(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_parse_time() -> None:
    assert parse_time("2026-11-27T09:02:00Z") == datetime(2026, 11, 27, 9, 2, tzinfo=UTC)
    assert parse_time(None) is None and parse_time("garbage") is None


def _scenario_pods() -> list[dict]:
    """Every pod of every sim scenario (and a small scale cluster), as the API serves them."""
    import json

    from incidentlib.sim.cluster import Cluster
    from incidentlib.sim.scale import build_scale
    from incidentlib.sim.scenario import build, names

    pods = []
    for name in names():
        pods += [json.loads(e.raw) for e in build(name, cluster=Cluster()).store.entries("/pods")]
    scale = build_scale(Cluster(), pods=60, nodes=4, events=120, pods_per_deployment=6)
    return pods + [json.loads(e.raw) for e in scale.store.entries("/pods")]


def test_surely_running_ready_never_claims_a_pod_kubectl_shows_otherwise() -> None:
    """The shortcut the cluster-wide table takes: every pod it calls Running and ready, kubectl's
    row shows Running with every container ready; and it does call most healthy pods so (else it
    would save nothing)."""
    from incidentlib.kube.podstatus import surely_running_ready

    pods = [pod_object(c, namespace="states", now=NOW) for c in cases(NOW)] + _scenario_pods()
    claimed = 0
    for pod in pods:
        row = pod_row(pod, now=NOW)
        have, _, want = row.ready.partition("/")
        if surely_running_ready(pod):
            claimed += 1
            assert (row.status, have) == ("Running", want), pod["metadata"]["name"]
    healthy = sum(
        1
        for p in pods
        if pod_row(p, now=NOW).status == "Running"
        and len(set(pod_row(p, now=NOW).ready.split("/"))) == 1
    )
    assert claimed >= 0.8 * healthy and claimed > 20


@pytest.mark.parametrize(
    "change",
    [
        {"metadata": {"deletionTimestamp": "2026-11-27T09:00:00Z"}},  # Terminating
        {"status": {"reason": "NodeLost"}},
        {"status": {"phase": "Pending"}},
        {"status": {"containerStatuses": [{"ready": False, "state": {"running": {}}}]}},
        {"status": {"containerStatuses": [{"ready": True, "state": {"waiting": {}}}]}},
        {"status": {"containerStatuses": []}},  # statuses not reported yet
        {"status": {"conditions": [{"type": "PodScheduled", "reason": "SchedulingGated"}]}},
        {"spec": {"initContainers": [{"name": "init", "restartPolicy": "Always"}]}},  # a sidecar
    ],
)
def test_surely_running_ready_refuses_whatever_could_change_the_row(change: dict) -> None:
    from incidentlib.kube.podstatus import surely_running_ready

    pod = {
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"containers": [{"name": "a"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "a", "ready": True, "state": {"running": {}}}],
        },
    }
    assert surely_running_ready(pod)
    for part, fields in change.items():
        pod[part] = {**pod[part], **fields}
    assert not surely_running_ready(pod)
