"""The Kubernetes REST verbs over the store: get, list, create, replace, patch, delete, and the
scale and status subresources. Functions return (status code, JSON-able body) or raise ApiError."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass

from . import events, protobuf, validation
from . import patch as patching
from .clock import iso
from .cluster import Cluster
from .objects import controller_uid
from .resources import Resource
from .selectors import SelectorError, parse_fields, parse_labels
from .status import ApiError, already_exists, bad_request, conflict, invalid, not_found
from .store import Entry, rkey


@dataclass
class Target:
    """What a resource path points at."""

    res: Resource
    namespace: str | None  # None: all namespaces (or a cluster-scoped resource)
    name: str | None = None
    sub: str | None = None


def parse_bool(value: str | None) -> bool:
    """Go's strconv.ParseBool (clients send True, true, 1...)."""
    if value is None or value == "":
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def _key(obj: dict) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def select(cluster: Cluster, t: Target, query: dict[str, str]) -> list[Entry]:
    """The entries a list or watch selects (label and field selectors)."""
    try:
        by_label = parse_labels(query.get("labelSelector"))
        by_field = parse_fields(query.get("fieldSelector"))
    except SelectorError as e:
        raise bad_request(str(e)) from e
    entries = cluster.store.entries(rkey(t.res), t.namespace)
    if query.get("labelSelector"):
        entries = [e for e in entries if by_label(e.obj["metadata"].get("labels") or {})]
    if query.get("fieldSelector"):
        entries = [e for e in entries if by_field(e.obj)]
    return entries


def page(entries: list[Entry], query: dict[str, str], rv: int) -> tuple[list[Entry], dict]:
    """Apply limit/continue; return the page and the list metadata."""
    meta: dict = {"resourceVersion": str(rv)}
    token = query.get("continue")
    if token:
        try:
            state = json.loads(base64.urlsafe_b64decode(token.encode()))
            after = state["k"]
        except (ValueError, KeyError, TypeError) as e:
            raise bad_request(f"continue key is not valid: {e}") from e
        meta["resourceVersion"] = str(state.get("rv", rv))
        entries = [e for e in entries if _key(e.obj) > after]
    limit = query.get("limit")
    if limit:
        try:
            n = int(limit)
        except ValueError as e:
            raise bad_request(f"invalid limit {limit!r}") from e
        if 0 < n < len(entries):
            rest = len(entries) - n
            entries = entries[:n]
            state = {"k": _key(entries[-1].obj), "rv": int(meta["resourceVersion"])}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            meta["remainingItemCount"] = rest
    return entries, meta


def list_body(t: Target, entries: list[Entry], meta: dict) -> bytes:
    """A <Kind>List assembled around the stored serializations."""
    head = json.dumps(
        {"kind": t.res.list_kind_name, "apiVersion": t.res.api_version, "metadata": meta},
        separators=(",", ":"),
    )
    return (head[:-1] + ',"items":[').encode() + b",".join(e.raw for e in entries) + b"]}"


def get_entry(cluster: Cluster, t: Target) -> Entry:
    entry = cluster.store.get(rkey(t.res), t.namespace or "", t.name or "")
    if entry is None:
        raise not_found(t.res, t.name or "")
    return entry


def scale_of(obj: dict) -> dict:
    """The autoscaling/v1 Scale of a deployment or ReplicaSet."""
    meta = obj["metadata"]
    sel = ",".join(
        f"{k}={v}"
        for k, v in sorted(((obj["spec"].get("selector") or {}).get("matchLabels") or {}).items())
    )
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": sel},
    }


def _parse_body(body: bytes) -> object:
    """A request's object: JSON, or the protobuf kubectl sends the objects `kubectl create` builds
    (`protobuf.py`)."""
    try:
        if body.startswith(protobuf.MAGIC):
            return protobuf.decode_object(body)
        return json.loads(body or b"null")
    except (ValueError, IndexError) as e:  # UnicodeDecodeError is a ValueError
        raise bad_request(f"the object provided is unrecognized or invalid: {e}") from e


def _check_ns(cluster: Cluster, t: Target) -> None:
    if (
        t.res.namespaced
        and t.namespace is not None
        and cluster.store.get("/namespaces", "", t.namespace) is None
    ):
        raise ApiError(
            404,
            "NotFound",
            f'namespaces "{t.namespace}" not found',
            details={"name": t.namespace, "kind": "namespaces"},
        )


def create(cluster: Cluster, t: Target, body: bytes, query: dict[str, str]) -> dict:
    """POST: store a new object and answer it (201)."""
    obj = _parse_body(body)
    if not isinstance(obj, dict):
        raise bad_request("the object provided is unrecognized or invalid: expected a JSON object")
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if kind not in (None, t.res.kind) or api_version not in (None, t.res.api_version):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({t.res.api_version}) or kind {kind!r} is not {t.res.kind!r}"
        )
    obj["kind"], obj["apiVersion"] = t.res.kind, t.res.api_version
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    if t.res.namespaced:
        if meta.get("namespace") not in (None, "", t.namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        meta["namespace"] = t.namespace
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + "".join(
            cluster.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)
        )
    for k in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"):
        meta.pop(k, None)
    validation.validate(t.res, obj)
    _check_ns(cluster, t)
    with cluster.store.lock:
        if cluster.store.get(rkey(t.res), meta.get("namespace", ""), meta["name"]) is not None:
            raise already_exists(t.res, meta["name"])
        obj = validation.defaults(t.res, obj, now=cluster.now())
        if "All" in query.get("dryRun", ""):
            return obj
        entry = cluster.store.put(rkey(t.res), obj)
        answer = json.loads(entry.raw)
        cluster.sync(force=True)
    return answer


def _spec_changed(old: dict, new: dict) -> bool:
    return old.get("spec") != new.get("spec")


def _store_update(
    cluster: Cluster, t: Target, old: dict, new: dict, *, status_only: bool = False
) -> dict:
    """Validate and store a new version of an existing object; answer it."""
    meta_old, meta = old["metadata"], new.setdefault("metadata", {})
    if meta.get("name") != meta_old["name"]:
        raise bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL "
            f"({meta_old['name']})"
        )
    if t.res.namespaced and meta.get("namespace", meta_old.get("namespace")) != meta_old.get(
        "namespace"
    ):
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if meta.get("resourceVersion") and meta["resourceVersion"] != meta_old["resourceVersion"]:
        raise conflict(t.res, meta_old["name"])
    for k in (
        "uid",
        "creationTimestamp",
        "namespace",
        "ownerReferences",
        "generateName",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ):
        if k in meta_old and k != "ownerReferences":
            meta[k] = meta_old[k]
    if status_only:
        merged = copy.deepcopy(old)
        merged["status"] = new.get("status", {})
        new = merged
    else:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        new["kind"], new["apiVersion"] = t.res.kind, t.res.api_version
        validation.validate(t.res, new)
        if "generation" in meta_old:
            meta["generation"] = int(meta_old["generation"]) + (1 if _spec_changed(old, new) else 0)
    entry = cluster.store.put(rkey(t.res), new)
    if status_only and t.res.kind == "Pod":
        cluster.store.pinned_status.add(meta_old["uid"])
    answer = json.loads(entry.raw)
    if meta.get("deletionTimestamp") and not meta.get(
        "finalizers"
    ):  # the last finalizer is gone: delete it now
        cluster.store.delete(rkey(t.res), meta_old.get("namespace", ""), meta_old["name"])
        _collect_garbage(cluster, meta_old["uid"])
    cluster.sync(force=True)
    return answer


def replace(cluster: Cluster, t: Target, body: bytes) -> dict:
    """PUT: replace an object (or its status, or its scale)."""
    new = _parse_body(body)
    if not isinstance(new, dict):
        raise bad_request("the object provided is unrecognized or invalid: expected a JSON object")
    with cluster.store.lock:
        old = get_entry(cluster, t).obj
        if t.sub == "scale":
            replicas = (new.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise invalid(
                    t.res,
                    t.name or "",
                    [
                        (
                            "spec.replicas",
                            f"Invalid value: {replicas}: must be greater than or equal to 0",
                        )
                    ],
                )
            updated = copy.deepcopy(old)
            updated["spec"]["replicas"] = replicas
            updated["metadata"].pop("resourceVersion", None)
            return scale_of(_store_update(cluster, t, old, updated))
        return _store_update(cluster, t, old, new, status_only=t.sub == "status")


def patch(cluster: Cluster, t: Target, body: bytes, content_type: str) -> dict:
    """PATCH with a JSON, merge or strategic merge patch (on the object, its status or its
    scale)."""
    ct = content_type.split(";")[0].strip()
    if ct not in (patching.JSON_PATCH, patching.MERGE_PATCH, patching.STRATEGIC_PATCH):
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - "
            f"accepted media types include: {patching.JSON_PATCH}, {patching.MERGE_PATCH}, "
            f"{patching.STRATEGIC_PATCH}",
        )
    doc = _parse_body(body)
    with cluster.store.lock:
        old = get_entry(cluster, t).obj
        base = scale_of(old) if t.sub == "scale" else copy.deepcopy(old)
        try:
            new = patching.apply_patch(ct, base, doc)
        except patching.PatchError as e:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {e}",
            ) from e
        if t.sub == "scale":
            replicas = (new.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise invalid(
                    t.res,
                    t.name or "",
                    [
                        (
                            "spec.replicas",
                            f"Invalid value: {replicas}: must be greater than or equal to 0",
                        )
                    ],
                )
            updated = copy.deepcopy(old)
            updated["spec"]["replicas"] = replicas
            updated["metadata"].pop("resourceVersion", None)
            return scale_of(_store_update(cluster, t, old, updated))
        if new.get("metadata", {}).get("resourceVersion") == old["metadata"].get("resourceVersion"):
            new["metadata"].pop("resourceVersion", None)
        if t.sub != "status" and "status" in new and new.get("status") != old.get("status"):
            new["status"] = old.get("status")
        return _store_update(cluster, t, old, new, status_only=t.sub == "status")


def delete(cluster: Cluster, t: Target) -> dict:
    """DELETE: remove an object (and what it owns) and answer the deleted object."""
    with cluster.store.lock:
        entry = get_entry(cluster, t)
        if entry.obj["metadata"].get(
            "finalizers"
        ):  # as a real server: mark it deleted, keep it until they are gone
            return _mark_deleted(cluster, t, entry.obj)
        gone = cluster.store.delete(rkey(t.res), t.namespace or "", t.name or "")
        assert gone is not None
        if t.res.kind == "Pod":
            events.killing(cluster.store, entry.obj, now=cluster.now())
        _collect_garbage(cluster, entry.obj["metadata"]["uid"])
        if t.res.kind == "Namespace":
            for key in list(cluster.store._data):
                for e in cluster.store.entries(key, t.name):
                    cluster.store.delete(key, t.name or "", e.obj["metadata"]["name"])
        answer = json.loads(gone.raw)
        answer["metadata"]["deletionTimestamp"] = iso(cluster.now())
        cluster.sync(force=True)
    return answer


def _mark_deleted(cluster: Cluster, t: Target, obj: dict) -> dict:
    if obj["metadata"].get("deletionTimestamp"):
        return copy.deepcopy(obj)
    pending = copy.deepcopy(obj)
    pending["metadata"]["deletionTimestamp"] = iso(cluster.now())
    pending["metadata"]["deletionGracePeriodSeconds"] = 30 if t.res.kind == "Pod" else 0
    pending["metadata"].pop("resourceVersion", None)
    entry = cluster.store.put(rkey(t.res), pending)
    if t.res.kind == "Pod":
        events.killing(cluster.store, pending, now=cluster.now())
    cluster.sync(force=True)
    return json.loads(entry.raw)


def delete_collection(cluster: Cluster, t: Target, query: dict[str, str]) -> dict:
    """DELETE on a collection: remove what the selectors select; answer the list of deleted
    objects."""
    items = []
    with cluster.store.lock:
        for entry in select(cluster, t, query):
            meta = entry.obj["metadata"]
            items.append(
                delete(cluster, Target(t.res, meta.get("namespace") or None, meta["name"]))
            )
    return {
        "kind": t.res.list_kind_name,
        "apiVersion": t.res.api_version,
        "metadata": {"resourceVersion": str(cluster.store.rv)},
        "items": items,
    }


def _collect_garbage(cluster: Cluster, owner_uid: str) -> None:
    for key in ("apps/replicasets", "/pods"):
        for e in cluster.store.entries(key):
            if controller_uid(e.obj) == owner_uid:
                cluster.store.delete(key, e.obj["metadata"]["namespace"], e.obj["metadata"]["name"])
                _collect_garbage(cluster, e.obj["metadata"]["uid"])
