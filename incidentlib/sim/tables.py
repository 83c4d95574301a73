"""Server-side printing: the `Table` kubectl asks for, with the columns a real API server prints."""

from __future__ import annotations

from datetime import UTC, datetime

from ..kube.podstatus import pod_row
from .clock import human_age, parse_iso

Column = tuple[str, str, int, str]  # name, type, priority, description

NAME: Column = ("Name", "string", 0, "Name must be unique within a namespace.")
AGE: Column = (
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
)

COLUMNS: dict[str, list[Column]] = {
    "/pods": [
        NAME,
        ("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
        ("Status", "string", 0, "The aggregate status of the containers in this pod."),
        (
            "Restarts",
            "string",
            0,
            "The number of times the containers in this pod have been restarted and when the last "
            "container in this pod has restarted.",
        ),
        AGE,
        (
            "IP",
            "string",
            1,
            "IP address allocated to the pod. Routable at least within the cluster.",
        ),
        ("Node", "string", 1, "NodeName is a request to schedule this pod onto a specific node."),
        (
            "Nominated Node",
            "string",
            1,
            "nominatedNodeName is set only when this pod preempts other pods on the node.",
        ),
        (
            "Readiness Gates",
            "string",
            1,
            "If specified, all readiness gates will be evaluated for pod readiness.",
        ),
    ],
    "/nodes": [
        NAME,
        ("Status", "string", 0, "The status of the node"),
        ("Roles", "string", 0, "The roles of the node"),
        AGE,
        ("Version", "string", 0, "Kubelet Version reported by the node."),
        ("Internal-IP", "string", 1, "List of internal IPs."),
        ("External-IP", "string", 1, "List of external IPs."),
        ("OS-Image", "string", 1, "OS Image reported by the node."),
        ("Kernel-Version", "string", 1, "Kernel Version reported by the node."),
        ("Container-Runtime", "string", 1, "Container Runtime Version reported by the node."),
    ],
    "/events": [
        (
            "Last Seen",
            "string",
            0,
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        (
            "Type",
            "string",
            0,
            "Type of this event (Normal, Warning), new types could be added in the future.",
        ),
        (
            "Reason",
            "string",
            0,
            "This should be a short, machine understandable string that gives the reason for this "
            "event being generated.",
        ),
        ("Object", "string", 0, "The object that this event is about."),
        ("Subobject", "string", 1, "The field of the object this event is about."),
        ("Source", "string", 1, "The component reporting this event."),
        ("Message", "string", 0, "A human-readable description of the status of this operation."),
        ("First Seen", "string", 1, "The time at which the event was first recorded."),
        ("Count", "string", 1, "The number of times this event has occurred."),
        ("Name", "string", 1, "Name must be unique within a namespace."),
    ],
    "apps/deployments": [
        NAME,
        ("Ready", "string", 0, "Number of the pod with ready state"),
        (
            "Up-to-date",
            "string",
            0,
            "Total number of non-terminated pods targeted by this deployment that have the "
            "desired template spec.",
        ),
        (
            "Available",
            "string",
            0,
            "Total number of available pods (ready for at least minReadySeconds) targeted by this "
            "deployment.",
        ),
        AGE,
        ("Containers", "string", 1, "Names of each container in the template."),
        ("Images", "string", 1, "Images referenced by each container in the template."),
        ("Selector", "string", 1, "Label selector for pods."),
    ],
    "apps/replicasets": [
        NAME,
        ("Desired", "integer", 0, "Number of desired pods."),
        ("Current", "integer", 0, "Number of actual replicas."),
        ("Ready", "integer", 0, "The number of ready replicas for this replica set."),
        AGE,
        ("Containers", "string", 1, "Names of each container in the template."),
        ("Images", "string", 1, "Images referenced by each container in the template."),
        ("Selector", "string", 1, "Label selector for pods."),
    ],
    "/namespaces": [NAME, ("Status", "string", 0, "The status of the namespace"), AGE],
    "/configmaps": [NAME, ("Data", "string", 0, "Number of data entries."), AGE],
    "/services": [
        NAME,
        ("Type", "string", 0, "The type of the service."),
        ("Cluster-IP", "string", 0, "The cluster IP."),
        ("External-IP", "string", 0, "The external IP."),
        ("Port(s)", "string", 0, "The ports."),
        AGE,
        ("Selector", "string", 1, "The selector."),
    ],
    "/endpoints": [
        NAME,
        ("Endpoints", "string", 0, "Endpoints of the resource."),
        AGE,
    ],
    "discovery.k8s.io/endpointslices": [
        NAME,
        ("AddressType", "string", 0, "The type of address held in the EndpointSlice."),
        ("Ports", "string", 0, "Ports present in the EndpointSlice."),
        ("Endpoints", "string", 0, "Endpoints present in the EndpointSlice."),
        AGE,
    ],
}


def _age(obj: dict, now: float) -> str:
    ts = obj["metadata"].get("creationTimestamp")
    return human_age(now - parse_iso(ts)) if ts else "<unknown>"


def _selector(sel: dict | None) -> str:
    sel = sel or {}
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    return ",".join(parts) or "<none>"


def pod_cells(pod: dict, now: float) -> list:
    """NAME READY STATUS RESTARTS AGE IP NODE NOMINATED READINESS, computed by the port of the API
    server's own pod printer (printPod), as a real server does for kubectl."""
    row = pod_row(pod, now=datetime.fromtimestamp(now, UTC))
    return [
        row.name,
        row.ready,
        row.status,
        row.restarts_text,
        row.age,
        row.ip,
        row.node,
        row.nominated_node,
        row.readiness_gates,
    ]


def node_cells(node: dict, now: float) -> list:
    status, spec = node.get("status") or {}, node.get("spec") or {}
    state = "Unknown"
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            state = "Ready" if c.get("status") == "True" else "NotReady"
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = status.get("nodeInfo") or {}
    addrs = status.get("addresses") or []
    internal = next((a["address"] for a in addrs if a.get("type") == "InternalIP"), "<none>")
    external = next((a["address"] for a in addrs if a.get("type") == "ExternalIP"), "<none>")
    return [
        node["metadata"]["name"],
        state,
        ",".join(roles) or "<none>",
        _age(node, now),
        info.get("kubeletVersion", ""),
        internal,
        external,
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def event_cells(ev: dict, now: float) -> list:
    inv = ev.get("involvedObject") or {}
    last = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")
    first = ev.get("firstTimestamp") or last
    src = ev.get("source") or {}
    source = src.get("component", "") + (f", {src['host']}" if src.get("host") else "")
    return [
        human_age(now - parse_iso(last)) if last else "<unknown>",
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{inv.get('kind', '').lower()}/{inv.get('name', '')}",
        inv.get("fieldPath", ""),
        source,
        ev.get("message", ""),
        human_age(now - parse_iso(first)) if first else "<unknown>",
        int(ev.get("count") or 1),
        ev["metadata"]["name"],
    ]


def _containers(template: dict) -> tuple[str, str]:
    cs = (template.get("spec") or {}).get("containers", [])
    return ",".join(c["name"] for c in cs), ",".join(c.get("image", "") for c in cs)


def deployment_cells(dep: dict, now: float) -> list:
    st = dep.get("status") or {}
    names, images = _containers(dep["spec"].get("template") or {})
    return [
        dep["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{dep['spec'].get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        _age(dep, now),
        names,
        images,
        _selector(dep["spec"].get("selector")),
    ]


def replicaset_cells(rs: dict, now: float) -> list:
    st = rs.get("status") or {}
    names, images = _containers(rs["spec"].get("template") or {})
    return [
        rs["metadata"]["name"],
        rs["spec"].get("replicas", 0),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        _age(rs, now),
        names,
        images,
        _selector(rs["spec"].get("selector")),
    ]


def _ns_cells(ns: dict, now: float) -> list:
    return [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", "Active"), _age(ns, now)]


def _cm_cells(cm: dict, now: float) -> list:
    return [
        cm["metadata"]["name"],
        len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
        _age(cm, now),
    ]


def _svc_cells(svc: dict, now: float) -> list:
    spec = svc.get("spec") or {}
    ports = (
        ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
        or "<none>"
    )
    sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [
        svc["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        "<none>",
        ports,
        _age(svc, now),
        sel,
    ]


def _first_three(items: list[str]) -> str:
    if len(items) > 3:
        return ",".join(items[:3]) + f" + {len(items) - 3} more..."
    return ",".join(items)


def _ep_cells(ep: dict, now: float) -> list:
    shown = [
        f"{a['ip']}:{p['port']}" if p else a["ip"]
        for s in ep.get("subsets") or []
        for a in s.get("addresses") or []
        for p in (s.get("ports") or [None])
    ]
    return [ep["metadata"]["name"], _first_three(shown) or "<none>", _age(ep, now)]


def _slice_cells(sl: dict, now: float) -> list:
    ports = ",".join(str(p.get("port")) for p in sl.get("ports") or []) or "<unset>"
    addrs = [a for e in sl.get("endpoints") or [] for a in e.get("addresses") or []]
    return [
        sl["metadata"]["name"],
        sl.get("addressType", "IPv4"),
        ports,
        _first_three(addrs) or "<unset>",
        _age(sl, now),
    ]


CELLS = {
    "/pods": pod_cells,
    "/nodes": node_cells,
    "/events": event_cells,
    "apps/deployments": deployment_cells,
    "apps/replicasets": replicaset_cells,
    "/namespaces": _ns_cells,
    "/configmaps": _cm_cells,
    "/services": _svc_cells,
    "/endpoints": _ep_cells,
    "discovery.k8s.io/endpointslices": _slice_cells,
}


def column_definitions(key: str) -> list[dict]:
    cols = COLUMNS.get(key, [NAME, AGE])
    return [
        {
            "name": n,
            "type": t,
            "format": "name" if n == "Name" else "",
            "description": d,
            "priority": p,
        }
        for n, t, p, d in cols
    ]


def cells(key: str, obj: dict, now: float) -> list:
    fn = CELLS.get(key)
    return fn(obj, now) if fn else [obj["metadata"]["name"], _age(obj, now)]


def partial_metadata(obj: dict) -> dict:
    """The PartialObjectMetadata a Table row carries by default."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def table(
    key: str,
    objs: list[dict],
    *,
    now: float,
    include: str = "Metadata",
    raws: list[bytes] | None = None,
    list_meta: dict | None = None,
) -> bytes:
    """A meta.k8s.io/v1 Table, assembled around the already-serialized objects when
    include=Object."""
    import json

    head = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": column_definitions(key),
    }
    rows = []
    for i, obj in enumerate(objs):
        cell_json = json.dumps(cells(key, obj, now), separators=(",", ":"))
        if include == "Object" and raws is not None:
            obj_json = raws[i].decode()
        elif include == "None":
            obj_json = "null"
        else:
            obj_json = json.dumps(partial_metadata(obj), separators=(",", ":"))
        rows.append(f'{{"cells":{cell_json},"object":{obj_json}}}')
    text = json.dumps(head, separators=(",", ":"))[:-1] + ',"rows":[' + ",".join(rows) + "]}"
    return text.encode()
