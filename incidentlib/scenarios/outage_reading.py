"""The outage runbook's parameters and its first cluster reads, started before pandas is loaded.

The notebook's setup cell checks its parameters (`Params`) and starts the reads (`read_ahead`) from
this module, which imports nothing heavier than the Kubernetes client: the API server is already
answering the runbook's first requests (every pod of the cluster, the events, the metrics) while the
kernel imports pandas and the tables' code. At 5,000 pods the API server spends a good quarter of a
second producing the pod list alone; the kernel used to wait for it after that import, it now
imports meanwhile. `outage.start_reading(..., ahead=...)` then builds every table from them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter
from ..kube import owners, reads
from ..kube.client import Cluster, freeze_heap, paused_gc
from ..notebook.run import NOT_READ, After, Gathered, Run
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
from .common import connect_cluster


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
        "replicasets": f"kubernetes: replicasets of {dep}",
        "top_pods": f"metrics API: pods in {ns}",
        "top_nodes": "metrics API: nodes",
        "git": f"git log {cfg.repo_path}",
    }


def _git_log(repo: str) -> Any:
    from ..service import git  # pandas: on the worker thread, once the reads are under way

    return git.git_log(repo)


def log_source(owner: str) -> str:
    """The name the log tail of a deployment is recorded under."""
    return f"kubernetes: logs deployment/{owner}"


def _log_tail(cluster: Cluster, ns: str, owner: str, deployment: dict[str, Any] | None) -> Any:
    found = reads.deployment_log_tail(cluster, ns, owner, deployment)
    return NOT_READ if found is None else found


def first_round(cluster: Cluster | None, run: Run, cfg: Params) -> Gathered:
    """Every read of the runbook's first pass, concurrently (raw JSON, no tables); without a
    cluster they are recorded as skipped.

    Those that need another's answer start as soon as it is in, while the cluster-wide lists are
    still coming: the deployment's ReplicaSets (its rollout history) and the log tails of the
    deployment and of `frontend_deployment` (`kubectl logs deployment/...`: the deployment, its
    pods by selector, the pod kubectl picks, its tail; `(pod, text)`). A log tail with no pod to
    read is recorded nowhere (`collect` says so for the frontend)."""
    names = source_names(cfg)
    ns, dep = cfg.namespace, cfg.app_deployment
    tasks: dict[str, Callable[[], Any] | After] = {}
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
            names["replicasets"]: After(
                names["dep"],
                lambda d: reads.fetch_replicasets(
                    cluster, ns, selector=owners.deployment_selector(d)
                ),
            ),
            log_source(dep): After(names["dep"], lambda d: _log_tail(cluster, ns, dep, d)),
        }
        front = cfg.frontend_deployment
        if front and front != dep:
            tasks[log_source(front)] = lambda: _log_tail(cluster, ns, front, None)
    if cfg.repo_path:
        repo = cfg.repo_path
        tasks[names["git"]] = lambda: _git_log(repo)
    return run.gather(tasks)


class ReadAhead:
    """The connection and the first round of reads, in a background thread, recorded on a quiet
    Run of their own (`outage.start_reading` takes it over and builds the tables from it)."""

    def __init__(self, cfg: Params) -> None:
        self.cfg = cfg
        self.quiet = Run("outage", quiet=True)
        self._out: tuple[Cluster | None, Gathered] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="outage-read-ahead", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            with paused_gc():  # decoding thousands of pods builds no cycles
                cluster = connect_cluster(self.quiet, self.cfg)
                self._out = (cluster, first_round(cluster, self.quiet, self.cfg))
                # the decoded lists live as long as the notebook: frozen before the collector is
                # enabled again (if the reading has not paused it yet, its first collection would
                # otherwise walk the million objects just decoded)
                freeze_heap(self.quiet)
        except BaseException as e:  # noqa: BLE001 - re-raised by result(), in the reading thread
            self._error = e

    def result(self, timeout: float | None = None) -> tuple[Cluster | None, Gathered]:
        """(cluster or None, the first round's reads), once they are all in."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"reading the cluster took longer than {timeout:g} s")
        if self._error is not None:
            raise self._error
        assert self._out is not None
        return self._out


def read_ahead(cfg: Params) -> ReadAhead:
    """Connect and start the reads that depend on no other, before the notebook imports pandas;
    hand the result to `outage.start_reading(..., ahead=...)`."""
    return ReadAhead(cfg)
