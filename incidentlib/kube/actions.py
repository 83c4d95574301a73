"""Kubernetes mitigations, planned then executed: scale, rollout undo, rollout restart, resource
limits, a ConfigMap key. One `Plan` shape (`incidentlib.plan`) and one `execute` for all of them,
used by the outage, performance and database runbooks.

Each plan is built by a pure function from objects already read (`reads`): the exact request kubectl
sends (`kubectl rollout undo` is a JSON patch of the template and annotations, `rollout restart` a
strategic merge patch stamping `restartedAt`, `scale` a merge patch of the scale subresource) and a
unified diff of the object. `execute` changes nothing unless `apply=True`; then it sends the
request, waits for the rollout with a timeout (like `kubectl rollout status`), and returns the
outcome, recorded through `record`."""

from __future__ import annotations

import copy
import difflib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml

from ..errors import InvalidParameter, KubeAPIError
from ..params import validate_replicas
from ..plan import OUTAGE_MITIGATIONS, REPLACES_PODS, REVERSIBLE, ApiRequest, Plan, now_iso
from ..quantity import cpu_millicores, memory_bytes, validate_memory_limit
from .client import Cluster, strip_empty
from .frames import owned_replicasets, revision_of, template_images

MITIGATIONS = OUTAGE_MITIGATIONS
"""The outage runbook's `mitigation` parameter."""
PERFORMANCE_MITIGATIONS = ("scale_out", "restart", "cache", "scale_down", "memory")
"""The performance runbook's mitigations, in the order they are shown."""

HASH_LABEL = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# kubectl's annotationsToSkip: kept from the deployment, never copied from the ReplicaSet on undo
ANNOTATIONS_TO_SKIP = {
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
}
_PLURAL = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


def _names(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def _kind(obj: dict[str, Any]) -> str:
    return str(obj.get("kind") or "Deployment")


def workload_path(namespace: str, name: str, kind: str = "Deployment") -> str:
    """The API path of a Deployment or StatefulSet."""
    return f"/apis/apps/v1/namespaces/{namespace}/{_PLURAL[kind]}/{name}"


def _target(obj: dict[str, Any]) -> str:
    ns, name = _names(obj)
    return f"{_kind(obj).lower()}/{name} in {ns}"


def _shown(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of an object a person reviews: annotations, and spec (or data, for a ConfigMap)."""
    meta = obj.get("metadata") or {}
    body = (
        {"data": obj.get("data") or {}}
        if obj.get("kind") == "ConfigMap"
        else {"spec": obj.get("spec") or {}}
    )
    return {"metadata": {"annotations": meta.get("annotations") or {}}, **body}


def object_diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    """A unified diff (YAML) of what a person reviews in an object: annotations and spec, or a
    ConfigMap's data."""
    a = yaml.safe_dump(_shown(before), sort_keys=True, default_flow_style=False).splitlines()
    b = yaml.safe_dump(_shown(after), sort_keys=True, default_flow_style=False).splitlines()
    kind, (_, name) = _kind(before).lower(), _names(before)
    return "\n".join(
        difflib.unified_diff(
            a, b, f"{kind}/{name} (now)", f"{kind}/{name} (after)", lineterm="", n=2
        )
    )


# ---------------------------------------------------------------------------------------- the plans
def plan_undo(
    deployment: dict[str, Any],
    replicasets: list[dict[str, Any]],
    *,
    to_revision: int | None = None,
    why: str = "",
) -> Plan:
    """`kubectl rollout undo [--to-revision=N]`: a JSON patch of /spec/template and
    /metadata/annotations from the old ReplicaSet (kubectl's own rule, annotations it never copies
    kept from the deployment)."""
    ns, name = _names(deployment)
    if to_revision is not None and (
        isinstance(to_revision, bool) or not isinstance(to_revision, int) or to_revision < 0
    ):
        raise InvalidParameter(
            f"invalid to_revision {to_revision!r}: expected a revision number from the "
            "rollout history"
        )
    owned = owned_replicasets(deployment, replicasets)
    revs = sorted(
        ((r, rs) for rs in owned if (r := revision_of(rs)) is not None), key=lambda t: t[0]
    )
    listed = ", ".join(str(r) for r, _ in revs) or "(none)"
    command = f"kubectl rollout undo deployment/{name} -n {ns}" + (
        f" --to-revision={to_revision}" if to_revision else ""
    )
    if to_revision:
        target = next((rs for r, rs in revs if r == to_revision), None)
        if target is None:
            raise InvalidParameter(
                f"unable to find revision {to_revision} in the history of "
                f"deployment/{name}; revisions: {listed}"
            )
    else:
        if len(revs) < 2:
            raise InvalidParameter(
                f"no rollout history to undo for deployment/{name}: revisions {listed}"
            )
        target = revs[-2][1]
    if (deployment.get("spec") or {}).get("paused"):
        raise InvalidParameter(
            f"deployment/{name} is paused; resume it first with "
            f"`kubectl rollout resume deployment/{name} -n {ns}`"
        )
    target_rev = revision_of(target)
    template = copy.deepcopy((target.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    plan = Plan(
        "undo",
        _target(deployment),
        "",
        command,
        why=why,
        safety=REPLACES_PODS,
        rollout=workload_path(ns, name),
    )
    current = (deployment.get("spec") or {}).get("template") or {}
    if strip_empty(template) == strip_empty(current):
        plan.skipped = plan.summary = (
            f"skipped rollback (current template already matches revision {target_rev})"
        )
        return plan
    dep_ann = (deployment.get("metadata") or {}).get("annotations") or {}
    annotations = {k: v for k, v in dep_ann.items() if k in ANNOTATIONS_TO_SKIP}
    annotations.update(
        {
            k: v
            for k, v in ((target.get("metadata") or {}).get("annotations") or {}).items()
            if k not in ANNOTATIONS_TO_SKIP
        }
    )
    body = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    plan.requests = [ApiRequest("PATCH", workload_path(ns, name), body, JSON_PATCH)]
    after = copy.deepcopy(deployment)
    after.setdefault("spec", {})["template"] = template
    after.setdefault("metadata", {})["annotations"] = annotations
    plan.change = object_diff(deployment, after)
    plan.summary = (
        f"roll deployment/{name} back from revision {revision_of(deployment)} to revision "
        f"{target_rev} (image {', '.join(template_images(template))})"
    )
    return plan


def plan_scale(
    deployment: dict[str, Any], replicas: int, *, action: str = "scale", why: str = ""
) -> Plan:
    """`kubectl scale --replicas=N`: a merge patch of the scale subresource."""
    ns, name = _names(deployment)
    n = validate_replicas(replicas)
    now_n = (deployment.get("spec") or {}).get("replicas", 1)
    plan = Plan(
        action,
        _target(deployment),
        f"scale deployment/{name} from {now_n} to {n} replicas",
        f"kubectl scale deployment/{name} -n {ns} --replicas={n}",
        why=why,
        safety=REVERSIBLE,
        rollout=workload_path(ns, name),
    )
    if now_n == n:
        plan.skipped = f"deployment/{name} already has {n} replicas"
        return plan
    plan.requests = [
        ApiRequest("PATCH", workload_path(ns, name) + "/scale", {"spec": {"replicas": n}}, MERGE)
    ]
    after = copy.deepcopy(deployment)
    after.setdefault("spec", {})["replicas"] = n
    plan.change = object_diff(deployment, after)
    return plan


def plan_scale_out(deployment: dict[str, Any], replicas: int, *, why: str = "") -> Plan:
    """The runbook's horizontal scaling (`--replicas=5`): refuses a count below the current one."""
    current = int((deployment.get("spec") or {}).get("replicas", 1))
    if validate_replicas(replicas) < current:
        raise InvalidParameter(
            f"scale out to {replicas} replicas is fewer than the current {current}; "
            "give a larger `replicas` or use scale_down"
        )
    return plan_scale(deployment, replicas, action="scale_out", why=why)


def plan_scale_down(
    deployment: dict[str, Any], replicas: int | None = None, *, why: str = ""
) -> Plan:
    """Scale down for a while (to shed load on a shared dependency) to `replicas`; without it, half
    the current count, at least 1. Refuses a count above the current one."""
    current = int((deployment.get("spec") or {}).get("replicas", 1))
    target = max(1, current // 2) if replicas is None else validate_replicas(replicas)
    if target > current:
        raise InvalidParameter(
            f"scale down to {target} replicas is more than the current {current}"
        )
    return plan_scale(deployment, target, action="scale_down", why=why)


def plan_restart(workload: dict[str, Any], *, now: datetime | None = None, why: str = "") -> Plan:
    """`kubectl rollout restart` of a Deployment or StatefulSet: stamp the pod template's
    restartedAt."""
    ns, name = _names(workload)
    kind = _kind(workload)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    after = copy.deepcopy(workload)
    tmeta = after.setdefault("spec", {}).setdefault("template", {}).setdefault("metadata", {})
    tmeta["annotations"] = {**(tmeta.get("annotations") or {}), RESTARTED_AT: stamp}
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    return Plan(
        "restart",
        _target(workload),
        f"restart every pod of {kind.lower()}/{name} ({spec.get('replicas', 1)} replica(s), "
        f"{status.get('readyReplicas', 0)} ready): a new rollout of the same template",
        f"kubectl rollout restart {kind.lower()}/{name} -n {ns}",
        change=object_diff(workload, after),
        why=why,
        safety=REPLACES_PODS,
        requests=[
            ApiRequest(
                "PATCH",
                workload_path(ns, name, kind),
                body,
                STRATEGIC,
                {"fieldManager": "kubectl-rollout"},
            )
        ],
        rollout=workload_path(ns, name, kind),
    )


def workload_container(workload: dict[str, Any], container: str | None = None) -> dict[str, Any]:
    """The container to change: the one named `container`; else the one named like the workload;
    else the first. A name that is not there is refused, naming the containers that are."""
    ns, name = _names(workload)
    containers = ((workload.get("spec") or {}).get("template") or {}).get("spec", {}).get(
        "containers"
    ) or []
    kind = _kind(workload).lower()
    if not containers:
        raise InvalidParameter(f"{kind}/{name} has no containers to change")
    names = [c.get("name", "") for c in containers]
    if container:
        if container not in names:
            raise InvalidParameter(
                f"container {container!r} is not in {kind}/{name}; containers: {', '.join(names)}"
            )
        return containers[names.index(container)]
    return containers[names.index(name)] if name in names else containers[0]


def plan_resources(
    workload: dict[str, Any],
    *,
    cpu: str,
    memory: str,
    container: str | None = None,
    why: str = "",
) -> Plan:
    """The runbook's "scale database resources" (`kubectl set resources ... --limits=memory=2Gi,
    cpu=1000m --requests=memory=2Gi,cpu=1000m`): `cpu` and `memory` become the container's request
    and limit, except where the current value is already higher (nothing is lowered) and where no
    limit is set (no limit is higher than any: none is added). A Deployment or a StatefulSet."""
    ns, name = _names(workload)
    kind = _kind(workload)
    target = workload_container(workload, container)
    cname = target.get("name", "")
    resources = target.get("resources") or {}
    patch_res: dict[str, dict[str, str]] = {}
    kept: list[str] = []
    for section in ("requests", "limits"):
        now = resources.get(section) or {}
        for key, value, parse in (
            ("cpu", cpu, cpu_millicores),
            ("memory", memory, memory_bytes),
        ):
            current = now.get(key)
            if section == "limits" and current is None:
                kept.append(f"no {key} limit (unlimited, left so)")
            elif current is not None and (parse(current) or 0) >= (parse(value) or 0):
                kept.append(f"{key} {section[:-1]} {current} (already at least {value})")
            else:
                patch_res.setdefault(section, {})[key] = value
    body = {
        "spec": {"template": {"spec": {"containers": [{"name": cname, "resources": patch_res}]}}}
    }
    sets = ",".join(f"{k}={v}" for k, v in patch_res.get("limits", {}).items())
    asks = ",".join(f"{k}={v}" for k, v in patch_res.get("requests", {}).items())
    command = (
        f"kubectl set resources {kind.lower()}/{name} -n {ns} -c {cname}"
        + (f" --limits={sets}" if sets else "")
        + (f" --requests={asks}" if asks else "")
    )
    plan = Plan(
        "resources",
        _target(workload),
        f"give container {cname} of {kind.lower()}/{name} cpu {cpu} and memory {memory} "
        "(requests, and limits where they are lower)"
        + (f"; kept: {'; '.join(kept)}" if kept else ""),
        command,
        why=why,
        safety=REPLACES_PODS,
        rollout=workload_path(ns, name, kind),
    )
    if not patch_res:
        plan.skipped = f"container {cname} already has at least cpu {cpu} and memory {memory}"
        return plan
    plan.requests = [ApiRequest("PATCH", workload_path(ns, name, kind), body, STRATEGIC)]
    plan.change = object_diff(workload, _with_resources(workload, cname, patch_res))
    return plan


def _with_resources(
    workload: dict[str, Any], container: str, patch: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """A copy of the workload with the container's requests and limits merged with `patch` (what
    the strategic merge patch makes of it), for the diff."""
    after = copy.deepcopy(workload)
    for c in after["spec"]["template"]["spec"]["containers"]:
        if c.get("name") == container:
            res = c.setdefault("resources", {})
            for k, v in patch.items():
                res[k] = {**(res.get(k) or {}), **v}
    return after


def plan_memory_limit(
    deployment: dict[str, Any], memory_limit: str, *, container: str | None = None, why: str = ""
) -> Plan:
    """Raise a container's memory limit (the runbook's `kubectl set resources ...
    --limits=memory=1Gi`)."""
    ns, name = _names(deployment)
    validate_memory_limit(memory_limit)
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get(
        "containers"
    ) or []
    if not containers:
        raise InvalidParameter(f"deployment/{name} has no containers to change")
    target = (
        next((c for c in containers if c.get("name") == container), None)
        if container
        else containers[0]
    )
    if target is None:
        raise InvalidParameter(
            f"container {container!r} is not in deployment/{name}; containers: "
            f"{', '.join(c.get('name', '') for c in containers)}"
        )
    cname = target.get("name", "")
    resources = target.get("resources") or {}
    old = (resources.get("limits") or {}).get("memory")
    patch_res: dict[str, Any] = {"limits": {"memory": memory_limit}}
    req = (resources.get("requests") or {}).get("memory")
    if req and (memory_bytes(req) or 0) > (memory_bytes(memory_limit) or 0):
        patch_res["requests"] = {"memory": memory_limit}  # a request above the limit is invalid
    body = {
        "spec": {"template": {"spec": {"containers": [{"name": cname, "resources": patch_res}]}}}
    }
    plan = Plan(
        "memory",
        _target(deployment),
        f"raise the memory limit of container {cname} in "
        f"deployment/{name} from {old or 'none'} to {memory_limit}",
        f"kubectl set resources deployment/{name} -n {ns} -c {cname} "
        f"--limits=memory={memory_limit}",
        why=why,
        safety=REPLACES_PODS,
        rollout=workload_path(ns, name),
    )
    if old == memory_limit:
        plan.skipped = f"container {cname} already has a memory limit of {memory_limit}"
        return plan
    plan.requests = [ApiRequest("PATCH", workload_path(ns, name), body, STRATEGIC)]
    plan.change = object_diff(deployment, _with_resources(deployment, cname, patch_res))
    return plan


def plan_configmap_key(
    configmap: dict[str, Any], key: str, value: str, *, action: str = "cache", why: str = ""
) -> Plan:
    """Set one key of a ConfigMap (the runbook's caching switch; pods read it on their next
    restart)."""
    ns, name = _names(configmap)
    if not key or not all(ch.isalnum() or ch in "-._" for ch in key):
        raise InvalidParameter(
            f"ConfigMap key {key!r} may hold only letters, digits, '-', '_' and '.'"
        )
    before = (configmap.get("data") or {}).get(key)
    patch = {"data": {key: str(value)}}
    plan = Plan(
        action,
        f"configmap/{name} in {ns}",
        f"set {key}={value} in configmap/{name} (now "
        f"{key}={before if before is not None else '<unset>'})",
        f'kubectl -n {ns} patch configmap/{name} --type merge -p \'{{"data": {{"{key}": '
        f'"{value}"}}}}\'',
        why=why,
        safety=REVERSIBLE,
    )
    if before == str(value):
        plan.skipped = f"{key} is already {value}"
        return plan
    after = copy.deepcopy({**configmap, "kind": "ConfigMap"})
    after["data"] = {**(after.get("data") or {}), key: str(value)}
    plan.requests = [
        ApiRequest("PATCH", f"/api/v1/namespaces/{ns}/configmaps/{name}", patch, MERGE)
    ]
    plan.change = object_diff({**configmap, "kind": "ConfigMap"}, after)
    return plan


def choose_mitigation(
    mitigation: str,
    *,
    correlation: dict[str, Any] | None,
    oom_killed: bool,
    replicas: int | None,
    memory_limit: str | None,
) -> tuple[str, str]:
    """Which outage mitigation to show (`auto`: what the findings suggest) and why."""
    if mitigation not in MITIGATIONS:
        raise InvalidParameter(
            f"invalid mitigation {mitigation!r}: one of {', '.join(MITIGATIONS)}"
        )
    if mitigation != "auto":
        return mitigation, "asked for by the mitigation parameter"
    if correlation and correlation.get("previous") is not None:
        return "undo", (
            f"revision {correlation['revision']} fails and revision {correlation['previous']} "
            "ran before it"
        )
    if oom_killed and memory_limit:
        return "memory", f"containers were OOMKilled; memory_limit={memory_limit} was given"
    if oom_killed:
        return (
            "none",
            "containers were OOMKilled: pass memory_limit (e.g. '1Gi') to raise the limit",
        )
    if replicas is not None:
        return "scale", f"replicas={replicas} was given"
    return "none", "no mitigation is suggested by the findings"


def performance_mitigations(text: str | None) -> set[str]:
    """The mitigations named in a comma-separated parameter (`"scale_out,cache"`); unknown names
    refused."""
    names = {n.strip() for n in (text or "").split(",") if n.strip()}
    unknown = names - set(PERFORMANCE_MITIGATIONS)
    if unknown:
        raise InvalidParameter(
            f"unknown mitigation(s) {', '.join(sorted(unknown))}; "
            f"valid: {', '.join(PERFORMANCE_MITIGATIONS)}"
        )
    return names


# ------------------------------------------------------------------------------------ the execution
def statefulset_rollout_done(sts: dict[str, Any]) -> tuple[bool, str]:
    """kubectl's `rollout status` rule for a StatefulSet (RollingUpdate): observed, every replica
    ready, updated up to the partition, and the current revision the update revision."""
    meta, spec, st = sts.get("metadata") or {}, sts.get("spec") or {}, sts.get("status") or {}
    name = meta.get("name", "")
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return True, f"rollout status is only available for RollingUpdate ({name})"
    if int(st.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, "Waiting for statefulset spec update to be observed..."
    want = int(spec.get("replicas", 1))
    ready = int(st.get("readyReplicas") or 0)
    if ready < want:
        return False, f"Waiting for {want - ready} pods to be ready..."
    partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
    updated = int(st.get("updatedReplicas") or 0)
    if partition > 0:
        if updated < want - partition:
            return False, (
                f"Waiting for partitioned roll out to finish: {updated} out of "
                f"{want - partition} new pods have been updated..."
            )
        return True, f"partitioned roll out complete: {updated} new pods have been updated..."
    if st.get("updateRevision") != st.get("currentRevision"):
        return False, (
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{st.get('updateRevision')}..."
        )
    return True, (
        f"statefulset rolling update complete {st.get('currentReplicas', want)} pods at revision "
        f"{st.get('currentRevision')}..."
    )


def rollout_done(deployment: dict[str, Any]) -> tuple[bool, str]:
    """kubectl's `rollout status` rule: observed, all replicas updated, old ones gone, all
    available (a StatefulSet by its own rule, `statefulset_rollout_done`)."""
    if deployment.get("kind") == "StatefulSet":
        return statefulset_rollout_done(deployment)
    meta, spec, st = (
        deployment.get("metadata") or {},
        deployment.get("spec") or {},
        deployment.get("status") or {},
    )
    name = meta.get("name", "")
    if int(st.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, "Waiting for deployment spec update to be observed..."
    for c in st.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return False, f'deployment "{name}" exceeded its progress deadline'
    want = int(spec.get("replicas", 1))
    updated, replicas, available = (
        int(st.get(k) or 0) for k in ("updatedReplicas", "replicas", "availableReplicas")
    )
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < want:
        return False, f"{waiting}{updated} out of {want} new replicas have been updated..."
    if replicas > updated:
        return False, f"{waiting}{replicas - updated} old replicas are pending termination..."
    if available < updated:
        return False, f"{waiting}{available} of {updated} updated replicas are available..."
    return True, f'deployment "{name}" successfully rolled out'


def wait_for_rollout(
    cluster: Cluster, path: str, *, timeout_s: float = 60, poll_s: float = 0.5
) -> tuple[bool, str, dict[str, Any]]:
    """Poll the Deployment (or StatefulSet) at `path` until its rollout completes or `timeout_s`
    passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        dep = cluster.get_json(path, timeout=min(10.0, max(timeout_s, 1.0)))
        if "/statefulsets/" in path:
            dep.setdefault("kind", "StatefulSet")
        done, message = rollout_done(dep)
        if done or time.monotonic() >= deadline:
            return done, message if done else f"timed out after {timeout_s:g} s: {message}", dep
        time.sleep(poll_s)


def execute(
    cluster: Cluster,
    plan: Plan,
    *,
    apply: bool = False,
    record: Callable[[dict[str, Any]], None] | None = None,
    timeout_s: float = 60,
    poll_s: float = 0.5,
) -> dict[str, Any]:
    """Show a plan; with apply=True send its requests as kubectl would, wait for the rollout, say
    how it went.

    The outcome (`Plan.outcome`: status shown, skipped, failed, applied, rolled out, timeout or
    "applied, rollout unknown") is returned and handed to `record` (a run's `record_action`)."""
    if plan.skipped or not apply or not plan.requests:
        outcome = plan.shown()
    else:
        at = now_iso()
        try:
            for r in plan.requests:
                cluster.write_json(
                    r.method, r.path, r.body, content_type=r.content_type, query=r.query or None
                )
        except KubeAPIError as e:
            outcome = plan.outcome(applied=False, status="failed", detail=str(e), at=at)
        else:
            outcome = _after(cluster, plan, at=at, timeout_s=timeout_s, poll_s=poll_s)
    if record is not None:
        record(outcome)
    return outcome


def _after(
    cluster: Cluster, plan: Plan, *, at: str, timeout_s: float, poll_s: float
) -> dict[str, Any]:
    """The outcome of a change that was sent: the rollout that follows it, when there is one."""
    if plan.rollout is None:
        return plan.outcome(applied=True, status="applied", detail=f"{plan.summary}: done", at=at)
    try:
        done, message, dep = wait_for_rollout(
            cluster, plan.rollout, timeout_s=timeout_s, poll_s=poll_s
        )
    except KubeAPIError as e:
        return plan.outcome(
            applied=True,
            status="applied, rollout unknown",
            at=at,
            detail=f"the change was made; reading it back failed: {e}",
        )
    template = (dep.get("spec") or {}).get("template") or {}
    return plan.outcome(
        applied=True,
        status="rolled out" if done else "timeout",
        detail=message,
        at=at,
        revision=revision_of(dep),
        images=", ".join(template_images(template)),
    )
