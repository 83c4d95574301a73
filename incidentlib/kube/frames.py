"""Pure builders: the API's raw JSON (from `reads`) in, the tables the notebooks show out.

Pods as `kubectl get pods -o wide` prints them, describe-like details, Pending reasons, nodes
against requests, events grouped, deployments and their rollout history, `top`, log tails, and the
correlation sentence. No I/O and no clock but `now`: each is tested on JSON fixtures."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from ..params import parse_time
from ..quantity import cpu_millicores, memory_bytes
from .owners import owner_of, ready_complete, replicaset_owners
from .podstatus import human_duration, pod_row

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
ERROR_LINE = re.compile(
    r"\b(ERROR|FATAL|CRITICAL|PANIC|Exception|Traceback|panic:|error:|failed)\b", re.I
)

POD_COLUMNS = [
    "namespace",
    "name",
    "ready",
    "status",
    "restarts",
    "last_restart",
    "age",
    "ip",
    "node",
    "nominated_node",
    "readiness_gates",
    "owner",
    "owner_kind",
    "last_termination_reason",
    "exit_code",
    "waiting_reason",
    "waiting_message",
    "phase",
    "images",
    "created",
    "uid",
]
NODE_COLUMNS = [
    "name",
    "status",
    "roles",
    "version",
    "age",
    "internal_ip",
    "pressure",
    "pods",
    "cpu_allocatable_m",
    "cpu_requested_m",
    "cpu_requested_pct",
    "memory_allocatable",
    "memory_requested",
    "memory_requested_pct",
]
EVENT_COLUMNS = [
    "namespace",
    "type",
    "reason",
    "object",
    "message",
    "involved_kind",
    "count",
    "first_seen",
    "last_seen",
]
ROLLOUT_COLUMNS = [
    "revision",
    "change_cause",
    "images",
    "created",
    "replicas",
    "ready",
    "current",
    "replicaset",
]
TOP_POD_COLUMNS = [
    "namespace",
    "name",
    "cpu_m",
    "memory",
    "cpu_request_m",
    "cpu_limit_m",
    "memory_request",
    "memory_limit",
    "memory_pct_of_limit",
    "cpu_pct_of_limit",
]
TOP_NODE_COLUMNS = ["name", "cpu_m", "cpu_pct", "memory", "memory_pct"]
DEPLOYMENT_COLUMNS = [
    "namespace",
    "name",
    "replicas",
    "ready",
    "available",
    "updated",
    "revision",
    "images",
]
RECENT_ROLLOUT_COLUMNS = [
    "namespace",
    "deployment",
    "revision",
    "images",
    "change_cause",
    "created",
    "replicas",
    "ready",
    "current",
]


# --------------------------------------------------------------------------------------- pod tables
def _main_container_state(
    status: dict[str, Any],
) -> tuple[str | None, int | None, str | None, str | None]:
    """The most telling container: last termination reason, exit code, waiting reason and
    message."""
    statuses = list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or []
    )
    best: tuple[int, tuple[str | None, int | None, str | None, str | None]] = (
        -1,
        (None, None, None, None),
    )
    for cs in statuses:
        state = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        term = state.get("terminated") or {}
        waiting = state.get("waiting") or {}
        reason = last.get("reason") or term.get("reason")
        code = last.get("exitCode", term.get("exitCode"))
        score = (
            2 if waiting.get("reason") not in (None, "PodInitializing", "ContainerCreating") else 0
        ) + (1 if last or (term and term.get("exitCode")) else 0)
        if score > best[0]:
            best = (
                score,
                (
                    reason,
                    None if code is None else int(code),
                    waiting.get("reason"),
                    waiting.get("message"),
                ),
            )
    return best[1]


def pods_frame(
    items: Iterable[dict[str, Any]],
    *,
    now: datetime | None = None,
    replicasets: Iterable[dict[str, Any]] = (),
) -> pd.DataFrame:
    """`kubectl get pods -o wide` columns computed like kubectl, plus owner, last termination and
    waiting reason."""
    now = now or datetime.now(UTC)
    rs_owner = replicaset_owners(replicasets)
    rows = []  # tuples in POD_COLUMNS order: a frame builds faster from them than from dicts
    for pod in items:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        row = pod_row(pod, now=now)
        owner, owner_kind = owner_of(meta, rs_owner)
        reason, code, wreason, wmessage = _main_container_state(status)
        rows.append(
            (
                meta.get("namespace", ""),
                row.name,
                row.ready,
                row.status,
                row.restarts,
                row.last_restart,
                row.age,
                row.ip,
                row.node,
                row.nominated_node,
                row.readiness_gates,
                owner,
                owner_kind,
                reason,
                code,
                wreason,
                wmessage,
                status.get("phase", ""),
                ", ".join(
                    c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []
                ),
                parse_time(meta.get("creationTimestamp")),
                meta.get("uid", ""),
            )
        )
    df = pd.DataFrame(rows, columns=POD_COLUMNS)
    df["restarts"] = df["restarts"].astype("int64")
    df["exit_code"] = df["exit_code"].astype("Int64")
    for col in ("last_restart", "created"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df.sort_values(["namespace", "name"], kind="stable").reset_index(drop=True)


def unhealthy_pods(pods: pd.DataFrame) -> pd.DataFrame:
    """The runbook's `kubectl get pods -A | grep -v Running`: not Running (Completed jobs aside), or
    not ready."""
    if pods.empty:
        return pods.copy()
    mask = (~pods["status"].isin(["Running", "Completed"])) | (
        (pods["status"] == "Running") & ~pods["ready"].map(ready_complete)
    )
    return (
        pods[mask]
        .sort_values(["namespace", "restarts"], ascending=[True, False], kind="stable")
        .reset_index(drop=True)
    )


# ------------------------------------------------------------------------------------ why pods fail
_PENDING_RULES = [
    ("insufficient cpu", re.compile(r"Insufficient cpu", re.I)),
    ("insufficient memory", re.compile(r"Insufficient memory", re.I)),
    (
        "unbound volume",
        re.compile(
            r"unbound (immediate )?PersistentVolumeClaims|persistentvolumeclaim .* not found|"
            r"volume node affinity conflict",
            re.I,
        ),
    ),
    ("taint", re.compile(r"taint", re.I)),
    ("affinity", re.compile(r"affinity|node selector|didn't match Pod's node", re.I)),
    ("insufficient pods", re.compile(r"Too many pods", re.I)),
]


def classify_pending(message: str | None) -> list[str]:
    """The scheduler's reasons in words: insufficient cpu/memory, taint, affinity, unbound
    volume."""
    if not message:
        return []
    return [label for label, rx in _PENDING_RULES if rx.search(message)]


def _pod_events(
    events: Iterable[dict[str, Any]], namespace: str, name: str, uid: str | None
) -> list[dict[str, Any]]:
    out = []
    for ev in events:
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        if (
            obj.get("kind", "Pod") == "Pod"
            and obj.get("name") == name
            and (ev.get("metadata") or {}).get("namespace", obj.get("namespace")) == namespace
            and (not uid or not obj.get("uid") or obj.get("uid") == uid)
        ):
            out.append(ev)
    return sorted(out, key=lambda e: _event_last(e) or datetime.min.replace(tzinfo=UTC))


def pending_frame(
    items: Iterable[dict[str, Any]], events: Iterable[dict[str, Any]]
) -> pd.DataFrame:
    """Pending pods with the scheduler's message and its classified reasons."""
    events = list(events)
    rows = []
    for pod in items:
        status = pod.get("status") or {}
        if status.get("phase") != "Pending":
            continue
        meta = pod.get("metadata") or {}
        cond: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {}
        )
        message = cond.get("message") if cond.get("status") == "False" else None
        if not message:
            evs = [
                e
                for e in _pod_events(
                    events, meta.get("namespace", ""), meta.get("name", ""), meta.get("uid")
                )
                if e.get("reason") == "FailedScheduling"
            ]
            message = evs[-1].get("message") if evs else None
        if not message and not (pod.get("spec") or {}).get("nodeName"):
            message = "not scheduled yet (no scheduler message)"
        rows.append(
            {
                "namespace": meta.get("namespace", ""),
                "name": meta.get("name", ""),
                "scheduled": bool((pod.get("spec") or {}).get("nodeName")),
                "reasons": ", ".join(classify_pending(message))
                or ("" if message is None else "other"),
                "message": message or "",
            }
        )
    return pd.DataFrame(rows, columns=["namespace", "name", "scheduled", "reasons", "message"])


def _state_text(state: dict[str, Any] | None) -> str:
    if not state:
        return ""
    for kind in ("running", "waiting", "terminated"):
        if kind in state and state[kind] is not None:
            d = state[kind] or {}
            bits = [kind.capitalize()]
            if d.get("reason"):
                bits.append(f"reason={d['reason']}")
            if "exitCode" in d:
                bits.append(f"exit code={d['exitCode']}")
            if d.get("signal"):
                bits.append(f"signal={d['signal']}")
            if d.get("startedAt"):
                bits.append(f"started {d['startedAt']}")
            if d.get("finishedAt"):
                bits.append(f"finished {d['finishedAt']}")
            if d.get("message"):
                bits.append(f"message: {d['message']}")
            return ", ".join(bits)
    return ""


def pod_details(
    pod: dict[str, Any],
    events: Iterable[dict[str, Any]],
    *,
    previous_log: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What `kubectl describe pod` tells about a failing pod: conditions, container states, its
    events."""
    now = now or datetime.now(UTC)
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    row = pod_row(pod, now=now)
    containers = []
    for kind, key in (("init", "initContainerStatuses"), ("container", "containerStatuses")):
        for cs in status.get(key) or []:
            containers.append(
                {
                    "container": cs.get("name", ""),
                    "kind": kind,
                    "image": cs.get("image", ""),
                    "ready": bool(cs.get("ready")),
                    "restarts": int(cs.get("restartCount") or 0),
                    "state": _state_text(cs.get("state")),
                    "last_state": _state_text(cs.get("lastState")),
                }
            )
    evs = _pod_events(events, meta.get("namespace", ""), meta.get("name", ""), meta.get("uid"))
    return {
        "namespace": meta.get("namespace", ""),
        "name": row.name,
        "status": row.status,
        "ready": row.ready,
        "restarts": row.restarts,
        "node": row.node,
        "message": status.get("message") or "",
        "reason": status.get("reason") or "",
        "conditions": pd.DataFrame(
            [
                {
                    "type": c.get("type"),
                    "status": c.get("status"),
                    "reason": c.get("reason") or "",
                    "message": c.get("message") or "",
                }
                for c in status.get("conditions") or []
            ],
            columns=["type", "status", "reason", "message"],
        ),
        "containers": pd.DataFrame(
            containers,
            columns=["container", "kind", "image", "ready", "restarts", "state", "last_state"],
        ),
        "events": events_frame(evs, since=None, now=now)[
            ["type", "reason", "message", "count", "last_seen"]
        ],
        "previous_log": previous_log,
    }


# -------------------------------------------------------------------------------------------- nodes
def _node_roles(labels: dict[str, str]) -> str:
    roles = sorted(
        {
            k.split("/", 1)[1]
            for k in labels
            if k.startswith("node-role.kubernetes.io/") and "/" in k
        }
        | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set())
    )
    return ",".join(r for r in roles if r) or "<none>"


def _requests(pod: dict[str, Any]) -> tuple[float, float]:
    """A pod's effective cpu (m) and memory (bytes) requests, the scheduler's way (max of init, sum
    of app)."""
    spec = pod.get("spec") or {}

    def req(c: dict[str, Any]) -> tuple[float, float]:
        r = (c.get("resources") or {}).get("requests") or {}
        return cpu_millicores(r.get("cpu")) or 0.0, memory_bytes(r.get("memory")) or 0.0

    cpu = mem = 0.0
    for c in spec.get("containers") or []:
        a, b = req(c)
        cpu, mem = cpu + a, mem + b
    for c in spec.get("initContainers") or []:
        a, b = req(c)
        cpu, mem = max(cpu, a), max(mem, b)
    return cpu, mem


def nodes_frame(
    nodes: Iterable[dict[str, Any]],
    pods: Iterable[dict[str, Any]] = (),
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    """`kubectl get nodes -o wide` plus pressure conditions and requested vs allocatable (`describe
    node`)."""
    now = now or datetime.now(UTC)
    per_node: dict[str, list[float]] = {}
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or phase in ("Succeeded", "Failed"):
            continue
        cpu, mem = _requests(pod)
        acc = per_node.setdefault(node, [0.0, 0.0, 0])
        acc[0] += cpu
        acc[1] += mem
        acc[2] += 1
    rows = []
    for node in nodes:
        meta, spec, status = (
            node.get("metadata") or {},
            node.get("spec") or {},
            node.get("status") or {},
        )
        conds = {c.get("type"): c for c in status.get("conditions") or []}
        ready = conds.get("Ready")
        state = (
            ["Unknown"]
            if ready is None
            else ["Ready" if ready.get("status") == "True" else "NotReady"]
        )
        if spec.get("unschedulable"):
            state.append("SchedulingDisabled")
        pressure = [
            t
            for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
            if (conds.get(t) or {}).get("status") == "True"
        ]
        alloc = status.get("allocatable") or {}
        cpu_alloc, mem_alloc = cpu_millicores(alloc.get("cpu")), memory_bytes(alloc.get("memory"))
        cpu_req, mem_req, count = per_node.get(meta.get("name", ""), [0.0, 0.0, 0])
        ip = next(
            (
                a.get("address")
                for a in status.get("addresses") or []
                if a.get("type") == "InternalIP"
            ),
            "",
        )
        created = parse_time(meta.get("creationTimestamp"))
        rows.append(
            {
                "name": meta.get("name", ""),
                "status": ",".join(state),
                "roles": _node_roles(meta.get("labels") or {}),
                "version": (status.get("nodeInfo") or {}).get("kubeletVersion", ""),
                "age": human_duration((now - created).total_seconds()) if created else "<unknown>",
                "internal_ip": ip,
                "pressure": ",".join(pressure),
                "pods": int(count),
                "cpu_allocatable_m": cpu_alloc,
                "cpu_requested_m": cpu_req,
                "cpu_requested_pct": round(100 * cpu_req / cpu_alloc, 1) if cpu_alloc else None,
                "memory_allocatable": mem_alloc,
                "memory_requested": mem_req,
                "memory_requested_pct": round(100 * mem_req / mem_alloc, 1) if mem_alloc else None,
            }
        )
    df = pd.DataFrame(rows, columns=NODE_COLUMNS)
    for col in (
        "cpu_allocatable_m",
        "cpu_requested_m",
        "cpu_requested_pct",
        "memory_allocatable",
        "memory_requested",
        "memory_requested_pct",
    ):
        df[col] = df[col].astype("float64")
    return df


# ------------------------------------------------------------------------------------------- events
def _event_last(ev: dict[str, Any]) -> datetime | None:
    series = ev.get("series") or {}
    return (
        parse_time(ev.get("lastTimestamp"))
        or parse_time(series.get("lastObservedTime"))
        or parse_time(ev.get("eventTime"))
        or parse_time((ev.get("metadata") or {}).get("creationTimestamp"))
    )


def _event_first(ev: dict[str, Any]) -> datetime | None:
    return (
        parse_time(ev.get("firstTimestamp")) or parse_time(ev.get("eventTime")) or _event_last(ev)
    )


def _event_count(ev: dict[str, Any]) -> int:
    return int(ev.get("count") or (ev.get("series") or {}).get("count") or 1)


def events_frame(
    items: Iterable[dict[str, Any]],
    *,
    since: timedelta | None,
    now: datetime | None = None,
    namespace: str | None = None,
) -> pd.DataFrame:
    """Events whose last occurrence is within `since`, repeats grouped with their count, warnings
    first; `namespace` and `involved_kind` say where each lives and what it is about (a Node's
    events live in `default`)."""
    now = now or datetime.now(UTC)
    cutoff = now - since if since else None
    groups: dict[tuple[str, str, str, str, str, str], dict[str, Any]] = {}
    for ev in items:
        last = _event_last(ev)
        if cutoff is not None and (last is None or last < cutoff):
            continue
        ns = (ev.get("metadata") or {}).get("namespace", "")
        if namespace and ns != namespace:
            continue
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        key = (
            ns,
            ev.get("type") or "Normal",
            ev.get("reason") or "",
            f"{(obj.get('kind') or '').lower()}/{obj.get('name', '')}",
            ev.get("message") or ev.get("note") or "",
            obj.get("kind") or "",
        )
        g = groups.get(key)
        first = _event_first(ev)
        if g is None:
            groups[key] = {"count": _event_count(ev), "first_seen": first, "last_seen": last}
        else:
            g["count"] += _event_count(ev)
            if first and (g["first_seen"] is None or first < g["first_seen"]):
                g["first_seen"] = first
            if last and (g["last_seen"] is None or last > g["last_seen"]):
                g["last_seen"] = last
    rows = [dict(zip(EVENT_COLUMNS[:6], k, strict=True), **v) for k, v in groups.items()]
    df = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    df["count"] = df["count"].astype("int64")
    for col in ("first_seen", "last_seen"):
        df[col] = pd.to_datetime(df[col], utc=True)
    df["_warn"] = (df["type"] != "Warning").astype(int)
    df = df.sort_values(
        ["_warn", "last_seen"], ascending=[True, False], kind="stable", na_position="last"
    )
    return df.drop(columns="_warn").reset_index(drop=True)


# ----------------------------------------------------------------------------------------- rollouts
def owned_replicasets(
    deployment: dict[str, Any], replicasets: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """kubectl's rule: only ReplicaSets whose controller ownerReference uid is the deployment's."""
    uid = (deployment.get("metadata") or {}).get("uid")
    out = []
    for rs in replicasets:
        refs = (rs.get("metadata") or {}).get("ownerReferences") or []
        if any(r.get("controller") and r.get("uid") == uid for r in refs):
            out.append(rs)
    return out


def revision_of(obj: dict[str, Any]) -> int | None:
    """The `deployment.kubernetes.io/revision` annotation of a deployment or ReplicaSet, as a
    number."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def template_images(template: dict[str, Any]) -> list[str]:
    return [c.get("image", "") for c in ((template.get("spec") or {}).get("containers") or [])]


def rollouts_frame(
    deployment: dict[str, Any], replicasets: Iterable[dict[str, Any]]
) -> pd.DataFrame:
    """`kubectl rollout history` with images, created, replicas and readiness per revision (oldest
    first)."""
    current = revision_of(deployment)
    rows = []
    for rs in owned_replicasets(deployment, replicasets):
        rev = revision_of(rs)
        if rev is None:
            continue
        meta, spec, status = rs.get("metadata") or {}, rs.get("spec") or {}, rs.get("status") or {}
        rows.append(
            {
                "revision": rev,
                "change_cause": (meta.get("annotations") or {}).get(CHANGE_CAUSE) or "<none>",
                "images": ", ".join(template_images(spec.get("template") or {})),
                "created": parse_time(meta.get("creationTimestamp")),
                "replicas": int(spec.get("replicas") or 0),
                "ready": int(status.get("readyReplicas") or 0),
                "current": rev == current,
                "replicaset": meta.get("name", ""),
            }
        )
    df = pd.DataFrame(rows, columns=ROLLOUT_COLUMNS)
    df["revision"] = df["revision"].astype("int64")
    df["created"] = pd.to_datetime(df["created"], utc=True)
    for col in ("replicas", "ready"):
        df[col] = df[col].astype("int64")
    df["current"] = df["current"].astype(bool)
    return df.sort_values("revision", kind="stable").reset_index(drop=True)


def image_diff(
    rollouts: pd.DataFrame, *, current: int | None = None, previous: int | None = None
) -> pd.DataFrame:
    """Images that changed between two revisions (default: the current one and the one before
    it)."""
    cols = ["container_index", "from_revision", "to_revision", "from_image", "to_image"]
    if rollouts.empty:
        return pd.DataFrame(columns=cols)
    revs = list(rollouts["revision"])
    if current is None:
        cur = rollouts[rollouts["current"]]
        current = int(cur["revision"].iloc[0]) if len(cur) else int(max(revs))
    if previous is None:
        older = [r for r in revs if r < current]
        if not older:
            return pd.DataFrame(columns=cols)
        previous = max(older)
    by_rev = {
        int(r): str(i).split(", ")
        for r, i in zip(rollouts["revision"], rollouts["images"], strict=True)
    }
    a, b = by_rev.get(previous, []), by_rev.get(current, [])
    rows = [
        {
            "container_index": i,
            "from_revision": previous,
            "to_revision": current,
            "from_image": a[i] if i < len(a) else "",
            "to_image": b[i] if i < len(b) else "",
        }
        for i in range(max(len(a), len(b)))
        if (a[i] if i < len(a) else "") != (b[i] if i < len(b) else "")
    ]
    return pd.DataFrame(rows, columns=cols)


# ------------------------------------------------------------------------------------- resource use
def _limits(pod: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        "cpu_request_m": 0.0,
        "cpu_limit_m": 0.0,
        "memory_request": 0.0,
        "memory_limit": 0.0,
    }
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        for key, kind, fn in (
            ("cpu_request_m", "requests", cpu_millicores),
            ("cpu_limit_m", "limits", cpu_millicores),
            ("memory_request", "requests", memory_bytes),
            ("memory_limit", "limits", memory_bytes),
        ):
            unit = "cpu" if key.startswith("cpu") else "memory"
            v = fn((res.get(kind) or {}).get(unit))
            if v is None:
                if kind == "limits":
                    out[key] = None  # one container without a limit: the pod has none
            elif out[key] is not None:
                out[key] = (out[key] or 0.0) + v
    return {k: (v if v else None) for k, v in out.items()}


def top_pods_frame(
    metrics: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]] = ()
) -> pd.DataFrame:
    """`kubectl top pods` against each pod's requests and limits, highest memory share of limit
    first."""
    specs = {
        ((p.get("metadata") or {}).get("namespace"), (p.get("metadata") or {}).get("name")): p
        for p in pods
    }
    rows = []
    for m in metrics:
        meta = m.get("metadata") or {}
        cpu = sum(
            cpu_millicores((c.get("usage") or {}).get("cpu")) or 0.0
            for c in m.get("containers") or []
        )
        mem = sum(
            memory_bytes((c.get("usage") or {}).get("memory")) or 0.0
            for c in m.get("containers") or []
        )
        lim = _limits(specs.get((meta.get("namespace"), meta.get("name")), {}))
        rows.append(
            {
                "namespace": meta.get("namespace", ""),
                "name": meta.get("name", ""),
                "cpu_m": cpu,
                "memory": mem,
                **lim,
                "memory_pct_of_limit": round(100 * mem / lim["memory_limit"], 1)
                if lim["memory_limit"]
                else None,
                "cpu_pct_of_limit": round(100 * cpu / lim["cpu_limit_m"], 1)
                if lim["cpu_limit_m"]
                else None,
            }
        )
    df = pd.DataFrame(rows, columns=TOP_POD_COLUMNS)
    for col in TOP_POD_COLUMNS[2:]:
        df[col] = df[col].astype("float64")
    return df.sort_values(
        ["memory_pct_of_limit", "memory"], ascending=False, kind="stable", na_position="last"
    ).reset_index(drop=True)


def top_nodes_frame(
    metrics: Iterable[dict[str, Any]], nodes: Iterable[dict[str, Any]]
) -> pd.DataFrame:
    """`kubectl top nodes`: usage and its share of allocatable."""
    alloc = {
        (n.get("metadata") or {}).get("name"): (n.get("status") or {}).get("allocatable") or {}
        for n in nodes
    }
    rows = []
    for m in metrics:
        name = (m.get("metadata") or {}).get("name", "")
        usage = m.get("usage") or {}
        cpu, mem = cpu_millicores(usage.get("cpu")) or 0.0, memory_bytes(usage.get("memory")) or 0.0
        a = alloc.get(name, {})
        ca, ma = cpu_millicores(a.get("cpu")), memory_bytes(a.get("memory"))
        rows.append(
            {
                "name": name,
                "cpu_m": cpu,
                "cpu_pct": round(100 * cpu / ca, 1) if ca else None,
                "memory": mem,
                "memory_pct": round(100 * mem / ma, 1) if ma else None,
            }
        )
    df = pd.DataFrame(rows, columns=TOP_NODE_COLUMNS)
    for col in TOP_NODE_COLUMNS[1:]:
        df[col] = df[col].astype("float64")
    return df.sort_values("name", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------- logs
def log_frame(text: str, *, pod: str = "", container: str = "") -> pd.DataFrame:
    """Log lines with `is_error` set on ERROR/FATAL/Exception/panic lines."""
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return pd.DataFrame(
        {
            "pod": pod,
            "container": container,
            "line": lines,
            "is_error": [bool(ERROR_LINE.search(ln)) for ln in lines],
        },
        columns=["pod", "container", "line", "is_error"],
    )


# -------------------------------------------------------------------------------------- correlation
def _clock(ts: Any) -> str:
    return pd.Timestamp(ts).strftime("%H:%M") if ts is not None and not pd.isna(ts) else "?"


def correlate(
    rollouts: pd.DataFrame,
    pods: pd.DataFrame,
    *,
    deployment: str,
    events: pd.DataFrame | None = None,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """The sentence a person acts on: which revision rolled out when, what its pods did since, what
    to roll back to.

    Returns None when the current revision's pods are healthy; else {sentence, revision, previous,
    image, ...}."""
    now = now or datetime.now(UTC)
    if rollouts.empty:
        return None
    cur = rollouts[rollouts["current"]]
    if cur.empty:
        return None
    cur_row = cur.iloc[-1]
    revision = int(cur_row["revision"])
    mine = pods[pods["owner"] == deployment] if not pods.empty else pods
    # pods of the current revision: those whose ReplicaSet is the current one (name prefix), else
    # all of them
    rs_name = str(cur_row["replicaset"])
    of_rev = mine[mine["name"].str.startswith(rs_name + "-")] if len(mine) else mine
    if of_rev.empty:
        of_rev = mine
    failing = (
        of_rev[~of_rev["status"].isin(["Running", "Completed"]) | (of_rev["restarts"] > 0)]
        if len(of_rev)
        else of_rev
    )
    if of_rev.empty or failing.empty:
        return None
    statuses = sorted(set(failing["status"]))
    codes = sorted({int(c) for c in failing["exit_code"].dropna()})
    first_failure = (
        failing["last_restart"].dropna().min() if failing["last_restart"].notna().any() else None
    )
    if events is not None and len(events):
        objects = {f"pod/{n}" for n in failing["name"]}
        warned = events[(events["type"] == "Warning") & events["object"].isin(objects)][
            "first_seen"
        ].dropna()
        if len(warned) and (first_failure is None or warned.min() < first_failure):
            first_failure = warned.min()
    older = rollouts[rollouts["revision"] < revision]
    prev = older.iloc[-1] if len(older) else None
    every = "every pod" if len(failing) == len(of_rev) else f"{len(failing)} of {len(of_rev)} pods"
    what = " / ".join(statuses)
    verb = "has crash-looped" if "CrashLoopBackOff" in statuses else f"has been {what}"
    since_txt = f" since {_clock(first_failure)}" if first_failure is not None else ""
    code_txt = f" with exit code {', '.join(map(str, codes))}" if codes else ""
    sentence = (
        f"revision {revision} (image {cur_row['images']}) rolled out at "
        f"{_clock(cur_row['created'])}; "
        f"{every} of it {verb}{since_txt}{code_txt}"
    )
    result: dict[str, Any] = {
        "revision": revision,
        "image": cur_row["images"],
        "previous": None,
        "previous_image": None,
        "failing_pods": len(failing),
        "pods": len(of_rev),
        "exit_codes": codes,
        "statuses": statuses,
        "rolled_out_at": cur_row["created"],
        "first_failure": first_failure,
    }
    if prev is not None:
        ran = (
            (pd.Timestamp(cur_row["created"]) - pd.Timestamp(prev["created"])).total_seconds()
            if not pd.isna(prev["created"]) and not pd.isna(cur_row["created"])
            else None
        )
        ran_txt = f" ran {_long_duration(ran)}" if ran is not None else " ran before it"
        prev_pods = (
            mine[mine["name"].str.startswith(str(prev["replicaset"]) + "-")] if len(mine) else mine
        )
        if len(prev_pods):
            n = int(prev_pods["restarts"].sum())
            restarts_txt = " without restarts" if n == 0 else f" with {n} restarts"
        else:  # its pods are gone: only warning events can still tell
            warned = 0
            if events is not None and len(events):
                old_pods = events["object"].str.startswith(f"pod/{prev['replicaset']}-")
                warned = int(events[(events["type"] == "Warning") & old_pods]["count"].sum())
            restarts_txt = (
                " with no restarts on record"
                if warned == 0
                else f" with {warned} warning events on record"
            )
        sentence += f"; revision {int(prev['revision'])}{ran_txt}{restarts_txt}: roll back"
        result.update(previous=int(prev["revision"]), previous_image=prev["images"])
    result["sentence"] = sentence
    return result


def _long_duration(seconds: float) -> str:
    if seconds >= 1.5 * 86400:
        return f"{round(seconds / 86400)} days"
    if seconds >= 1.5 * 3600:
        return f"{round(seconds / 3600)} hours"
    return f"{max(int(seconds // 60), 0)} minutes"


def deployments_frame(items: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """`kubectl get deployments`: desired, ready, available and updated replicas, revision and
    images."""
    rows = []
    for d in items:
        meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
        rev = (meta.get("annotations") or {}).get(REVISION)
        rows.append(
            {
                "namespace": meta.get("namespace", ""),
                "name": meta.get("name", ""),
                "replicas": 1
                if spec.get("replicas") is None
                else int(spec["replicas"]),  # the API's default
                "ready": int(status.get("readyReplicas") or 0),
                "available": int(status.get("availableReplicas") or 0),
                "updated": int(status.get("updatedReplicas") or 0),
                "revision": int(rev) if rev and str(rev).isdigit() else None,
                "images": ", ".join(template_images(spec.get("template") or {})),
            }
        )
    df = pd.DataFrame(rows, columns=DEPLOYMENT_COLUMNS)
    for col in ("replicas", "ready", "available", "updated"):
        df[col] = df[col].astype("int64")
    df["revision"] = df["revision"].astype("Int64")
    return df.sort_values(["namespace", "name"], kind="stable").reset_index(drop=True)


def _controller(meta: Mapping[str, Any], kind: str) -> str | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return str(ref.get("name"))
    return None


def recent_rollouts_frame(
    replicasets: Iterable[Mapping[str, Any]],
    *,
    deployments: Iterable[Mapping[str, Any]] = (),
    limit: int = 10,
) -> pd.DataFrame:
    """The last rollouts (one row per ReplicaSet revision of a deployment), newest first, at most
    `limit`."""
    current = {
        ((d.get("metadata") or {}).get("namespace"), (d.get("metadata") or {}).get("name")): (
            (d.get("metadata") or {}).get("annotations") or {}
        ).get(REVISION)
        for d in deployments
    }
    rows = []
    for rs in replicasets:
        meta, spec, status = rs.get("metadata") or {}, rs.get("spec") or {}, rs.get("status") or {}
        owner = _controller(meta, "Deployment")
        rev = (meta.get("annotations") or {}).get(REVISION)
        if owner is None or not rev or not str(rev).isdigit():
            continue
        ns = meta.get("namespace", "")
        rows.append(
            {
                "namespace": ns,
                "deployment": owner,
                "revision": int(rev),
                "images": ", ".join(template_images(spec.get("template") or {})),
                "change_cause": (meta.get("annotations") or {}).get(CHANGE_CAUSE) or "<none>",
                "created": meta.get("creationTimestamp"),
                "replicas": int(spec.get("replicas") or 0),
                "ready": int(status.get("readyReplicas") or 0),
                "current": current.get((ns, owner)) == str(rev) if (ns, owner) in current else None,
            }
        )
    df = pd.DataFrame(rows, columns=RECENT_ROLLOUT_COLUMNS)
    df["created"] = pd.to_datetime(df["created"], utc=True)
    for col in ("revision", "replicas", "ready"):
        df[col] = df[col].astype("int64")
    df["current"] = df["current"].astype("boolean")
    df = df.sort_values(["created", "revision"], ascending=False, kind="stable", na_position="last")
    return df.head(limit).reset_index(drop=True)
