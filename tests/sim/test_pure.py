"""Pure pieces of the simulator, tested without a server: patches, selectors, ages, the kubelet's
container timeline, the template matching that `rollout undo` relies on."""

from __future__ import annotations

import pytest

from incidentlib.sim.clock import go_duration, human_age, parse_duration
from incidentlib.sim.controllers import matching_replicaset, new_replicaset
from incidentlib.sim.kubelet import Behavior, backoff, container_view
from incidentlib.sim.patch import (
    PatchError,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from incidentlib.sim.selectors import SelectorError, parse_fields, parse_labels
from incidentlib.sim.tables import pod_cells


def test_strategic_merge_merges_containers_by_name_and_honours_directives():
    doc = {
        "spec": {
            "containers": [
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "image": "b:1"},
            ]
        }
    }
    out = strategic_merge_patch(
        doc,
        {
            "spec": {
                "containers": [
                    {"name": "b", "resources": {"limits": {"memory": "1Gi"}}},
                    {
                        "name": "a",
                        "env": [{"name": "X", "$patch": "delete"}, {"name": "Y", "value": "2"}],
                    },
                ],
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            }
        },
    )
    a, b = out["spec"]["containers"]
    assert a == {"name": "a", "image": "a:1", "env": [{"name": "Y", "value": "2"}]}
    assert b == {"name": "b", "image": "b:1", "resources": {"limits": {"memory": "1Gi"}}}
    assert doc["spec"]["containers"][1] == {"name": "b", "image": "b:1"}  # input untouched


def test_merge_patch_replaces_lists_and_null_deletes():
    doc = {"data": {"a": "1", "b": "2"}, "list": [1, 2]}
    assert merge_patch(doc, {"data": {"a": None, "c": "3"}, "list": [9]}) == {
        "data": {"b": "2", "c": "3"},
        "list": [9],
    }


def test_json_patch_operations_and_errors():
    doc = {"metadata": {"annotations": {"x": "1"}}, "spec": {"items": [1, 2]}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/spec/items/-", "value": 3},
            {"op": "replace", "path": "/metadata/annotations", "value": {"y": "2"}},
            {"op": "remove", "path": "/spec/items/0"},
            {"op": "test", "path": "/spec/items/0", "value": 2},
            {"op": "copy", "from": "/metadata/annotations/y", "path": "/metadata/z"},
        ],
    )
    assert out == {"metadata": {"annotations": {"y": "2"}, "z": "2"}, "spec": {"items": [2, 3]}}
    with pytest.raises(PatchError, match="missing path"):
        json_patch(doc, [{"op": "replace", "path": "/spec/nope/x", "value": 1}])
    with pytest.raises(PatchError, match="testing value"):
        json_patch(doc, [{"op": "test", "path": "/spec/items/0", "value": 99}])
    with pytest.raises(PatchError, match="unsupported patch type"):
        apply_patch("application/apply-patch+yaml", doc, {})


def test_label_and_field_selectors():
    labels = {"app": "backend", "tier": "api"}
    assert parse_labels("app=backend,tier")(labels)
    assert parse_labels("app in (backend, frontend),!canary")(labels)
    assert not parse_labels("app notin (backend)")(labels)
    assert parse_labels("env!=prod")(labels)
    with pytest.raises(SelectorError):
        parse_labels("app in (")
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": "Running"},
    }
    assert parse_fields("spec.nodeName=node-1,status.phase!=Succeeded")(pod)
    assert not parse_fields("metadata.name==q")(pod)
    with pytest.raises(SelectorError, match="field label not supported: spec.color"):
        parse_fields("spec.color=red")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (59, "59s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (11 * 60 + 5, "11m"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (3 * 86400 + 3600, "3d1h"),
        (30 * 86400, "30d"),
    ],
)
def test_human_age_matches_kubectl(seconds, text):
    assert human_age(seconds) == text


def test_durations():
    assert parse_duration("1h30m") == 5400 and parse_duration("3d") == 259200
    assert go_duration("2s") == 2 and go_duration("1m0s") == 60 and go_duration("500ms") == 0.5
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("ten minutes")


def test_crashloop_timeline_backs_off_and_counts_restarts():
    assert [backoff(k) for k in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    b = Behavior(mode="crashloop", run_seconds=4)
    early = container_view(b, 0.0, 3.0, pod="p", container="c")
    assert "running" in early.state and early.restarts == 0
    later = container_view(b, 0.0, 660.0, pod="p", container="c")
    assert later.state["waiting"]["reason"] == "CrashLoopBackOff"
    assert later.restarts == len(later.attempts) == 7
    assert later.last_state["terminated"]["exitCode"] == 1
    oom = container_view(
        Behavior.from_spec({"mode": "oomkilled"}), 0.0, 100.0, pod="p", container="c"
    )
    assert (oom.last_state["terminated"]["reason"], oom.last_state["terminated"]["exitCode"]) == (
        "OOMKilled",
        137,
    )


def test_pod_table_cells_show_crashloop_and_last_restart():
    pod = {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "c"}], "nodeName": "node-1"},
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.5",
            "podIPs": [{"ip": "10.244.1.5"}],
            "containerStatuses": [
                {
                    "name": "c",
                    "ready": False,
                    "restartCount": 7,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"finishedAt": "2026-01-01T00:10:40Z"}},
                }
            ],
        },
    }
    now = 1767226260.0  # 2026-01-01T00:11:00Z
    assert pod_cells(pod, now) == [
        "p",
        "0/1",
        "CrashLoopBackOff",
        "7 (20s ago)",
        "11m",
        "10.244.1.5",
        "node-1",
        "<none>",
        "<none>",
    ]


def test_undo_matches_old_replicaset_ignoring_null_and_empty_values():
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "annotations": {}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            },
        },
    }
    old = new_replicaset(dep, revision=1, now=0.0, replicas=0)
    # kubectl's undo sends the old template back with creationTimestamp: null and resources: {}
    dep["spec"]["template"] = {
        "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
        "spec": {"containers": [{"name": "web", "image": "web:1", "resources": {}}]},
    }
    assert matching_replicaset(dep, [old]) is old
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    assert matching_replicaset(dep, [old]) is None


def test_scale_builder_objects_deserialize_with_the_official_client():
    import json

    from kubernetes import client

    from incidentlib.sim.cluster import Cluster
    from incidentlib.sim.scale import build_scale

    cluster = build_scale(Cluster(), pods=60, nodes=4, events=120, pods_per_deployment=6)
    api = client.ApiClient()
    models = {
        "/pods": "V1Pod",
        "/nodes": "V1Node",
        "/events": "CoreV1Event",
        "apps/deployments": "V1Deployment",
        "apps/replicasets": "V1ReplicaSet",
        "/namespaces": "V1Namespace",
    }
    counts = {}
    for key, model in models.items():
        entries = cluster.store.entries(key)
        counts[key] = len(entries)
        for e in entries:
            obj = api.deserialize(e.raw.decode(), model, "application/json")
            assert obj.metadata.name == json.loads(e.raw)["metadata"]["name"]
    assert counts["/pods"] == 60 and counts["/nodes"] == 4 and counts["/events"] == 120
    assert counts["apps/replicasets"] == 30 and counts["apps/deployments"] == 10
    ready = [
        json.loads(e.raw)["status"]["containerStatuses"][0]["ready"]
        for e in cluster.store.entries("/pods")
    ]
    assert all(ready)


def test_public_api_is_pinned():
    import incidentlib.sim
    import incidentlib.sim.testing

    assert incidentlib.sim.__all__ == ["SimHandle", "start", "scenario_names"]
    assert incidentlib.sim.testing.__all__ == ["SimHandle", "running_sim", "sim_cluster"]
