"""Small JSON payloads shaped like the API's answers for a bad rollout (data for pure tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def template(image: str, *, hash_: str | None = None) -> dict[str, Any]:
    labels = {"app": "backend"}
    if hash_:
        labels["pod-template-hash"] = hash_
    return {
        "metadata": {"labels": labels, "creationTimestamp": None},
        "spec": {
            "containers": [
                {
                    "name": "backend",
                    "image": image,
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "256Mi"},
                        "limits": {"cpu": "1", "memory": "512Mi"},
                    },
                }
            ]
        },
    }


DEPLOYMENT = {
    "metadata": {
        "name": "backend",
        "namespace": "production",
        "uid": "dep-uid",
        "generation": 3,
        "annotations": {
            "deployment.kubernetes.io/revision": "3",
            "kubernetes.io/change-cause": "deploy backend 2.4.0",
        },
    },
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "backend"}},
        "template": template("registry.example.com/backend:2.4.0"),
    },
    "status": {"replicas": 3, "readyReplicas": 0, "updatedReplicas": 3, "observedGeneration": 3},
}


def rs(
    rev: int,
    image: str,
    hash_: str,
    *,
    created: float,
    replicas: int,
    ready: int,
    owner_uid: str = "dep-uid",
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"backend-{hash_}",
            "namespace": "production",
            "uid": f"rs-{hash_}",
            "creationTimestamp": at(created),
            "labels": {"app": "backend", "pod-template-hash": hash_},
            "annotations": {
                "deployment.kubernetes.io/revision": str(rev),
                "kubernetes.io/change-cause": f"deploy backend {image.rsplit(':', 1)[1]}",
            },
            "ownerReferences": [
                {
                    "kind": "Deployment",
                    "name": "backend",
                    "uid": owner_uid,
                    "controller": True,
                    "apiVersion": "apps/v1",
                }
            ],
        },
        "spec": {"replicas": replicas, "template": template(image, hash_=hash_)},
        "status": {"replicas": replicas, "readyReplicas": ready},
    }


REPLICASETS = [
    rs(1, "registry.example.com/backend:2.2.0", "aaa111", created=10 * 1440, replicas=0, ready=0),
    rs(
        2,
        "registry.example.com/backend:2.3.1",
        "bbb222",
        created=3 * 1440 + 10,
        replicas=0,
        ready=0,
    ),
    rs(3, "registry.example.com/backend:2.4.0", "ccc333", created=10, replicas=3, ready=0),
    # same labels, another owner: kubectl's uid rule leaves it out of the history
    rs(
        9,
        "registry.example.com/backend:9.9.9",
        "zzz999",
        created=5,
        replicas=0,
        ready=0,
        owner_uid="other",
    ),
]


def crash_pod(i: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"backend-ccc333-p{i}",
            "namespace": "production",
            "uid": f"pod-{i}",
            "creationTimestamp": at(10),
            "labels": {"app": "backend", "pod-template-hash": "ccc333"},
            "ownerReferences": [
                {
                    "kind": "ReplicaSet",
                    "name": "backend-ccc333",
                    "uid": "rs-ccc333",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": f"node-{i}",
            "containers": template("registry.example.com/backend:2.4.0")["spec"]["containers"],
        },
        "status": {
            "phase": "Running",
            "podIPs": [{"ip": f"10.244.{i}.5"}],
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "Initialized", "status": "True"},
            ],
            "containerStatuses": [
                {
                    "name": "backend",
                    "ready": False,
                    "restartCount": 6 + i,
                    "image": "registry.example.com/backend:2.4.0",
                    "state": {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": "back-off 2m40s restarting failed container=backend",
                        }
                    },
                    "lastState": {
                        "terminated": {
                            "exitCode": 1,
                            "reason": "Error",
                            "startedAt": at(3),
                            "finishedAt": at(2),
                        }
                    },
                }
            ],
        },
    }


def frontend_pod() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "frontend-fff000-a",
            "namespace": "production",
            "uid": "fe",
            "creationTimestamp": at(3 * 1440),
            "labels": {"app": "frontend", "pod-template-hash": "fff000"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "frontend-fff000", "controller": True}
            ],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "frontend",
                    "image": "registry.example.com/frontend:1.0",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ],
        },
        "status": {
            "phase": "Running",
            "podIPs": [{"ip": "10.244.1.9"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "frontend",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": at(3 * 1440)}},
                }
            ],
        },
    }


def pending_pod(name: str, message: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "production",
            "uid": f"uid-{name}",
            "creationTimestamp": at(4),
        },
        "spec": {
            "containers": [
                {"name": "x", "image": "x:1", "resources": {"requests": {"memory": "64Gi"}}}
            ]
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                }
            ],
        },
    }


PODS = [crash_pod(1), crash_pod(2), crash_pod(3), frontend_pod()]


def node(
    name: str, *, ready: bool = True, memory_pressure: bool = False, master: bool = False
) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    if master:
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": at(30 * 1440)},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "addresses": [{"type": "InternalIP", "address": f"192.168.0.{name[-1]}"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0"},
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"},
                {"type": "MemoryPressure", "status": "True" if memory_pressure else "False"},
            ],
        },
    }


NODES = [
    node("node-1", master=True),
    node("node-2", memory_pressure=True),
    node("node-3", ready=False),
]


def event(
    reason: str,
    message: str,
    *,
    obj: str,
    kind: str = "Pod",
    type_: str = "Normal",
    count: int = 1,
    first: float = 9,
    last: float = 1,
    ns: str = "production",
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{obj}.{reason}", "namespace": ns},
        "involvedObject": {"kind": kind, "name": obj, "namespace": ns},
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "firstTimestamp": at(first),
        "lastTimestamp": at(last),
    }


EVENTS = [
    event("Pulled", "Successfully pulled image", obj="backend-ccc333-p1", first=9, last=9),
    event(
        "BackOff",
        "Back-off restarting failed container backend",
        obj="backend-ccc333-p1",
        type_="Warning",
        count=12,
        first=8,
        last=1,
    ),
    event(
        "BackOff",
        "Back-off restarting failed container backend",
        obj="backend-ccc333-p1",
        type_="Warning",
        count=3,
        first=7,
        last=2,
    ),
    event(
        "BackOff",
        "Back-off restarting failed container backend",
        obj="backend-ccc333-p2",
        type_="Warning",
        count=10,
        first=8,
        last=1,
    ),
    event(
        "ScalingReplicaSet",
        "Scaled up replica set backend-ccc333 to 3",
        obj="backend",
        kind="Deployment",
        first=10,
        last=10,
    ),
    event("Killing", "old news", obj="backend-bbb222-x", first=600, last=600),
]

POD_METRICS = [
    {
        "metadata": {"name": "backend-ccc333-p1", "namespace": "production"},
        "containers": [{"name": "backend", "usage": {"cpu": "5m", "memory": "480Mi"}}],
    },
    {
        "metadata": {"name": "frontend-fff000-a", "namespace": "production"},
        "containers": [{"name": "frontend", "usage": {"cpu": "120000000n", "memory": "100Mi"}}],
    },
]
NODE_METRICS = [{"metadata": {"name": "node-1"}, "usage": {"cpu": "1", "memory": "4Gi"}}]
