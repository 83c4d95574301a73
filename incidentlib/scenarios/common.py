"""Steps every scenario shares: connecting to the cluster like kubectl does, and saying what it
is."""

from __future__ import annotations

import os

from ..kube.client import Cluster, connect, resolve_kubeconfig
from ..notebook.run import Run
from ..params import Common


def describe_cluster(cluster: Cluster) -> str:
    """One line: which context, which API server, which version."""
    return f"context {cluster.context!r}, API server {cluster.server} ({cluster.server_version()})"


def connect_cluster(run: Run, cfg: Common, *, optional: bool = False) -> Cluster | None:
    """The cluster client (like kubectl: kubeconfig, $KUBECONFIG, ~/.kube/config, in-cluster), or
    None.

    The API server is asked its version at once, so an unreachable cluster is one clear line here.
    Where the cluster is `optional` (the database runbook) and none is configured at all, it is
    skipped, not failed."""
    if (
        optional
        and resolve_kubeconfig(cfg.kubeconfig) is None
        and not os.environ.get("KUBERNETES_SERVICE_HOST")
    ):
        run.skip(
            "kubernetes: connect",
            "no cluster configured (no kubeconfig parameter, no $KUBECONFIG, no ~/.kube/config)",
        )
        return None
    cluster = None
    with run.source("kubernetes: connect") as src:
        cluster = connect(kubeconfig=cfg.kubeconfig, context=cfg.context)
        line = describe_cluster(cluster)
    if not src.ok:
        return None
    if not run.quiet:
        print(line)
    return cluster
