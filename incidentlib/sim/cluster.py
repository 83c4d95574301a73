"""The simulated cluster: the store, the clock, and the components that act on them (controllers,
scheduler, kubelet), plus what scenarios declare about logs and metrics."""

from __future__ import annotations

import copy
import hashlib
import random
import threading
from dataclasses import dataclass

from . import controllers, endpoints, events
from .clock import Clock, iso, parse_iso
from .commands import ExecSpec
from .kubelet import PULL_SECONDS, Behavior, container_view
from .logs import LogQuery, LogSpec, generate, render
from .objects import container_requests, quantity
from .store import Store

PODS = "/pods"
NODES = "/nodes"
HEALTHY = Behavior()


@dataclass(frozen=True)
class MetricSpec:
    """CPU and memory use of a container; `leak_bytes_per_min` grows the working set with time."""

    cpu_m: float = 5.0
    memory_bytes: float = 32 * 2**20
    leak_bytes_per_min: float = 0.0
    fs_bytes: float = 50 * 2**20

    @classmethod
    def from_spec(cls, spec: dict) -> MetricSpec:
        return cls(
            cpu_m=quantity(spec.get("cpu", "5m")) * 1000,
            memory_bytes=quantity(spec.get("memory", "32Mi")),
            leak_bytes_per_min=quantity(spec.get("leakPerMinute", 0)),
            fs_bytes=quantity(spec.get("filesystem", "50Mi")),
        )


class Cluster:
    """Everything the API server serves, and the simulated components behind it."""

    def __init__(
        self,
        *,
        forbidden_namespaces: frozenset[str] = frozenset(),
        forbidden_resources: frozenset[str] = frozenset(),
        metrics: bool = True,
        seed: int = 7,
    ) -> None:
        self.store = Store()
        self.clock = Clock()
        self.rng = random.Random(seed)
        self.forbidden_namespaces = frozenset(forbidden_namespaces)
        self.forbidden_resources = frozenset(forbidden_resources)
        self.metrics_enabled = metrics
        self.behaviors: dict[str, Behavior] = {}
        self.log_specs: dict[
            tuple[str, str, str], LogSpec
        ] = {}  # (namespace, app label, container)
        self.metric_specs: dict[tuple[str, str, str], MetricSpec] = {}
        self.metric_overrides: dict[tuple[str, str, str], dict[str, float]] = {}
        self.exec_specs: dict[tuple[str, str, str], ExecSpec] = {}
        self.blocked: list[dict] = []  # {"from": app, "to": "host:port"}: connections that time out
        self.appended_logs: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
        self.requests: list[dict] = []
        self.requests_lock = threading.Lock()
        self._last_sync = 0.0
        self._endpoints_seen: tuple[int, ...] = ()

    def now(self) -> float:
        return self.clock.now()

    # --- lookups ---------------------------------------------------------------------------
    def behavior(self, image: str) -> Behavior:
        """How an image behaves: declared by the scenario; tag `does-not-exist` fails to pull."""
        b = self.behaviors.get(image)
        if b is not None:
            return b
        if image.endswith(":does-not-exist"):
            return Behavior(
                mode="imagepull",
                message=f"rpc error: code = NotFound desc = failed to pull and unpack "
                f'image "{image}": not found',
            )
        return HEALTHY

    def app_of(self, pod: dict) -> str:
        """The app a pod belongs to (its app, app.kubernetes.io/name or k8s-app label)."""
        return self._app(pod)

    def exec_spec(self, pod: dict, container: str) -> ExecSpec:
        key = (pod["metadata"]["namespace"], self._app(pod), container)
        return self.exec_specs.get(key) or ExecSpec()

    def _app(self, pod: dict) -> str:
        labels = pod["metadata"].get("labels") or {}
        return (
            labels.get("app") or labels.get("app.kubernetes.io/name") or labels.get("k8s-app") or ""
        )

    def log_spec(self, pod: dict, container: str) -> LogSpec:
        key = (pod["metadata"]["namespace"], self._app(pod), container)
        return (
            self.log_specs.get(key)
            or self.log_specs.get(("*", self._app(pod), container))
            or LogSpec(rate=0.2)
        )

    def metric_spec(self, pod: dict, container: str) -> MetricSpec:
        key = (pod["metadata"]["namespace"], self._app(pod), container)
        return (
            self.metric_specs.get(key)
            or self.metric_specs.get(("*", self._app(pod), container))
            or MetricSpec()
        )

    # --- the control loop ------------------------------------------------------------------
    def sync(self, *, force: bool = False) -> None:
        """Run the components: always after a write (force), else at most once a simulated
        second."""
        now = self.now()
        with self.store.lock:
            if not force and now - self._last_sync < 1.0:
                return
            self._last_sync = now
            if force:
                controllers.reconcile_deployments(self.store, now=now)
                controllers.reconcile_replicasets(self.store, now=now, rng=self.rng)
            self.schedule(now=now)
            self.run_kubelet(now=now, only_dynamic=not force)
            controllers.write_statuses(self.store, now=now)
            seen = tuple(self.store.key_rv[k] for k in (PODS, NODES, endpoints.SERVICES))
            if seen != self._endpoints_seen:  # only when pods, nodes or Services changed
                endpoints.reconcile(self.store)
                self._endpoints_seen = seen

    def advance(self, seconds: float) -> None:
        """Move the simulated clock and let every component catch up."""
        self.clock.advance(seconds)
        self.sync(force=True)

    # --- scheduler -------------------------------------------------------------------------
    def schedule(self, *, now: float) -> None:
        """Bind unscheduled pods to a node that fits, or record FailedScheduling."""
        pending = [
            p
            for p in self.store.objects(PODS)
            if not p["spec"].get("nodeName")
            and p["metadata"]["uid"] not in self.store.pinned_status
        ]
        if not pending:
            return
        nodes = list(self.store.objects(NODES))
        used: dict[str, list[float]] = {n["metadata"]["name"]: [0.0, 0.0, 0.0] for n in nodes}
        for p in self.store.objects(PODS):
            node = p["spec"].get("nodeName")
            if node in used:
                used[node][0] += container_requests(p, "cpu")
                used[node][1] += container_requests(p, "memory")
                used[node][2] += 1
        for pod in pending:
            node, reasons = self._fit(pod, nodes, used)
            if node is None:
                self._unschedulable(pod, nodes, reasons, now=now)
                continue
            used[node][0] += container_requests(pod, "cpu")
            used[node][1] += container_requests(pod, "memory")
            used[node][2] += 1
            self.bind(pod, node, now=now)

    def _fit(
        self, pod: dict, nodes: list[dict], used: dict[str, list[float]]
    ) -> tuple[str | None, dict[str, int]]:
        reasons: dict[str, int] = {}
        fits: list[tuple[float, str]] = []
        cpu, mem = container_requests(pod, "cpu"), container_requests(pod, "memory")
        tolerations = pod["spec"].get("tolerations") or []
        for n in nodes:
            name = n["metadata"]["name"]
            alloc = n["status"].get("allocatable") or {}
            bad = [
                t
                for t in n["spec"].get("taints") or []
                if t.get("effect") in ("NoSchedule", "NoExecute")
                and not any(
                    tol.get("operator") == "Exists"
                    and tol.get("key") in (None, t["key"])
                    or tol.get("key") == t["key"]
                    and tol.get("value") == t.get("value")
                    for tol in tolerations
                )
            ]
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in n["status"].get("conditions") or []
            )
            unknown = any(
                c.get("type") == "Ready" and c.get("status") == "Unknown"
                for c in n["status"].get("conditions") or []
            )
            if not ready:  # the node controller taints a NotReady (or unreachable) node
                taint = "unreachable" if unknown else "not-ready"
                text = f"node(s) had untolerated taint {{node.kubernetes.io/{taint}: }}"
                reasons[text] = reasons.get(text, 0) + 1
            elif n["spec"].get("unschedulable"):
                reasons["node(s) were unschedulable"] = (
                    reasons.get("node(s) were unschedulable", 0) + 1
                )
            elif bad:
                t = bad[0]
                text = f"node(s) had untolerated taint {{{t['key']}: {t.get('value', '')}}}"
                reasons[text] = reasons.get(text, 0) + 1
            elif mem and used[name][1] + mem > quantity(alloc.get("memory", "0")):
                reasons["Insufficient memory"] = reasons.get("Insufficient memory", 0) + 1
            elif cpu and used[name][0] + cpu > quantity(alloc.get("cpu", "0")):
                reasons["Insufficient cpu"] = reasons.get("Insufficient cpu", 0) + 1
            else:
                fits.append((used[name][2], name))
        if fits:
            return min(fits)[1], reasons
        return None, reasons

    def _unschedulable(
        self, pod: dict, nodes: list[dict], reasons: dict[str, int], *, now: float
    ) -> None:
        n = len(nodes)
        detail = (
            ", ".join(f"{c} {r}" for r, c in sorted(reasons.items()))
            if reasons
            else "no nodes available to schedule pods"
        )
        message = (
            f"0/{n} nodes are available: {detail}. preemption: 0/{n} nodes are available: "
            f"{n} No preemption victims found for incoming pod."
        )
        created = parse_iso(pod["metadata"]["creationTimestamp"])
        new = copy.deepcopy(pod)
        new["status"] = {
            "phase": "Pending",
            "qosClass": pod["status"].get("qosClass", "BestEffort"),
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": iso(created),
                }
            ],
        }
        if new != pod:
            self.store.put(PODS, new)
        count = 1 + int(max(0.0, now - created) // 60)
        events.record(
            self.store,
            new,
            reason="FailedScheduling",
            message=message,
            type_="Warning",
            component="default-scheduler",
            first=created,
            last=max(created, now - (now - created) % 60),
            count=count,
        )

    def bind(self, pod: dict, node: str, *, now: float) -> None:
        """Assign a pod to a node (the binding) and record Scheduled."""
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = node
        created = parse_iso(pod["metadata"]["creationTimestamp"])
        new["status"]["startTime"] = iso(created)
        self.store.put(PODS, new)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        events.record(
            self.store,
            new,
            reason="Scheduled",
            component="default-scheduler",
            first=min(now, created),
            message=f"Successfully assigned {ns}/{name} to {node}",
        )

    # --- kubelet ---------------------------------------------------------------------------
    def run_kubelet(self, *, now: float, only_dynamic: bool) -> None:
        """Write each running pod's status as its containers' behaviour makes it at `now`."""
        nodes = {n["metadata"]["name"]: n for n in self.store.objects(NODES)}
        for pod in list(self.store.objects(PODS)):
            if (
                not pod["spec"].get("nodeName")
                or pod["metadata"]["uid"] in self.store.pinned_status
            ):
                continue
            if only_dynamic and not self._is_dynamic(pod):
                continue
            status = self.pod_status(pod, nodes.get(pod["spec"]["nodeName"]), now=now)
            changed = status != pod.get("status")
            if changed:
                new = copy.deepcopy(pod)
                new["status"] = status
                self.store.put(PODS, new)
                pod = new
            if changed or self._is_dynamic(pod):
                self._kubelet_events(pod, now=now)

    def _is_dynamic(self, pod: dict) -> bool:
        for c in pod["spec"].get("containers", []):
            if self.behavior(c.get("image", "")).mode != "healthy":
                return True
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        return any("running" not in (s.get("state") or {}) for s in statuses) or not statuses

    def pod_status(self, pod: dict, node: dict | None, *, now: float) -> dict:
        """The status the kubelet reports for a pod at `now`."""
        start = parse_iso(pod["status"].get("startTime") or pod["metadata"]["creationTimestamp"])
        name = pod["metadata"]["name"]
        statuses = []
        for c in pod["spec"].get("containers", []):
            b = self.behavior(c.get("image", ""))
            v = container_view(b, start, now, pod=name, container=c["name"])
            cs = {
                "name": c["name"],
                "state": v.state,
                "lastState": v.last_state,
                "ready": v.ready,
                "restartCount": v.restarts,
                "image": c.get("image", ""),
                "imageID": ""
                if b.mode == "imagepull"
                else f"{c.get('image', '')}@sha256:{_digest(c.get('image', ''))}",
                "started": v.started,
            }
            if "running" in v.state or v.last_state:
                cs["containerID"] = f"containerd://{_digest(name + c['name'] + str(v.restarts))}"
            statuses.append(cs)
        ready = all(s["ready"] for s in statuses)
        started = any(s["started"] or s["restartCount"] for s in statuses)
        t_start = iso(start)
        t_ready = iso(start + PULL_SECONDS)

        def cond(type_: str, ok: bool, reason: str = "") -> dict:
            c = {
                "type": type_,
                "status": "True" if ok else "False",
                "lastProbeTime": None,
                "lastTransitionTime": t_ready
                if ok and type_ in ("Ready", "ContainersReady")
                else t_start,
            }
            if not ok and reason:
                c["reason"] = reason
                not_ready = [s["name"] for s in statuses if not s["ready"]]
                c["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
            return c

        node_ip = _node_ip(node)
        status: dict = {
            "phase": "Running" if started else "Pending",
            "conditions": [
                cond("PodReadyToStartContainers", True),
                cond("Initialized", True),
                cond("Ready", ready, "ContainersNotReady"),
                cond("ContainersReady", ready, "ContainersNotReady"),
                cond("PodScheduled", True),
            ],
            "hostIP": node_ip,
            "hostIPs": [{"ip": node_ip}],
            "startTime": t_start,
            "containerStatuses": statuses,
            "qosClass": pod["status"].get("qosClass", "BestEffort"),
        }
        ip = pod["status"].get("podIP") or _pod_ip(node, name)
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
        return status

    def _kubelet_events(self, pod: dict, *, now: float) -> None:
        node = pod["spec"]["nodeName"]
        start = parse_iso(pod["status"].get("startTime") or pod["metadata"]["creationTimestamp"])
        for c, cs in zip(
            pod["spec"].get("containers", []),
            pod["status"].get("containerStatuses") or [],
            strict=False,
        ):
            image, fp = c.get("image", ""), f"spec.containers{{{c['name']}}}"
            b = self.behavior(image)
            common = {"component": "kubelet", "host": node, "field_path": fp}
            if now < start + 0.5:
                continue
            events.record(
                self.store,
                pod,
                reason="Pulling",
                message=f'Pulling image "{image}"',
                first=start,
                **common,
            )
            if b.mode == "imagepull":
                n = 1 + int((now - start) // 20)
                events.record(
                    self.store,
                    pod,
                    reason="Failed",
                    type_="Warning",
                    first=start + 1,
                    last=start + 1 + (n - 1) * 20,
                    count=n,
                    message=f'Failed to pull image "{image}": {b.message or "not found"}',
                    **common,
                )
                events.record(
                    self.store,
                    pod,
                    reason="BackOff",
                    type_="Warning",
                    first=start + 5,
                    last=max(start + 5, now - (now - start) % 20),
                    count=n,
                    message=f'Back-off pulling image "{image}"',
                    **common,
                )
                continue
            if now < start + PULL_SECONDS:
                continue
            n = 1 + cs["restartCount"]
            last_run = start + PULL_SECONDS
            term = (cs.get("lastState") or {}).get("terminated")
            if term:
                last_run = parse_iso(term["startedAt"])
            events.record(
                self.store,
                pod,
                reason="Pulled",
                first=start + PULL_SECONDS,
                message=f'Successfully pulled image "{image}" in 1.8s (1.8s including waiting). '
                "Image size: 48123456 bytes.",
                **common,
            )
            events.record(
                self.store,
                pod,
                reason="Created",
                first=start + PULL_SECONDS,
                last=last_run,
                count=n,
                message=f"Created container {c['name']}",
                **common,
            )
            events.record(
                self.store,
                pod,
                reason="Started",
                first=start + PULL_SECONDS,
                last=last_run,
                count=n,
                message=f"Started container {c['name']}",
                **common,
            )
            if term and b.mode == "flapping":
                restarts = cs["restartCount"]
                events.record(
                    self.store,
                    pod,
                    reason="Unhealthy",
                    type_="Warning",
                    first=start + b.period_seconds - 30,
                    last=parse_iso(term["finishedAt"]),
                    count=3 * restarts,
                    message=f"Liveness probe failed: dial tcp {pod['status'].get('podIP', '')}:"
                    f"{(c.get('ports') or [{}])[0].get('containerPort', 8080)}: connect: "
                    "connection refused",
                    **common,
                )
                events.record(
                    self.store,
                    pod,
                    reason="Killing",
                    first=start + b.period_seconds,
                    last=parse_iso(term["finishedAt"]),
                    count=restarts,
                    message=f"Container {c['name']} failed liveness probe, will be restarted",
                    **common,
                )
            elif term:
                ns = pod["metadata"]["namespace"]
                events.record(
                    self.store,
                    pod,
                    reason="BackOff",
                    type_="Warning",
                    first=start + PULL_SECONDS + b.run_seconds,
                    last=parse_iso(term["finishedAt"]),
                    count=cs["restartCount"],
                    message=f"Back-off restarting failed container {c['name']} in pod "
                    f"{pod['metadata']['name']}_{ns}({pod['metadata']['uid']})",
                    **common,
                )

    # --- logs and metrics ------------------------------------------------------------------
    def pod_logs(
        self, pod: dict, container: str, query: LogQuery, *, previous: bool
    ) -> bytes | None:
        """The body of a log request, or None when there is no previous instance."""
        now = self.now()
        start = parse_iso(pod["status"].get("startTime") or pod["metadata"]["creationTimestamp"])
        cs = next(
            (s for s in pod["status"].get("containerStatuses") or [] if s["name"] == container),
            None,
        )
        spec: dict = next(
            (c for c in pod["spec"].get("containers", []) if c["name"] == container), {}
        )
        b = self.behavior(spec.get("image", ""))
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"], container)
        term = ((cs or {}).get("lastState") or {}).get("terminated")
        if previous:
            if not term:
                return None
            t0, t1 = parse_iso(term["startedAt"]), parse_iso(term["finishedAt"])
            ls = self.log_spec(pod, container)
            lines = [(t0 + 0.05 * i, text) for i, text in enumerate(ls.startup)]
            lines += [
                (t1 - 0.01 * (len(b.previous_log) - i), text)
                for i, text in enumerate(b.previous_log)
            ]
            return render(lines, query, now=now)
        if b.mode in ("crashloop", "oomkilled") and term:
            return self.pod_logs(
                pod, container, query, previous=True
            )  # the kubelet serves the last run
        if cs is None or "running" not in (cs.get("state") or {}):
            if b.mode == "imagepull" or cs is None:
                return None
        ls = self.log_spec(pod, container)
        running = ((cs or {}).get("state") or {}).get("running") or {}
        if running.get("startedAt"):
            start = parse_iso(running["startedAt"]) - PULL_SECONDS
        window = now - query.since_seconds if query.since_seconds is not None else start
        lines = generate(
            ls,
            seed="/".join(key),
            start=start,
            end=now,
            window_start=window,
            max_lines=query.tail_lines,
        )
        extra = self.appended_logs.get(key)
        if extra:
            lines = sorted(lines + list(extra), key=lambda t: t[0])
        return render(lines, query, now=now)

    def container_usage(self, pod: dict, container: str, *, now: float) -> tuple[float, float]:
        """(cpu millicores, memory bytes) of a container now."""
        over = self.metric_overrides.get(
            (pod["metadata"]["namespace"], pod["metadata"]["name"], container), {}
        )
        spec = self.metric_spec(pod, container)
        start = parse_iso(pod["status"].get("startTime") or pod["metadata"]["creationTimestamp"])
        cpu = over.get("cpu_m", spec.cpu_m)
        mem = over.get(
            "memory_bytes",
            spec.memory_bytes + spec.leak_bytes_per_min * max(0.0, now - start) / 60.0,
        )
        return cpu, mem


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _node_ip(node: dict | None) -> str:
    for a in ((node or {}).get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return a["address"]
    return "10.0.0.10"


def _pod_ip(node: dict | None, name: str) -> str:
    cidr = ((node or {}).get("spec") or {}).get("podCIDR", "10.244.0.0/24")
    base = cidr.split("/")[0].rsplit(".", 1)[0]
    return f"{base}.{2 + int(_digest(name)[:4], 16) % 250}"
