"""The endpoints controllers: each Service with a selector gets an Endpoints object and an
EndpointSlice (discovery.k8s.io/v1) listing the pods its selector matches, ready ones apart from
the others, the way the real endpoints and endpointslice controllers keep them."""

from __future__ import annotations

from .objects import clone, controller_ref, safe_hash
from .store import Store

SERVICES = "/services"
ENDPOINTS = "/endpoints"
SLICES = "discovery.k8s.io/endpointslices"
PODS = "/pods"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"


def _ready(pod: dict) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _target_port(port: dict, pod: dict) -> int | None:
    """A Service port's targetPort on one pod: a number, or a named container port."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    return None


def _ref(pod: dict) -> dict:
    meta = pod["metadata"]
    return {
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta.get("uid", ""),
    }


def endpoints_for(svc: dict, pods: list[dict], *, zones: dict[str, str]) -> tuple[dict, dict]:
    """The Endpoints and the EndpointSlice of one Service, from the pods of its namespace."""
    meta, spec = svc["metadata"], svc.get("spec") or {}
    selector = spec.get("selector") or {}
    chosen = [
        p
        for p in pods
        if _matches(selector, p["metadata"].get("labels") or {})
        and (p.get("status") or {}).get("podIP")
        and (p.get("spec") or {}).get("nodeName")
        and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    ports = spec.get("ports") or []
    first_port = ports[0] if ports else {}
    ready: list[dict] = []
    not_ready: list[dict] = []
    slice_eps: list[dict] = []
    target = None
    for p in sorted(chosen, key=lambda p: p["status"]["podIP"]):
        target = target or _target_port(first_port, p)
        addr = {"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"], "targetRef": _ref(p)}
        terminating = bool(p["metadata"].get("deletionTimestamp"))
        ok = _ready(p) and not terminating
        if not terminating:
            (ready if ok else not_ready).append(addr)
        slice_eps.append(
            {
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": ok, "serving": _ready(p), "terminating": terminating},
                "nodeName": p["spec"]["nodeName"],
                "targetRef": _ref(p),
                **(
                    {"zone": zones[p["spec"]["nodeName"]]} if p["spec"]["nodeName"] in zones else {}
                ),
            }
        )
    ep_ports = [
        {
            k: v
            for k, v in {
                "name": port.get("name"),
                "port": target if target is not None else port.get("port"),
                "protocol": port.get("protocol", "TCP"),
            }.items()
            if v is not None
        }
        for port in ports[:1]
    ]
    labels = dict(meta.get("labels") or {})
    endpoints: dict = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": labels,
            "creationTimestamp": meta.get("creationTimestamp"),
        },
    }
    if ready or not_ready:
        subset: dict = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        subset["ports"] = ep_ports
        endpoints["subsets"] = [subset]
    slice_obj: dict = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{meta['name']}-{safe_hash([meta.get('uid', ''), meta['name']], 5)}",
            "generateName": f"{meta['name']}-",
            "namespace": meta["namespace"],
            "labels": {
                **labels,
                SERVICE_NAME_LABEL: meta["name"],
                MANAGED_BY: "endpointslice-controller.k8s.io",
            },
            "ownerReferences": [controller_ref(svc)],
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "addressType": "IPv4",
        "endpoints": slice_eps or None,
        "ports": (ep_ports if slice_eps else None),
    }
    return endpoints, slice_obj


def _same(old: dict | None, new: dict) -> bool:
    if old is None:
        return False
    a = clone(old)
    for k in ("uid", "resourceVersion"):
        a["metadata"].pop(k, None)
    return a == new


def reconcile(store: Store) -> None:
    """Bring every Service's Endpoints and EndpointSlice in line with the pods as they are now;
    drop those of Services that are gone."""
    zones = {
        n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(
            "topology.kubernetes.io/zone", ""
        )
        for n in store.objects("/nodes")
    }
    zones = {k: v for k, v in zones.items() if v}
    wanted: set[tuple[str, str]] = set()
    pods_by_ns: dict[str, list[dict]] = {}
    for svc in list(store.objects(SERVICES)):
        if not (svc.get("spec") or {}).get("selector"):
            continue  # a Service without a selector keeps the Endpoints its owner writes
        ns = svc["metadata"]["namespace"]
        if ns not in pods_by_ns:
            pods_by_ns[ns] = list(store.objects(PODS, ns))
        ep, sl = endpoints_for(svc, pods_by_ns[ns], zones=zones)
        wanted.add((ns, svc["metadata"]["name"]))
        old_ep = store.get(ENDPOINTS, ns, ep["metadata"]["name"])
        if not _same(old_ep.obj if old_ep else None, ep):
            store.put(ENDPOINTS, ep)
        old_sl = store.get(SLICES, ns, sl["metadata"]["name"])
        if not _same(old_sl.obj if old_sl else None, sl):
            store.put(SLICES, sl)
    for key in (ENDPOINTS, SLICES):
        for e in store.entries(key):
            meta = e.obj["metadata"]
            service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL, meta["name"])
            if key == ENDPOINTS and store.get(SERVICES, meta["namespace"], service) is not None:
                continue  # a Service without a selector: its Endpoints are its owner's
            if (meta["namespace"], service) not in wanted:
                store.delete(key, meta["namespace"], meta["name"])
