"""The metrics API (`metrics.k8s.io/v1beta1`) and the kubelet summary API, computed from the
scenario's declared usage at the simulated moment of the request."""

from __future__ import annotations

from .clock import iso, parse_iso
from .cluster import NODES, PODS, Cluster
from .objects import quantity

METRICS_API = "metrics.k8s.io/v1beta1"
NODE_BASE_CPU_M = 180.0
NODE_BASE_MEMORY = 900.0 * 2**20


def _running(pod: dict) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return (pod.get("status") or {}).get("phase") == "Running" and bool(statuses)


def _cpu(m: float) -> str:
    return f"{int(m * 1_000_000)}n"


def _mem(b: float) -> str:
    return f"{int(b // 1024)}Ki"


def pod_metrics(cluster: Cluster, pod: dict, now: float) -> dict | None:
    """The PodMetrics of a running pod, None for a pod that is not running."""
    if not _running(pod):
        return None
    containers = []
    for c in pod["spec"].get("containers", []):
        cpu, mem = cluster.container_usage(pod, c["name"], now=now)
        containers.append({"name": c["name"], "usage": {"cpu": _cpu(cpu), "memory": _mem(mem)}})
    meta = pod["metadata"]
    return {
        "kind": "PodMetrics",
        "apiVersion": METRICS_API,
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "creationTimestamp": iso(now),
            "labels": dict(meta.get("labels") or {}),
        },
        "timestamp": iso(now - 10),
        "window": "15s",
        "containers": containers,
    }


def node_usage(cluster: Cluster, node: str, now: float) -> tuple[float, float]:
    cpu, mem = NODE_BASE_CPU_M, NODE_BASE_MEMORY
    for pod in cluster.store.objects(PODS):
        if pod["spec"].get("nodeName") == node and _running(pod):
            for c in pod["spec"].get("containers", []):
                c_cpu, c_mem = cluster.container_usage(pod, c["name"], now=now)
                cpu += c_cpu
                mem += c_mem
    return cpu, mem


def node_metrics(
    cluster: Cluster, node: dict, now: float, usage: tuple[float, float] | None = None
) -> dict:
    """The NodeMetrics of a node."""
    cpu, mem = usage or node_usage(cluster, node["metadata"]["name"], now)
    pressure = any(
        c.get("type") == "MemoryPressure" and c.get("status") == "True"
        for c in node["status"].get("conditions") or []
    )
    if pressure:
        mem = max(mem, 0.93 * quantity(node["status"]["allocatable"]["memory"]))
    meta = node["metadata"]
    return {
        "kind": "NodeMetrics",
        "apiVersion": METRICS_API,
        "metadata": {
            "name": meta["name"],
            "creationTimestamp": iso(now),
            "labels": dict(meta.get("labels") or {}),
        },
        "timestamp": iso(now - 10),
        "window": "20s",
        "usage": {"cpu": _cpu(cpu), "memory": _mem(mem)},
    }


def all_node_metrics(cluster: Cluster, now: float) -> list[dict]:
    usage: dict[str, list[float]] = {}
    for pod in cluster.store.objects(PODS):
        node = pod["spec"].get("nodeName")
        if node and _running(pod):
            u = usage.setdefault(node, [NODE_BASE_CPU_M, NODE_BASE_MEMORY])
            for c in pod["spec"].get("containers", []):
                c_cpu, c_mem = cluster.container_usage(pod, c["name"], now=now)
                u[0] += c_cpu
                u[1] += c_mem
    return [
        node_metrics(
            cluster,
            n,
            now,
            tuple(usage.get(n["metadata"]["name"], [NODE_BASE_CPU_M, NODE_BASE_MEMORY])),  # type: ignore[arg-type]
        )
        for n in cluster.store.objects(NODES)
    ]


def _fs(used: float, capacity: float, now: float) -> dict:
    return {
        "time": iso(now),
        "availableBytes": int(capacity - used),
        "capacityBytes": int(capacity),
        "usedBytes": int(used),
        "inodesFree": 3_000_000,
        "inodes": 3_276_800,
        "inodesUsed": 12_000,
    }


def summary(cluster: Cluster, node: dict, now: float) -> dict:
    """The kubelet's /stats/summary for one node: node and per-pod cpu, memory and filesystem."""
    name = node["metadata"]["name"]
    capacity = quantity(node["status"]["capacity"].get("ephemeral-storage", "100Gi"))
    pods = []
    fs_total = 0.0
    cpu_total, mem_total = NODE_BASE_CPU_M, NODE_BASE_MEMORY
    for pod in cluster.store.objects(PODS):
        if pod["spec"].get("nodeName") != name or not _running(pod):
            continue
        start = pod["status"].get("startTime") or pod["metadata"]["creationTimestamp"]
        containers, p_cpu, p_mem, p_fs = [], 0.0, 0.0, 0.0
        for c in pod["spec"].get("containers", []):
            cpu, mem = cluster.container_usage(pod, c["name"], now=now)
            fs = cluster.metric_spec(pod, c["name"]).fs_bytes
            p_cpu, p_mem, p_fs = p_cpu + cpu, p_mem + mem, p_fs + fs
            containers.append(
                {
                    "name": c["name"],
                    "startTime": start,
                    "cpu": {
                        "time": iso(now),
                        "usageNanoCores": int(cpu * 1e6),
                        "usageCoreNanoSeconds": int(cpu * 1e6 * max(1.0, now - parse_iso(start))),
                    },
                    "memory": {
                        "time": iso(now),
                        "workingSetBytes": int(mem),
                        "usageBytes": int(mem * 1.1),
                        "rssBytes": int(mem * 0.9),
                        "pageFaults": 1000,
                        "majorPageFaults": 0,
                    },
                    "rootfs": _fs(fs, capacity, now),
                    "logs": _fs(fs / 10, capacity, now),
                }
            )
        cpu_total, mem_total, fs_total = cpu_total + p_cpu, mem_total + p_mem, fs_total + p_fs * 1.1
        meta = pod["metadata"]
        pods.append(
            {
                "podRef": {
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta["uid"],
                },
                "startTime": start,
                "containers": containers,
                "cpu": {"time": iso(now), "usageNanoCores": int(p_cpu * 1e6)},
                "memory": {
                    "time": iso(now),
                    "workingSetBytes": int(p_mem),
                    "usageBytes": int(p_mem * 1.1),
                },
                "ephemeral-storage": _fs(p_fs * 1.1, capacity, now),
                "volume": [
                    {
                        "name": f.get("volume", "data"),
                        "pvcRef": {"name": f["pvc"], "namespace": meta["namespace"]},
                        **_fs(
                            quantity(f["used"])
                            if "used" in f
                            else quantity(f["size"]) * float(f.get("usedShare", 0.5)),
                            quantity(f["size"]),
                            now,
                        ),
                    }
                    for c in pod["spec"].get("containers", [])
                    for f in cluster.exec_spec(pod, c["name"]).filesystems
                    if f.get("pvc")
                ],
            }
        )
    disk_pressure = any(
        c.get("type") == "DiskPressure" and c.get("status") == "True"
        for c in node["status"].get("conditions") or []
    )
    node_fs_used = 0.92 * capacity if disk_pressure else 8 * 2**30 + fs_total
    return {
        "node": {
            "nodeName": name,
            "startTime": node["metadata"]["creationTimestamp"],
            "cpu": {"time": iso(now), "usageNanoCores": int(cpu_total * 1e6)},
            "memory": {
                "time": iso(now),
                "workingSetBytes": int(mem_total),
                "availableBytes": int(
                    max(0.0, quantity(node["status"]["capacity"]["memory"]) - mem_total)
                ),
            },
            "fs": _fs(node_fs_used, capacity, now),
            "runtime": {"imageFs": _fs(6 * 2**30, capacity, now)},
        },
        "pods": pods,
    }
