"""The objects every simulated cluster starts with: its system namespaces, namespaces and nodes
(with full status), built the way a real API server would show them. Used by the YAML scenarios and
by `scale`."""

from __future__ import annotations

from .clock import iso
from .objects import quantity, safe_hash

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


# --- builders -------------------------------------------------------------------------------
def namespace(name: str, *, created: float) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "creationTimestamp": iso(created),
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def node(
    index: int,
    *,
    created: float,
    now: float,
    cpu: str = "4",
    memory: str = "16Gi",
    conditions: dict[str, str] | None = None,
    taints: list[dict] | None = None,
    role: str = "",
) -> dict:
    """A node with full status.nodeInfo, addresses and conditions."""
    name = f"node-{index}"
    conditions = conditions or {}
    mem_ki = int(quantity(memory) // 1024)
    capacity = {
        "cpu": cpu,
        "memory": f"{mem_ki}Ki",
        "pods": "110",
        "ephemeral-storage": "102350Mi",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    allocatable = {
        **capacity,
        "memory": f"{mem_ki - 200 * 1024}Ki",
        "ephemeral-storage": "94327475188",
    }

    def cond(type_: str, default: str) -> dict:
        status = conditions.get(type_, default)
        texts = {
            ("MemoryPressure", "False"): (
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            ("MemoryPressure", "True"): (
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            ),
            ("DiskPressure", "False"): ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("DiskPressure", "True"): ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ("PIDPressure", "False"): (
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            ("Ready", "True"): ("KubeletReady", "kubelet is posting ready status"),
            ("Ready", "False"): (
                "KubeletNotReady",
                "container runtime network not ready: NetworkReady=false",
            ),
            ("Ready", "Unknown"): ("NodeStatusUnknown", "Kubelet stopped posting node status."),
        }
        reason, message = texts.get((type_, status), ("KubeletReady", ""))
        changed = now - 1200 if status != default else created
        return {
            "type": type_,
            "status": status,
            "lastHeartbeatTime": iso(now - 20),
            "lastTransitionTime": iso(changed),
            "reason": reason,
            "message": message,
        }

    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "topology.kubernetes.io/zone": f"zone-{'abc'[(index - 1) % 3]}",
    }
    if role:
        labels[f"node-role.kubernetes.io/{role}"] = ""
    spec: dict = {
        "podCIDR": f"10.244.{index}.0/24",
        "podCIDRs": [f"10.244.{index}.0/24"],
        "providerID": f"sim://{name}",
    }
    if taints:
        spec["taints"] = taints
    h = safe_hash(name, 32)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "creationTimestamp": iso(created),
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                cond("MemoryPressure", "False"),
                cond("DiskPressure", "False"),
                cond("PIDPressure", "False"),
                cond("Ready", "True"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.0.{10 + index}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": h,
                "systemUUID": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
                "bootID": safe_hash(["boot", name], 32),
                "kernelVersion": "6.1.0-28-cloud-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": "v1.32.4",
                "kubeProxyVersion": "v1.32.4",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [],
        },
    }
