"""Who owns a pod, and which pod `kubectl logs deployment/<name>` reads: from raw JSON, without
pandas (the outage notebook's first reads use them before pandas is loaded)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .podstatus import pod_row

HASH_LABEL = "pod-template-hash"


def replicaset_owners(replicasets: Iterable[dict[str, Any]]) -> dict[str, str]:
    """ReplicaSet name -> the Deployment that controls it (`owner_of`'s `rs_owner`)."""
    out: dict[str, str] = {}
    for rs in replicasets:
        m = rs.get("metadata") or {}
        ctl = next((r for r in m.get("ownerReferences") or [] if r.get("controller")), None)
        if ctl and ctl.get("kind") == "Deployment":
            out[m.get("name", "")] = ctl.get("name", "")
    return out


def owner_of(meta: dict[str, Any], rs_owner: dict[str, str] | None = None) -> tuple[str, str]:
    """A pod's owner and its kind: the Deployment behind its ReplicaSet (by `rs_owner` or the hash
    label), else the controller."""
    rs_owner = rs_owner or {}
    refs = meta.get("ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if not ref:
        return "", ""
    kind, name = ref.get("kind", ""), ref.get("name", "")
    if kind == "ReplicaSet":
        if name in rs_owner:
            return rs_owner[name], "Deployment"
        pod_hash = (meta.get("labels") or {}).get(HASH_LABEL)
        if pod_hash and name.endswith("-" + pod_hash):
            return name[: -len(pod_hash) - 1], "Deployment"
    return name, kind


def deployment_selector(deployment: Mapping[str, Any]) -> str:
    """The label selector of a deployment as `k=v,k2=v2` (matchLabels only, like `kubectl logs
    deploy/x`)."""
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def ready_complete(ready: str) -> bool:
    """A READY column `have/want` with every container ready."""
    have, _, want = ready.partition("/")
    return have == want


def pick_log_pod(
    items: Iterable[dict[str, Any]], *, owner: str, replicasets: Iterable[dict[str, Any]] = ()
) -> dict[str, Any] | None:
    """The pod `kubectl logs deployment/<owner>` would read: one of its pods, running and ready
    first, then most restarts, then oldest (kubectl's ByLogging order, in part)."""
    rs_owner = replicaset_owners(replicasets)
    df_items = [p for p in items if owner_of(p.get("metadata") or {}, rs_owner)[0] == owner]
    if not df_items:
        return None

    def rank(p: dict[str, Any]) -> tuple[int, int, str]:
        row = pod_row(p)
        return (
            0 if row.status == "Running" and ready_complete(row.ready) else 1,
            -row.restarts,
            (p.get("metadata") or {}).get("creationTimestamp") or "",
        )

    return sorted(df_items, key=rank)[0]


def default_container(pod: dict[str, Any]) -> str | None:
    """The container `kubectl logs` reads: the `kubectl.kubernetes.io/default-container` annotation,
    else the first."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    named = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    containers = [c.get("name") for c in spec.get("containers") or []]
    return named if named in containers else (containers[0] if containers else None)
