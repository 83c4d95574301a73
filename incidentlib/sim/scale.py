"""The `scale` scenario: a big cluster built in Python (5,000 pods, 50 nodes, 20,000 events by
default) for the benchmark. Objects are seeded in their settled state so loading stays fast."""

from __future__ import annotations

import uuid

from .clock import iso
from .cluster import NODES, PODS, Cluster
from .controllers import DEPLOY, RS, new_replicaset, pod_for, write_statuses
from .events import KEY as EVENTS
from .events import build as build_event
from .objects import CHANGE_CAUSE, REVISION
from .seed import SYSTEM_NAMESPACES, namespace, node

TEAMS = (
    "payments",
    "search",
    "catalog",
    "checkout",
    "identity",
    "ledger",
    "media",
    "notify",
    "orders",
    "ranking",
)


def build_scale(
    cluster: Cluster,
    *,
    pods: int = 5000,
    nodes: int = 50,
    events: int = 20_000,
    pods_per_deployment: int = 10,
    revisions: int = 3,
) -> Cluster:
    """Seed `pods` pods in deployments of `pods_per_deployment`, each with `revisions`
    ReplicaSets."""
    now = cluster.now()
    created = now - 30 * 86400
    node_objs = [
        node(i, created=created, now=now, cpu="32", memory="128Gi") for i in range(1, nodes + 1)
    ]
    cluster.store.load(NODES, node_objs)
    ns_names = [*SYSTEM_NAMESPACES, "production", *TEAMS]
    cluster.store.load("/namespaces", [namespace(n, created=created) for n in ns_names])
    replicasets: list[dict] = []
    pod_objs: list[dict] = []
    event_objs: list[dict] = []
    n_deploy = max(1, pods // pods_per_deployment)
    for d in range(n_deploy):
        ns = "production" if d % len(TEAMS) == 0 else TEAMS[d % len(TEAMS)]
        name = f"svc-{d:04d}"
        replicas = (
            pods_per_deployment if d < n_deploy - 1 else pods - pods_per_deployment * (n_deploy - 1)
        )
        dep: dict = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {"app": name, "team": ns},
                "creationTimestamp": iso(now - 20 * 86400),
                "generation": revisions,
                "annotations": {REVISION: str(revisions)},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": {"metadata": {"labels": {"app": name, "team": ns}}, "spec": {}},
            },
            "status": {},
        }
        dep["metadata"]["uid"] = str(uuid.uuid4())
        for r in range(1, revisions + 1):
            dep["spec"]["template"]["spec"] = {
                "containers": [
                    {
                        "name": "app",
                        "image": f"registry.example.com/{name}:1.{r}.0",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [
                            {"name": "TEAM", "value": ns},
                            {"name": "LOG_LEVEL", "value": "info"},
                        ],
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "imagePullPolicy": "IfNotPresent",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
                "securityContext": {},
            }
            dep["metadata"]["annotations"][CHANGE_CAUSE] = f"deploy {name} 1.{r}.0"
            rs = new_replicaset(
                dep,
                revision=r,
                now=now - (revisions - r + 1) * 86400,
                replicas=replicas if r == revisions else 0,
            )
            rs["metadata"]["uid"] = str(uuid.uuid4())
            replicasets.append(rs)
        cluster.store.load(DEPLOY, [dep])
        current = replicasets[-1]
        for _ in range(replicas):
            pod = pod_for(current, now=now - 86400, rng=cluster.rng)
            target = node_objs[len(pod_objs) % nodes]
            pod["spec"]["nodeName"] = target["metadata"]["name"]
            pod["status"]["startTime"] = pod["metadata"]["creationTimestamp"]
            pod["metadata"]["uid"] = f"{len(pod_objs):08d}-0000-4000-8000-{d:012d}"
            pod["status"] = cluster.pod_status(pod, target, now=now)
            pod_objs.append(pod)
    cluster.store.load(RS, replicasets)
    cluster.store.load(PODS, pod_objs)
    reasons = [
        ("Normal", "Pulled", "kubelet", 'Container image "{img}" already present on machine'),
        ("Normal", "Created", "kubelet", "Created container app"),
        ("Normal", "Started", "kubelet", "Started container app"),
        (
            "Warning",
            "Unhealthy",
            "kubelet",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
        ),
        ("Warning", "BackOff", "kubelet", "Back-off restarting failed container app in pod {pod}"),
    ]
    for i in range(events):
        pod = pod_objs[i % len(pod_objs)]
        type_, reason, comp, text = reasons[i % len(reasons)]
        img = pod["spec"]["containers"][0]["image"]
        ev = build_event(
            pod,
            reason=reason,
            type_=type_,
            component=comp,
            host=pod["spec"]["nodeName"],
            message=text.format(img=img, pod=pod["metadata"]["name"]),
            first=now - 3600 - (i % 3600),
            last=now - (i % 3000),
            count=1 + i % 7,
            field_path="spec.containers{app}",
            distinct=str(i),
        )
        event_objs.append(ev)
    cluster.store.load(EVENTS, event_objs)
    # pods were seeded settled (scheduled, running): only the controllers' status is left to write
    write_statuses(cluster.store, now=now)
    return cluster
