"""Kubernetes, read and changed the way kubectl does.

client     connect like kubectl (kubeconfig, context, in-cluster); the one path of every call
reads      every `fetch_*`: thin reads returning the API's JSON
frames     pure builders: JSON in, kubectl's tables out (pods, nodes, events, rollouts)
podstatus  kubectl's READY/STATUS/RESTARTS/AGE, ported line by line
metrics    resource use against requests and limits, leaks, OOM kills, pressure, disk
logs       ERROR lines over a window, per pod and per minute, the top messages
actions    mitigations: one Plan, one execute (scale, rollout undo/restart, limits, ConfigMap)"""

from .client import Cluster, connect, paused_gc, resolve_kubeconfig

__all__ = [
    "Cluster",
    "actions",
    "client",
    "connect",
    "frames",
    "logs",
    "metrics",
    "paused_gc",
    "podstatus",
    "reads",
    "resolve_kubeconfig",
]
