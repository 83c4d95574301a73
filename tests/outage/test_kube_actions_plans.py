"""Mitigation plans built from fixtures (pure): the exact request kubectl would send, and the
diff."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.kube import actions as ka
from incidentlib.plan import REPLACES_PODS, REVERSIBLE

from .api_payloads import DEPLOYMENT, REPLICASETS


def test_undo_to_previous_revision_is_kubectls_json_patch() -> None:
    plan = ka.plan_undo(DEPLOYMENT, REPLICASETS)
    [req] = plan.requests
    assert (req.method, req.path, req.content_type) == (
        "PATCH",
        "/apis/apps/v1/namespaces/production/deployments/backend",
        "application/json-patch+json",
    )
    assert plan.rollout == "/apis/apps/v1/namespaces/production/deployments/backend"
    assert (plan.target, plan.safety) == ("deployment/backend in production", REPLACES_PODS)
    tmpl, ann = req.body
    assert tmpl["op"] == "replace" and tmpl["path"] == "/spec/template"
    assert tmpl["value"]["spec"]["containers"][0]["image"] == "registry.example.com/backend:2.3.1"
    assert tmpl["value"]["metadata"]["labels"] == {"app": "backend"}  # hash label removed
    assert ann["path"] == "/metadata/annotations"
    # revision kept from the deployment; change-cause copied from the ReplicaSet
    assert ann["value"] == {
        "deployment.kubernetes.io/revision": "3",
        "kubernetes.io/change-cause": "deploy backend 2.3.1",
    }
    assert "-      - image: registry.example.com/backend:2.4.0" in plan.change
    assert "+      - image: registry.example.com/backend:2.3.1" in plan.change
    assert plan.summary.startswith("roll deployment/backend back from revision 3 to revision 2")
    assert plan.command == "kubectl rollout undo deployment/backend -n production"


def test_undo_to_revision_and_unknown_revision() -> None:
    plan = ka.plan_undo(DEPLOYMENT, REPLICASETS, to_revision=1)
    assert (
        plan.requests[0].body[0]["value"]["spec"]["containers"][0]["image"]
        == "registry.example.com/backend:2.2.0"
    )
    assert plan.command.endswith("--to-revision=1")
    with pytest.raises(InvalidParameter, match=r"unable to find revision 9 .* revisions: 1, 2, 3"):
        ka.plan_undo(DEPLOYMENT, REPLICASETS, to_revision=9)  # rs 9 belongs to another owner


def test_undo_skips_when_template_already_matches() -> None:
    dep = copy.deepcopy(DEPLOYMENT)
    dep["spec"]["template"] = copy.deepcopy(REPLICASETS[1]["spec"]["template"])
    del dep["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = []  # empty values do not count
    plan = ka.plan_undo(dep, REPLICASETS, to_revision=2)
    assert plan.skipped == "skipped rollback (current template already matches revision 2)"
    assert plan.requests == []


def test_scale_restart_memory_plans() -> None:
    scale = ka.plan_scale(DEPLOYMENT, 5)
    [req] = scale.requests
    assert (req.path, req.body, req.content_type) == (
        "/apis/apps/v1/namespaces/production/deployments/backend/scale",
        {"spec": {"replicas": 5}},
        "application/merge-patch+json",
    )
    assert "-  replicas: 3" in scale.change and "+  replicas: 5" in scale.change
    assert scale.safety == REVERSIBLE
    restart = ka.plan_restart(DEPLOYMENT, now=datetime(2026, 11, 27, 9, 40, tzinfo=UTC))
    assert restart.requests[0].body == {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-27T09:40:00Z"}
                }
            }
        }
    }
    assert restart.requests[0].query == {"fieldManager": "kubectl-rollout"}
    assert restart.command == "kubectl rollout restart deployment/backend -n production"
    mem = ka.plan_memory_limit(DEPLOYMENT, "1Gi")
    assert mem.requests[0].body == {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "backend", "resources": {"limits": {"memory": "1Gi"}}}]
                }
            }
        }
    }
    assert "from 512Mi to 1Gi" in mem.summary and "+            memory: 1Gi" in mem.change
    low = ka.plan_memory_limit(DEPLOYMENT, "128Mi")  # below the 256Mi request: the request follows
    assert low.requests[0].body["spec"]["template"]["spec"]["containers"][0]["resources"][
        "requests"
    ] == {"memory": "128Mi"}
    with pytest.raises(InvalidParameter, match="memory_limit 'lots'"):
        ka.plan_memory_limit(DEPLOYMENT, "lots")
    with pytest.raises(InvalidParameter, match="replicas -1"):
        ka.plan_scale(DEPLOYMENT, -1)


def test_rollout_done_like_kubectl_rollout_status() -> None:
    dep = {
        "metadata": {"name": "b", "generation": 4},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 3},
    }
    assert ka.rollout_done(dep) == (False, "Waiting for deployment spec update to be observed...")
    dep["status"] = {
        "observedGeneration": 4,
        "updatedReplicas": 3,
        "replicas": 4,
        "availableReplicas": 2,
    }
    assert ka.rollout_done(dep)[1].endswith("1 old replicas are pending termination...")
    dep["status"].update(replicas=3, availableReplicas=3)
    assert ka.rollout_done(dep) == (True, 'deployment "b" successfully rolled out')


def test_choose_mitigation() -> None:
    corr = {"revision": 3, "previous": 2}
    assert (
        ka.choose_mitigation(
            "auto", correlation=corr, oom_killed=False, replicas=None, memory_limit=None
        )[0]
        == "undo"
    )
    assert (
        ka.choose_mitigation(
            "auto", correlation=None, oom_killed=True, replicas=None, memory_limit="1Gi"
        )[0]
        == "memory"
    )
    assert (
        ka.choose_mitigation(
            "scale", correlation=corr, oom_killed=False, replicas=4, memory_limit=None
        )[0]
        == "scale"
    )
    with pytest.raises(InvalidParameter, match="one of auto, undo"):
        ka.choose_mitigation(
            "rollback", correlation=None, oom_killed=False, replicas=None, memory_limit=None
        )


def test_a_statefulset_restart_is_waited_for_by_the_statefulsets_rule() -> None:
    sts = {
        "kind": "StatefulSet",
        "metadata": {"namespace": "production", "name": "pg"},
        "spec": {"replicas": 1, "template": {"metadata": {}}},
        "status": {"readyReplicas": 1},
    }
    plan = ka.plan_restart(sts, now=datetime(2026, 11, 27, 9, 40, tzinfo=UTC))
    assert plan.requests[0].path == "/apis/apps/v1/namespaces/production/statefulsets/pg"
    assert (
        plan.rollout == "/apis/apps/v1/namespaces/production/statefulsets/pg"
        and plan.command == "kubectl rollout restart statefulset/pg -n production"
    )
    assert plan.summary.startswith("restart every pod of statefulset/pg (1 replica(s), 1 ready)")


def test_the_plan_record_is_one_shape_for_every_mitigation() -> None:
    undo = ka.plan_undo(DEPLOYMENT, REPLICASETS, why="revision 3 fails")
    shown = undo.shown()
    assert {k: shown[k] for k in ("action", "target", "applied", "status", "why")} == {
        "action": "undo",
        "target": "deployment/backend in production",
        "applied": False,
        "status": "shown",
        "why": "revision 3 fails",
    }
    assert shown["requests"][0]["method"] == "PATCH" and shown["change"] == undo.change
    assert set(shown) == set(
        ka.plan_scale(DEPLOYMENT, 3).shown()
    )  # a skipped plan has the same keys
