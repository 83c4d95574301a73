"""What the API server checks and fills in before it stores an object."""

from __future__ import annotations

import re

from .clock import iso
from .controllers import qos_class
from .objects import quantity
from .resources import Resource
from .selectors import parse_labels
from .status import invalid

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_containers(spec: dict, prefix: str, causes: list[tuple[str, str]]) -> None:
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append((f"{prefix}.containers", "Required value"))
        return
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append((f"{prefix}.containers[{i}].name", "Required value"))
        elif not c.get("image"):
            causes.append((f"{prefix}.containers[{i}].image", "Required value"))
        res = (c.get("resources") or {}) if isinstance(c, dict) else {}
        for part in ("limits", "requests"):
            for k, v in (res.get(part) or {}).items():
                try:
                    quantity(v)
                except ValueError as e:
                    causes.append((f"{prefix}.containers[{i}].resources.{part}.{k}", str(e)))


def validate(res: Resource, obj: dict) -> None:
    """Raise a 422 Invalid Status when obj breaks a rule the real API server enforces."""
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    causes: list[tuple[str, str]] = []
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif not _NAME.match(name) or len(name) > 253:
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of '
                "lower case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )
        )
    for k, v in (meta.get("labels") or {}).items():
        if not isinstance(v, str):
            causes.append((f"metadata.labels.{k}", f"Invalid value: {v!r}: must be a string"))
    spec = obj.get("spec") or {}
    if res.kind in ("Deployment", "ReplicaSet"):
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            causes.append(("spec.replicas", f"Invalid value: {replicas!r}: must be an integer"))
        elif replicas < 0:
            causes.append(
                ("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
            )
        selector = spec.get("selector") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(("spec.selector", "Required value"))
        elif selector.get("matchLabels") and not parse_labels(
            ",".join(f"{k}={v}" for k, v in selector["matchLabels"].items())
        )(labels):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    f"Invalid value: {labels!r}: `selector` does not match template `labels`",
                )
            )
        _check_containers(
            (spec.get("template") or {}).get("spec") or {}, "spec.template.spec", causes
        )
    elif res.kind == "Pod":
        _check_containers(spec, "spec", causes)
    elif res.kind == "ConfigMap":
        for k, v in (obj.get("data") or {}).items():
            if not isinstance(v, str):
                causes.append((f"data[{k}]", f"Invalid value: {v!r}: must be a string"))
    if causes:
        raise invalid(res, name, causes)


def defaults(res: Resource, obj: dict, *, now: float) -> dict:
    """Fill in what the API server defaults on create (and drop a status a create may not set)."""
    meta = obj.setdefault("metadata", {})
    meta["creationTimestamp"] = iso(now)
    if res.kind in ("Deployment", "ReplicaSet", "Pod"):
        obj.pop("status", None)
    if res.kind in ("Deployment", "ReplicaSet"):
        meta["generation"] = 1
        spec = obj["spec"]
        spec.setdefault("replicas", 1)
        if res.kind == "Deployment":
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
            )
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        tspec = spec.setdefault("template", {}).setdefault("spec", {})
        tspec.setdefault("restartPolicy", "Always")
        tspec.setdefault("terminationGracePeriodSeconds", 30)
        tspec.setdefault("dnsPolicy", "ClusterFirst")
        tspec.setdefault("schedulerName", "default-scheduler")
        tspec.setdefault("securityContext", {})
        for c in tspec.get("containers", []):
            c.setdefault("imagePullPolicy", "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
        obj["status"] = {}
    if res.kind == "Pod":
        spec = obj["spec"]
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        for c in spec.get("containers", []):
            c.setdefault("imagePullPolicy", "IfNotPresent")
            c.setdefault("resources", {})
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}
    if res.kind == "Service":  # the service IP allocator, and the defaults of a ClusterIP service
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
            digest = int.from_bytes(meta["name"].encode()[:8].ljust(8, b"\0"), "big")
            spec["clusterIP"] = f"10.96.{200 + digest % 50}.{1 + (digest >> 8) % 250}"
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    if res.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    return obj
