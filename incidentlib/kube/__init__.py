"""Kubernetes, read and changed the way kubectl does.

client     connect like kubectl (kubeconfig, context, in-cluster); the one path of every call
reads      every `fetch_*`: thin reads returning the API's JSON
frames     pure builders: JSON in, kubectl's tables out (pods, nodes, events, rollouts)
podstatus  kubectl's READY/STATUS/RESTARTS/AGE, ported line by line
owners     who owns a pod; the pod `kubectl logs deployment/...` reads (no pandas)
metrics    resource use against requests and limits, leaks, OOM kills, pressure, disk
logs       ERROR lines over a window, per pod and per minute, the top messages
services   Services, their endpoints and the pods they select; why one routes nowhere
nodes      `describe node` for nodes in trouble; what a failed node took down
exec       read-only exec: an allow-list of diagnostic commands, with a timeout and a size cap
actions    mitigations: one Plan, one execute (scale, rollout undo/restart, limits, ConfigMap)"""

from .client import Cluster, connect, paused_gc, resolve_kubeconfig

__all__ = [
    "Cluster",
    "actions",
    "client",
    "connect",
    "exec",
    "frames",
    "logs",
    "metrics",
    "nodes",
    "owners",
    "paused_gc",
    "podstatus",
    "reads",
    "resolve_kubeconfig",
    "services",
]
