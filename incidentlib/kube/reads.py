"""Thin reads of the Kubernetes API: every `fetch_*` the notebooks use, returning decoded JSON.

Each takes a `Cluster` (`incidentlib.kube.client`) and returns raw objects; the pure builders in
`frames`, `metrics` and `logs` turn them into tables. A 404 names what does exist; a missing metrics
API is SourceUnavailable."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameter, KubeAPIError, SourceUnavailable
from ..params import parse_duration, parse_time
from .client import Cluster
from .owners import default_container, deployment_selector, pick_log_pod

if TYPE_CHECKING:  # both import pandas: the outage notebook reads before pandas is loaded
    from .logs import PodLog


def _ns_path(namespace: str | None, resource: str, *, group: str = "/api/v1") -> str:
    return f"{group}/namespaces/{namespace}/{resource}" if namespace else f"{group}/{resource}"


LIST_PAGE = 10_000
"""Items per page of the big lists (pods, events): each further page is one more round trip after
the last, so a busy cluster's warnings (8,000 at the scale scenario's 20,000 events, 6 MB) come in
one; 10,000 raw pods are about 25 MB, held whole anyway once decoded."""


def fetch_pods(
    cluster: Cluster, namespace: str | None, *, selector: str | None = None, timeout: float = 10
) -> list[dict[str, Any]]:
    """Every pod of `namespace` (None: all namespaces), raw; with `selector`, those its labels
    match."""
    return cluster.list_items(
        _ns_path(namespace, "pods"),
        query={"labelSelector": selector},
        timeout=timeout,
        page_size=LIST_PAGE,
    )


def fetch_nodes(cluster: Cluster, *, timeout: float = 10) -> list[dict[str, Any]]:
    """Every node, raw."""
    return cluster.list_items("/api/v1/nodes", timeout=timeout)


def fetch_events(
    cluster: Cluster,
    namespace: str | None,
    *,
    field_selector: str | None = None,
    timeout: float = 10,
) -> list[dict[str, Any]]:
    """Core events of `namespace` (None: all), raw; `field_selector` filters them on the server
    (`type!=Normal`, `involvedObject.kind=Node`)."""
    return cluster.list_items(
        _ns_path(namespace, "events"),
        query={"fieldSelector": field_selector} if field_selector else None,
        timeout=timeout,
        page_size=LIST_PAGE,
    )


WIDE_EVENTS = (None, "type!=Normal", "involvedObject.kind=Node")
"""What `fetch_events_wide` reads: the namespace whole (None), then from every namespace the
warnings and the node events."""


def fetch_events_wide(
    cluster: Cluster, namespace: str, *, timeout: float = 10
) -> list[dict[str, Any]]:
    """The events of `kubectl get events -A` that matter to an incident in `namespace`: every event
    of the namespace, and from every namespace the warnings (evictions, OOM kills, failed mounts,
    back-offs) and the node events (NodeNotReady and Rebooted are type Normal). The Normal events
    of other workloads (Scheduled, Pulled, Started: most of a busy cluster's events) are filtered
    out by the server, which keeps the read small. Each event once (by uid)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(selector: str | None) -> list[dict[str, Any]]:
        ns = namespace if selector is None else None
        return fetch_events(cluster, ns, field_selector=selector, timeout=timeout)

    with ThreadPoolExecutor(len(WIDE_EVENTS)) as pool:  # three lists at once, not one by one
        lists = list(pool.map(one, WIDE_EVENTS))
    seen: dict[str, dict[str, Any]] = {}
    for events in lists:
        for event in events:
            meta = event.get("metadata") or {}
            key = meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"
            seen.setdefault(key, event)
    return list(seen.values())


def fetch_namespace(cluster: Cluster, namespace: str, *, timeout: float = 10) -> dict[str, Any]:
    """The namespace object; a 404 names the namespaces that do exist."""
    try:
        return cluster.get_json(f"/api/v1/namespaces/{namespace}", timeout=timeout)
    except KubeAPIError as e:
        if e.status != 404:
            raise
        try:
            names = sorted(
                i["metadata"]["name"]
                for i in cluster.list_items("/api/v1/namespaces", timeout=timeout)
            )
        except KubeAPIError:
            names = []
        raise KubeAPIError(
            f"namespace {namespace!r} does not exist"
            + (f"; namespaces: {', '.join(names)}" if names else "")
            + "; pass namespace=NAME",
            status=404,
            reason="NotFound",
        ) from None


def fetch_deployment(
    cluster: Cluster, namespace: str, name: str, *, timeout: float = 10
) -> dict[str, Any]:
    """One deployment; a 404 says which name and namespace were not found."""
    try:
        return cluster.get_json(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", timeout=timeout
        )
    except KubeAPIError as e:
        if e.status == 404:
            raise KubeAPIError(
                f"deployment {name!r} not found in namespace {namespace!r}; list them with "
                f"`kubectl get deployments -n {namespace}` and pass app_deployment=NAME",
                status=404,
                reason="NotFound",
            ) from None
        raise


def fetch_replicasets(
    cluster: Cluster, namespace: str | None, *, selector: str | None = None, timeout: float = 10
) -> list[dict[str, Any]]:
    """Every ReplicaSet of `namespace` (None: all namespaces), the rollout history of its
    deployments; with `selector` (a deployment's, `owners.deployment_selector`), only those its
    labels match (ownership is checked by `frames.owned_replicasets`)."""
    return cluster.list_items(
        _apps(namespace, "replicasets"), query={"labelSelector": selector or None}, timeout=timeout
    )


def _metrics(cluster: Cluster, path: str, timeout: float) -> list[dict[str, Any]]:
    try:
        return cluster.get_json(path, timeout=timeout).get("items") or []
    except KubeAPIError as e:
        if e.status in (404, 503):
            raise SourceUnavailable(
                "the metrics API (metrics.k8s.io) is not available: `kubectl top` would fail too; "
                "install metrics-server, or read resource use from Prometheus"
            ) from None
        raise


def fetch_pod_metrics(
    cluster: Cluster, namespace: str | None, *, timeout: float = 10
) -> list[dict[str, Any]]:
    """`kubectl top pods` data; SourceUnavailable when the metrics API is missing."""
    return _metrics(
        cluster, _ns_path(namespace, "pods", group="/apis/metrics.k8s.io/v1beta1"), timeout
    )


def fetch_node_metrics(cluster: Cluster, *, timeout: float = 10) -> list[dict[str, Any]]:
    """`kubectl top nodes` data; SourceUnavailable when the metrics API is missing."""
    return _metrics(cluster, "/apis/metrics.k8s.io/v1beta1/nodes", timeout)


def fetch_log(
    cluster: Cluster,
    namespace: str,
    pod: str,
    container: str | None = None,
    *,
    tail: int = 100,
    previous: bool = False,
    timeout: float = 10,
) -> str:
    """A container's log tail (`kubectl logs --tail=N [--previous]`)."""
    query: dict[str, Any] = {"tailLines": tail, "container": container}
    if previous:
        query["previous"] = True
    return cluster.get_text(
        f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query=query, timeout=timeout
    )


def _apps(namespace: str | None, resource: str) -> str:
    return (
        f"/apis/apps/v1/namespaces/{namespace}/{resource}"
        if namespace
        else f"/apis/apps/v1/{resource}"
    )


def deployment_log_tail(
    cluster: Cluster,
    namespace: str,
    name: str,
    deployment: dict[str, Any] | None = None,
    *,
    tail: int = 100,
    timeout: float = 10,
) -> tuple[dict[str, Any], str] | None:
    """`kubectl logs deployment/<name> --tail=N`, as kubectl does it: the deployment (read here
    unless given), its pods by its selector, the one kubectl would pick (`owners.pick_log_pod`),
    that pod's log tail. (pod, text), or None when the deployment does not exist or has no pod."""
    if deployment is None:
        try:
            deployment = fetch_deployment(cluster, namespace, name, timeout=timeout)
        except KubeAPIError as e:
            if e.status == 404:
                return None
            raise
    pods = fetch_pods(cluster, namespace, selector=deployment_selector(deployment), timeout=timeout)
    pod = pick_log_pod(pods, owner=name)
    if pod is None:
        return None
    text = fetch_log(
        cluster,
        namespace,
        pod["metadata"]["name"],
        default_container(pod),
        tail=tail,
        timeout=timeout,
    )
    return pod, text


def fetch_deployments(
    cluster: Cluster, namespace: str | None, *, timeout: float = 5
) -> list[dict[str, Any]]:
    """Every deployment of a namespace (all namespaces when None), raw JSON."""
    return cluster.list_items(_apps(namespace, "deployments"), timeout=timeout)


METRICS_RESOLUTION_S = 15.0  # metrics-server's default --metric-resolution, when `window` is absent


def metrics_resolution(items: Iterable[dict[str, Any]]) -> float:
    """How often the metrics API measures, in seconds: the `window` its PodMetrics report (Go
    duration, e.g. "15s", "20.003s", "1m0s"); 15 s when none says."""
    for m in items:
        window = m.get("window")
        if window:
            try:
                return parse_duration(str(window), what="window").total_seconds()
            except InvalidParameter:
                continue
    return METRICS_RESOLUTION_S


def _stamps(items: Iterable[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {
        (m["metadata"].get("namespace", ""), m["metadata"]["name"]): str(m.get("timestamp"))
        for m in items
    }


def sample_pods(
    cluster: Cluster,
    namespace: str,
    *,
    samples: int = 3,
    interval_s: float = 2.0,
    timeout: float = 10.0,
    max_wait_s: float | None = None,
) -> list[tuple[datetime, list[dict[str, Any]]]]:
    """`samples` distinct measurements of the metrics API, each with the time it was read, taken at
    the API's own resolution: it is polled every `interval_s`, and a poll that repeats the last
    measurement (the same `timestamp`s: metrics-server refreshes about every 15 s, its `window`) is
    dropped. Waiting stops after `max_wait_s` (default: `samples - 1` windows and two polls, at most
    180 s), with fewer samples if the API did not move."""
    if not isinstance(samples, int) or not 1 <= samples <= 100:
        raise InvalidParameter(f"samples {samples!r} must be a whole number from 1 to 100")
    out: list[tuple[datetime, list[dict[str, Any]]]] = []
    start, last, budget = time.monotonic(), None, max_wait_s
    while True:
        read_at = datetime.now(UTC)
        items = fetch_pod_metrics(cluster, namespace, timeout=timeout)
        stamps = _stamps(items)
        if stamps != last:
            out.append((read_at, items))
            last = stamps
        if budget is None:
            budget = min((samples - 1) * metrics_resolution(items) + 2 * interval_s, 180.0)
        waited = time.monotonic() - start
        if len(out) >= samples or not items or waited + max(interval_s, 0.0) > budget:
            return out
        time.sleep(max(interval_s, 0.05))


def fetch_disk(
    cluster: Cluster, nodes: Iterable[str], *, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """The kubelet summary (`/api/v1/nodes/<node>/proxy/stats/summary`) of each node, the runbook's
    `df -h`."""
    return [
        cluster.get_json(f"/api/v1/nodes/{n}/proxy/stats/summary", timeout=timeout) for n in nodes
    ]


def fetch_logs(
    cluster: Cluster,
    namespace: str,
    deployment: str,
    *,
    since: timedelta,
    timeout: float = 10.0,
    limit_bytes: int = 10 << 20,
) -> list[PodLog]:
    """Logs (with timestamps) of every container of every pod of `deployment` over the last
    `since`."""
    from .logs import PodLog

    dep = fetch_deployment(cluster, namespace, deployment, timeout=timeout)
    pods = fetch_pods(cluster, namespace, selector=deployment_selector(dep), timeout=timeout)
    now = datetime.now(UTC)
    since_s = max(int(since.total_seconds()), 1)
    out = []
    for p in sorted(pods, key=lambda p: p["metadata"]["name"]):
        started = parse_time((p.get("status") or {}).get("startTime")) or now - since
        minutes = min(since_s, max((now - started).total_seconds(), 1.0)) / 60
        for c in (p.get("spec") or {}).get("containers") or []:
            try:
                text, error = (
                    cluster.get_text(
                        f"/api/v1/namespaces/{namespace}/pods/{p['metadata']['name']}/log",
                        query={
                            "container": c["name"],
                            "sinceSeconds": since_s,
                            "timestamps": True,
                            "limitBytes": limit_bytes,
                        },
                        timeout=timeout,
                    ),
                    None,
                )
            except KubeAPIError as e:
                if e.status not in (
                    400,
                    404,
                ):  # 400: container waiting or gone; other pods still count
                    raise
                text, error = "", str(e)
            out.append(PodLog(p["metadata"]["name"], c["name"], text, minutes, error))
    return out


def fetch_workload(
    cluster: Cluster,
    namespace: str,
    name: str,
    *,
    timeout: float = 10,
    parameter: str = "db_deployment",
) -> dict[str, Any]:
    """The Deployment `name`, or else the StatefulSet `name` (a database runs as either), with its
    kind set; a 404 for both names the parameter to fix (`parameter`)."""
    missing: KubeAPIError | None = None
    for kind, plural in (("Deployment", "deployments"), ("StatefulSet", "statefulsets")):
        try:
            obj = cluster.get_json(
                f"/apis/apps/v1/namespaces/{namespace}/{plural}/{name}", timeout=timeout
            )
        except KubeAPIError as e:
            if e.status != 404:
                raise
            missing = e
            continue
        return {**obj, "kind": kind}
    raise KubeAPIError(
        f"no Deployment or StatefulSet {name!r} in namespace {namespace!r} ({missing}); "
        f"set the `{parameter}` parameter to the workload's name",
        status=404,
        reason="NotFound",
    )


def fetch_configmap(
    cluster: Cluster, namespace: str, name: str, *, timeout: float = 10
) -> dict[str, Any]:
    """One ConfigMap (its data: the switches a mitigation may flip), with its kind set."""
    return {
        **cluster.get_json(f"/api/v1/namespaces/{namespace}/configmaps/{name}", timeout=timeout),
        "kind": "ConfigMap",
    }


def fetch_services(
    cluster: Cluster, namespace: str | None, *, timeout: float = 10
) -> list[dict[str, Any]]:
    """Every Service of `namespace` (None: all namespaces), raw."""
    return cluster.list_items(_ns_path(namespace, "services"), timeout=timeout)


def fetch_endpoints(
    cluster: Cluster, namespace: str | None, *, timeout: float = 10
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Endpoints, EndpointSlices) of `namespace`: the slices (discovery.k8s.io/v1) where the
    server has them, else the core Endpoints."""
    try:
        slices = cluster.list_items(
            _ns_path(namespace, "endpointslices", group="/apis/discovery.k8s.io/v1"),
            timeout=timeout,
        )
        return [], slices
    except KubeAPIError as e:
        if e.status != 404:
            raise
    return cluster.list_items(_ns_path(namespace, "endpoints"), timeout=timeout), []
