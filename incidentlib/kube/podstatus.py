"""kubectl's READY / STATUS / RESTARTS / AGE columns for a pod, computed from its raw JSON.

A line-by-line port of `printPod` in k8s.io/kubernetes/pkg/printers/internalversion/printers.go
(Kubernetes 1.32, the server-side Table that `kubectl get pods` prints) and of apimachinery's
`duration.HumanDuration`. Pure: no cluster, no clock unless `now` is left out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..params import parse_time

NODE_UNREACHABLE_REASON = "NodeLost"  # k8s.io/kubernetes/pkg/util/node.NodeUnreachablePodReason
SCHEDULING_GATED = "SchedulingGated"


@dataclass(frozen=True)
class PodRow:
    """What `kubectl get pods -o wide` prints for one pod, plus the raw restart figures."""

    name: str
    ready: str  # "2/3"
    status: str  # kubectl's STATUS column
    restarts: int
    restarts_text: str  # "2 (5m ago)"
    last_restart: datetime | None
    age: str
    ip: str
    node: str
    nominated_node: str
    readiness_gates: str


def human_duration(seconds: float) -> str:
    """apimachinery's HumanDuration: ~2-3 significant figures (`45s`, `5m30s`, `3h4m`, `2d5h`,
    `1y3d`)."""
    s = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _since(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "<unknown>"
    return human_duration((now - ts).total_seconds())


def is_restartable_init_container(container: dict[str, Any] | None) -> bool:
    """A sidecar: an init container with `restartPolicy: Always`."""
    return bool(container) and (container or {}).get("restartPolicy") == "Always"


def _condition_true(conditions: list[dict[str, Any]], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _terminated_finished(cs: dict[str, Any]) -> datetime | None:
    term = ((cs.get("lastState") or {}).get("terminated")) or None
    if term is None:
        return None
    return parse_time(term.get("finishedAt"))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if b is None:
        return a
    if a is None or a < b:
        return b
    return a


def pod_row(pod: dict[str, Any], *, now: datetime | None = None) -> PodRow:
    """kubectl's row for a pod (raw JSON from the API), exactly as printPod computes it."""
    now = now or datetime.now(UTC)
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    containers = spec.get("containers") or []
    init_specs = spec.get("initContainers") or []

    restarts = 0
    sidecar_restarts = 0
    total = len(containers)
    ready = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = status.get("phase") or ""
    reason = phase
    if status.get("reason"):
        reason = status["reason"]
    for cond in conditions:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == SCHEDULING_GATED:
            reason = SCHEDULING_GATED

    by_name: dict[str, dict[str, Any]] = {}
    for c in init_specs:
        by_name[c.get("name", "")] = c
        if is_restartable_init_container(c):
            total += 1

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        finished = _terminated_finished(cs)
        last_restart = _later(last_restart, finished)
        sidecar = is_restartable_init_container(by_name.get(cs.get("name", "")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        state = cs.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started") is True:
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if int(term.get("signal") or 0) != 0:
                    reason = f"Init:Signal:{int(term['signal'])}"
                else:
                    reason = f"Init:ExitCode:{int(term.get('exitCode') or 0)}"
            else:
                reason = "Init:" + term["reason"]
        elif (
            waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing"
        ):
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, _terminated_finished(cs))
            state = cs.get("state") or {}
            term = state.get("terminated")
            waiting = state.get("waiting")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                if int(term.get("signal") or 0) != 0:
                    reason = f"Signal:{int(term['signal'])}"
                else:
                    reason = f"ExitCode:{int(term.get('exitCode') or 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    deleting = meta.get("deletionTimestamp") is not None
    if deleting and status.get("reason") == NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_text = f"{restarts} ({_since(last_restart, now)} ago)"

    pod_ips = status.get("podIPs") or []
    ip = (pod_ips[0].get("ip") if pod_ips else "") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            for cond in conditions:
                if cond.get("type") == gate.get("conditionType"):
                    if cond.get("status") == "True":
                        true_count += 1
                    break
        gates_text = f"{true_count}/{len(gates)}"

    return PodRow(
        name=meta.get("name", ""),
        ready=f"{ready}/{total}",
        status=reason,
        restarts=restarts,
        restarts_text=restarts_text,
        last_restart=last_restart,
        age=_since(parse_time(meta.get("creationTimestamp")), now),
        ip=ip,
        node=spec.get("nodeName") or "<none>",
        nominated_node=status.get("nominatedNodeName") or "<none>",
        readiness_gates=gates_text,
    )


def surely_running_ready(pod: dict[str, Any]) -> bool:
    """True only for a pod that `pod_row` certainly shows as Running with every container ready
    (`n/n`): phase Running, no status reason, not being deleted, not scheduling-gated, no init
    containers, and each container running and ready. False means "compute the row" (it may still
    be Running and ready: init containers, sidecars and odd states always take the long way).

    Decided from a few fields, so a cluster-wide table can skip the full row of the thousands of
    pods that cannot be in it (the runbook's `kubectl get pods -A | grep -v Running`)."""
    status = pod.get("status") or {}
    if (
        status.get("phase") != "Running"
        or status.get("reason")
        or status.get("initContainerStatuses")
        or (pod.get("metadata") or {}).get("deletionTimestamp") is not None
    ):
        return False
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    if spec.get("initContainers") or not containers or len(statuses) != len(containers):
        return False
    for cs in statuses:
        state = cs.get("state") or {}
        if (
            cs.get("ready") is not True
            or state.get("running") is None
            or state.get("waiting") is not None
            or state.get("terminated") is not None
        ):
            return False
    for cond in status.get("conditions") or []:
        if cond.get("reason") == SCHEDULING_GATED:
            return False
    return True
