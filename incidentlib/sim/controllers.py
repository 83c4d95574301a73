"""Deployment and ReplicaSet controllers: deployments own ReplicaSets (revisions, change-cause,
pod-template-hash), ReplicaSets own pods. Each function reconciles the store once."""

from __future__ import annotations

import random

from . import events
from .clock import iso, parse_iso
from .objects import (
    CHANGE_CAUSE,
    HASH_LABEL,
    REVISION,
    clone,
    comparable_template,
    controller_ref,
    controller_uid,
    random_suffix,
    template_hash,
)
from .store import Store

DEPLOY = "apps/deployments"
RS = "apps/replicasets"
PODS = "/pods"


def _by_owner(store: Store, key: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for obj in store.objects(key):
        uid = controller_uid(obj)
        if uid:
            out.setdefault(uid, []).append(obj)
    return out


def matching_replicaset(dep: dict, owned: list[dict]) -> dict | None:
    """The ReplicaSet whose pod template equals the deployment's, ignoring null and empty values."""
    h = template_hash(dep["spec"]["template"])
    for rs in owned:
        if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == h and (
            rs["spec"]["template"].get("metadata") or {}
        ).get("labels", {}).get(HASH_LABEL) == h:
            return rs
    want = comparable_template(dep["spec"]["template"])
    return next((rs for rs in owned if comparable_template(rs["spec"]["template"]) == want), None)


def _changed_put(store: Store, key: str, old: dict, new: dict) -> None:
    if new != old:
        store.put(key, new)


def _revision(rs: dict) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def new_replicaset(dep: dict, *, revision: int, now: float, replicas: int) -> dict:
    """The ReplicaSet a deployment creates for its current template."""
    h = template_hash(dep["spec"]["template"])
    template = clone(dep["spec"]["template"])
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
    selector = clone(dep["spec"]["selector"])
    selector.setdefault("matchLabels", {})[HASH_LABEL] = h
    annotations = {
        REVISION: str(revision),
        "deployment.kubernetes.io/desired-replicas": str(replicas),
        "deployment.kubernetes.io/max-replicas": str(replicas + 1),
    }
    cause = (dep["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
    if cause:
        annotations[CHANGE_CAUSE] = cause
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{dep['metadata']['name']}-{h}",
            "namespace": dep["metadata"]["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": annotations,
            "ownerReferences": [controller_ref(dep)],
            "creationTimestamp": iso(now),
            "generation": 1,
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
        "status": {"replicas": 0, "observedGeneration": 1},
    }


def reconcile_deployments(store: Store, *, now: float) -> None:
    """Give each deployment one ReplicaSet for its template at full scale, the others at zero."""
    owned_by = _by_owner(store, RS)
    for dep in list(store.objects(DEPLOY)):
        uid = dep["metadata"]["uid"]
        owned = owned_by.get(uid, [])
        replicas = int(dep["spec"].get("replicas", 1))
        current = matching_replicaset(dep, owned)
        max_rev = max((_revision(rs) for rs in owned), default=0)
        cause = (dep["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
        if dep["spec"].get("paused"):
            continue  # a paused deployment rolls nothing out until resumed
        if current is None:
            current = new_replicaset(dep, revision=max_rev + 1, now=now, replicas=replicas)
            store.put(RS, current)
            current = store.get(
                RS, current["metadata"]["namespace"], current["metadata"]["name"]
            ).obj  # type: ignore[union-attr]
            if replicas:
                events.bump(
                    store,
                    dep,
                    now=now,
                    reason="ScalingReplicaSet",
                    component="deployment-controller",
                    message=f"Scaled up replica set {current['metadata']['name']} to {replicas}",
                    distinct=f"up {current['metadata']['name']} {replicas}",
                )
        else:
            new = clone(current)
            ann = new["metadata"].setdefault("annotations", {})
            if _revision(current) < max_rev:
                history = [
                    a
                    for a in ann.get("deployment.kubernetes.io/revision-history", "").split(",")
                    if a
                ]
                ann["deployment.kubernetes.io/revision-history"] = ",".join(
                    [*history, ann.get(REVISION, "")]
                )
                ann[REVISION] = str(max_rev + 1)
            if cause:
                ann[CHANGE_CAUSE] = cause
            old_replicas = int(new["spec"].get("replicas", 0))
            if old_replicas != replicas:
                new["spec"]["replicas"] = replicas
                new["metadata"]["generation"] = int(new["metadata"].get("generation", 1)) + 1
                ann["deployment.kubernetes.io/desired-replicas"] = str(replicas)
                ann["deployment.kubernetes.io/max-replicas"] = str(replicas + 1)
                verb = "up" if replicas > old_replicas else "down"
                events.bump(
                    store,
                    dep,
                    now=now,
                    reason="ScalingReplicaSet",
                    component="deployment-controller",
                    message=f"Scaled {verb} replica set {new['metadata']['name']} to {replicas}"
                    + (f" from {old_replicas}" if verb == "down" else ""),
                    distinct=f"{verb} {new['metadata']['name']} {replicas}",
                )
            _changed_put(store, RS, current, new)
        for rs in owned:
            if rs["metadata"]["uid"] == current["metadata"]["uid"] or not rs["spec"].get(
                "replicas"
            ):
                continue
            new = clone(rs)
            before = int(rs["spec"]["replicas"])
            new["spec"]["replicas"] = 0
            new["metadata"]["generation"] = int(new["metadata"].get("generation", 1)) + 1
            store.put(RS, new)
            events.bump(
                store,
                dep,
                now=now,
                reason="ScalingReplicaSet",
                component="deployment-controller",
                message=f"Scaled down replica set {rs['metadata']['name']} to 0 from {before}",
                distinct=f"down {rs['metadata']['name']} 0",
            )
        rev = store.get(RS, current["metadata"]["namespace"], current["metadata"]["name"]).obj[  # type: ignore[union-attr]
            "metadata"
        ]["annotations"][REVISION]
        if (dep["metadata"].get("annotations") or {}).get(REVISION) != rev:
            new_dep = clone(dep)
            new_dep["metadata"].setdefault("annotations", {})[REVISION] = rev
            store.put(DEPLOY, new_dep)


def pod_for(rs: dict, *, now: float, rng: random.Random) -> dict:
    """A pod created by a ReplicaSet from its template."""
    template = clone(rs["spec"]["template"])
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    defaults = {
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "securityContext": {},
    }
    for k, v in defaults.items():
        spec.setdefault(k, v)
    spec.setdefault(
        "tolerations",
        [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    )
    for c in spec.get("containers", []):
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{rs['metadata']['name']}-{random_suffix(rng)}",
            "generateName": f"{rs['metadata']['name']}-",
            "namespace": rs["metadata"]["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
            "ownerReferences": [controller_ref(rs)],
            "creationTimestamp": iso(now),
        },
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": qos_class(spec)},
    }


def qos_class(spec: dict) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    containers = spec.get("containers", [])
    if not any(
        (c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits")
        for c in containers
    ):
        return "BestEffort"
    for c in containers:
        res = c.get("resources") or {}
        limits = res.get("limits") or {}
        requests = res.get("requests") or limits
        if not all(k in limits for k in ("cpu", "memory")) or requests != limits:
            return "Burstable"
    return "Guaranteed"


def reconcile_replicasets(store: Store, *, now: float, rng: random.Random) -> None:
    """Create or delete pods so each ReplicaSet owns spec.replicas of them; write RS status."""
    by_owner = _by_owner(store, PODS)
    for rs in list(store.objects(RS)):
        # a pod marked for deletion no longer counts: the ReplicaSet replaces it at once
        pods = [
            p
            for p in by_owner.get(rs["metadata"]["uid"], [])
            if not p["metadata"].get("deletionTimestamp")
        ]
        want = int(rs["spec"].get("replicas", 0))
        while len(pods) < want:
            pod = pod_for(rs, now=now, rng=rng)
            store.put(PODS, pod)
            pods.append(pod)
            events.record(
                store,
                rs,
                reason="SuccessfulCreate",
                component="replicaset-controller",
                first=now,
                message=f"Created pod: {pod['metadata']['name']}",
                distinct=pod["metadata"]["name"],
            )
        if len(pods) > want:
            pods.sort(
                key=lambda p: (_pod_ready(p), p["metadata"]["creationTimestamp"]), reverse=False
            )
            for pod in pods[: len(pods) - want]:
                store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
                events.killing(store, pod, now=now)
                events.record(
                    store,
                    rs,
                    reason="SuccessfulDelete",
                    component="replicaset-controller",
                    first=now,
                    message=f"Deleted pod: {pod['metadata']['name']}",
                    distinct=pod["metadata"]["name"],
                )
            pods = pods[len(pods) - want :]


def _pod_ready(pod: dict) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def write_statuses(store: Store, *, now: float) -> None:
    """ReplicaSet and deployment status from the pods as they are now."""
    by_owner = _by_owner(store, PODS)
    rs_by_owner: dict[str, list[dict]] = {}
    for rs in list(store.objects(RS)):
        pods = by_owner.get(rs["metadata"]["uid"], [])
        ready = sum(_pod_ready(p) for p in pods)
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if not ready:
            del status["readyReplicas"], status["availableReplicas"]
        if not pods:
            del status["fullyLabeledReplicas"]
        if rs.get("status") != status:
            new = clone(rs)
            new["status"] = status
            store.put(RS, new)
        uid = controller_uid(rs)
        if uid:
            entry = store.get(RS, rs["metadata"]["namespace"], rs["metadata"]["name"])
            rs_by_owner.setdefault(uid, []).append(entry.obj)  # type: ignore[union-attr]
    for dep in list(store.objects(DEPLOY)):
        _deployment_status(store, dep, rs_by_owner.get(dep["metadata"]["uid"], []), now=now)


def _condition(
    old: list[dict], type_: str, status: str, reason: str, message: str, now: float
) -> dict:
    prev = next((c for c in old if c.get("type") == type_), None)
    same = prev is not None and prev.get("status") == status
    changed = prev is None or prev.get("reason") != reason or not same
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": iso(now) if changed else prev["lastUpdateTime"],  # type: ignore[index]
        "lastTransitionTime": prev["lastTransitionTime"] if same else iso(now),  # type: ignore[index]
        "reason": reason,
        "message": message,
    }


def _deployment_status(store: Store, dep: dict, owned: list[dict], *, now: float) -> None:
    current = matching_replicaset(dep, owned)
    replicas = int(dep["spec"].get("replicas", 1))
    total = sum(int(rs["status"].get("replicas", 0)) for rs in owned)
    ready = sum(int(rs["status"].get("readyReplicas", 0)) for rs in owned)
    updated = int(current["status"].get("replicas", 0)) if current else 0
    updated_ready = int(current["status"].get("readyReplicas", 0)) if current else 0
    old_conditions = (dep.get("status") or {}).get("conditions") or []
    max_unavailable = max(0, replicas - max(1, replicas * 3 // 4)) if replicas > 1 else 0
    if ready >= replicas - max_unavailable:
        available = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        available = (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    name = current["metadata"]["name"] if current else ""
    complete = (
        current is not None
        and updated == replicas
        and updated_ready == replicas
        and total == replicas
    )
    prev = next((c for c in old_conditions if c.get("type") == "Progressing"), None)
    if complete:
        progressing = (
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{name}" has successfully progressed.',
        )
    else:
        started = parse_iso(current["metadata"]["creationTimestamp"]) if current else now
        observed = (dep.get("status") or {}).get("observedGeneration")
        if observed is not None and observed != dep["metadata"].get("generation", 1):
            started = now  # a new rollout (template or scale change) restarts the progress clock
        elif prev and prev.get("reason") == "ReplicaSetUpdated":
            started = max(started, parse_iso(prev["lastUpdateTime"]))
        deadline = int(dep["spec"].get("progressDeadlineSeconds", 600))
        if now - started > deadline:
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{name}" has timed out progressing.',
            )
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
    conditions = [
        _condition(old_conditions, "Available", *available, now),
        _condition(old_conditions, "Progressing", *progressing, now),
    ]
    if progressing[1] == "ReplicaSetUpdated" and started == now:
        conditions[1]["lastUpdateTime"] = iso(now)
    status: dict = {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": conditions,
    }
    if total - ready > 0:
        status["unavailableReplicas"] = total - ready
    for k in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas"):
        if not status[k]:
            del status[k]
    if dep.get("status") != status:
        new = clone(dep)
        new["status"] = status
        store.put(DEPLOY, new)
