"""Events as components emit them: one object per (object, reason, source), counted and
timestamped."""

from __future__ import annotations

from .clock import iso
from .objects import safe_hash
from .store import Store

KEY = "/events"


def involved(obj: dict, *, field_path: str = "") -> dict:
    """The involvedObject reference of an object."""
    meta = obj["metadata"]
    ref = {
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return ref


def build(
    obj: dict,
    *,
    reason: str,
    message: str,
    type_: str = "Normal",
    component: str,
    host: str = "",
    first: float,
    last: float | None = None,
    count: int = 1,
    field_path: str = "",
    distinct: str = "",
) -> dict:
    """A core/v1 Event about obj (`distinct` separates events of the same reason, e.g. per
    message)."""
    meta = obj["metadata"]
    ns = meta.get("namespace") or "default"
    key = "|".join([meta.get("uid") or "", reason, component, field_path, distinct])
    name = f"{meta['name']}.{safe_hash(key, 16)}"
    source = {"component": component}
    if host:
        source["host"] = host
    last = first if last is None else last
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": iso(first)},
        "involvedObject": involved(obj, field_path=field_path),
        "reason": reason,
        "message": message,
        "type": type_,
        "source": source,
        "firstTimestamp": iso(first),
        "lastTimestamp": iso(last),
        "count": count,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host,
    }


def record(store: Store, obj: dict, **kw: object) -> None:
    """Create the event or update its count/last time/message when it changed."""
    ev = build(obj, **kw)  # type: ignore[arg-type]
    meta = ev["metadata"]
    old = store.get(KEY, meta["namespace"], meta["name"])
    if old is not None:
        o = old.obj
        if (o.get("count"), o.get("lastTimestamp"), o.get("message")) == (
            ev["count"],
            ev["lastTimestamp"],
            ev["message"],
        ):
            return
        ev["metadata"]["uid"] = o["metadata"]["uid"]
        ev["metadata"]["creationTimestamp"] = o["metadata"]["creationTimestamp"]
        ev["firstTimestamp"] = o["firstTimestamp"]
    store.put(KEY, ev)


def bump(store: Store, obj: dict, *, now: float, **kw: object) -> None:
    """Record one more occurrence (count + 1) of an event, as controllers do."""
    ev = build(obj, first=now, **kw)  # type: ignore[arg-type]
    meta = ev["metadata"]
    old = store.get(KEY, meta["namespace"], meta["name"])
    if old is not None:
        ev["count"] = int(old.obj.get("count") or 1) + 1
        ev["firstTimestamp"] = old.obj["firstTimestamp"]
        ev["metadata"]["uid"] = old.obj["metadata"]["uid"]
    store.put(KEY, ev)


def killing(store: Store, pod: dict, *, now: float) -> None:
    """The kubelet's Killing event for each container of a pod being deleted."""
    node = pod["spec"].get("nodeName")
    if not node:
        return
    for c in pod["spec"].get("containers", []):
        record(
            store,
            pod,
            reason="Killing",
            component="kubelet",
            host=node,
            first=now,
            field_path=f"spec.containers{{{c['name']}}}",
            message=f"Stopping container {c['name']}",
        )
