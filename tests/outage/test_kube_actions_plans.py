"""Mitigation plans built from fixtures (pure): the exact request kubectl would send, and the diff."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from incidentlib import kube_actions as ka
from incidentlib.errors import InvalidParameter

from .fixtures import DEPLOYMENT, REPLICASETS


def test_undo_to_previous_revision_is_kubectls_json_patch() -> None:
    plan = ka.plan_undo(DEPLOYMENT, REPLICASETS)
    assert (plan.method, plan.path, plan.content_type) == (
        "PATCH", "/apis/apps/v1/namespaces/production/deployments/backend", "application/json-patch+json")
    tmpl, ann = plan.body
    assert tmpl["op"] == "replace" and tmpl["path"] == "/spec/template"
    assert tmpl["value"]["spec"]["containers"][0]["image"] == "registry.example.com/backend:2.3.1"
    assert tmpl["value"]["metadata"]["labels"] == {"app": "backend"}  # hash label removed
    assert ann["path"] == "/metadata/annotations"
    # revision kept from the deployment; change-cause copied from the ReplicaSet
    assert ann["value"] == {"deployment.kubernetes.io/revision": "3", "kubernetes.io/change-cause": "deploy backend 2.3.1"}
    assert "-      - image: registry.example.com/backend:2.4.0" in plan.diff
    assert "+      - image: registry.example.com/backend:2.3.1" in plan.diff
    assert plan.summary.startswith("roll deployment/backend back from revision 3 to revision 2")
    assert plan.command == "kubectl rollout undo deployment/backend -n production"


def test_undo_to_revision_and_unknown_revision() -> None:
    plan = ka.plan_undo(DEPLOYMENT, REPLICASETS, to_revision=1)
    assert plan.body[0]["value"]["spec"]["containers"][0]["image"] == "registry.example.com/backend:2.2.0"
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
    assert plan.body is None


def test_scale_restart_memory_plans() -> None:
    scale = ka.plan_scale(DEPLOYMENT, 5)
    assert (scale.path, scale.body, scale.content_type) == (
        "/apis/apps/v1/namespaces/production/deployments/backend/scale", {"spec": {"replicas": 5}},
        "application/merge-patch+json")
    assert "-  replicas: 3" in scale.diff and "+  replicas: 5" in scale.diff
    restart = ka.plan_restart(DEPLOYMENT, now=datetime(2026, 11, 27, 9, 40, tzinfo=UTC))
    assert restart.body == {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-11-27T09:40:00Z"}}}}}
    assert restart.query == {"fieldManager": "kubectl-rollout"}
    mem = ka.plan_memory_limit(DEPLOYMENT, "1Gi")
    assert mem.body == {"spec": {"template": {"spec": {"containers": [
        {"name": "backend", "resources": {"limits": {"memory": "1Gi"}}}]}}}}
    assert "from 512Mi to 1Gi" in mem.summary and "+            memory: 1Gi" in mem.diff
    low = ka.plan_memory_limit(DEPLOYMENT, "128Mi")  # below the 256Mi request: the request follows
    assert low.body["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"memory": "128Mi"}
    with pytest.raises(InvalidParameter, match="memory_limit 'lots'"):
        ka.plan_memory_limit(DEPLOYMENT, "lots")
    with pytest.raises(InvalidParameter, match="replicas -1"):
        ka.plan_scale(DEPLOYMENT, -1)


def test_rollout_done_like_kubectl_rollout_status() -> None:
    dep = {"metadata": {"name": "b", "generation": 4}, "spec": {"replicas": 3},
           "status": {"observedGeneration": 3}}
    assert ka.rollout_done(dep) == (False, "Waiting for deployment spec update to be observed...")
    dep["status"] = {"observedGeneration": 4, "updatedReplicas": 3, "replicas": 4, "availableReplicas": 2}
    assert ka.rollout_done(dep)[1].endswith("1 old replicas are pending termination...")
    dep["status"].update(replicas=3, availableReplicas=3)
    assert ka.rollout_done(dep) == (True, 'deployment "b" successfully rolled out')


def test_choose_mitigation() -> None:
    corr = {"revision": 3, "previous": 2}
    assert ka.choose_mitigation("auto", correlation=corr, oom_killed=False, replicas=None, memory_limit=None)[0] == "undo"
    assert ka.choose_mitigation("auto", correlation=None, oom_killed=True, replicas=None, memory_limit="1Gi")[0] == "memory"
    assert ka.choose_mitigation("scale", correlation=corr, oom_killed=False, replicas=4, memory_limit=None)[0] == "scale"
    with pytest.raises(InvalidParameter, match="one of auto, undo"):
        ka.choose_mitigation("rollback", correlation=None, oom_killed=False, replicas=None, memory_limit=None)
