"""Services and where they route: `kubectl get svc,ep` with the pods each selector matches, and why
a Service routes nowhere (its selector matches no pod, or none of them is ready), naming the rollout
that changed the pods' labels when there is one. Pure: JSON in, tables and sentences out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

SERVICE_COLUMNS = [
    "namespace",
    "name",
    "type",
    "selector",
    "ready_endpoints",
    "not_ready_endpoints",
    "matching_pods",
]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def selector_text(selector: Mapping[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items()))


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def endpoint_counts(
    endpoints: Iterable[dict[str, Any]] = (), slices: Iterable[dict[str, Any]] = ()
) -> dict[tuple[str, str], tuple[int, int]]:
    """(namespace, service) -> (ready, not ready) addresses, from EndpointSlices where there are any
    (`discovery.k8s.io/v1`), else from Endpoints."""
    out: dict[tuple[str, str], list[int]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc:
            continue
        acc = out.setdefault((meta.get("namespace", ""), svc), [0, 0])
        for e in sl.get("endpoints") or []:
            cond = e.get("conditions") or {}
            if cond.get("terminating"):
                continue
            acc[0 if cond.get("ready", True) else 1] += len(e.get("addresses") or [])
    for ep in endpoints:
        meta = ep.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if key in out:
            continue
        acc = out.setdefault(key, [0, 0])
        for s in ep.get("subsets") or []:
            acc[0] += len(s.get("addresses") or [])
            acc[1] += len(s.get("notReadyAddresses") or [])
    return {k: (v[0], v[1]) for k, v in out.items()}


def services_frame(
    services: Iterable[dict[str, Any]],
    pods: Iterable[dict[str, Any]],
    *,
    endpoints: Iterable[dict[str, Any]] = (),
    slices: Iterable[dict[str, Any]] = (),
) -> pd.DataFrame:
    """The `services` scrap: each Service, its selector, its ready and not-ready endpoints, and how
    many pods of its namespace the selector matches (running or not)."""
    pods = list(pods)
    counts = endpoint_counts(endpoints, slices)
    rows = []
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        selector = spec.get("selector") or {}
        matching = sum(
            1
            for p in pods
            if (p.get("metadata") or {}).get("namespace") == ns
            and _matches(selector, (p.get("metadata") or {}).get("labels") or {})
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )
        ready, not_ready = counts.get((ns, name), (0, 0))
        rows.append(
            {
                "namespace": ns,
                "name": name,
                "type": spec.get("type", "ClusterIP"),
                "selector": selector_text(selector),
                "ready_endpoints": ready,
                "not_ready_endpoints": not_ready,
                "matching_pods": matching if selector else None,
            }
        )
    df = pd.DataFrame(rows, columns=SERVICE_COLUMNS)
    return df.astype(
        {"ready_endpoints": "int64", "not_ready_endpoints": "int64", "matching_pods": "Int64"}
    )


def relabel(
    selector: Mapping[str, str],
    replicasets: Iterable[dict[str, Any]],
    *,
    deployment: str | None = None,
) -> dict[str, Any] | None:
    """The rollout after which a selector stopped matching: the newest revision whose pod labels
    miss the selector while the one before matched it, with what changed; None if no such rollout.
    `replicasets` are the deployment's (any order); revisions come from their annotation."""
    from .frames import CHANGE_CAUSE, REVISION
    from .owners import HASH_LABEL

    revs = []
    for rs in replicasets:
        meta = rs.get("metadata") or {}
        try:
            rev = int((meta.get("annotations") or {}).get(REVISION, ""))
        except ValueError:
            continue
        labels = dict(
            (((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
            or {}
        )
        labels.pop(HASH_LABEL, None)
        revs.append((rev, meta, labels))
    revs.sort(key=lambda r: r[0])
    for (_, _, before), (rev, meta, after) in zip(revs[::-1][1:], revs[::-1], strict=False):
        if _matches(selector, before) and not _matches(selector, after):
            removed = {k: v for k, v in before.items() if after.get(k) != v}
            added = {k: v for k, v in after.items() if before.get(k) != v}
            owner = next(
                (r.get("name") for r in meta.get("ownerReferences") or [] if r.get("controller")),
                deployment,
            )
            return {
                "deployment": owner,
                "revision": rev,
                "change_cause": (meta.get("annotations") or {}).get(CHANGE_CAUSE, ""),
                "created": meta.get("creationTimestamp"),
                "removed": selector_text(removed),
                "added": selector_text(added),
            }
    return None


def routing_problems(
    services: pd.DataFrame, *, relabels: Mapping[str, dict[str, Any] | None] | None = None
) -> list[dict[str, str]]:
    """A finding (title, detail, next_step) for each Service with a selector and no ready endpoint,
    naming the cause: its selector matches no pod (and the rollout that relabelled them), or its
    pods are not ready."""
    out = []
    for _, s in services.iterrows():
        if not s["selector"] or int(s["ready_endpoints"]) > 0:
            continue
        ns, name, sel = s["namespace"], s["name"], s["selector"]
        matching = 0 if pd.isna(s["matching_pods"]) else int(s["matching_pods"])
        if matching == 0:
            change = (relabels or {}).get(name)
            detail = f"its selector {sel} matches no pod in {ns}"
            step = (
                f"compare the selector with the pods' labels: `kubectl get pods -n {ns} "
                f"--show-labels`; fix the Service's selector or the pod template's labels"
            )
            if change:
                detail += (
                    f"; revision {change['revision']} of deployment/{change['deployment']}"
                    + (f" ({change['change_cause']})" if change["change_cause"] else "")
                    + f" changed the pod labels: removed {change['removed'] or 'nothing'}, "
                    f"added {change['added'] or 'nothing'}"
                )
                step = (
                    f"roll back deployment/{change['deployment']} (`kubectl rollout undo "
                    f"deployment/{change['deployment']} -n {ns}`) or put {change['removed']} "
                    f"back on its pod template; or change the Service's selector to match"
                )
            cause = "selector matches nothing"
        else:
            detail = (
                f"its selector {sel} matches {matching} pod(s), none of them ready "
                f"({int(s['not_ready_endpoints'])} not-ready endpoint(s))"
            )
            step = "read why the pods are not ready (Pods and 'Why it fails' above)"
            cause = "pods not ready"
        out.append(
            {
                "title": f"Service {name} routes nowhere: {cause}",
                "detail": f"Service {ns}/{name} has no ready endpoint: {detail}",
                "next_step": step,
            }
        )
    return out


def routing_level(problem: dict[str, str], *, deployment: str) -> str:
    """SEV1 when the service under investigation routes nowhere because its selector matches
    nothing (every pod fine, no traffic arrives: a complete outage only this finding explains);
    SEV2 otherwise (with pods not ready, the pods' own findings say the outage and its cause)."""
    mine = problem["title"].startswith(f"Service {deployment} ")
    return "SEV1" if mine and problem["title"].endswith("selector matches nothing") else "SEV2"
