"""Performance mitigations: scale out, rollout restart, enable caching (ConfigMap patch), scale down.

Each one reads the current state, builds the exact change (the kubectl command and the patch body) and
returns it as a record; nothing is sent unless `apply=True`, and then the outcome is in the record too.
Reading lives elsewhere (resources, logscan): this is the only performance module that changes anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidParameter, KubeAPIError
from .params import validate_name, validate_replicas

__all__ = [
    "MITIGATIONS", "plan_text", "scale", "scale_out", "scale_down", "rollout_restart", "enable_cache", "chosen",
    "mitigate",
]

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def _record(action: str, target: str, command: str, path: str, patch: dict[str, Any], content_type: str,
            before: Any, after: Any) -> dict[str, Any]:
    return {"action": action, "target": target, "command": command, "path": path,
            "patch": json.dumps(patch, sort_keys=True), "content_type": content_type,
            "before": before, "after": after, "applied": False, "outcome": "not applied (apply=False)"}


def _apply(cluster: Any, rec: dict[str, Any], *, apply: bool) -> dict[str, Any]:
    if not apply:
        return rec
    try:
        cluster.write_json("PATCH", rec["path"], json.loads(rec["patch"]), content_type=rec["content_type"])
    except KubeAPIError as e:
        rec["outcome"] = f"failed: {e}"
        return rec
    rec["applied"] = True
    rec["applied_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    rec["outcome"] = "applied"
    return rec


def plan_text(rec: dict[str, Any]) -> str:
    """The change as a person reads it: the command, the patch, before -> after, and what happened."""
    if not rec.get("command"):
        return f"{rec['action']}: {rec['outcome']}"
    return (f"{rec['action']} {rec['target']}: {rec['before']} -> {rec['after']}\n"
            f"  $ {rec['command']}\n  PATCH {rec['path']} ({rec['content_type']}) {rec['patch']}\n"
            f"  outcome: {rec['outcome']}")


def _deployment(cluster: Any, namespace: str, deployment: str) -> dict[str, Any]:
    return cluster.get_json(f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}")


def scale(cluster: Any, namespace: str, deployment: str, *, replicas: int, apply: bool = False,
          action: str = "scale") -> dict[str, Any]:
    """Set the replica count (`kubectl scale`), shown first, sent only with apply=True."""
    namespace, deployment = validate_name(namespace), validate_name(deployment, what="deployment")
    replicas = validate_replicas(replicas)
    current = int((_deployment(cluster, namespace, deployment).get("spec") or {}).get("replicas", 1))
    rec = _record(action, f"deployment/{deployment} in {namespace}",
                  f"kubectl -n {namespace} scale deployment/{deployment} --replicas={replicas}",
                  f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale",
                  {"spec": {"replicas": replicas}}, MERGE, f"replicas={current}", f"replicas={replicas}")
    return _apply(cluster, rec, apply=apply)


def scale_out(cluster: Any, namespace: str, deployment: str, *, replicas: int = 5,
              apply: bool = False) -> dict[str, Any]:
    """The runbook's horizontal scaling (`--replicas=5`): refuses a count below the current one."""
    current = int((_deployment(cluster, namespace, deployment).get("spec") or {}).get("replicas", 1))
    if validate_replicas(replicas) < current:
        raise InvalidParameter(f"scale out to {replicas} replicas is fewer than the current {current}; "
                               "give a larger `replicas` or use scale_down")
    return scale(cluster, namespace, deployment, replicas=replicas, apply=apply, action="scale out")


def scale_down(cluster: Any, namespace: str, deployment: str, *, replicas: int | None = None,
               apply: bool = False) -> dict[str, Any]:
    """Scale down temporarily (to shed load on a shared dependency): default half the current count, at least 1."""
    current = int((_deployment(cluster, namespace, deployment).get("spec") or {}).get("replicas", 1))
    target = max(1, current // 2) if replicas is None else validate_replicas(replicas)
    if target > current:
        raise InvalidParameter(f"scale down to {target} replicas is more than the current {current}")
    return scale(cluster, namespace, deployment, replicas=target, apply=apply, action="scale down")


def rollout_restart(cluster: Any, namespace: str, deployment: str, *, apply: bool = False,
                    now: datetime | None = None) -> dict[str, Any]:
    """`kubectl rollout restart`: stamp the pod template's restartedAt annotation (new pods, same spec)."""
    namespace, deployment = validate_name(namespace), validate_name(deployment, what="deployment")
    dep = _deployment(cluster, namespace, deployment)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = (((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "annotations", {}).get("kubectl.kubernetes.io/restartedAt", "never")
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    rec = _record("rollout restart", f"deployment/{deployment} in {namespace}",
                  f"kubectl -n {namespace} rollout restart deployment/{deployment}",
                  f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}", patch, STRATEGIC,
                  f"restartedAt={before}", f"restartedAt={stamp}")
    return _apply(cluster, rec, apply=apply)


def enable_cache(cluster: Any, namespace: str, configmap: str, *, key: str = "CACHE_ENABLED",
                 value: str = "true", apply: bool = False) -> dict[str, Any]:
    """The runbook's caching switch: set one key of a ConfigMap (pods read it on their next restart)."""
    namespace, configmap = validate_name(namespace), validate_name(configmap, what="configmap")
    if not key or not all(ch.isalnum() or ch in "-._" for ch in key):
        raise InvalidParameter(f"ConfigMap key {key!r} may hold only letters, digits, '-', '_' and '.'")
    path = f"/api/v1/namespaces/{namespace}/configmaps/{configmap}"
    cm = cluster.get_json(path)
    before = (cm.get("data") or {}).get(key, "<unset>")
    patch = {"data": {key: str(value)}}
    rec = _record("enable caching", f"configmap/{configmap} in {namespace}",
                  f"kubectl -n {namespace} patch configmap/{configmap} --type merge -p '{json.dumps(patch)}'",
                  path, patch, MERGE, f"{key}={before}", f"{key}={value}")
    if before == str(value):
        rec["outcome"] = f"nothing to do: {key} is already {value}"
        return rec
    return _apply(cluster, rec, apply=apply)


MITIGATIONS = ("scale_out", "restart", "cache", "scale_down")


def chosen(text: str | None) -> set[str]:
    """The mitigations named in a comma-separated parameter (`"scale_out,cache"`); unknown names refused."""
    names = {n.strip() for n in (text or "").split(",") if n.strip()}
    unknown = names - set(MITIGATIONS)
    if unknown:
        raise InvalidParameter(f"unknown mitigation(s) {', '.join(sorted(unknown))}; valid: {', '.join(MITIGATIONS)}")
    return names


def mitigate(cluster: Any, namespace: str, deployment: str, *, replicas: int, configmap: str, key: str,
             value: str, apply: bool, selected: set[str]) -> list[dict[str, Any]]:
    """Every mitigation shown; those in `selected` applied when `apply` is True. A failing one is recorded."""
    plans = {
        "scale_out": lambda a: scale_out(cluster, namespace, deployment, replicas=replicas, apply=a),
        "restart": lambda a: rollout_restart(cluster, namespace, deployment, apply=a),
        "cache": lambda a: enable_cache(cluster, namespace, configmap, key=key, value=value, apply=a),
        "scale_down": lambda a: scale_down(cluster, namespace, deployment, apply=a),
    }
    out = []
    for name, plan in plans.items():
        try:
            rec = plan(apply and name in selected)
        except (InvalidParameter, KubeAPIError) as e:
            rec = {"action": name.replace("_", " "), "target": f"{namespace}", "command": "", "path": "",
                   "patch": "", "content_type": "", "before": "", "after": "", "applied": False,
                   "outcome": f"cannot plan: {e}"}
        if not apply or name not in selected:
            rec["outcome"] = rec["outcome"] if rec["outcome"].startswith(("cannot", "nothing")) else (
                "shown only (apply=False)" if not apply else "shown only (not in `mitigations`)")
        rec["mitigation"] = name
        out.append(rec)
    return out
