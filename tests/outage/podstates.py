"""Pod states staged for the STATUS/READY/RESTARTS tests: (name, spec, status, metadata extra,
expected).

Shared by the pure tests (JSON fixtures) and the sim test (staged through the status subresource and
compared with the real kubectl's output). `T0` is replaced by a timestamp relative to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def ts(now: datetime, minutes_ago: float) -> str:
    return (now - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _c(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": f"registry.example.com/{name}:1.0", **extra}


def _running(
    name: str,
    *,
    ready: bool = True,
    restarts: int = 0,
    last: dict | None = None,
    started: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    cs: dict[str, Any] = {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "started": True,
        "image": f"registry.example.com/{name}:1.0",
        "imageID": "",
        "state": {"running": {"startedAt": started}},
    }
    if last:
        cs["lastState"] = {"terminated": last}
    return cs


def _waiting(
    name: str,
    reason: str,
    *,
    message: str = "",
    restarts: int = 0,
    last: dict | None = None,
    started: bool = False,
) -> dict[str, Any]:
    cs: dict[str, Any] = {
        "name": name,
        "ready": False,
        "restartCount": restarts,
        "started": started,
        "image": f"registry.example.com/{name}:1.0",
        "imageID": "",
        "state": {"waiting": {"reason": reason, **({"message": message} if message else {})}},
    }
    if last:
        cs["lastState"] = {"terminated": last}
    return cs


def _terminated(
    name: str,
    *,
    reason: str | None,
    exit_code: int,
    signal: int = 0,
    restarts: int = 0,
    finished: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    term: dict[str, Any] = {
        "exitCode": exit_code,
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": finished,
    }
    if reason:
        term["reason"] = reason
    if signal:
        term["signal"] = signal
    return {
        "name": name,
        "ready": False,
        "restartCount": restarts,
        "started": False,
        "image": f"registry.example.com/{name}:1.0",
        "imageID": "",
        "state": {"terminated": term},
    }


def _cond(kind: str, status: str = "True", reason: str | None = None) -> dict[str, Any]:
    c = {"type": kind, "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    if reason:
        c["reason"] = reason
    return c


READY = [_cond("Initialized"), _cond("Ready"), _cond("ContainersReady"), _cond("PodScheduled")]
NOT_READY = [
    _cond("Initialized"),
    _cond("Ready", "False"),
    _cond("ContainersReady", "False"),
    _cond("PodScheduled"),
]


def cases(now: datetime | None = None) -> list[dict[str, Any]]:
    """Every staged state: name, containers, initContainers, status, deleting, and kubectl's
    expected columns."""
    now = now or datetime.now(UTC)
    crash_last = {
        "exitCode": 1,
        "reason": "Error",
        "startedAt": ts(now, 6),
        "finishedAt": ts(now, 5),
    }
    oom_last = {
        "exitCode": 137,
        "reason": "OOMKilled",
        "startedAt": ts(now, 30),
        "finishedAt": ts(now, 25),
    }
    out = [
        dict(
            name="st-running",
            containers=[_c("app")],
            status={
                "phase": "Running",
                "conditions": READY,
                "containerStatuses": [_running("app")],
            },
            expect=("1/1", "Running", "0"),
        ),
        dict(
            name="st-running-two",
            containers=[_c("app"), _c("proxy")],
            status={
                "phase": "Running",
                "conditions": NOT_READY,
                "containerStatuses": [_running("app"), _running("proxy", ready=False)],
            },
            expect=("1/2", "Running", "0"),
        ),
        dict(
            name="st-completed",
            containers=[_c("job")],
            status={
                "phase": "Succeeded",
                "conditions": NOT_READY,
                "containerStatuses": [_terminated("job", reason="Completed", exit_code=0)],
            },
            expect=("0/1", "Completed", "0"),
        ),
        dict(
            name="st-error",
            containers=[_c("job")],
            status={
                "phase": "Failed",
                "conditions": NOT_READY,
                "containerStatuses": [_terminated("job", reason="Error", exit_code=2)],
            },
            expect=("0/1", "Error", "0"),
        ),
        dict(
            name="st-exitcode",
            containers=[_c("job")],
            status={
                "phase": "Failed",
                "conditions": NOT_READY,
                "containerStatuses": [_terminated("job", reason=None, exit_code=3)],
            },
            expect=("0/1", "ExitCode:3", "0"),
        ),
        dict(
            name="st-signal",
            containers=[_c("job")],
            status={
                "phase": "Failed",
                "conditions": NOT_READY,
                "containerStatuses": [_terminated("job", reason=None, exit_code=0, signal=9)],
            },
            expect=("0/1", "Signal:9", "0"),
        ),
        dict(
            name="st-crashloop",
            containers=[_c("app")],
            status={
                "phase": "Running",
                "conditions": NOT_READY,
                "containerStatuses": [
                    _waiting(
                        "app",
                        "CrashLoopBackOff",
                        restarts=7,
                        last=crash_last,
                        message="back-off 5m0s restarting failed container",
                    )
                ],
            },
            expect=("0/1", "CrashLoopBackOff", "7 (5m ago)"),
        ),
        dict(
            name="st-imagepull",
            containers=[_c("app")],
            status={
                "phase": "Pending",
                "conditions": NOT_READY,
                "containerStatuses": [
                    _waiting(
                        "app",
                        "ImagePullBackOff",
                        message='Back-off pulling image "registry.example.com/app:9.9"',
                    )
                ],
            },
            expect=("0/1", "ImagePullBackOff", "0"),
        ),
        dict(
            name="st-errimagepull",
            containers=[_c("app")],
            status={
                "phase": "Pending",
                "conditions": NOT_READY,
                "containerStatuses": [_waiting("app", "ErrImagePull")],
            },
            expect=("0/1", "ErrImagePull", "0"),
        ),
        dict(
            name="st-oomkilled",
            containers=[_c("app")],
            status={
                "phase": "Running",
                "conditions": NOT_READY,
                "containerStatuses": [
                    _terminated("app", reason="OOMKilled", exit_code=137, restarts=3)
                ],
            },
            expect=("0/1", "OOMKilled", "3"),
        ),
        dict(
            name="st-oom-running",
            containers=[_c("app")],
            status={
                "phase": "Running",
                "conditions": READY,
                "containerStatuses": [_running("app", restarts=4, last=oom_last)],
            },
            expect=("1/1", "Running", "4 (25m ago)"),
        ),
        dict(
            name="st-pending",
            containers=[_c("app")],
            status={
                "phase": "Pending",
                "conditions": [_cond("PodScheduled", "False", "Unschedulable")],
            },
            expect=("0/1", "Pending", "0"),
        ),
        dict(
            name="st-creating",
            containers=[_c("app")],
            status={
                "phase": "Pending",
                "conditions": NOT_READY,
                "containerStatuses": [_waiting("app", "ContainerCreating")],
            },
            expect=("0/1", "ContainerCreating", "0"),
        ),
        dict(
            name="st-gated",
            containers=[_c("app")],
            status={
                "phase": "Pending",
                "conditions": [_cond("PodScheduled", "False", "SchedulingGated")],
            },
            expect=("0/1", "SchedulingGated", "0"),
        ),
        dict(
            name="st-init-waiting",
            containers=[_c("app")],
            init=[_c("migrate"), _c("warm")],
            status={
                "phase": "Pending",
                "conditions": [_cond("Initialized", "False"), _cond("PodScheduled")],
                "initContainerStatuses": [
                    _running("migrate", ready=False),
                    _waiting("warm", "PodInitializing"),
                ],
                "containerStatuses": [_waiting("app", "PodInitializing")],
            },
            expect=("0/1", "Init:0/2", "0"),
        ),
        dict(
            name="st-init-second",
            containers=[_c("app")],
            init=[_c("migrate"), _c("warm")],
            status={
                "phase": "Pending",
                "conditions": [_cond("Initialized", "False"), _cond("PodScheduled")],
                "initContainerStatuses": [
                    _terminated("migrate", reason="Completed", exit_code=0),
                    _running("warm", ready=False),
                ],
                "containerStatuses": [_waiting("app", "PodInitializing")],
            },
            expect=("0/1", "Init:1/2", "0"),
        ),
        dict(
            name="st-init-crash",
            containers=[_c("app")],
            init=[_c("migrate")],
            status={
                "phase": "Pending",
                "conditions": [_cond("Initialized", "False"), _cond("PodScheduled")],
                "initContainerStatuses": [
                    _waiting("migrate", "CrashLoopBackOff", restarts=5, last=crash_last)
                ],
                "containerStatuses": [_waiting("app", "PodInitializing")],
            },
            expect=("0/1", "Init:CrashLoopBackOff", "5 (5m ago)"),
        ),
        dict(
            name="st-init-error",
            containers=[_c("app")],
            init=[_c("migrate")],
            status={
                "phase": "Failed",
                "conditions": [_cond("Initialized", "False"), _cond("PodScheduled")],
                "initContainerStatuses": [_terminated("migrate", reason="Error", exit_code=1)],
                "containerStatuses": [_waiting("app", "PodInitializing")],
            },
            expect=("0/1", "Init:Error", "0"),
        ),
        dict(
            name="st-init-exitcode",
            containers=[_c("app")],
            init=[_c("migrate")],
            status={
                "phase": "Pending",
                "conditions": [_cond("Initialized", "False"), _cond("PodScheduled")],
                "initContainerStatuses": [_terminated("migrate", reason=None, exit_code=4)],
            },
            expect=("0/1", "Init:ExitCode:4", "0"),
        ),
        dict(
            name="st-podinitializing",
            containers=[_c("app")],
            init=[_c("migrate")],
            status={
                "phase": "Pending",
                "conditions": [_cond("Initialized"), _cond("PodScheduled")],
                "initContainerStatuses": [_terminated("migrate", reason="Completed", exit_code=0)],
                "containerStatuses": [_waiting("app", "PodInitializing")],
            },
            expect=("0/1", "PodInitializing", "0"),
        ),
        dict(
            name="st-sidecar",
            containers=[_c("app")],
            init=[_c("mesh", restartPolicy="Always")],
            status={
                "phase": "Running",
                "conditions": READY,
                "initContainerStatuses": [
                    _running(
                        "mesh",
                        restarts=2,
                        last={
                            "exitCode": 1,
                            "reason": "Error",
                            "startedAt": ts(now, 50),
                            "finishedAt": ts(now, 45),
                        },
                    )
                ],
                "containerStatuses": [_running("app")],
            },
            expect=("2/2", "Running", "2 (45m ago)"),
        ),
        dict(
            name="st-sidecar-starting",
            containers=[_c("app")],
            init=[_c("mesh", restartPolicy="Always"), _c("migrate")],
            status={
                "phase": "Pending",
                "conditions": [_cond("Initialized", "False"), _cond("PodScheduled")],
                "initContainerStatuses": [_running("mesh"), _running("migrate", ready=False)],
                "containerStatuses": [_waiting("app", "PodInitializing")],
            },
            expect=("1/2", "Init:1/2", "0"),
        ),
        dict(
            name="st-terminating",
            containers=[_c("app")],
            deleting=True,
            status={
                "phase": "Running",
                "conditions": READY,
                "containerStatuses": [_running("app")],
            },
            expect=("1/1", "Terminating", "0"),
        ),
        dict(
            name="st-evicted",
            containers=[_c("app")],
            status={
                "phase": "Failed",
                "reason": "Evicted",
                "message": "The node was low on resource: memory. Container app was using 1Gi.",
                "conditions": NOT_READY,
                "containerStatuses": [
                    _terminated("app", reason="ContainerStatusUnknown", exit_code=137)
                ],
            },
            expect=("0/1", "ContainerStatusUnknown", "0"),
        ),
        dict(
            name="st-evicted-bare",
            containers=[_c("app")],
            status={
                "phase": "Failed",
                "reason": "Evicted",
                "message": "The node was low on resource: ephemeral-storage.",
            },
            expect=("0/1", "Evicted", "0"),
        ),
        dict(
            name="st-nodelost",
            containers=[_c("app")],
            status={"phase": "Running", "reason": "NodeLost", "conditions": READY},
            expect=("0/1", "NodeLost", "0"),
        ),
        dict(
            name="st-nodelost-deleting",
            containers=[_c("app")],
            deleting=True,
            status={
                "phase": "Running",
                "reason": "NodeLost",
                "conditions": READY,
                "containerStatuses": [_running("app")],
            },
            expect=("1/1", "Unknown", "0"),
        ),
        dict(
            name="st-unknown",
            containers=[_c("app")],
            status={"phase": "Unknown", "conditions": []},
            expect=("0/1", "Unknown", "0"),
        ),
        dict(
            name="st-notready-completed",
            containers=[_c("app"), _c("sidecar")],
            status={
                "phase": "Running",
                "conditions": NOT_READY,
                "containerStatuses": [
                    _running("app"),
                    _terminated("sidecar", reason="Completed", exit_code=0),
                ],
            },
            expect=("1/2", "NotReady", "0"),
        ),
        dict(
            name="st-running-completed",
            containers=[_c("app"), _c("sidecar")],
            status={
                "phase": "Running",
                "conditions": READY,
                "containerStatuses": [
                    _running("app"),
                    _terminated("sidecar", reason="Completed", exit_code=0),
                ],
            },
            expect=("1/2", "Running", "0"),
        ),
    ]
    return out


def pod_object(
    case: dict[str, Any], *, namespace: str, now: datetime, node: str = "node-1"
) -> dict[str, Any]:
    """The full Pod JSON for a case (what the pure tests read and what the sim test creates)."""
    meta: dict[str, Any] = {
        "name": case["name"],
        "namespace": namespace,
        "labels": {"app": "states"},
        "creationTimestamp": ts(now, 60),
        "uid": f"uid-{case['name']}",
    }
    if case.get("deleting"):
        meta["deletionTimestamp"] = ts(now, 1)
        meta["deletionGracePeriodSeconds"] = 30
    spec: dict[str, Any] = {"containers": case["containers"], "nodeName": node}
    if case.get("init"):
        spec["initContainers"] = case["init"]
    status = dict(case["status"])
    if status.get("phase") in ("Running",):
        status.setdefault("podIP", "10.244.1.7")
        status.setdefault("podIPs", [{"ip": "10.244.1.7"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}
