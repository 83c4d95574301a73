"""`kubectl describe node` for the nodes in trouble: conditions with their messages, taints,
allocated requests and limits, the pods on the node, its last event; and what a failed node took
down. Pure: JSON in, tables out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd

from ..params import parse_time
from ..quantity import cpu_millicores, memory_bytes

NODE_DETAIL_COLUMNS = [
    "node",
    "ready",
    "taints",
    "conditions",
    "allocated_cpu_requests",
    "allocated_cpu_limits",
    "allocated_memory_requests",
    "allocated_memory_limits",
    "pods",
    "last_event",
]
PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def _conditions(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in (node.get("status") or {}).get("conditions") or []}


def not_ready(node: dict[str, Any]) -> bool:
    """Ready is False or Unknown (or missing)."""
    return (_conditions(node).get("Ready") or {}).get("status") != "True"


def in_trouble(node: dict[str, Any]) -> bool:
    """Not Ready (False or Unknown), or under a pressure condition."""
    conds = _conditions(node)
    if (conds.get("Ready") or {}).get("status") != "True":
        return True
    return any((conds.get(t) or {}).get("status") == "True" for t in PRESSURE)


def _sum(pod: dict[str, Any], section: str, key: str) -> float:
    total = 0.0
    for c in (pod.get("spec") or {}).get("containers") or []:
        value = ((c.get("resources") or {}).get(section) or {}).get(key)
        if value is not None:
            total += (cpu_millicores(value) if key == "cpu" else memory_bytes(value)) or 0.0
    return total


def _event_time(ev: dict[str, Any]) -> datetime | None:
    return parse_time(ev.get("lastTimestamp")) or parse_time(ev.get("eventTime"))


def node_events(events: Iterable[dict[str, Any]], node: str) -> list[dict[str, Any]]:
    """The events about a node (its involvedObject), oldest first."""
    out = [
        ev
        for ev in events
        if (ev.get("involvedObject") or {}).get("kind") == "Node"
        and (ev.get("involvedObject") or {}).get("name") == node
    ]
    return sorted(out, key=lambda e: _event_time(e) or datetime.min.astimezone())


def node_details_frame(
    nodes: Iterable[dict[str, Any]],
    pods: Iterable[dict[str, Any]],
    events: Iterable[dict[str, Any]] = (),
) -> pd.DataFrame:
    """The `node_details` scrap: `describe node` for every node not Ready or under pressure."""
    pods, events = list(pods), list(events)
    rows = []
    for node in nodes:
        if not in_trouble(node):
            continue
        name = (node.get("metadata") or {}).get("name", "")
        conds = _conditions(node)
        on_node = [
            p
            for p in pods
            if (p.get("spec") or {}).get("nodeName") == name
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        evs = node_events(events, name)
        last = evs[-1] if evs else None
        ready = conds.get("Ready") or {}
        rows.append(
            {
                "node": name,
                "ready": ready.get("status", "Unknown"),
                "taints": ", ".join(
                    f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
                    for t in (node.get("spec") or {}).get("taints") or []
                ),
                "conditions": "; ".join(
                    f"{t}={c.get('status')} ({c.get('reason', '')}: {c.get('message', '')}, "
                    f"since {c.get('lastTransitionTime', '?')})"
                    for t, c in conds.items()
                    if (t == "Ready" and c.get("status") != "True")
                    or (t != "Ready" and c.get("status") != "False")
                ),
                "allocated_cpu_requests": sum(_sum(p, "requests", "cpu") for p in on_node),
                "allocated_cpu_limits": sum(_sum(p, "limits", "cpu") for p in on_node),
                "allocated_memory_requests": sum(_sum(p, "requests", "memory") for p in on_node),
                "allocated_memory_limits": sum(_sum(p, "limits", "memory") for p in on_node),
                "pods": ", ".join(
                    f"{p['metadata'].get('namespace')}/{p['metadata'].get('name')}"
                    + (" (Terminating)" if p["metadata"].get("deletionTimestamp") else "")
                    for p in on_node
                ),
                "last_event": (
                    f"{last.get('reason')}: {last.get('message')} ({last.get('lastTimestamp')})"
                    if last
                    else ""
                ),
            }
        )
    return pd.DataFrame(rows, columns=NODE_DETAIL_COLUMNS).astype(
        {
            "allocated_cpu_requests": "float64",
            "allocated_cpu_limits": "float64",
            "allocated_memory_requests": "float64",
            "allocated_memory_limits": "float64",
        }
    )


def node_failure(
    node: dict[str, Any], pods: Iterable[dict[str, Any]], events: Iterable[dict[str, Any]] = ()
) -> dict[str, Any]:
    """What a NotReady node means for the workloads: since when, the pods it took down (not
    DaemonSet or static pods, which stay), and the pods now Pending for lack of room elsewhere."""
    name = (node.get("metadata") or {}).get("name", "")
    ready = _conditions(node).get("Ready") or {}
    pods = list(pods)
    taken = [
        p
        for p in pods
        if (p.get("spec") or {}).get("nodeName") == name
        and not any(
            r.get("kind") in ("DaemonSet", "Node")
            for r in (p.get("metadata") or {}).get("ownerReferences") or []
        )
    ]
    pending = [
        p
        for p in pods
        if not (p.get("spec") or {}).get("nodeName")
        and (p.get("status") or {}).get("phase") == "Pending"
        and any(
            c.get("reason") == "Unschedulable"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    ]
    not_ready = [e for e in node_events(events, name) if e.get("reason") == "NodeNotReady"]
    since = parse_time(ready.get("lastTransitionTime")) or (
        _event_time(not_ready[0]) if not_ready else None
    )
    return {
        "node": name,
        "status": ready.get("status", "Unknown"),
        "reason": ready.get("reason", ""),
        "message": ready.get("message", ""),
        "since": since,
        "taken_down": [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in taken],
        "pending": [
            (
                f"{p['metadata']['namespace']}/{p['metadata']['name']}",
                next(
                    (
                        c.get("message", "")
                        for c in p["status"].get("conditions") or []
                        if c.get("reason") == "Unschedulable"
                    ),
                    "",
                ),
            )
            for p in pending
        ],
    }
