"""The authentication and authorization APIs, answered from the identity of the request and the
rules `rbac.py` enforces: SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview
(`kubectl auth can-i --list`), SelfSubjectReview (`kubectl auth whoami`) and TokenRequest
(`kubectl create token`). kubectl sends its reviews and token requests as protobuf; they are read
here as the JSON-shaped dicts they mean, and answered in JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from . import identity, rbac
from .clock import iso
from .identity import UserInfo
from .protobuf import MAGIC as PROTOBUF_MAGIC
from .protobuf import envelope, fields, message, messages, string, strings
from .status import bad_request, invalid, not_found

if TYPE_CHECKING:
    from .cluster import Cluster
    from .resources import Resource

TOO_SHORT = "may not specify a duration less than 10 minutes"
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


def _from_protobuf(raw: bytes) -> dict:
    """A SelfSubjectAccessReview, SelfSubjectRulesReview or TokenRequest as kubectl sends it, as the
    JSON-shaped dict it means."""
    _, kind, body = envelope(raw)
    spec = message(fields(body), 2)
    if kind == "TokenRequest":
        seconds = next((v for n, v in spec if n == 4), None)
        return {
            "kind": kind,
            "spec": {"audiences": strings(spec, 1) or None, "expirationSeconds": seconds},
        }
    if kind == "SelfSubjectRulesReview":
        return {"spec": {"namespace": string(spec, 1) or ""}}
    if not messages(spec, 1):
        non = message(spec, 2)
        paths = {
            key: v for key, n in (("path", 1), ("verb", 2)) if (v := string(non, n)) is not None
        }
        return {"spec": {"nonResourceAttributes": paths}}
    resource = message(spec, 1)
    attrs = {
        key: v for n, key in _RESOURCE_ATTRIBUTES.items() if (v := string(resource, n)) is not None
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


def access_review(cluster: Cluster, user: UserInfo, raw: bytes) -> dict:
    """A SelfSubjectAccessReview, answered by the authorizers that answer every request."""
    review = _body(raw)
    spec = review.get("spec") or {}
    attrs = spec.get("resourceAttributes")
    if attrs is None:
        non = spec.get("nonResourceAttributes") or {}
        asked = rbac.Attributes(user=user, verb=non.get("verb", ""), path=non.get("path", ""))
    else:
        asked = rbac.Attributes(
            user=user,
            verb=attrs.get("verb", ""),
            resource_request=True,
            group=attrs.get("group", ""),
            version=attrs.get("version", ""),
            resource=attrs.get("resource", ""),
            subresource=attrs.get("subresource", ""),
            name=attrs.get("name", ""),
            namespace=attrs.get("namespace", ""),
        )
    ok, why = rbac.authorize(cluster, asked)
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": {"allowed": ok, **({"reason": why} if why else {})},
    }


def rules_review(cluster: Cluster, user: UserInfo, raw: bytes) -> dict:
    """A SelfSubjectRulesReview for one namespace: every rule of every binding that applies."""
    review = _body(raw)
    ns = (review.get("spec") or {}).get("namespace") or ""
    resource_rules, non_resource_rules, incomplete = rbac.rules_for(cluster, user, ns)
    return {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"namespace": ns} if ns else {},
        "status": {
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": incomplete,
        },
    }


def self_review(user: UserInfo) -> dict:
    """A SelfSubjectReview (`kubectl auth whoami`): who the request authenticated as."""
    info: dict = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": info},
    }


def token_request(cluster: Cluster, res: Resource, namespace: str, name: str, raw: bytes) -> dict:
    """POST serviceaccounts/<name>/token: a token for that ServiceAccount (TokenRequest)."""
    body = _body(raw)
    spec = body.get("spec") or {}
    seconds = spec.get("expirationSeconds")
    seconds = identity.DEFAULT_SECONDS if seconds is None else seconds
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise bad_request(f"spec.expirationSeconds must be an integer, not {seconds!r}")
    if seconds < identity.MIN_SECONDS:
        raise invalid(
            res,
            name,
            [("spec.expirationSeconds", f"Invalid value: {seconds}: {TOO_SHORT}")],
        )
    seconds = min(seconds, identity.MAX_SECONDS)
    entry = cluster.store.get("/serviceaccounts", namespace, name)
    if entry is None:
        raise not_found(res, name)
    audiences = [a for a in spec.get("audiences") or [] if isinstance(a, str)] or None
    token, expires = identity.issue(cluster, entry.obj, seconds=seconds, audiences=audiences)
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {
            "audiences": audiences or [identity.ISSUER],
            "expirationSeconds": seconds,
            "boundObjectRef": None,
        },
        "status": {"token": token, "expirationTimestamp": iso(expires)},
    }
