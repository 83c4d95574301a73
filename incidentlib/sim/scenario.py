"""Scenarios: YAML files in `scenarios/` (or a Python builder for `scale`) that seed a cluster with
nodes, system pods and an application in `production`, as a real cluster would look mid-incident."""

from __future__ import annotations

import copy
import uuid
from importlib import resources as importlib_resources
from pathlib import Path

import yaml

from . import controllers, events
from .clock import iso, parse_duration
from .cluster import NODES, Cluster, MetricSpec
from .commands import ExecSpec
from .controllers import DEPLOY, PODS, RS, new_replicaset, pod_for, qos_class
from .kubelet import Behavior
from .logs import LogSpec
from .objects import CHANGE_CAUSE, REVISION, safe_hash
from .seed import SYSTEM_NAMESPACES, namespace, node

SCENARIO_DIR = Path(str(importlib_resources.files("incidentlib.sim") / "scenarios"))


class ScenarioError(ValueError):
    """An unknown or malformed scenario; the message lists what exists."""


def names() -> list[str]:
    """Every scenario name (the YAML files, plus the generated `scale`)."""
    return sorted([p.stem for p in SCENARIO_DIR.glob("*.yaml")] + ["scale"])


def load_spec(name: str, *, _seen: set[str] | None = None) -> dict:
    """The merged YAML spec of a scenario (its `include:` list merged first, each file once)."""
    seen = set() if _seen is None else _seen
    path = SCENARIO_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ScenarioError(f"unknown scenario {name!r}; valid scenarios: {', '.join(names())}")
    seen.add(name)
    spec = yaml.safe_load(path.read_text()) or {}
    merged: dict = {}
    for inc in spec.get("include") or []:
        if inc not in seen:
            _merge(merged, load_spec(inc, _seen=seen))
    _merge(merged, spec)
    return merged


def _merge(into: dict, spec: dict) -> None:
    for k, v in spec.items():
        if k == "include":
            continue
        if isinstance(v, list):
            items = into.setdefault(k, [])
            for x in v:
                ident = (
                    (x.get("namespace", "production"), x["name"])
                    if isinstance(x, dict) and "name" in x
                    else None
                )
                same = [
                    i
                    for i, y in enumerate(items)
                    if ident
                    and isinstance(y, dict)
                    and (y.get("namespace", "production"), y.get("name")) == ident
                ]
                if same:
                    items[same[0]] = x  # a later scenario redefines the object
                elif x not in items:
                    items.append(x)
        elif isinstance(v, dict):
            into.setdefault(k, {})
            for kk, vv in v.items():
                if isinstance(vv, dict) and isinstance(into[k].get(kk), dict):
                    into[k][kk] = {**into[k][kk], **vv}
                else:
                    into[k][kk] = vv
        else:
            into[k] = v


def _container(d: dict, image: str) -> dict:
    c: dict = {
        "name": d.get("container", d["name"]),
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": copy.deepcopy(d.get("resources") or {}),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if d.get("port"):
        c["ports"] = [{"name": "http", "containerPort": int(d["port"]), "protocol": "TCP"}]
    if d.get("env"):
        c["env"] = [{"name": k, "value": str(v)} for k, v in d["env"].items()]
    if d.get("args"):
        c["args"] = list(d["args"])
    return c


def deployment(d: dict, *, now: float, cluster: Cluster) -> None:
    """Seed a deployment with its revision history: one ReplicaSet per revision, pods for the
    last."""
    ns, name = d.get("namespace", "production"), d["name"]
    labels = {"app": name, **(d.get("labels") or {})}
    revisions = d.get("revisions") or [{"image": d["image"], "age": d.get("age", "3d")}]
    replicas = int(d.get("replicas", 1))
    first = now - parse_duration(revisions[0].get("age", "3d"))
    template_meta: dict = {"labels": dict(labels)}
    if d.get("podAnnotations"):
        template_meta["annotations"] = dict(d["podAnnotations"])
    dep: dict = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": dict(labels),
            "creationTimestamp": iso(first),
            "generation": len(revisions),
            "annotations": {},
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
            "template": {"metadata": template_meta, "spec": {}},
        },
        "status": {},
    }
    dep["metadata"]["uid"] = str(uuid.uuid4())  # loaded below, once its template is final
    tspec = {
        "containers": [],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "securityContext": {},
    }
    rs_list: list[dict] = []
    for i, rev in enumerate(revisions, start=1):
        t = now - parse_duration(rev.get("age", "3d"))
        tspec = {**tspec, "containers": [_container(d, rev["image"])]}
        dep["spec"]["template"]["spec"] = copy.deepcopy(tspec)
        dep["spec"]["template"]["metadata"]["labels"] = {**labels, **(rev.get("labels") or {})}
        if rev.get("changeCause"):
            dep["metadata"]["annotations"][CHANGE_CAUSE] = rev["changeCause"]
        else:
            dep["metadata"]["annotations"].pop(CHANGE_CAUSE, None)
        rs = new_replicaset(dep, revision=i, now=t, replicas=replicas if i == len(revisions) else 0)
        if i < len(revisions):
            rs["metadata"]["generation"] = 2
        rs_list.append(rs)
        if i > 1:
            prev = rs_list[-2]["metadata"]["name"]
            events.bump(
                cluster.store,
                dep,
                now=t,
                reason="ScalingReplicaSet",
                component="deployment-controller",
                message=f"Scaled up replica set {rs['metadata']['name']} to {replicas}",
                distinct=f"up {rs['metadata']['name']} {replicas}",
            )
            events.bump(
                cluster.store,
                dep,
                now=t + 40,
                reason="ScalingReplicaSet",
                component="deployment-controller",
                message=f"Scaled down replica set {prev} to 0 from {replicas}",
                distinct=f"down {prev} 0",
            )
    dep["metadata"]["annotations"][REVISION] = str(len(revisions))
    cluster.store.load(DEPLOY, [dep])
    cluster.store.load(RS, rs_list)
    current = rs_list[-1]
    created = now - parse_duration(revisions[-1].get("age", "3d"))
    cluster.store.load(
        PODS, [pod_for(current, now=created, rng=cluster.rng) for _ in range(replicas)]
    )
    app, container = name, d.get("container", name)
    if d.get("logs"):
        cluster.log_specs[(ns, app, container)] = LogSpec.from_spec(d["logs"])
    if d.get("metrics"):
        cluster.metric_specs[(ns, app, container)] = MetricSpec.from_spec(d["metrics"])
    if d.get("exec"):
        cluster.exec_specs[(ns, app, container)] = ExecSpec.from_spec(d["exec"])


def bare_pod(p: dict, *, now: float, cluster: Cluster) -> None:
    """A pod without a controller (static, DaemonSet-like or hand-made)."""
    ns = p.get("namespace", "production")
    labels = {"app": p.get("app", p["name"]), **(p.get("labels") or {})}
    spec: dict = {
        "containers": [_container({**p, "container": p.get("container", p["name"])}, p["image"])],
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30,
    }
    if p.get("node"):
        spec["nodeName"] = p["node"]
    if p.get("priorityClassName"):
        spec["priorityClassName"] = p["priorityClassName"]
    meta: dict = {
        "name": p["name"],
        "namespace": ns,
        "labels": labels,
        "creationTimestamp": iso(now - parse_duration(p.get("age", "3d"))),
    }
    if p.get("owner"):
        kind, oname = p["owner"].split("/", 1)
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1" if kind != "Node" else "v1",
                "kind": kind,
                "name": oname,
                "uid": safe_hash([ns, kind, oname], 32),
                "controller": True,
            }
        ]
    status: dict = {"phase": "Pending", "qosClass": qos_class(spec)}
    if p.get("node"):
        status["startTime"] = meta["creationTimestamp"]
    cluster.store.load(
        PODS,
        [{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}],
    )
    app, container = labels["app"], spec["containers"][0]["name"]
    if p.get("logs"):
        cluster.log_specs[(ns, app, container)] = LogSpec.from_spec(p["logs"])
    if p.get("metrics"):
        cluster.metric_specs[(ns, app, container)] = MetricSpec.from_spec(p["metrics"])


SYSTEM_DEPLOYMENTS = [
    {
        "name": "coredns",
        "namespace": "kube-system",
        "replicas": 2,
        "image": "registry.k8s.io/coredns/coredns:v1.11.3",
        "labels": {"k8s-app": "kube-dns"},
        "age": "30d",
        "port": 53,
        "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}},
        "logs": {
            "rate": 0.1,
            "info": [
                '[INFO] 10.244.1.7:41234 - 5123 "A IN backend.production.svc.cluster.local. udp '
                '63 false 512" NOERROR qr,aa,rd 118 0.000112s'
            ],
        },
        "metrics": {"cpu": "3m", "memory": "18Mi"},
    },
    {
        "name": "metrics-server",
        "namespace": "kube-system",
        "replicas": 1,
        "age": "30d",
        "port": 10250,
        "image": "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
        "labels": {"k8s-app": "metrics-server"},
        "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}},
        "metrics": {"cpu": "4m", "memory": "24Mi"},
    },
]


def _system(cluster: Cluster, *, now: float, node_names: list[str]) -> None:
    for d in SYSTEM_DEPLOYMENTS:
        deployment(d, now=now, cluster=cluster)
    control = node_names[0]
    for comp, image in (
        ("etcd", "registry.k8s.io/etcd:3.5.16-0"),
        ("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.32.4"),
        ("kube-controller-manager", "registry.k8s.io/kube-controller-manager:v1.32.4"),
        ("kube-scheduler", "registry.k8s.io/kube-scheduler:v1.32.4"),
    ):
        bare_pod(
            {
                "name": f"{comp}-{control}",
                "namespace": "kube-system",
                "image": image,
                "container": comp,
                "labels": {"component": comp, "tier": "control-plane"},
                "app": comp,
                "node": control,
                "age": "30d",
                "owner": f"Node/{control}",
                "priorityClassName": "system-node-critical",
                "resources": {"requests": {"cpu": "100m"}},
                "metrics": {"cpu": "25m", "memory": "180Mi"},
            },
            now=now,
            cluster=cluster,
        )
    for n in node_names:
        bare_pod(
            {
                "name": f"kube-proxy-{safe_hash(['kube-proxy', n], 5)}",
                "namespace": "kube-system",
                "image": "registry.k8s.io/kube-proxy:v1.32.4",
                "container": "kube-proxy",
                "app": "kube-proxy",
                "labels": {"k8s-app": "kube-proxy"},
                "node": n,
                "age": "30d",
                "owner": "DaemonSet/kube-proxy",
                "metrics": {"cpu": "1m", "memory": "20Mi"},
            },
            now=now,
            cluster=cluster,
        )


def build(scenario: str | dict, *, cluster: Cluster) -> Cluster:
    """Seed `cluster` with a scenario (a name, or a spec dict in the YAML format whose `include:`
    names scenarios to start from) and run its components once."""
    if scenario == "scale":
        from .scale import build_scale

        return build_scale(cluster)
    if isinstance(scenario, dict):
        spec: dict = {}
        seen: set[str] = set()
        for inc in scenario.get("include") or []:
            _merge(spec, load_spec(inc, _seen=seen))
        _merge(spec, scenario)
    else:
        spec = load_spec(scenario)
    return build_from_spec(spec, cluster=cluster)


NODE_EVENTS = {
    ("MemoryPressure", "True"): [
        ("Normal", "NodeHasInsufficientMemory", "status is now: NodeHasInsufficientMemory"),
        ("Warning", "EvictionThresholdMet", "Attempting to reclaim memory"),
    ],
    ("DiskPressure", "True"): [
        ("Normal", "NodeHasDiskPressure", "status is now: NodeHasDiskPressure"),
        ("Warning", "EvictionThresholdMet", "Attempting to reclaim ephemeral-storage"),
    ],
    ("Ready", "False"): [("Normal", "NodeNotReady", "status is now: NodeNotReady")],
    ("Ready", "Unknown"): [("Normal", "NodeNotReady", "status is now: NodeNotReady")],
}


def _node_events(cluster: Cluster, n: dict, *, now: float) -> None:
    """The kubelet's events about a node whose conditions the scenario turned bad."""
    name = n["metadata"]["name"]
    for c in n["status"]["conditions"]:
        for type_, reason, text in NODE_EVENTS.get((c["type"], c["status"]), []):
            message = f"Node {name} {text}" if text.startswith("status") else text
            count = 1 if type_ == "Normal" else 1 + int(1200 // 30)
            events.record(
                cluster.store,
                {
                    **n,
                    "metadata": {**n["metadata"], "uid": name},
                },  # the kubelet refers to its node by name
                reason=reason,
                type_=type_,
                component="kubelet",
                host=name,
                first=now - 1200,
                last=now - (0 if type_ == "Warning" else 1200),
                count=count,
                message=message,
            )


def service(svc: dict, *, now: float) -> dict:
    """A ClusterIP Service; its selector is `app: <name>` unless the scenario gives one."""
    ip = svc.get("clusterIP", "10.96.0.10")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": svc["name"],
            "namespace": svc.get("namespace", "production"),
            "labels": {"app": svc["name"], **(svc.get("labels") or {})},
            "creationTimestamp": iso(now - parse_duration(svc.get("age", "30d"))),
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "clusterIPs": [ip],
            "selector": dict(svc.get("selector") or {"app": svc["name"]}),
            "ports": [
                {
                    "name": "http",
                    "port": int(svc.get("port", 80)),
                    "protocol": "TCP",
                    "targetPort": int(svc.get("targetPort", svc.get("port", 80))),
                }
            ],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    }


UNREACHABLE = "node.kubernetes.io/unreachable"
TOLERATION_SECONDS = 300  # the default toleration of the unreachable taint


def fail_node(cluster: Cluster, failure: dict, *, now: float) -> None:
    """A node whose kubelet stopped posting status `ago` (e.g. 8m) before now, as the node
    lifecycle controller leaves it: conditions Unknown, the unreachable taints, its pods not ready,
    and after the 300 s toleration its pods marked for deletion (Terminating: the kubelet that would
    finish them is gone) and replaced by their ReplicaSets elsewhere, where capacity allows."""
    name = failure["node"]
    failed_at = now - parse_duration(str(failure.get("ago", "8m")))
    evict_at = failed_at + TOLERATION_SECONDS
    entry = cluster.store.get(NODES, "", name)
    if entry is None:
        raise ScenarioError(f"nodeFailure names node {name!r}, which the scenario does not have")
    node = copy.deepcopy(entry.obj)
    for c in node["status"]["conditions"]:
        c.update(
            status="Unknown",
            reason="NodeStatusUnknown",
            message="Kubelet stopped posting node status.",
            lastHeartbeatTime=iso(failed_at - 20),
            lastTransitionTime=iso(failed_at + 40),
        )
    node["spec"]["taints"] = [
        {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": iso(failed_at + 40)},
        {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": iso(failed_at + 40)},
    ]
    cluster.store.put(NODES, node)
    as_ref = {**node, "metadata": {**node["metadata"], "uid": name}}
    events.record(
        cluster.store,
        as_ref,
        reason="NodeNotReady",
        component="node-controller",
        first=failed_at + 40,
        message=f"Node {name} status is now: NodeNotReady",
    )
    for pod in list(cluster.store.objects(PODS)):
        if pod["spec"].get("nodeName") != name:
            continue
        new = copy.deepcopy(pod)
        for c in new["status"].get("conditions") or []:
            if c["type"] in ("Ready", "ContainersReady"):
                c.update(status="False", lastTransitionTime=iso(failed_at + 40))
        for cs in new["status"].get("containerStatuses") or []:
            cs["ready"] = False
        ns, pod_name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        events.record(
            cluster.store,
            new,
            reason="NodeNotReady",
            type_="Warning",
            component="node-controller",
            first=failed_at + 40,
            message="Node is not ready",
        )
        daemon = any(
            r.get("kind") in ("DaemonSet", "Node")
            for r in pod["metadata"].get("ownerReferences") or []
        )
        if not daemon:  # DaemonSet and static pods tolerate the taint for ever
            new["metadata"]["deletionTimestamp"] = iso(evict_at + 30)
            new["metadata"]["deletionGracePeriodSeconds"] = 30
            events.record(
                cluster.store,
                new,
                reason="TaintManagerEviction",
                component="taint-eviction-controller",
                first=evict_at,
                message=f"Marking for deletion Pod {ns}/{pod_name}",
            )
            events.record(
                cluster.store,
                as_ref,
                reason="NodeControllerEviction",
                component="node-controller",
                first=evict_at,
                distinct=f"{ns}/{pod_name}",
                message=f"Marking for deletion Pod {ns}/{pod_name} from Node {name}",
            )
        cluster.store.put(PODS, new)
        cluster.store.pinned_status.add(new["metadata"]["uid"])  # no kubelet writes it any more
    # the ReplicaSets replace what was evicted, at eviction time; the scheduler places them
    controllers.reconcile_replicasets(cluster.store, now=evict_at, rng=cluster.rng)
    cluster.schedule(now=evict_at)


def build_from_spec(spec: dict, *, cluster: Cluster) -> Cluster:
    now = cluster.now()
    nodes_spec = spec.get("nodes") or {}
    count = int(nodes_spec.get("count", 3))
    cluster_created = now - parse_duration(nodes_spec.get("age", "30d"))
    node_objs = [
        node(
            i,
            created=cluster_created,
            now=now,
            cpu=str(nodes_spec.get("cpu", "4")),
            memory=str(nodes_spec.get("memory", "16Gi")),
            conditions=(nodes_spec.get("conditions") or {}).get(f"node-{i}"),
            taints=(nodes_spec.get("taints") or {}).get(f"node-{i}"),
            role="control-plane" if i == 1 and nodes_spec.get("controlPlaneRole") else "",
        )
        for i in range(1, count + 1)
    ]
    cluster.store.load("/nodes", node_objs)
    for n in node_objs:
        _node_events(cluster, n, now=now)
    ns_names = list(SYSTEM_NAMESPACES) + [
        n for n in ["production", *(spec.get("namespaces") or [])] if n not in SYSTEM_NAMESPACES
    ]
    cluster.store.load(
        "/namespaces", [namespace(n, created=cluster_created) for n in dict.fromkeys(ns_names)]
    )
    for image, b in (spec.get("images") or {}).items():
        cluster.behaviors[image] = Behavior.from_spec(b)
    _system(cluster, now=now, node_names=[n["metadata"]["name"] for n in node_objs])
    for d in spec.get("deployments") or []:
        deployment(d, now=now, cluster=cluster)
    for p in spec.get("pods") or []:
        bare_pod(p, now=now, cluster=cluster)
    for cm in spec.get("configmaps") or []:
        cluster.store.load(
            "/configmaps",
            [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": cm["name"],
                        "namespace": cm.get("namespace", "production"),
                        "creationTimestamp": iso(now - parse_duration(cm.get("age", "10d"))),
                    },
                    "data": {k: str(v) for k, v in (cm.get("data") or {}).items()},
                }
            ],
        )
    for svc in spec.get("services") or []:
        cluster.store.load("/services", [service(svc, now=now)])
    cluster.blocked.extend(spec.get("blocked") or [])
    if spec.get("nodeFailure"):
        cluster.sync(force=True)  # the pods as they ran before the node failed
        fail_node(cluster, spec["nodeFailure"], now=now)
    for plant in spec.get("plant") or []:
        key = (plant.get("namespace", "production"), plant["app"], plant["container"])
        base = cluster.log_specs.get(key) or LogSpec()
        cluster.log_specs[key] = LogSpec(
            rate=base.rate,
            error_share=base.error_share,
            info=base.info,
            errors=base.errors,
            startup=base.startup,
            planted=base.planted + tuple(plant["lines"]),
            plant_every=float(plant.get("every", base.plant_every)),
        )
    cluster.sync(force=True)
    return cluster
