"""The outage runbook's parameters and its cluster reads, started before pandas is loaded.

The notebook's setup cell checks its parameters (`Params`) and starts the reads (`start_reading`)
from this module, which imports nothing heavier than the Kubernetes client: the API server is
already answering the runbook's first requests (every pod of the cluster, the events, the metrics)
while the kernel imports pandas and the tables' code. At 5,000 pods the API server spends a good
quarter of a second producing the pod list alone; the kernel used to wait for it after that import,
it now imports meanwhile. The reading thread then builds every table (`outage.collect`, which needs
pandas: it waits for the import the notebook is doing, not a second one)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameter
from ..kube import reads
from ..kube.client import Cluster, freeze_heap, paused_gc
from ..notebook.chartworker import ChartWorker
from ..notebook.run import Gathered, Run
from ..params import (
    Common,
    free_text,
    name_of,
    number,
    one_of,
    optional,
    param,
    validate_replicas,
)
from ..plan import OUTAGE_MITIGATIONS
from ..quantity import validate_memory_limit
from .common import connect_cluster, describe_cluster

if TYPE_CHECKING:
    from .outage import Facts


def _revision(value: Any, name: str) -> int | None:
    try:
        rev = int(value)
    except (TypeError, ValueError):
        rev = -1
    if isinstance(value, bool) or rev < 1:
        raise InvalidParameter(
            f"invalid {name} {value!r}: expected a revision number (1, 2, ...) from the "
            "rollout history, or None for the previous revision"
        )
    return rev


@dataclass(frozen=True)
class Params(Common):
    """The outage notebook's parameters, checked."""

    repo_path: str | None = param(None, check=free_text)
    to_revision: int | None = param(None, check=optional(_revision))
    replicas: int | None = param(None, check=optional(lambda v, n: validate_replicas(v)))
    memory_limit: str | None = param(None, check=optional(lambda v, n: validate_memory_limit(v)))
    mitigation: str = param("auto", check=one_of(OUTAGE_MITIGATIONS))
    frontend_deployment: str | None = param("frontend", check=optional(name_of("deployment")))
    rollout_timeout_s: float = param(60.0, check=number(1, 3600, unit="seconds"))
    container: str | None = param(None, check=optional(name_of("container")))


def source_names(cfg: Params) -> dict[str, str]:
    """The name each read is recorded under (the sources table), by key."""
    ns, dep = cfg.namespace, cfg.app_deployment
    return {
        "ns": f"kubernetes: namespace {ns}",
        "pods": f"kubernetes: pods in {ns}",
        "all": "kubernetes: pods (all namespaces)",
        "nodes": "kubernetes: nodes",
        "events": "kubernetes: events (all namespaces)",
        "ns_events": f"kubernetes: events in {ns}",
        "services": f"kubernetes: services in {ns}",
        "endpoints": f"kubernetes: endpoints in {ns}",
        "dep": f"kubernetes: deployment/{dep}",
        "top_pods": f"metrics API: pods in {ns}",
        "top_nodes": "metrics API: nodes",
        "git": f"git log {cfg.repo_path}",
    }


def _git_log(repo: str) -> Any:
    from ..service import git  # pandas: on the worker thread, once the reads are under way

    return git.git_log(repo)


def first_round(cluster: Cluster | None, run: Run, cfg: Params) -> Gathered:
    """Every read that depends on no other, concurrently (raw JSON, no tables); without a cluster
    they are recorded as skipped."""
    names = source_names(cfg)
    ns, dep = cfg.namespace, cfg.app_deployment
    tasks: dict[str, Callable[[], Any]] = {}
    if cluster is None:
        for key in ("ns", "pods", "all", "nodes", "events", "dep", "top_pods", "top_nodes"):
            run.skip(names[key], "no cluster connection")
    else:
        tasks = {
            names["ns"]: lambda: reads.fetch_namespace(cluster, ns),
            names["all"]: lambda: reads.fetch_pods(cluster, None),
            names["nodes"]: lambda: reads.fetch_nodes(cluster),
            names["events"]: lambda: reads.fetch_events_wide(cluster, ns),
            names["services"]: lambda: reads.fetch_services(cluster, ns),
            names["endpoints"]: lambda: reads.fetch_endpoints(cluster, ns),
            names["dep"]: lambda: reads.fetch_deployment(cluster, ns, dep),
            names["top_pods"]: lambda: reads.fetch_pod_metrics(cluster, ns),
            names["top_nodes"]: lambda: reads.fetch_node_metrics(cluster),
        }
    if cfg.repo_path:
        repo = cfg.repo_path
        tasks[names["git"]] = lambda: _git_log(repo)
    return run.gather(tasks)


CONNECT_FIRST_S = 1.0
"""How long `start_reading` lets the connection go first before the notebook carries on."""


class Reading:
    """The cluster read in a background thread (started with the parameters, so it overlaps the
    rest).

    Its sources are recorded on a quiet Run of its own and handed to the notebook's Run, in order
    and with their one-line messages, by `result()`, in the notebook's thread. The chart helper
    process (`chartworker`, started by the notebook before it imports this module, or here) imports
    matplotlib on another core meanwhile and is handed the charts' data as soon as the evidence is
    built, so `show_charts` only displays what it drew."""

    def __init__(self, run: Run, cfg: Params, charts: ChartWorker | None = None) -> None:
        self._run, self._cfg = run, cfg
        self._charts = charts if charts is not None else ChartWorker.start()
        self._quiet = Run(run.scenario, quiet=True)
        self._out: tuple[Cluster | None, Facts] | None = None
        self._error: BaseException | None = None
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._work, name="outage-reading", daemon=True)
        self._thread.start()
        # The connection first, alone: it imports the Kubernetes client (a quarter of a second of
        # CPU), and the kernel's one core shared with the notebook's import of pandas would delay
        # the first requests by as much. Once they are out, the API server produces its answers
        # while the notebook imports; a slow connection (an exec credential plugin) is not waited
        # for beyond CONNECT_FIRST_S.
        self._connected.wait(CONNECT_FIRST_S)

    def _work(self) -> None:
        try:
            with paused_gc():  # decoding and framing thousands of pods builds no cycles
                try:
                    cluster = connect_cluster(self._quiet, self._cfg)
                finally:
                    self._connected.set()
                first = first_round(cluster, self._quiet, self._cfg)
                from . import outage  # pandas and the tables: the notebook is importing them

                ev = outage.collect(cluster, self._quiet, self._cfg, first=first)
            freeze_heap()  # imports and evidence done: no full collection walks them again
            ev.charts = self._charts.submit(outage.chart_specs(ev, self._cfg))
            self._out = (cluster, ev)
        except BaseException as e:  # noqa: BLE001 - re-raised in the notebook's thread by result()
            self._error = e
        finally:
            self._charts.close()

    def result(self, timeout: float | None = None) -> tuple[Cluster | None, Facts]:
        """Wait for the reads; record their sources in the notebook's Run (printing failures);
        return (cluster, evidence)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
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


def start_reading(run: Run, cfg: Params, *, charts: ChartWorker | None = None) -> Reading:
    """Begin reading the cluster in the background; `.result()` gives (cluster, evidence).

    `charts` is a `chartworker.ChartWorker` the notebook started before importing this module (so
    the helper has the most time to warm up); without one, a helper is started here."""
    return Reading(run, cfg, charts)
