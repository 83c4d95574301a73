"""The performance runbook's steps (Performance Analysis and Recovery Verification), one call per
cell: response times (and the server certificate), the login check, Prometheus, resource use,
memory leaks, disk, ERROR lines, the severity, recovery against an earlier run, and the mitigations
(shown; applied only with apply=True).

Memory leaks are fitted per container over the incident window from Prometheus' history
(`container_memory_working_set_bytes`, a range query) when `prometheus_url` is given; without it,
from the few distinct measurements the metrics API gives in a short run, with a line saying how
little that can tell.

Recovery verification compares figures (lower is better): latency p50/p95/p99 (ms), error rate
(share), restarts, OOM kills, ERROR lines per minute. The verdict is `recovered` (now healthy: error
rate under 1% and p95 within the SLO, and it was not before), `improved`, `unchanged` or `worse`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import InvalidParameter, KubeAPIError, SourceUnavailable
from ..kube import actions, logs, metrics, reads
from ..kube import exec as kexec
from ..kube.client import Cluster
from ..kube.logs import PodLog
from ..notebook import charts
from ..notebook.run import Run, show_table
from ..params import (
    Common,
    duration,
    flag,
    free_text,
    name_of,
    number,
    optional,
    param,
    url,
    validate_replicas,
    whole,
)
from ..plan import Plan
from ..quantity import validate_memory_limit
from ..redact import redact_text
from ..service import probe, prometheus
from ..service.probe import ProbeResult, severity_inputs
from ..severity import Severity, assess, worst
from .common import connect_cluster

# figure -> (smallest change that counts, relative change that counts)
FIGURES: dict[str, tuple[float, float]] = {
    "p50_ms": (5.0, 0.10),
    "p95_ms": (5.0, 0.10),
    "p99_ms": (5.0, 0.10),
    "error_rate": (0.005, 0.10),
    "restarts": (1.0, 0.0),
    "oom_kills": (1.0, 0.0),
    "error_lines_per_min": (0.5, 0.10),
}
COMPARISON_COLUMNS = ["figure", "before", "after", "change", "change_pct", "direction"]
HEALTHY_ERROR_RATE = 0.01


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def figures_from_scraps(scraps: Mapping[str, Any]) -> dict[str, float]:
    """The compared figures from a performance notebook's scraps (`latency_summary`, `figures`)."""
    out = {k: math.nan for k in FIGURES}
    figures = scraps.get("figures") or {}
    for key in FIGURES:
        if key in figures:
            out[key] = _num(figures[key])
    summary = scraps.get("latency_summary")
    if isinstance(summary, pd.DataFrame) and len(summary):
        for key in ("p50_ms", "p95_ms", "p99_ms", "error_rate"):
            if key in summary.columns and math.isnan(out[key]):
                out[key] = _num(summary[key].iloc[0])
    return out


def read_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The scraps of an earlier evidence notebook (scrapbook), as plain values keyed by name."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InvalidParameter(
            f"baseline {path!r} does not exist; give the path of an earlier evidence notebook "
            "(.ipynb)"
        )
    import scrapbook as sb

    try:
        nb = sb.read_notebook(path)
        scraps = {name: scrap.data for name, scrap in nb.scraps.items()}
    except Exception as e:  # nbformat/json/parquet errors: say which file and why
        raise SourceUnavailable(
            f"baseline {path!r} cannot be read as an evidence notebook: {type(e).__name__}: {e}"
        ) from None
    if not scraps:
        raise SourceUnavailable(
            f"baseline {path!r} has no scraps: was it executed (papermill), not just saved?"
        )
    return scraps


def compare(before: Mapping[str, float], after: Mapping[str, float]) -> pd.DataFrame:
    """Side by side: one row per figure with the change and its direction
    (better/worse/same/unknown)."""
    rows = []
    for key, (abs_min, rel_min) in FIGURES.items():
        b, a = _num(before.get(key)), _num(after.get(key))
        if math.isnan(b) or math.isnan(a):
            direction, change, pct = "unknown", math.nan, math.nan
        else:
            change = a - b
            pct = (
                change / b * 100
                if b
                else (math.inf if change > 0 else (-math.inf if change < 0 else 0.0))
            )
            big = abs(change) >= abs_min and (b == 0 or abs(change) / abs(b) >= rel_min)
            direction = "same" if not big else ("better" if change < 0 else "worse")
        rows.append(
            {
                "figure": key,
                "before": b,
                "after": a,
                "change": change,
                "change_pct": pct,
                "direction": direction,
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _healthy(figures: Mapping[str, float], slo_ms: float | None) -> bool:
    err = _num(figures.get("error_rate"))
    p95 = _num(figures.get("p95_ms"))
    if math.isnan(err) or err >= HEALTHY_ERROR_RATE:
        return False
    return slo_ms is None or math.isnan(p95) or p95 <= slo_ms


def verdict(
    comparison: pd.DataFrame,
    *,
    before: Mapping[str, float],
    after: Mapping[str, float],
    slo_ms: float | None = None,
) -> tuple[str, str]:
    """(verdict, why): recovered / improved / unchanged / worse, and the figures that decided."""
    better = comparison.loc[comparison["direction"] == "better", "figure"].tolist()
    worse = comparison.loc[comparison["direction"] == "worse", "figure"].tolist()
    healthy_after, healthy_before = _healthy(after, slo_ms), _healthy(before, slo_ms)
    err_b, err_a = _num(before.get("error_rate")), _num(after.get("error_rate"))
    err_text = f"error rate {err_b * 100:.1f}% -> {err_a * 100:.1f}%"
    if healthy_after and not healthy_before:
        return "recovered", f"healthy again: {err_text}" + (
            f", p95 within {slo_ms:g} ms" if slo_ms else ""
        )
    if worse and not better:
        return "worse", f"worse: {', '.join(worse)} ({err_text})"
    if better and not worse:
        return "improved", f"better: {', '.join(better)} ({err_text})"
    if better and worse:
        if "error_rate" in worse:
            return (
                "worse",
                f"mixed, error rate up: better {', '.join(better)}; worse {', '.join(worse)}",
            )
        return (
            "improved",
            f"mixed: better {', '.join(better)}; worse {', '.join(worse)} ({err_text})",
        )
    return "unchanged", f"no figure moved beyond its noise threshold ({err_text})"


def current_figures(
    *,
    summary: pd.DataFrame,
    restarts: int | None = None,
    oom_kills: int | None = None,
    log_errors: pd.DataFrame | None = None,
    prom_error_rate: float | None = None,
) -> dict[str, float]:
    """This run's figures in the shape `compare` reads back from a baseline's `figures` scrap (None:
    not measured)."""
    s = summary.iloc[0] if len(summary) else {}
    figs = {
        k: _num(s.get(k)) if len(summary) else math.nan
        for k in ("p50_ms", "p95_ms", "p99_ms", "error_rate")
    }
    figs["restarts"] = math.nan if restarts is None else float(restarts)
    figs["oom_kills"] = math.nan if oom_kills is None else float(oom_kills)
    figs["error_lines_per_min"] = (
        float(log_errors["errors_per_min"].sum())
        if log_errors is not None and len(log_errors)
        else math.nan
    )
    figs["prom_error_rate"] = math.nan if prom_error_rate is None else float(prom_error_rate)
    if math.isnan(figs["error_rate"]) and not math.isnan(figs["prom_error_rate"]):
        figs["error_rate"] = figs["prom_error_rate"]
    return figs


def error_rates_frame(
    *,
    summary: pd.DataFrame,
    url: str | None,
    prom_error_rate: float | None,
    since: str,
    log_errors: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The error rate as each source measured it: probes, Prometheus over the window, ERROR lines
    per minute."""
    rows = []
    if len(summary) and int(summary["count"].iloc[0]):
        rows.append(
            {
                "source": "probes",
                "value": float(summary["error_rate"].iloc[0]),
                "unit": "share",
                "detail": f"{int(summary['count'].iloc[0])} probes of GET {redact_text(url or '')}",
            }
        )
    if prom_error_rate is not None:
        rows.append(
            {
                "source": "prometheus",
                "value": float(prom_error_rate),
                "unit": "share",
                "detail": f"5xx over all requests, last {since}",
            }
        )
    if log_errors is not None and len(log_errors):
        rows.append(
            {
                "source": "logs",
                "value": float(log_errors["errors_per_min"].sum()),
                "unit": "lines/min",
                "detail": f"ERROR lines of {len(log_errors)} container(s), last {since}",
            }
        )
    return pd.DataFrame(rows, columns=["source", "value", "unit", "detail"])


def assess_run(
    *,
    summary: pd.DataFrame,
    url: str | None,
    slo_ms: float,
    prom_error_rate: float | None,
    since: str,
    login_failed: str | None = None,
    certificate_expired: str | None = None,
) -> Severity:
    """The runbook's matrix on this run's figures: the probes (health, error share, p95 against the
    SLO, the login check, an expired certificate) and Prometheus' 5xx share over the window; the
    worse of the two, its reason naming the figure."""
    assessed = []
    inputs = severity_inputs(summary, url=url or "", slo_ms=slo_ms) if len(summary) and url else {}
    details = inputs.pop("details", {})
    if certificate_expired:
        inputs["certificate_expired"] = True
        details["certificate_expired"] = certificate_expired
    if login_failed:
        inputs["core_blocked"] = True
        details["core_blocked"] = login_failed
    if inputs:
        assessed.append(assess(**inputs, details=details))
    if prom_error_rate is not None and not math.isnan(prom_error_rate):
        assessed.append(
            assess(
                error_rate=prom_error_rate,
                details={
                    "error_rate": f"error rate {prom_error_rate * 100:.1f}% (Prometheus, 5xx over "
                    f"all requests, last {since})"
                },
            )
        )
    return worst(*assessed)


# ------------------------------------------------------------------------------------- the notebook
def _mitigations(value: Any, name: str) -> str:
    actions.performance_mitigations(value)
    return str(value or "")


@dataclass(frozen=True)
class Params(Common):
    """The performance notebook's parameters, checked."""

    probe_count: int = param(10, check=whole(1, 10_000))
    probe_timeout_s: float = param(5.0, check=number(0.1, 300, unit="seconds"))
    latency_slo_ms: float = param(500.0, check=number(1, 600_000, unit="milliseconds"))
    login_url: str | None = param(None, check=url)
    login_body: str = param("{}", check=free_text)
    samples: int = param(3, check=whole(1, 100))
    sample_interval_s: float = param(2.0, check=number(0, 600, unit="seconds"))
    baseline: str | None = param(None, check=free_text)
    replicas: int = param(5, check=lambda v, n: validate_replicas(v))
    cache_configmap: str = param("app-config", check=name_of("configmap"))
    cache_key: str = param("CACHE_ENABLED", check=free_text)
    cache_value: str = param("true", check=free_text)
    mitigations: str = param("scale_out", check=_mitigations)
    prometheus_timeout_s: float = param(10.0, check=number(0.1, 300, unit="seconds"))
    prom_rate_window: str = param("1m", check=duration)
    query_request_rate: str | None = param(None, check=free_text)
    query_error_rate: str | None = param(None, check=free_text)
    query_window_error_rate: str | None = param(None, check=free_text)
    query_latency_p50: str | None = param(None, check=free_text)
    query_latency_p95: str | None = param(None, check=free_text)
    query_latency_p99: str | None = param(None, check=free_text)
    query_memory: str | None = param(None, check=free_text)
    query_cpu: str | None = param(None, check=free_text)
    exec_checks: bool = param(True, check=flag)
    memory_limit: str | None = param(None, check=optional(lambda v, n: validate_memory_limit(v)))
    container: str | None = param(None, check=optional(name_of("container")))
    leak_horizon_h: float = param(24.0, check=number(0.1, 24 * 365, unit="hours"))

    def check_together(self) -> None:
        chosen = self.selected
        if {"scale_out", "scale_down"} <= chosen:
            raise InvalidParameter(
                "mitigations names both scale_out and scale_down: they move `replicas` in opposite "
                "directions; choose one"
            )
        if "memory" in chosen and self.memory_limit is None:
            raise InvalidParameter(
                "mitigations names memory but memory_limit is None: give the new limit, e.g. "
                "memory_limit='1Gi' (and container, when the pods run several)"
            )

    @property
    def selected(self) -> set[str]:
        """The mitigations applied when apply is True."""
        return actions.performance_mitigations(self.mitigations)

    def queries(self) -> dict[str, str]:
        """The PromQL used: the defaults, with the `query_*` parameters given in their place."""
        return prometheus.queries(
            request_rate=self.query_request_rate,
            error_rate=self.query_error_rate,
            window_error_rate=self.query_window_error_rate,
            latency_p50=self.query_latency_p50,
            latency_p95=self.query_latency_p95,
            latency_p99=self.query_latency_p99,
            memory=self.query_memory,
            cpu=self.query_cpu,
        )


@dataclass
class Facts:
    """Everything measured, for the notebook's sections and its scraps."""

    latency: pd.DataFrame = field(default_factory=lambda: probe.latency_frame([]))
    latency_summary: pd.DataFrame = field(
        default_factory=lambda: probe.latency_summary(probe.latency_frame([]))
    )
    login: ProbeResult | None = None
    probes: list[ProbeResult] = field(default_factory=list)
    prom_frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    prom_window_rate: float | None = None
    cluster: Cluster | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    top_pods: pd.DataFrame = field(default_factory=lambda: metrics.pod_usage_frame([], []))
    top_nodes: pd.DataFrame = field(default_factory=lambda: metrics.node_usage_frame([], []))
    memory_trend: pd.DataFrame = field(default_factory=lambda: metrics.memory_trend([]))
    pod_samples: list[Any] = field(default_factory=list)
    container_memory: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=metrics.SERIES_COLUMNS)
    )
    prom_limits: dict[tuple[str, str, str], float] = field(default_factory=dict)
    leaks: pd.DataFrame = field(
        default_factory=lambda: metrics.leak_suspects(pd.DataFrame(columns=metrics.SERIES_COLUMNS))
    )
    ooms: pd.DataFrame = field(default_factory=lambda: metrics.oom_kills([]))
    disk: pd.DataFrame = field(default_factory=lambda: metrics.disk_frame([]))
    logs: list[PodLog] = field(default_factory=list)
    log_errors: pd.DataFrame = field(default_factory=lambda: logs.error_counts([]))
    top_messages: pd.DataFrame = field(default_factory=lambda: logs.top_messages([]))
    figures: dict[str, float] = field(default_factory=dict)
    error_rates: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparison: pd.DataFrame | None = None
    processes: pd.DataFrame = field(default_factory=lambda: kexec.processes_frame([]))
    pod_disk: pd.DataFrame = field(default_factory=lambda: kexec.pod_disk_frame([]))


def response_times(run: Run, cfg: Params, ev: Facts) -> None:
    """The runbook's curl loop: each request with curl's breakdown, p50/p95/p99, the error share,
    the SLO."""
    if cfg.health_url:
        with run.source("http: health probes"):
            ev.probes = probe.health_check(
                cfg.health_url, count=cfg.probe_count, timeout=cfg.probe_timeout_s
            )
            ev.latency = probe.latency_frame(ev.probes)
            probe.require_reachable(ev.latency, what=f"GET {cfg.health_url}")
    else:
        run.skip("http: health probes", "no health_url given")
    ev.latency_summary = probe.latency_summary(ev.latency)
    for f in (
        probe.findings(ev.latency_summary, url=cfg.health_url or "", slo_ms=cfg.latency_slo_ms)
        if len(ev.latency)
        else []
    ):
        run.finding(**f)
    for f in probe.tls_findings(ev.probes, url=cfg.health_url or ""):
        run.finding(**f)
    run.figures.update(probe.tls_figures(ev.probes))
    show_table(ev.latency, empty="no probes")
    show_table(ev.latency_summary)
    if len(ev.latency):
        print(probe.slo_verdict(ev.latency_summary, slo_ms=cfg.latency_slo_ms))
        charts.show(
            charts.latency(ev.latency, failed=probe.failed(ev.latency), slo_ms=cfg.latency_slo_ms)
        )


def login_check(run: Run, cfg: Params, ev: Facts) -> None:
    """The runbook's login test: a POST expecting a 2xx; a failing login is a core feature blocked
    (SEV2)."""
    if not cfg.login_url:
        run.skip("http: login check", "no login_url given")
        return
    with run.source("http: login check"):
        ev.login = probe.check_login(
            cfg.login_url, body=cfg.login_body, timeout=cfg.probe_timeout_s
        )
        print(
            f"POST {redact_text(cfg.login_url)}: {ev.login.status or ev.login.error} in "
            f"{ev.login.total_ms:.0f} ms -> {'OK' if ev.login.ok else 'FAILED'}"
        )
    if ev.login is not None and not ev.login.ok:
        run.finding(
            "SEV2",
            "login check failed",
            f"POST {cfg.login_url} answered {ev.login.status or ev.login.error}",
            "core feature blocked: check the auth service and its dependencies",
        )


def read_prometheus(run: Run, cfg: Params, ev: Facts) -> None:
    """Request rate, 5xx share, latency percentiles, memory and CPU over the window; the queries
    used; charts."""
    if not cfg.prometheus_url:
        run.skip("prometheus", "no prometheus_url given")
        return
    queries = cfg.queries()
    window_query = queries.pop("window_error_rate")
    where = {"namespace": cfg.namespace, "deployment": cfg.app_deployment}
    client = prometheus.Prometheus(cfg.prometheus_url, timeout=cfg.prometheus_timeout_s)
    with run.source("prometheus"):
        rate = prometheus.window_error_rate(client, since=cfg.window, query=window_query, **where)
        ev.prom_window_rate = None if math.isnan(rate) else rate
        ev.prom_frames = prometheus.collect(
            client, queries, since=cfg.window, rate=cfg.prom_rate_window, **where
        )
        print(
            f"error rate over the last {cfg.since}: "
            + ("no requests" if math.isnan(rate) else f"{rate * 100:.2f}%")
        )
        show_table(ev.prom_frames["errors"], empty="every query answered")
        show_table(
            prometheus.queries_table(queries, since=cfg.window, rate=cfg.prom_rate_window, **where),
            caption="queries used",
        )
    p95 = prometheus.last_value(ev.prom_frames, "latency_p95")
    if p95 is not None:
        run.figures["prom_p95_ms"] = p95 * 1000
        print(
            f"p95 latency now (Prometheus, rate over {cfg.prom_rate_window}): {p95 * 1000:.0f} ms"
        )
    for f in prometheus.findings(ev.prom_window_rate, ev.prom_frames, since=cfg.since):
        run.finding(**f)
    with run.source("prometheus: container memory"):
        ev.container_memory = prometheus.container_memory(
            client, namespace=cfg.namespace, since=cfg.window
        )
        ev.prom_limits = prometheus.container_memory_limits(client, namespace=cfg.namespace)
        print(
            f"container memory over the last {cfg.since}: {len(ev.container_memory)} points of "
            f"{ev.container_memory.groupby(['pod', 'container']).ngroups} containers"
        )
    if ev.prom_frames:
        series = charts.prometheus_series
        f = ev.prom_frames
        charts.show(
            series(
                f,
                ["latency_p50", "latency_p95", "latency_p99"],
                title="latency percentiles",
                ylabel="ms",
                scale=1000,
            ),
            series(f, ["request_rate"], title="requests per second", ylabel="req/s"),
            series(f, ["error_rate"], title="error rate (5xx share)", ylabel="share"),
            series(f, ["memory"], title="container memory", ylabel="MiB", scale=1 / 2**20),
            series(f, ["cpu"], title="container CPU", ylabel="cores"),
        )


def resource_use(run: Run, cfg: Params, ev: Facts) -> None:
    """`kubectl top pods/nodes` against limits, near the limit, OOM kills, pressure, Pending; the
    metrics API sampled at its own resolution for the leak check when Prometheus has no history
    (once only when it has)."""
    ev.cluster = connect_cluster(run, cfg)
    nodes: list[dict[str, Any]] = []
    pod_samples: list[Any] = []
    node_metrics: list[dict[str, Any]] = []
    if ev.cluster is not None:
        c = ev.cluster
        with run.source("kubernetes: pods and nodes"):
            ev.pods = reads.fetch_pods(c, cfg.namespace)
            nodes = reads.fetch_nodes(c)
        with run.source("metrics API: pods"):
            pod_samples = reads.sample_pods(
                c,
                cfg.namespace,
                samples=1 if len(ev.container_memory) else cfg.samples,
                interval_s=cfg.sample_interval_s,
            )
        with run.source("metrics API: nodes"):
            node_metrics = reads.fetch_node_metrics(c)
    ev.top_pods = metrics.pod_usage_frame(pod_samples[-1][1] if pod_samples else [], ev.pods)
    ev.top_nodes = metrics.node_usage_frame(node_metrics, nodes)
    ev.pod_samples = pod_samples
    ev.memory_trend = metrics.memory_trend(pod_samples)
    ev.ooms = metrics.oom_kills(ev.pods)
    pressure, pending = metrics.pressure_nodes(nodes), metrics.pending_pods(ev.pods)
    for f in metrics.findings(
        top_pods=ev.top_pods, ooms=ev.ooms, pressure=pressure, pending=pending
    ):
        run.finding(**f)
    show_table(
        metrics.top_pods_view(ev.top_pods),
        caption="top pods (usage against limits)",
        empty="no pod metrics",
    )
    show_table(metrics.top_nodes_view(ev.top_nodes), caption="top nodes", empty="no nodes")
    show_table(ev.ooms, caption="OOM kills", empty="no OOM kill")
    show_table(pressure, caption="nodes under pressure", empty="no node under pressure")
    show_table(pending, caption="pending pods", empty="no pending pod")
    if ev.memory_trend["sample"].nunique() > 1:  # one sample draws no trend
        charts.show(charts.memory_trend(ev.memory_trend))


def leaks(run: Run, cfg: Params, ev: Facts) -> None:
    """Containers whose working set rises steadily toward their limit (the `leak_suspects` scrap):
    fitted over the incident window from Prometheus' history when it has some, else over the
    metrics API's distinct measurements, with a line saying how little a short run can tell."""
    limits = {**ev.prom_limits, **metrics.container_limits(ev.pods)}
    if len(ev.container_memory):
        series, source = ev.container_memory, "prometheus"
        note = (
            f"fitted over the last {cfg.since} of container_memory_working_set_bytes "
            f"(Prometheus), {series.groupby(['pod', 'container']).ngroups} containers"
        )
    else:
        series, source = metrics.container_series(ev.pod_samples), "metrics API"
        note = metrics.short_run_note(
            series,
            resolution_s=reads.metrics_resolution(ev.pod_samples[-1][1] if ev.pod_samples else []),
        )
    ev.leaks = metrics.leak_suspects(series, limits, horizon_h=cfg.leak_horizon_h, source=source)
    for f in metrics.findings(leaks=ev.leaks):
        run.finding(**f)
    print(note)
    show_table(
        leak_view(ev.leaks),
        caption=f"leak suspects: a steady rise that reaches the limit within "
        f"{cfg.leak_horizon_h:g} h",
        empty="no container's memory rises steadily toward its limit",
    )
    if len(ev.leaks):
        charts.show(charts.leak_fits(series, ev.leaks))


def leak_view(leaks: pd.DataFrame) -> pd.DataFrame:
    """The leak suspects as a person reads them: sizes in MiB/GiB, hours to the limit."""
    from ..quantity import format_bytes

    return pd.DataFrame(
        {
            "pod": leaks["pod"],
            "container": leaks["container"],
            "growth_per_hour": leaks["growth_bytes_per_hour"].map(format_bytes),
            "memory": leaks["memory_bytes"].map(format_bytes),
            "limit": leaks["limit_bytes"].map(lambda v: format_bytes(v) or "none"),
            "hours_to_limit": leaks["hours_to_limit"].round(1),
            "points": leaks["points"],
            "fit_r2": leaks["fit_r2"],
            "source": leaks["source"],
        }
    )


def disk(run: Run, cfg: Params, ev: Facts) -> None:
    """The runbook's `df -h` from the kubelet summary: each node's root file system, each pod's
    ephemeral storage."""
    if ev.cluster is not None:
        hosts = sorted({p["spec"].get("nodeName") for p in ev.pods if p["spec"].get("nodeName")})
        with run.source("kubelet: stats/summary"):
            ev.disk = metrics.disk_frame(
                reads.fetch_disk(ev.cluster, hosts), namespace=cfg.namespace
            )
    for f in metrics.disk_findings(ev.disk):
        run.finding(**f)
    show_table(ev.disk, empty="no disk figures")


def inside_pods(run: Run, cfg: Params, ev: Facts, *, at_most: int = 5) -> None:
    """The runbook's `kubectl exec deployment/... -- ps aux --sort=-%mem` and `-- df -h` in the
    deployment's running pods (read-only checks from `kube.exec`): per-process memory and CPU, and
    each file system mounted in the pod; a finding for one above 90%. A pod that cannot be exec'd
    into (not running, forbidden, no such binary) is one line, and the rest go on."""
    source = f"kubernetes: exec in pods of deployment/{cfg.app_deployment}"
    if not cfg.exec_checks:
        run.skip(source, "exec_checks=False")
        return
    if ev.cluster is None:
        run.skip(source, "no cluster connection")
        return
    if why := kexec.not_permitted(ev.cluster, cfg.namespace):
        run.skip(source, why)
        return
    targets = exec_targets(ev.pods, cfg.app_deployment, at_most=at_most)
    if not targets:
        run.skip(source, f"no pod of deployment/{cfg.app_deployment} in {cfg.namespace}")
        return
    ps: list[kexec.ExecResult] = []
    df: list[kexec.ExecResult] = []
    with run.source(source):
        for pod, container in targets:
            why = kexec.not_running(pod, container)
            name = pod["metadata"]["name"]
            if why:
                print(f"– {name}: {why}")
                continue
            for check, sink in (("processes", ps), ("disk", df)):
                r = kexec.run_check(ev.cluster, cfg.namespace, name, container, check)
                if r.error:
                    print(f"✗ {name}: {r.error}")
                    if r.error.startswith("exec forbidden"):
                        raise KubeAPIError(r.error, status=403, reason="Forbidden")
                else:
                    sink.append(r)
    ev.processes = kexec.processes_frame(ps)
    ev.pod_disk = kexec.pod_disk_frame(df)
    for _, f in ev.pod_disk[ev.pod_disk["use_pct"] > metrics.DISK_FULL_PCT].iterrows():
        run.finding(
            "SEV3",
            f"{f['mounted_on']} in pod {f['pod']} is {f['use_pct']:.0f}% full",
            f"{f['filesystem']}: {f['used_bytes'] / 2**30:.1f} GiB used of "
            f"{f['size_bytes'] / 2**30:.1f} GiB (df inside the container {f['container']})",
            "free space or grow the volume before writes fail",
        )
    show_table(
        ev.processes,
        caption="processes by memory (ps aux --sort=-%mem in each pod)",
        empty="no process list read",
    )
    show_table(ev.pod_disk, caption="file systems inside the pods (df)", empty="no df read")


def exec_targets(
    pods: list[dict[str, Any]], deployment: str, *, at_most: int
) -> list[tuple[dict[str, Any], str]]:
    """(pod, container) pairs of a deployment to run checks in: its pods by name, and each pod's
    main container."""
    from ..kube.owners import default_container, owner_of

    mine = [p for p in pods if owner_of(p.get("metadata") or {})[0] == deployment]
    mine.sort(key=lambda p: p["metadata"]["name"])
    return [(p, default_container(p) or "") for p in mine[:at_most]]


def log_errors(run: Run, cfg: Params, ev: Facts) -> None:
    """The runbook's `grep -c ERROR` over every pod of the deployment: per pod, per minute, the top
    messages."""
    if ev.cluster is not None:
        with run.source("kubernetes: logs"):
            ev.logs = reads.fetch_logs(
                ev.cluster, cfg.namespace, cfg.app_deployment, since=cfg.window
            )
    ev.log_errors = logs.error_counts(ev.logs)
    per_minute = logs.errors_per_minute(ev.logs)
    ev.top_messages = logs.top_messages(ev.logs)
    for f in logs.findings(ev.log_errors, ev.top_messages, deployment=cfg.app_deployment):
        run.finding(**f)
    show_table(ev.log_errors, caption="ERROR lines per pod", empty="no logs read")
    show_table(ev.top_messages, caption="most frequent ERROR messages", empty="no ERROR line")
    if len(per_minute):
        charts.show(charts.errors_per_minute(per_minute))


def assess_severity(run: Run, cfg: Params, ev: Facts) -> Severity:
    """The runbook's matrix on this run's figures (probes and Prometheus: the worse decides), the
    figures kept for recovery verification, and the error rate as each source measured it."""
    login_failed = None
    if ev.login is not None and not ev.login.ok:
        login_failed = (
            f"the login check POST {redact_text(cfg.login_url or '')} failed "
            f"({ev.login.status or ev.login.error})"
        )
    left = run.figures.get("tls_days_left")
    expired = (
        f"the TLS certificate of {redact_text(cfg.health_url or '')} expired {-left:.1f} days ago"
        if isinstance(left, float) and left < 0
        else None
    )
    severity = run.checked(
        assess_run(
            summary=ev.latency_summary,
            url=cfg.health_url,
            slo_ms=cfg.latency_slo_ms,
            prom_error_rate=ev.prom_window_rate,
            since=cfg.since,
            login_failed=login_failed,
            certificate_expired=expired,
        )
    )
    if len(ev.latency):
        run.figures.update(
            probes=len(ev.latency), probe_failures=int(probe.failed(ev.latency).sum())
        )
    ev.figures = current_figures(
        summary=ev.latency_summary,
        restarts=metrics.total_restarts(ev.pods) if ev.pods else None,
        oom_kills=len(ev.ooms) if ev.pods else None,
        log_errors=ev.log_errors if ev.logs else None,
        prom_error_rate=ev.prom_window_rate,
    )
    run.figures.update({k: v for k, v in ev.figures.items() if not math.isnan(v)})
    ev.error_rates = error_rates_frame(
        summary=ev.latency_summary,
        url=cfg.health_url,
        prom_error_rate=ev.prom_window_rate,
        since=cfg.since,
        log_errors=ev.log_errors,
    )
    print(severity)
    show_table(ev.error_rates, empty="no error rate measured")
    return severity


def verify_recovery(run: Run, cfg: Params, ev: Facts) -> None:
    """With `baseline` (an earlier evidence notebook of this runbook): the same figures side by
    side, a verdict."""
    if not cfg.baseline:
        run.skip("baseline evidence", "no baseline given")
        return
    with run.source("baseline evidence"):
        before = figures_from_scraps(read_baseline(cfg.baseline))
        ev.comparison = compare(before, ev.figures)
        result, why = verdict(
            ev.comparison, before=before, after=ev.figures, slo_ms=cfg.latency_slo_ms
        )
        run.figures["recovery_verdict"] = result
        print(f"verdict: {result.upper()}: {why}")
        show_table(ev.comparison)


def mitigate(run: Run, cfg: Params, ev: Facts) -> list[dict[str, Any]]:
    """Every performance mitigation shown as the exact change; those in `mitigations` applied when
    apply=True."""
    if ev.cluster is None:
        print("no cluster: no mitigation to show")
        return []
    c, ns = ev.cluster, cfg.namespace
    planners = {
        "scale_out": lambda: actions.plan_scale_out(
            reads.fetch_deployment(c, ns, cfg.app_deployment),
            cfg.replicas,
            why="the runbook's horizontal scaling",
        ),
        "restart": lambda: actions.plan_restart(
            reads.fetch_deployment(c, ns, cfg.app_deployment),
            why="new pods, same spec (buys time against a leak)",
        ),
        "cache": lambda: actions.plan_configmap_key(
            reads.fetch_configmap(c, ns, cfg.cache_configmap),
            cfg.cache_key,
            cfg.cache_value,
            why="the runbook's caching",
        ),
        "scale_down": lambda: actions.plan_scale_down(
            reads.fetch_deployment(c, ns, cfg.app_deployment),
            cfg.replicas,
            why=f"shed load on a shared dependency (replicas={cfg.replicas})",
        ),
        "memory": lambda: _memory_plan(reads.fetch_deployment(c, ns, cfg.app_deployment), cfg, ev),
    }
    out = []
    for name, plan_it in planners.items():
        try:
            plan = plan_it()
        except (InvalidParameter, KubeAPIError) as e:
            # a mitigation nobody chose that does not fit the parameters is left aside, not failed
            aside = isinstance(e, InvalidParameter) and not (cfg.apply and name in cfg.selected)
            failed = Plan(name, cfg.app_deployment, f"cannot plan: {e}", "").outcome(
                applied=False,
                status="skipped" if aside else "failed",
                detail=f"cannot plan: {e}",
            )
            run.record_action(failed)
            print(f"mitigation {name}: cannot plan: {e}\n")
            out.append(failed)
            continue
        chosen = cfg.apply and name in cfg.selected
        outcome = actions.execute(c, plan, apply=chosen)
        if cfg.apply and not chosen and outcome["status"] == "shown":
            outcome["detail"] = "shown only (not in `mitigations`)"
        run.record_action(outcome)
        print(plan.describe())
        print(f"  -> {outcome['status']}: {outcome['detail']}\n")
        out.append(outcome)
    return out


def memory_container(cfg: Params, ev: Facts, deployment: dict[str, Any]) -> str | None:
    """The container whose memory limit to raise: `container` when given, else the deployment's
    container that leaks (a leak suspect of one of its pods), else None (its first container)."""
    if cfg.container:
        return cfg.container
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    names = {c.get("name") for c in spec.get("containers") or []}
    prefix = f"{(deployment.get('metadata') or {}).get('name', '')}-"
    return next(
        (
            r.container
            for r in ev.leaks.itertuples()
            if r.pod.startswith(prefix) and r.container in names
        ),
        None,
    )


def _memory_plan(deployment: dict[str, Any], cfg: Params, ev: Facts) -> Plan:
    if cfg.memory_limit is None:
        raise InvalidParameter(
            "give memory_limit (e.g. '1Gi') to raise a container's memory limit (and container, "
            "when the pods run several)"
        )
    container = memory_container(cfg, ev, deployment)
    leak = ev.leaks[ev.leaks["container"] == container] if container else ev.leaks.iloc[0:0]
    why = (
        f"container {container} leaks: it reaches its limit in about "
        f"{leak['hours_to_limit'].min():.1f} h; more memory buys time, not a fix"
        if len(leak)
        else "the runbook's memory limit raise"
    )
    return actions.plan_memory_limit(deployment, cfg.memory_limit, container=container, why=why)


def glue(run: Run, ev: Facts) -> None:
    """The findings and sources, then this runbook's scraps for the archive and the post-mortem."""
    show_table(run.findings_table(), empty="no finding")
    show_table(run.sources_table())
    for name, value in (
        ("latency", ev.latency),
        ("latency_summary", ev.latency_summary),
        ("error_rates", ev.error_rates),
        ("top_pods", ev.top_pods),
        ("top_nodes", ev.top_nodes),
        ("memory_trend", ev.memory_trend),
        ("leak_suspects", ev.leaks),
        ("oom_kills", ev.ooms),
        ("disk", ev.disk),
        ("processes", ev.processes),
        ("pod_disk", ev.pod_disk),
        ("log_errors", ev.log_errors),
        ("prometheus", prometheus.long_frame(ev.prom_frames)),
        ("error_messages", ev.top_messages),
    ):
        run.glue(name, value)
    if ev.comparison is not None:
        run.glue("comparison", ev.comparison)
