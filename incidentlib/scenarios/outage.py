"""The outage runbook's steps, so its cells stay one call each: check, read everything, find,
mitigate.

`start_reading` reads the cluster in a background thread while the health check runs (each read a
`run.source`, so one failing read never stops the rest) and builds every table with `kube.frames`;
`assess` turns what was measured into findings and a severity; `mitigate` shows the change the
findings suggest (`kube.actions`), and makes it only with apply=True."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from ..errors import InvalidParameter
from ..kube import actions, frames, nodes, owners, reads, services
from ..kube.client import Cluster, freeze_heap, paused_gc
from ..kube.podstatus import pod_row, surely_running_ready
from ..notebook import charts
from ..notebook.chartworker import DEFAULT_TIMEOUT, ChartJob, ChartWorker
from ..notebook.run import Gathered, Run, show_table, show_text
from ..plan import Plan
from ..redact import redact_text, redact_value
from ..service import probe
from ..severity import Severity, worst
from ..severity import assess as assess_matrix
from .common import describe_cluster
from .outage_reading import Params as Params  # the parameters and the first reads: no pandas there
from .outage_reading import ReadAhead, first_round, log_source, source_names

FAILING_DETAILS = 4  # describe (and the previous log) for at most this many failing pods
POD_DISPLAY = [
    "namespace",
    "name",
    "ready",
    "status",
    "restarts",
    "last_restart",
    "age",
    "ip",
    "node",
    "owner",
    "last_termination_reason",
    "exit_code",
    "waiting_reason",
]


def health_check(run: Run, cfg: Params, *, timeout: float = 5.0) -> pd.DataFrame:
    """One request to the health endpoint (`service.probe`): status, latency, the failure if any,
    and over HTTPS the server certificate (expired or refused: SEV1; expiring within 14 days:
    SEV3)."""
    if not cfg.health_url:
        run.skip("health check", "no health_url given")
        return probe.health_frame([], "")
    results: list[probe.ProbeResult] = []
    with run.source("health check"):
        results = probe.health_check(cfg.health_url, count=1, timeout=timeout)
    for f in probe.tls_findings(results, url=cfg.health_url):
        run.finding(**f)
    if results:
        run.figures.update(
            probe.tls_figures(results),
            probes=len(results),
            probe_failures=sum(not r.ok for r in results),
        )
    return probe.health_frame(results, cfg.health_url)


class Reading:
    """The cluster read in a background thread (started with the parameters, so it overlaps the
    rest).

    Its sources are recorded on a quiet Run of its own and handed to the notebook's Run, in order
    and with their one-line messages, by `result()`, in the notebook's thread. The chart helper
    process (`chartworker`, started by the notebook before it imports this module, or here) imports
    matplotlib on another core meanwhile and is handed the charts' data as soon as the evidence is
    built, so `show_charts` only displays what it drew. The connection and the first reads are a
    `ReadAhead`'s: the one the notebook started before importing pandas (`ahead`), or its own."""

    def __init__(
        self,
        run: Run,
        cfg: Params,
        charts: ChartWorker | None = None,
        ahead: ReadAhead | None = None,
    ) -> None:
        self._run, self._cfg = run, cfg
        self._ahead = ahead if ahead is not None else ReadAhead(cfg)
        self._charts = charts if charts is not None else ChartWorker.start()
        self._quiet = self._ahead.quiet
        self._out: tuple[Cluster | None, Facts] | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._work, name="outage-reading", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            with paused_gc():  # decoding and framing thousands of pods builds no cycles
                cluster, first = self._ahead.result()
                ev = collect(cluster, self._quiet, self._cfg, first=first)
                # imports and evidence done: no full collection walks them again, not even the one
                # the collector would otherwise start as soon as it is enabled again (0.15 s at
                # 5,000 pods: a million objects allocated while it was paused)
                freeze_heap(self._quiet)
            ev.charting = self._thread
            self._out = (cluster, ev)
        except BaseException as e:  # noqa: BLE001 - re-raised in the notebook's thread by result()
            self._error = e
            self._charts.close()
            return
        finally:
            self._ready.set()
        # The tables can be shown now; the charts' values (a twentieth of a second at 5,000 pods)
        # are taken out of the frames meanwhile, and `show_charts` waits for this thread.
        try:
            ev.charts = self._charts.submit(chart_specs(ev, self._cfg))
        except Exception:  # noqa: BLE001 - `show_charts` makes them again and fails in its own cell
            ev.charts = None
        finally:
            self._charts.close()

    def result(self, timeout: float | None = None) -> tuple[Cluster | None, Facts]:
        """Wait for the reads; record their sources in the notebook's Run (printing failures);
        return (cluster, evidence)."""
        if not self._ready.wait(timeout):
            raise TimeoutError(f"reading the cluster took longer than {timeout:g} s")
        for rec in self._quiet.sources:
            self._run.sources.append(rec)
            if (
                rec.source == "kubernetes: connect"
                and rec.ok
                and self._out
                and self._out[0] is not None
            ):
                print(describe_cluster(self._out[0]))
            elif rec.status == "failed":
                print(f"✗ {rec.source}: {rec.error}")
            elif rec.status == "skipped":
                print(f"– {rec.source}: skipped: {rec.error}")
        self._quiet.sources.clear()
        if self._error is not None:
            raise self._error
        assert self._out is not None
        return self._out


def start_reading(
    run: Run, cfg: Params, *, charts: ChartWorker | None = None, ahead: ReadAhead | None = None
) -> Reading:
    """Begin reading the cluster in the background; `.result()` gives (cluster, evidence).

    `charts` is a `chartworker.ChartWorker` the notebook started before importing this module (so
    the helper has the most time to warm up); without one, a helper is started here. `ahead`: the
    connection and first reads the notebook started before importing this module
    (`outage_reading.read_ahead`)."""
    return Reading(run, cfg, charts, ahead)


@dataclass
class Facts:
    """Everything read and built, for the notebook's sections."""

    now: datetime
    pods_raw: list[dict[str, Any]] = field(default_factory=list)
    pods: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=frames.POD_COLUMNS))
    unhealthy: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=frames.POD_COLUMNS)
    )
    nodes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=frames.NODE_COLUMNS))
    events: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=frames.EVENT_COLUMNS))
    events_raw: list[dict[str, Any]] = field(default_factory=list)
    deployment: dict[str, Any] | None = None
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    rollouts: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=frames.ROLLOUT_COLUMNS)
    )
    image_diff: pd.DataFrame = field(default_factory=pd.DataFrame)
    top_pods: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=frames.TOP_POD_COLUMNS)
    )
    top_nodes: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=frames.TOP_NODE_COLUMNS)
    )
    pending: pd.DataFrame = field(default_factory=pd.DataFrame)
    details: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, pd.DataFrame] = field(default_factory=dict)
    log_notes: list[str] = field(default_factory=list)
    services: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=services.SERVICE_COLUMNS)
    )
    node_details: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=nodes.NODE_DETAIL_COLUMNS)
    )
    node_failures: list[dict[str, Any]] = field(default_factory=list)
    routing: list[dict[str, str]] = field(default_factory=list)
    commits: pd.DataFrame | None = None
    correlation: dict[str, Any] | None = None
    read: set[str] = field(default_factory=set)
    charts: ChartJob | None = None
    charting: threading.Thread | None = None  # still sending the charts' values to the helper


def _ok(g: Gathered, name: str) -> bool:
    return name in g.values


def collect(
    cluster: Cluster | None,
    run: Run,
    cfg: Params,
    *,
    now: datetime | None = None,
    first: Gathered | None = None,
) -> Facts:
    """Read the cluster concurrently and build every table; failed reads leave empty tables and a
    line. `first`: the reads that depend on no other, already done (`outage_reading.first_round`,
    which `read_ahead` starts before pandas is imported)."""
    ev = Facts(now=now or datetime.now(UTC))
    ns, dep = cfg.namespace, cfg.app_deployment
    names = source_names(cfg)
    g = first if first is not None else first_round(cluster, run, cfg)
    all_raw: list[dict[str, Any]] = g.get(names["all"]) or []
    # The namespace's pods come from the all-namespaces list (one 13 MB read instead of two at 5,000
    # pods); only an identity that may not list every namespace reads its own namespace on its own.
    if cluster is not None and _ok(g, names["all"]):
        with run.source(names["pods"]):
            g.values[names["pods"]] = [p for p in all_raw if p["metadata"].get("namespace") == ns]
    elif cluster is not None:
        g.merge(run.gather({names["pods"]: lambda: reads.fetch_pods(cluster, ns)}))
    if cluster is not None and not _ok(g, names["events"]):  # namespaced roles only
        g.merge(run.gather({names["ns_events"]: lambda: reads.fetch_events(cluster, ns)}))
        g.values[names["events"]] = g.values.get(names["ns_events"], [])
    ev.read = set(g.values)
    pods_raw: list[dict[str, Any]] = g.get(names["pods"]) or []
    nodes_raw: list[dict[str, Any]] = g.get(names["nodes"]) or []
    ev.events_raw = g.get(names["events"]) or []
    services_raw = g.get(names["services"]) or []
    endpoints_raw, slices_raw = g.get(names["endpoints"]) or ([], [])
    ev.deployment = g.get(names["dep"])
    ev.commits = g.get(names["git"])

    ev.replicasets = g.get(names["replicasets"]) or []
    front = cfg.frontend_deployment
    if (
        cluster is not None
        and front
        and front != dep
        and log_source(front) not in g.values
        and log_source(front) not in g.errors
    ):
        ev.log_notes.append(
            f"no pod of deployment/{front} in {ns}: its logs were not read (does it "
            "exist? set frontend_deployment to the name of your frontend, or None)"
        )
    # second round: the previous containers' logs of the failing pods (the namespace's pods come
    # with the cluster-wide list)
    second: dict[str, Any] = {}
    failing = _worst_failing(pods_raw)
    if cluster is not None:
        for p in failing:
            name, container = p["metadata"]["name"], _crashing(p)
            if container:
                second[f"kubernetes: previous log of {name}"] = lambda n=name, c=container: (
                    reads.fetch_log(cluster, ns, n, c, tail=50, previous=True)
                )
    g2 = run.gather(second) if second else Gathered()

    ev.pods_raw = pods_raw
    if all_raw:
        # One frame: every pod of the namespace, and from the others only those that may not be
        # Running and ready (the cluster-wide table's rows; at 5,000 pods, a tenth of the work).
        shown = [
            p
            for p in all_raw
            if p["metadata"].get("namespace") == ns or not surely_running_ready(p)
        ]
        all_pods = frames.pods_frame(shown, now=ev.now, replicasets=ev.replicasets)
        ev.pods = all_pods[all_pods["namespace"] == ns].reset_index(drop=True)
    else:
        ev.pods = all_pods = frames.pods_frame(pods_raw, now=ev.now, replicasets=ev.replicasets)
    ev.unhealthy = frames.unhealthy_pods(all_pods)
    ev.node_details = redact_value(
        nodes.node_details_frame(nodes_raw, all_raw or pods_raw, ev.events_raw)
    )
    ev.node_failures = [
        nodes.node_failure(n, all_raw or pods_raw, ev.events_raw)
        for n in nodes_raw
        if nodes.not_ready(n)
    ]
    if _ok(g, names["services"]):
        ev.services = services.services_frame(
            services_raw, pods_raw, endpoints=endpoints_raw, slices=slices_raw
        )
        selectors = {
            s["metadata"]["name"]: (s.get("spec") or {}).get("selector") or {} for s in services_raw
        }
        relabels = {
            svc: services.relabel(sel, ev.replicasets, deployment=dep)
            for svc, sel in selectors.items()
        }
        ev.routing = services.routing_problems(ev.services, relabels=relabels)
    ev.nodes = frames.nodes_frame(nodes_raw, all_raw or pods_raw, now=ev.now)
    ev.events = redact_value(frames.events_frame(ev.events_raw, since=cfg.window, now=ev.now))
    ev.pending = redact_value(frames.pending_frame(pods_raw, ev.events_raw))
    if ev.deployment is not None:
        ev.rollouts = frames.rollouts_frame(ev.deployment, ev.replicasets)
        ev.image_diff = frames.image_diff(ev.rollouts)
        live = ev.pods[ev.pods["status"] != "Terminating"] if len(ev.pods) else ev.pods
        ev.correlation = frames.correlate(  # pods evicted from a failed node blame no rollout
            ev.rollouts, live, deployment=dep, events=ev.events, now=ev.now
        )
    if _ok(g, names["top_pods"]):
        ev.top_pods = frames.top_pods_frame(g.values[names["top_pods"]], pods_raw)
    if _ok(g, names["top_nodes"]):
        ev.top_nodes = frames.top_nodes_frame(g.values[names["top_nodes"]], nodes_raw)
    for p in failing:
        name = p["metadata"]["name"]
        prev = g2.get(f"kubernetes: previous log of {name}")
        detail = frames.pod_details(p, ev.events_raw, previous_log=prev, now=ev.now)
        detail["crashing_container"] = _crashing(p)
        ev.details.append(redact_value(detail))
    for owner in dict.fromkeys([dep, front or dep]):
        if (found := g.get(log_source(owner))) is not None:
            pod, text = found
            ev.logs[owner] = frames.log_frame(
                redact_text(text),
                pod=pod["metadata"]["name"],
                container=owners.default_container(pod) or "",
            )
    return ev


LOG_COLUMNS = ["namespace", "pod", "container", "previous", "line"]


def logs_frame(ev: Facts, namespace: str) -> pd.DataFrame:
    """The `logs` scrap: every log line the notebook read, the tails and the previous containers'
    logs of failing pods, one row each (redacted)."""
    rows = [
        {
            "namespace": namespace,
            "pod": r["pod"],
            "container": r["container"],
            "previous": False,
            "line": r["line"],
        }
        for df in ev.logs.values()
        for r in df.to_dict("records")
    ]
    for d in ev.details:
        for line in (d.get("previous_log") or "").splitlines():
            rows.append(
                {
                    "namespace": d["namespace"],
                    "pod": d["name"],
                    "container": d.get("crashing_container") or "",
                    "previous": True,
                    "line": line,
                }
            )
    return pd.DataFrame(rows, columns=LOG_COLUMNS).astype({"previous": "bool"})


def _worst_failing(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failing pods worth a `describe`: one per owner and status, most restarts first, at most
    FAILING_DETAILS."""
    # a pod surely Running and ready fails only if a container keeps crashing: no row needed
    rows = [(p, pod_row(p)) for p in pods if _crashing(p) or not surely_running_ready(p)]
    failing = [
        (p, r)
        for p, r in rows
        if r.status not in ("Running", "Completed")
        or (r.status == "Running" and r.ready.split("/")[0] != r.ready.split("/")[1])
        or _crashing(p)
    ]
    failing.sort(key=lambda pr: (0 if _crashing(pr[0]) else 1, -pr[1].restarts))
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for p, r in failing:
        owner, _ = owners.owner_of(p.get("metadata") or {})
        seen.setdefault((owner or r.name, r.status), p)
    return list(seen.values())[:FAILING_DETAILS]


def _crashing(pod: dict[str, Any]) -> str | None:
    """The container of a pod that has been terminating with an error (the one whose previous log
    matters)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        last = (cs.get("lastState") or {}).get("terminated")
        waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if last and (waiting == "CrashLoopBackOff" or int(last.get("exitCode") or 0) != 0):
            return cs.get("name")
    return None


def unhealthy_note(ev: Facts) -> str:
    """What an empty not-running table means: all well, or nothing read."""
    if "kubernetes: pods (all namespaces)" in ev.read:
        return "every pod in every namespace is Running and ready (or Completed)"
    return "pods across namespaces could not be read (see the lines above)"


def display_nodes(nodes: pd.DataFrame) -> pd.DataFrame:
    """Nodes with a problem first (NotReady, pressure, cordoned), then the fullest by requested
    memory."""
    if nodes.empty:
        return nodes
    trouble = (nodes["status"] != "Ready") | (nodes["pressure"] != "")
    return (
        nodes.assign(_ok=~trouble)
        .sort_values(["_ok", "memory_requested_pct"], ascending=[True, False], kind="stable")
        .drop(columns="_ok")
        .reset_index(drop=True)
    )


def display_pods(pods: pd.DataFrame, *, deployment: str) -> pd.DataFrame:
    """The rows worth a look: the deployment's pods and every pod not Running and ready, worst
    first."""
    if pods.empty:
        return pods[POD_DISPLAY] if set(POD_DISPLAY) <= set(pods.columns) else pods
    bad = set(frames.unhealthy_pods(pods)["name"])
    mask = (pods["owner"] == deployment) | pods["name"].isin(bad)
    shown = pods[mask].copy()
    shown["_bad"] = ~shown["name"].isin(bad)
    shown = shown.sort_values(["_bad", "restarts"], ascending=[True, False], kind="stable")
    return redact_value(shown[POD_DISPLAY].reset_index(drop=True))


def assess(ev: Facts, run: Run, cfg: Params, *, health: pd.DataFrame | None = None) -> Severity:
    """Findings with next steps, and the severity from the runbook's matrix on the measured
    figures."""
    dep, ns = cfg.app_deployment, cfg.namespace
    extra: list[Severity] = []
    health_ok = None
    details: dict[str, str] = {}
    if health is not None and len(health):
        h = health.iloc[0]
        health_ok = bool(h["ok"])
        what = f"HTTP {h['status']}" if not pd.isna(h["status"]) else str(h["error"])
        details["health_ok"] = f"GET {h['url']} answered {what} in {h['total_ms']:.0f} ms"
        if not health_ok:
            run.finding(
                "SEV1",
                "health check failing",
                details["health_ok"],
                "treat as a complete outage: page the incident commander, then read the pods below",
            )
    mine = ev.pods[ev.pods["owner"] == dep] if len(ev.pods) else ev.pods
    ready = (
        int(
            (
                (mine["status"] == "Running")
                & mine["ready"].map(lambda r: r.split("/")[0] == r.split("/")[1])
            ).sum()
        )
        if len(mine)
        else 0
    )
    want = int(((ev.deployment or {}).get("spec") or {}).get("replicas", 0) or 0)
    service_down = None
    degraded = None
    c = ev.correlation
    if c and c.get("rolled_out_at") is not None and not pd.isna(c["rolled_out_at"]):
        run.figures["incident_started"] = pd.Timestamp(
            c["rolled_out_at"]
        ).isoformat()  # the notifications' "Started"
    undo = (
        (
            f"roll back: `kubectl rollout undo deployment/{dep} -n {ns} "
            f"--to-revision={c['previous']}` "
            f"(here: mitigation='undo', apply=True)"
        )
        if c and c.get("previous")
        else None
    )
    if ev.deployment is not None:
        figures = f"{ready}/{want} pods ready"
        run.figures.update(pods_ready=ready, pods_wanted=want, pods_down=max(want - ready, 0))
        if want > 0 and ready == 0:
            service_down = True
            details["service_down"] = f"deployment/{dep} has no ready pods ({figures})"
        elif ready < want:
            degraded = True
            details["degraded"] = f"deployment/{dep} is short of ready pods ({figures})"
        if service_down or degraded:
            level = "SEV1" if service_down else "SEV2"
            statuses = (
                ", ".join(f"{n} {s}" for s, n in mine["status"].value_counts().items())
                if len(mine)
                else "no pods"
            )
            run.finding(
                level,
                f"deployment/{dep} has {figures}",
                f"pod statuses: {statuses}",
                undo
                or "read 'Why it fails' below: the previous log of a failing pod usually names "
                "the cause",
            )
    if c:
        level = "SEV1" if service_down else "SEV2"
        run.finding(
            level,
            f"revision {c['revision']} of deployment/{dep} is failing",
            c["sentence"],
            undo or "compare the failing revision with the last good one",
            revision=str(c["revision"]),
            previous_revision=str(c.get("previous")),
            root_cause=True,
        )
    bad = ev.unhealthy
    if len(bad):
        by_status = bad.groupby("status").size().sort_values(ascending=False)
        run.figures.update(unhealthy_pods=int(len(bad)))
        for status, n in by_status.items():
            rows = bad[bad["status"] == status]
            example = rows.iloc[0]
            codes = sorted({int(x) for x in rows["exit_code"].dropna()})
            detail = (
                f"{n} pod(s), e.g. {example['namespace']}/{example['name']}"
                + (f"; exit code {', '.join(map(str, codes))}" if codes else "")
                + (
                    f"; {example['waiting_message']}"
                    if isinstance(example["waiting_message"], str) and example["waiting_message"]
                    else ""
                )
            )
            if status == "Pending" and len(ev.pending):
                why = ev.pending[ev.pending["name"].isin(rows["name"])]
                if len(why):
                    detail += (
                        f"; scheduler: {why.iloc[0]['reasons'] or 'other'} "
                        f"({why.iloc[0]['message']})"
                    )
            step, level = _next_step(str(status), rows, cfg)
            run.finding(level, f"{n} pod(s) {status}", detail, step)
            extra.append(Severity(level, "pods-not-running", f"{n} pod(s) {status}"))
    oom = ev.pods[ev.pods["last_termination_reason"] == "OOMKilled"] if len(ev.pods) else ev.pods
    if len(oom) and not (len(bad) and (bad["status"] == "OOMKilled").any()):
        run.finding(
            "SEV2",
            f"{len(oom)} pod(s) were OOMKilled",
            ", ".join(oom["name"].head(5)),
            "raise the memory limit (memory_limit='1Gi', mitigation='memory') or find the leak",
            root_cause=True,
        )
        extra.append(Severity("SEV2", "oom", f"{len(oom)} pod(s) OOMKilled"))
    failed = {f["node"]: f for f in ev.node_failures}
    for f in ev.node_failures:
        since = f["since"]
        when = (
            f"since {pd.Timestamp(since).strftime('%H:%M:%S')} UTC "
            f"({int((ev.now - since).total_seconds() // 60)} min)"
            if since is not None
            else ""
        )
        took = ", ".join(f["taken_down"][:8]) + (" ..." if len(f["taken_down"]) > 8 else "")
        pending = "; ".join(f"{p} Pending: {m}" for p, m in f["pending"][:3])
        run.finding(
            "SEV2",
            f"node {f['node']} failed {when}: {len(f['taken_down'])} pod(s) taken down".replace(
                "  ", " "
            ),
            f"Ready={f['status']} ({f['reason']}: {f['message']}); its pods: {took or 'none'}"
            + (f"; {pending}" if pending else ""),
            f"`kubectl describe node {f['node']}`; check the machine (cloud console, kubelet "
            "logs); the evicted pods were rescheduled elsewhere"
            + ("; add capacity (or lower requests) for the Pending ones" if pending else ""),
            node=f["node"],
        )
        extra.append(Severity("SEV2", "node", f"node {f['node']} failed {when}"))
    for r in ev.routing:
        level = services.routing_level(r, deployment=dep)
        run.finding(level, r["title"], r["detail"], r["next_step"])
        extra.append(Severity(level, "service-routes-nowhere", r["title"]))
    for _, node in ev.nodes.iterrows():
        if node["name"] in failed:
            continue
        if node["status"].startswith("NotReady") or node["pressure"]:
            what = node["status"] if node["status"].startswith("NotReady") else node["pressure"]
            run.finding(
                "SEV2",
                f"node {node['name']} {what}",
                f"kubelet {node['version']}, {node['pods']} pods",
                f"`kubectl describe node {node['name']}`; cordon and drain it if it does not "
                "recover",
            )
            extra.append(Severity("SEV2", "node", f"node {node['name']} {what}"))
    critical = ("kubernetes: connect", "kubernetes: namespace", "kubernetes: pods in")
    unread = [s.source for s in run.sources if s.status != "ok" and s.source.startswith(critical)]
    dep_failed = next(
        (
            s
            for s in run.sources
            if s.source == f"kubernetes: deployment/{dep}" and s.status == "failed"
        ),
        None,
    )
    if dep_failed is not None and not unread:
        run.finding(
            "SEV3",
            f"deployment/{dep} could not be read",
            dep_failed.error or "",
            f"check the name: `kubectl get deployments -n {ns}`, then run again with "
            "app_deployment=NAME",
        )
    if unread:
        run.finding(
            "SEV2",
            "the cluster's state could not be read",
            "; ".join(f"{s.source}: {s.error}" for s in run.sources if s.status == "failed")[:1000],
            "fix access (kubeconfig, context, VPN, RBAC) and run this notebook again; until then "
            "assume the worst",
        )
        extra.append(
            Severity(
                "SEV2",
                "unmeasured",
                "the pods could not be read, so the impact is unknown: "
                "assumed major until measured",
            )
        )
    matrix = assess_matrix(
        health_ok=health_ok, service_down=service_down, degraded=degraded, details=details
    )
    return worst(matrix, *extra)


def _next_step(status: str, rows: pd.DataFrame, cfg: Params) -> tuple[str, str]:
    if status in ("CrashLoopBackOff", "Error") or status.startswith(
        ("ExitCode", "Init:CrashLoopBackOff", "Init:Error")
    ):
        return "read the previous log tail below; if it started with a rollout, roll back", "SEV2"
    if status in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
        return (
            "check the image name and tag and the registry credentials (imagePullSecrets), or "
            "roll back",
            "SEV2",
        )
    if status == "OOMKilled":
        return (
            "raise the memory limit (memory_limit='1Gi', mitigation='memory') or find the leak",
            "SEV2",
        )
    if status == "Pending":
        return (
            "see 'Why it fails': add nodes, lower the requests, or fix the taint/affinity/volume",
            "SEV3",
        )
    if status in ("Terminating", "Unknown", "NodeLost"):
        return (
            "check the node; force-delete stuck pods only once the node is known to be gone",
            "SEV3",
        )
    if status == "Evicted":
        return (
            "the node ran short of a resource: check node pressure, delete evicted pods when done",
            "SEV3",
        )
    return "describe the pod (`kubectl describe pod`) and read its events", "SEV3"


def plan_mitigation(ev: Facts, cfg: Params) -> tuple[Plan | None, str]:
    """The mitigation to show: the one the findings suggest (auto) or the one asked for; None and
    why if none."""
    oom = bool(len(ev.pods)) and bool((ev.pods["last_termination_reason"] == "OOMKilled").any())
    choice, why = actions.choose_mitigation(
        cfg.mitigation,
        correlation=ev.correlation,
        oom_killed=oom,
        replicas=cfg.replicas,
        memory_limit=cfg.memory_limit,
    )
    if cfg.to_revision is not None and cfg.mitigation == "auto":
        choice, why = "undo", f"to_revision={cfg.to_revision} was given"
    if choice == "none" and not ev.read:
        return None, "the cluster could not be read, so no mitigation can be chosen"
    if choice == "none":
        return None, why
    if ev.deployment is None:
        return None, f"deployment/{cfg.app_deployment} could not be read, so nothing can be planned"
    if choice == "undo":
        return actions.plan_undo(
            ev.deployment, ev.replicasets, to_revision=cfg.to_revision, why=why
        ), why
    if choice == "scale":
        if cfg.replicas is None:
            raise InvalidParameter("mitigation='scale' needs replicas=N")
        return actions.plan_scale(ev.deployment, cfg.replicas, why=why), why
    if choice == "restart":
        return actions.plan_restart(ev.deployment, why=why), why
    if cfg.memory_limit is None:
        raise InvalidParameter("mitigation='memory' needs memory_limit, e.g. '1Gi'")
    return actions.plan_memory_limit(
        ev.deployment, cfg.memory_limit, container=cfg.container, why=why
    ), why


def mitigate(cluster: Cluster | None, run: Run, cfg: Params, ev: Facts) -> dict[str, Any] | None:
    """Show the mitigation (the exact diff and the kubectl command); with apply=True make it, wait
    for the rollout, say how it went and show the deployment's pods now. The outcome is in the
    `actions` scrap."""
    plan, why = plan_mitigation(ev, cfg)
    if plan is None:
        print(f"no mitigation to show: {why}")
        return None
    print(plan.describe())
    if cluster is None:
        return None
    outcome = actions.execute(
        cluster, plan, apply=cfg.apply, record=run.record_action, timeout_s=cfg.rollout_timeout_s
    )
    print(f"{outcome['status']}: {outcome['detail']}")
    if outcome["applied"]:
        show_table(after_mitigation(cluster, run, cfg), caption="the deployment's pods now")
        recovery_check(run, cfg)
    return outcome


def recovery_check(run: Run, cfg: Params) -> pd.DataFrame:
    """The runbook's Recovery Verification: after an applied mitigation, probe `health_url` again
    and say whether the service answers (the `recovery` figure and a line)."""
    if not cfg.health_url:
        print("recovery: no health_url given, so whether the service answers again is unknown")
        return probe.health_frame([], "")
    results: list[probe.ProbeResult] = []
    with run.source("health check (after the mitigation)"):
        results = probe.health_check(cfg.health_url, count=3, timeout=5.0)
    frame = probe.health_frame(results, cfg.health_url)
    ok = bool(len(frame)) and bool(frame["ok"].all())
    run.figures["recovered"] = ok
    print(
        f"recovery: {cfg.health_url} "
        + (
            "answers again (3 of 3 requests OK)"
            if ok
            else "still fails: the mitigation did not "
            "restore the service; keep going with the findings"
        )
    )
    show_table(frame, caption="health check after the mitigation")
    return frame


# ------------------------------------------------------------------------------------------ display
def show_failures(ev: Facts) -> None:
    """`kubectl describe pod` for the worst failing pods, their previous log tail, Pending and
    image-pull reasons."""
    if not ev.details and ev.pending.empty and ev.unhealthy.empty:
        print("(no failing pod to explain)")
    for d in ev.details:
        show_text(
            f"{d['namespace']}/{d['name']}: {d['status']}, ready {d['ready']}, "
            f"{d['restarts']} restarts, node {d['node']}",
            strong=True,
        )
        show_table(
            d["containers"],
            caption="containers (state and last state)",
            empty="no container has started yet",
        )
        show_table(d["conditions"], caption="conditions")
        show_table(
            d["events"], max_rows=10, caption="events of this pod", empty="no events of this pod"
        )
        if d["previous_log"]:
            lines = d["previous_log"].rstrip().splitlines()[-20:]
            print("previous container's log (last lines):\n" + "\n".join("  " + ln for ln in lines))
    if len(ev.pending):
        show_table(redact_value(ev.pending), caption="Pending pods and the scheduler's reason")
    pulls = (
        ev.unhealthy[
            ev.unhealthy["waiting_reason"].isin(
                ["ImagePullBackOff", "ErrImagePull", "InvalidImageName"]
            )
        ]
        if len(ev.unhealthy)
        else ev.unhealthy
    )
    if len(pulls):
        show_table(
            redact_value(
                pulls[["namespace", "name", "images", "waiting_reason", "waiting_message"]]
            ),
            caption="image pull failures (the kubelet's message)",
        )


def show_changes(ev: Facts) -> None:
    """Rollout history, the image diff, recent commits and the correlation sentence."""
    show_table(
        ev.rollouts,
        caption="rollout history (kubectl rollout history, with images and readiness)",
        empty="no rollout history (deployment not read, or no ReplicaSets)",
    )
    if len(ev.image_diff):
        show_table(
            ev.image_diff, caption="image change between the current and the previous revision"
        )
    if ev.commits is not None:
        show_table(ev.commits, caption="recent commits (git log --oneline -10)")
    if ev.correlation:
        show_text(ev.correlation["sentence"], strong=True)
    elif ev.deployment is not None:
        print("the current revision's pods are not failing: no rollout to blame")


def chart_specs(ev: Facts, cfg: Params) -> list[tuple[str, dict[str, Any]]]:
    """The outage charts as `figures.RECIPES` requests, their plain values taken out of the frames
    here: pods by status per owner, and the incident timeline."""
    frame = charts.timeline_frame(
        rollouts=ev.rollouts,
        pods=ev.pods,
        events=ev.events,
        deployment=cfg.app_deployment,
        since=cfg.window,
        now=ev.now,
    )
    return [
        ("pods_by_status", charts.pods_by_status_data(ev.pods)),
        ("timeline", charts.timeline_data(frame)),
    ]


def show_charts(ev: Facts, cfg: Params) -> None:
    """Display the charts: drawn by the chart helper while the tables were shown, or drawn here
    without one."""
    if ev.charting is not None:
        ev.charting.join(DEFAULT_TIMEOUT)
    job = ev.charts if ev.charts is not None else ChartJob(chart_specs(ev, cfg), None)
    charts.show(*job.pngs())


def show_services(ev: Facts, namespace: str) -> None:
    """`kubectl get svc,ep`: each Service with its ready and not-ready endpoints and the pods its
    selector matches; a Service with none ready is named with its cause."""
    show_table(ev.services, empty=f"no Service read in {namespace}")
    for r in ev.routing:
        show_text(f"{r['title']}: {r['detail']}", strong=True)


def show_node_details(ev: Facts) -> None:
    """`kubectl describe node` for each node not Ready or under pressure."""
    for _, d in ev.node_details.iterrows():
        show_text(f"node {d['node']}: Ready={d['ready']}", strong=True)
        print(f"  taints: {d['taints'] or '<none>'}")
        print(f"  conditions: {d['conditions']}")
        print(f"  pods: {d['pods'] or '<none>'}")
        print(f"  last event: {d['last_event'] or '<none>'}")


def show_logs(ev: Facts, *, shown: int = 15) -> None:
    """Each deployment's log tail: how many lines are errors, the error lines, then the last lines
    (marked)."""
    for note in ev.log_notes:
        print(note)
    if not ev.logs:
        print("(no logs read)")
    for owner, df in ev.logs.items():
        errors = df[df["is_error"]]
        print(f"deployment/{owner}: {len(errors)} of the last {len(df)} lines are errors")
        for line in errors["line"].tail(shown):
            print(f"  ▶ {line}")
        print("  last lines:")
        for _, r in df.tail(5).iterrows():
            print(f"  {'▶' if r['is_error'] else ' '} {r['line']}")


def after_mitigation(cluster: Cluster, run: Run, cfg: Params) -> pd.DataFrame:
    """The deployment's pods after an applied mitigation."""
    pods = pd.DataFrame(columns=frames.POD_COLUMNS)
    with run.source(f"kubernetes: pods in {cfg.namespace} (after the mitigation)"):
        pods = frames.pods_frame(reads.fetch_pods(cluster, cfg.namespace))
    return (
        display_pods(pods[pods["owner"] == cfg.app_deployment], deployment=cfg.app_deployment)
        if len(pods)
        else pods
    )
