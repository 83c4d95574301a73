"""Mitigations for the outage runbook: rollout undo, scale, rollout restart, raise the memory limit.

Each is planned first from what was read (a pure function returning a `Plan` with the exact request and a
diff of the deployment), shown, and only sent when `apply=True`: the same request kubectl sends, then a wait
for the rollout with a timeout, and the outcome recorded in the evidence (`run.record_action`)."""

from __future__ import annotations

import copy
import difflib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml  # type: ignore[import-untyped]

from .cluster import owned_replicasets, revision_of
from .errors import InvalidParameter, KubeAPIError
from .kube import strip_empty
from .params import validate_replicas
from .quantity import memory_bytes, validate_memory_limit

__all__ = ["Plan", "MITIGATIONS", "plan_undo", "plan_scale", "plan_restart", "plan_memory_limit",
           "execute", "rollout_done", "wait_for_rollout", "choose_mitigation"]

MITIGATIONS = ("auto", "undo", "scale", "restart", "memory", "none")
HASH_LABEL = "pod-template-hash"
# kubectl's annotationsToSkip: kept from the deployment, never copied from the ReplicaSet on undo
ANNOTATIONS_TO_SKIP = {
    "kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision", "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
}


@dataclass
class Plan:
    """One change to a deployment, exactly as it would be sent, and what it changes."""

    action: str
    namespace: str
    deployment: str
    summary: str
    command: str
    method: str = "PATCH"
    path: str = ""
    body: Any = None
    content_type: str = "application/strategic-merge-patch+json"
    query: dict[str, Any] = field(default_factory=dict)
    diff: str = ""
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["body"] = json.dumps(self.body, sort_keys=True) if self.body is not None else None
        return d


def _names(deployment: dict[str, Any]) -> tuple[str, str]:
    meta = deployment.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def _dep_path(ns: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"


def _shown(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of a deployment a person reviews: annotations and spec."""
    meta = obj.get("metadata") or {}
    return {"metadata": {"annotations": meta.get("annotations") or {}}, "spec": obj.get("spec") or {}}


def deployment_diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    """A unified diff (YAML) of a deployment's annotations and spec."""
    a = yaml.safe_dump(_shown(before), sort_keys=True, default_flow_style=False).splitlines()
    b = yaml.safe_dump(_shown(after), sort_keys=True, default_flow_style=False).splitlines()
    ns, name = _names(before)
    return "\n".join(difflib.unified_diff(a, b, f"deployment/{name} (now)", f"deployment/{name} (after)",
                                          lineterm="", n=2))


def plan_undo(deployment: dict[str, Any], replicasets: list[dict[str, Any]], *,
              to_revision: int | None = None) -> Plan:
    """`kubectl rollout undo [--to-revision=N]`: json-patch /spec/template and /metadata/annotations from the old ReplicaSet."""
    ns, name = _names(deployment)
    if to_revision is not None and (isinstance(to_revision, bool) or not isinstance(to_revision, int) or to_revision < 0):
        raise InvalidParameter(f"invalid to_revision {to_revision!r}: expected a revision number from the rollout history")
    owned = owned_replicasets(deployment, replicasets)
    revs = sorted(((r, rs) for rs in owned if (r := revision_of(rs)) is not None), key=lambda t: t[0])
    command = f"kubectl rollout undo deployment/{name} -n {ns}" + (f" --to-revision={to_revision}" if to_revision else "")
    if to_revision:
        target = next((rs for r, rs in revs if r == to_revision), None)
        if target is None:
            raise InvalidParameter(f"unable to find revision {to_revision} in the history of deployment/{name}; "
                                   f"revisions: {', '.join(str(r) for r, _ in revs) or '(none)'}")
    else:
        if len(revs) < 2:
            raise InvalidParameter(f"no rollout history to undo for deployment/{name}: "
                                   f"revisions {', '.join(str(r) for r, _ in revs) or '(none)'}")
        target = revs[-2][1]
    target_rev = revision_of(target)
    template = copy.deepcopy((target.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    current = copy.deepcopy((deployment.get("spec") or {}).get("template") or {})
    plan = Plan("undo", ns, name, "", command, method="PATCH", path=_dep_path(ns, name),
                content_type="application/json-patch+json")
    if (deployment.get("spec") or {}).get("paused"):
        raise InvalidParameter(f"deployment/{name} is paused; resume it first with "
                               f"`kubectl rollout resume deployment/{name} -n {ns}`")
    if strip_empty(template) == strip_empty(current):
        plan.skipped = f"skipped rollback (current template already matches revision {target_rev})"
        plan.summary = plan.skipped
        return plan
    dep_ann = (deployment.get("metadata") or {}).get("annotations") or {}
    annotations = {k: v for k, v in dep_ann.items() if k in ANNOTATIONS_TO_SKIP}
    annotations.update({k: v for k, v in ((target.get("metadata") or {}).get("annotations") or {}).items()
                        if k not in ANNOTATIONS_TO_SKIP})
    plan.body = [{"op": "replace", "path": "/spec/template", "value": template},
                 {"op": "replace", "path": "/metadata/annotations", "value": annotations}]
    after = copy.deepcopy(deployment)
    after.setdefault("spec", {})["template"] = template
    after.setdefault("metadata", {})["annotations"] = annotations
    plan.diff = deployment_diff(deployment, after)
    images = ", ".join(c.get("image", "") for c in (template.get("spec") or {}).get("containers") or [])
    plan.summary = (f"roll deployment/{name} back from revision {revision_of(deployment)} to revision {target_rev} "
                    f"(image {images})")
    return plan


def plan_scale(deployment: dict[str, Any], replicas: int) -> Plan:
    """`kubectl scale --replicas=N`: a merge patch of the scale subresource."""
    ns, name = _names(deployment)
    n = validate_replicas(replicas)
    now_n = (deployment.get("spec") or {}).get("replicas", 1)
    plan = Plan("scale", ns, name, f"scale deployment/{name} from {now_n} to {n} replicas",
                f"kubectl scale deployment/{name} -n {ns} --replicas={n}", path=_dep_path(ns, name) + "/scale",
                body={"spec": {"replicas": n}}, content_type="application/merge-patch+json")
    if now_n == n:
        plan.skipped = f"deployment/{name} already has {n} replicas"
        return plan
    after = copy.deepcopy(deployment)
    after.setdefault("spec", {})["replicas"] = n
    plan.diff = deployment_diff(deployment, after)
    return plan


def plan_restart(deployment: dict[str, Any], *, now: datetime | None = None) -> Plan:
    """`kubectl rollout restart`: stamp the template with kubectl.kubernetes.io/restartedAt."""
    ns, name = _names(deployment)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    after = copy.deepcopy(deployment)
    tmeta = after.setdefault("spec", {}).setdefault("template", {}).setdefault("metadata", {})
    tmeta.setdefault("annotations", {})
    tmeta["annotations"] = {**(tmeta["annotations"] or {}), "kubectl.kubernetes.io/restartedAt": stamp}
    return Plan("restart", ns, name, f"restart every pod of deployment/{name} (a new rollout of the same template)",
                f"kubectl rollout restart deployment/{name} -n {ns}", path=_dep_path(ns, name), body=body,
                query={"fieldManager": "kubectl-rollout"}, diff=deployment_diff(deployment, after))


def plan_memory_limit(deployment: dict[str, Any], memory_limit: str, *, container: str | None = None) -> Plan:
    """Raise a container's memory limit (the runbook's `kubectl set resources ... --limits=memory=1Gi`)."""
    ns, name = _names(deployment)
    validate_memory_limit(memory_limit)
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    if not containers:
        raise InvalidParameter(f"deployment/{name} has no containers to change")
    target = next((c for c in containers if c.get("name") == container), None) if container else containers[0]
    if target is None:
        raise InvalidParameter(f"container {container!r} is not in deployment/{name}; containers: "
                               f"{', '.join(c.get('name', '') for c in containers)}")
    cname = target.get("name", "")
    resources = target.get("resources") or {}
    old = (resources.get("limits") or {}).get("memory")
    patch_res: dict[str, Any] = {"limits": {"memory": memory_limit}}
    req = (resources.get("requests") or {}).get("memory")
    if req and (memory_bytes(req) or 0) > (memory_bytes(memory_limit) or 0):
        patch_res["requests"] = {"memory": memory_limit}  # a request above the limit is invalid
    body = {"spec": {"template": {"spec": {"containers": [{"name": cname, "resources": patch_res}]}}}}
    after = copy.deepcopy(deployment)
    for c in after["spec"]["template"]["spec"]["containers"]:
        if c.get("name") == cname:
            res = c.setdefault("resources", {})
            for k, v in patch_res.items():
                res[k] = {**(res.get(k) or {}), **v}
    plan = Plan("memory", ns, name, f"raise the memory limit of container {cname} in deployment/{name} "
                f"from {old or 'none'} to {memory_limit}",
                f"kubectl set resources deployment/{name} -n {ns} -c {cname} --limits=memory={memory_limit}",
                path=_dep_path(ns, name), body=body)
    if old == memory_limit:
        plan.skipped = f"container {cname} already has a memory limit of {memory_limit}"
        return plan
    plan.diff = deployment_diff(deployment, after)
    return plan


def rollout_done(deployment: dict[str, Any]) -> tuple[bool, str]:
    """kubectl's `rollout status` rule: observed, all replicas updated, old ones gone, all available."""
    meta, spec, st = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
    name = meta.get("name", "")
    if int(st.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, "Waiting for deployment spec update to be observed..."
    for c in st.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return False, f'deployment "{name}" exceeded its progress deadline'
    want = int(spec.get("replicas", 1))
    updated, replicas, available = (int(st.get(k) or 0) for k in ("updatedReplicas", "replicas", "availableReplicas"))
    if updated < want:
        return False, f"Waiting for deployment \"{name}\" rollout to finish: {updated} out of {want} new replicas have been updated..."
    if replicas > updated:
        return False, f"Waiting for deployment \"{name}\" rollout to finish: {replicas - updated} old replicas are pending termination..."
    if available < updated:
        return False, f"Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
    return True, f'deployment "{name}" successfully rolled out'


def wait_for_rollout(cluster: Any, namespace: str, name: str, *, timeout_s: float = 60,
                     poll_s: float = 0.5) -> tuple[bool, str, dict[str, Any]]:
    """Poll the deployment until the rollout completes or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        dep = cluster.get_json(_dep_path(namespace, name), timeout=min(10.0, max(timeout_s, 1.0)))
        done, message = rollout_done(dep)
        if done or time.monotonic() >= deadline:
            return done, message if done else f"timed out after {timeout_s:g} s: {message}", dep
        time.sleep(poll_s)


def execute(cluster: Any, plan: Plan, *, apply: bool = False, run: Any = None, timeout_s: float = 60,
            poll_s: float = 0.5) -> dict[str, Any]:
    """Show a plan; with apply=True send it as kubectl would, wait for the rollout, record the outcome."""
    outcome: dict[str, Any] = {"action": plan.action, "deployment": f"{plan.namespace}/{plan.deployment}",
                               "summary": plan.summary, "command": plan.command, "applied": False,
                               "status": "shown", "detail": "not applied: run with apply=True to make this change",
                               "at": datetime.now(UTC).isoformat(timespec="seconds")}
    if plan.skipped:
        outcome.update(status="skipped", detail=plan.skipped)
    elif apply:
        try:
            cluster.write_json(plan.method, plan.path, plan.body, content_type=plan.content_type,
                               query=plan.query or None)
        except KubeAPIError as e:
            outcome.update(status="failed", detail=str(e))
        else:
            outcome["applied"] = True
            try:
                done, message, dep = wait_for_rollout(cluster, plan.namespace, plan.deployment,
                                                      timeout_s=timeout_s, poll_s=poll_s)
                outcome.update(status="rolled out" if done else "timeout", detail=message,
                               revision=revision_of(dep),
                               images=", ".join(c.get("image", "") for c in ((dep.get("spec") or {}).get("template") or {})
                                                .get("spec", {}).get("containers") or []))
            except KubeAPIError as e:
                outcome.update(status="applied, rollout unknown", detail=f"the change was made; reading it back failed: {e}")
    outcome["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    if run is not None:
        run.record_action(outcome)
    return outcome


def choose_mitigation(mitigation: str, *, correlation: dict[str, Any] | None, oom_killed: bool,
                      replicas: int | None, memory_limit: str | None) -> tuple[str, str]:
    """Which mitigation to show (`auto`: what the findings suggest) and why."""
    if mitigation not in MITIGATIONS:
        raise InvalidParameter(f"invalid mitigation {mitigation!r}: one of {', '.join(MITIGATIONS)}")
    if mitigation != "auto":
        return mitigation, "asked for by the mitigation parameter"
    if correlation and correlation.get("previous") is not None:
        return "undo", f"revision {correlation['revision']} fails and revision {correlation['previous']} ran before it"
    if oom_killed and memory_limit:
        return "memory", f"containers were OOMKilled; memory_limit={memory_limit} was given"
    if oom_killed:
        return "none", "containers were OOMKilled: pass memory_limit (e.g. '1Gi') to raise the limit"
    if replicas is not None:
        return "scale", f"replicas={replicas} was given"
    return "none", "no mitigation is suggested by the findings"
