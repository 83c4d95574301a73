"""Who may do what: the identity rules the simulated cluster enforces, and the self-reviews that
answer `kubectl auth can-i` (SelfSubjectAccessReview) and `kubectl auth can-i --list`
(SelfSubjectRulesReview) from those same rules.

The identity is barred from the namespaces in `cluster.forbidden_namespaces` (and so from anything
across all namespaces: it holds namespaced roles only), and from the resources in
`cluster.forbidden_resources` (`"pods/exec"`: no exec anywhere)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from . import resources
from .status import bad_request

if TYPE_CHECKING:
    from .cluster import Cluster

USER = "system:serviceaccount:ops:runbook"
ALWAYS = {
    (resources.AUTHZ_GROUP, "selfsubjectaccessreviews"),
    (resources.AUTHZ_GROUP, "selfsubjectrulesreviews"),
}


def allowed(
    cluster: Cluster,
    *,
    verb: str,
    group: str,
    resource: str,
    subresource: str = "",
    namespace: str = "",
) -> tuple[bool, str]:
    """(allowed, reason) for one request attribute set."""
    if (group, resource) in ALWAYS:
        return True, "every identity may review itself"
    full = f"{resource}/{subresource}" if subresource else resource
    if full in cluster.forbidden_resources or resource in cluster.forbidden_resources:
        return False, f"no role grants {verb} on {full}"
    if namespace and namespace in cluster.forbidden_namespaces:
        return False, f"no role binding in namespace {namespace}"
    res = next((r for r in resources.RESOURCES if r.group == group and r.plural == resource), None)
    namespaced = res.namespaced if res is not None else True
    if not namespace and namespaced and cluster.forbidden_namespaces:
        return False, "namespaced roles only: nothing across all namespaces"
    return True, "granted by the runbook's role"


PROTOBUF_MAGIC = b"k8s\x00"
# field numbers of the generated protobuf messages (k8s.io/api/authorization/v1/generated.proto)
_RESOURCE_ATTRIBUTES = {
    1: "namespace",
    2: "verb",
    3: "group",
    4: "version",
    5: "resource",
    6: "subresource",
    7: "name",
}


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """The (field number, value) pairs of one protobuf message: varints and length-delimited."""
    out: list[tuple[int, bytes | int]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            n = varint()
            out.append((number, data[i : i + n]))
            i += n
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    return out


def _from_protobuf(raw: bytes) -> dict:
    """A SelfSubjectAccessReview or SelfSubjectRulesReview as kubectl sends it (the protobuf
    envelope `k8s\\0` + runtime.Unknown{typeMeta, raw}), as the JSON-shaped dict it means."""
    envelope = dict(_fields(raw[len(PROTOBUF_MAGIC) :]))
    type_meta = dict(_fields(envelope.get(1, b"")))  # type: ignore[arg-type]
    kind = bytes(type_meta.get(2, b"")).decode()  # type: ignore[arg-type]
    review = dict(_fields(envelope.get(2, b"")))  # type: ignore[arg-type]
    spec = dict(_fields(review.get(2, b"")))  # type: ignore[arg-type]
    if kind == "SelfSubjectRulesReview":
        return {"spec": {"namespace": bytes(spec.get(1, b"")).decode()}}  # type: ignore[arg-type]
    if 1 not in spec:
        return {"spec": {"nonResourceAttributes": {}}}
    attrs = {
        _RESOURCE_ATTRIBUTES[n]: bytes(v).decode()  # type: ignore[arg-type]
        for n, v in _fields(spec[1])  # type: ignore[arg-type]
        if n in _RESOURCE_ATTRIBUTES
    }
    return {"spec": {"resourceAttributes": attrs}}


def _body(raw: bytes) -> dict:
    if raw.startswith(PROTOBUF_MAGIC):
        try:
            return _from_protobuf(raw)
        except (ValueError, IndexError, UnicodeDecodeError) as e:
            raise bad_request(f"the object provided is unrecognized or invalid: {e}") from e
    try:
        obj = json.loads(raw or b"{}")
    except ValueError as e:
        raise bad_request(f"the object provided is unrecognized or invalid: {e}") from e
    if not isinstance(obj, dict):
        raise bad_request("the object provided is unrecognized or invalid: expected an object")
    return obj


def access_review(cluster: Cluster, raw: bytes) -> dict:
    """A SelfSubjectAccessReview, answered."""
    review = _body(raw)
    spec = review.get("spec") or {}
    attrs = spec.get("resourceAttributes")
    if attrs is None:
        ok, why = (True, "non-resource URLs are open to every authenticated identity")
    else:
        ok, why = allowed(
            cluster,
            verb=attrs.get("verb", ""),
            group=attrs.get("group", ""),
            resource=attrs.get("resource", ""),
            subresource=attrs.get("subresource", ""),
            namespace=attrs.get("namespace", ""),
        )
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        # RBAC explains an allow and leaves a denial's reason empty (kubectl prints "no")
        "status": {"allowed": ok, **({"reason": why} if ok else {})},
    }


def rules_review(cluster: Cluster, raw: bytes) -> dict:
    """A SelfSubjectRulesReview for one namespace: what the identity may do there."""
    review = _body(raw)
    ns = (review.get("spec") or {}).get("namespace") or ""
    rules: list[dict] = [
        {
            "verbs": ["create"],
            "apiGroups": [resources.AUTHZ_GROUP],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        }
    ]
    if ns not in cluster.forbidden_namespaces:
        if not cluster.forbidden_resources:
            rules.append({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
        else:
            for r in resources.RESOURCES:
                if r.group == resources.AUTHZ_GROUP:
                    continue
                names = [r.plural] + [f"{r.plural}/{s}" for s in r.subresources]
                names = [n for n in names if n not in cluster.forbidden_resources]
                if names:
                    rules.append(
                        {"verbs": list(r.verbs), "apiGroups": [r.group], "resources": names}
                    )
    return {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"namespace": ns} if ns else {},
        "status": {
            "resourceRules": rules,
            "nonResourceRules": [
                {
                    "verbs": ["get"],
                    "nonResourceURLs": [
                        "/healthz",
                        "/livez",
                        "/readyz",
                        "/version",
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                    ],
                }
            ],
            "incomplete": False,
        },
    }
