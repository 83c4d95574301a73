"""The public surface, pinned once per subpackage (its `__init__` re-exports): changing it is a
decision, made here, never an accident. Modules inside a subpackage are free to move. The scraps'
columns are a public interface too (other tools read them): they are pinned beside the package that
builds them."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "incidentlib": [
        "DatabaseError",
        "InvalidParameter",
        "KubeAPIError",
        "KubeConfigError",
        "Run",
        "RunbookError",
        "Severity",
        "SourceUnavailable",
        "__version__",
        "assess",
    ],
    "incidentlib.kube": [
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
    ],
    "incidentlib.pg": [
        "actions",
        "activity",
        "connect",
        "connections",
        "dangers",
        "describe_target",
        "locks",
        "pods",
        "query",
        "session",
        "space",
        "statements",
    ],
    "incidentlib.service": ["alertmanager", "git", "probe", "prometheus"],
    "incidentlib.scenarios": [
        "alerts",
        "common",
        "database",
        "outage",
        "performance",
        "postmortem",
        "triage",
    ],
    "incidentlib.notebook": [
        "Gathered",
        "Run",
        "SourceResult",
        "Table",
        "chartworker",
        "charts",
        "comms",
        "figures",
        "glue",
        "kernel",
        "run",
        "show_list",
        "show_table",
        "show_text",
    ],
    "incidentlib.evidence": [
        "MANIFEST",
        "Param",
        "RunResult",
        "VerifyReport",
        "coerce_parameters",
        "describe_kind",
        "export_html",
        "html",
        "inspect_parameters",
        "load_manifest",
        "manifest",
        "new_incident_id",
        "parameters",
        "read_scraps",
        "run",
        "run_notebook",
        "scenarios",
        "strip_external",
        "validate_incident_id",
        "verify",
    ],
    "incidentlib.cli": ["COMMANDS", "entry", "main"],
    "incidentlib.serve": [
        "DEFAULT_ROUTES",
        "Alert",
        "AlertServer",
        "BadPayload",
        "Catalog",
        "Notification",
        "Options",
        "Route",
        "Routing",
        "alerts",
        "incidents",
        "load_routing",
        "metrics",
        "notify",
        "parse",
        "routes",
        "serve_forever",
        "server",
        "web",
    ],
    "incidentlib.sandbox": ["certs", "demoapp", "monitoring", "postgres"],
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_each_subpackage_exports_exactly_its_pinned_names(package: str) -> None:
    pkg = importlib.import_module(package)
    assert sorted(pkg.__all__) == sorted(PUBLIC[package])
    for name in pkg.__all__:
        assert hasattr(pkg, name) or importlib.import_module(f"{package}.{name}"), (
            f"{package}.{name}"
        )


def test_every_scenario_has_params_and_steps_its_notebook_calls() -> None:
    import json
    import re
    from pathlib import Path

    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    for path in sorted(notebooks.glob("*.ipynb")):
        module = importlib.import_module(f"incidentlib.scenarios.{path.stem}")
        assert hasattr(module, "Params"), path.stem
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        alias = "pm" if path.stem == "postmortem" else path.stem
        called = set(re.findall(rf"\b{alias}\.(\w+)", code))
        assert called and all(hasattr(module, name) for name in called), (path.stem, called)


def test_the_scraps_keep_their_columns() -> None:
    from incidentlib.kube import frames, metrics
    from incidentlib.notebook import comms
    from incidentlib.pg import activity, connections, locks, space, statements
    from incidentlib.scenarios import postmortem, triage
    from incidentlib.service import probe, prometheus

    assert {"query", "calls", "mean_ms", "total_ms", "rows"} <= set(statements.SLOW_QUERY_COLUMNS)
    assert {
        "blocked_pid",
        "blocking_pid",
        "root_blocking_pid",
        "wait_s",
        "mode",
        "relation",
    } <= set(locks.BLOCKING_COLUMNS)
    assert connections.CONNECTION_COLUMNS == [
        "state",
        "database",
        "user",
        "application",
        "client",
        "count",
        "longest_s",
    ]
    assert activity.ACTIVITY_COLUMNS[:7] == [
        "pid",
        "database",
        "user",
        "application",
        "client",
        "state",
        "query_s",
    ]
    assert space.DATABASE_SIZE_COLUMNS[:3] == ["database", "size_bytes", "size"]
    assert frames.RECENT_ROLLOUT_COLUMNS == [
        "namespace",
        "deployment",
        "revision",
        "images",
        "change_cause",
        "created",
        "replicas",
        "ready",
        "current",
    ]
    assert frames.ROLLOUT_COLUMNS == [
        "revision",
        "change_cause",
        "images",
        "created",
        "replicas",
        "ready",
        "current",
        "replicaset",
    ]
    assert triage.NEXT_COLUMNS == ["notebook", "reason", "namespace", "deployment", "alerts"]
    from incidentlib.kube import exec as kexec
    from incidentlib.kube import nodes, services

    assert {"namespace", "involved_kind"} <= set(frames.EVENT_COLUMNS)
    assert nodes.NODE_DETAIL_COLUMNS == [
        "node",
        "ready",
        "taints",
        "conditions",
        "allocated_cpu_requests",
        "allocated_cpu_limits",
        "allocated_memory_requests",
        "allocated_memory_limits",
        "pods",
        "last_event",
    ]
    assert services.SERVICE_COLUMNS == [
        "namespace",
        "name",
        "type",
        "selector",
        "ready_endpoints",
        "not_ready_endpoints",
        "matching_pods",
    ]
    assert kexec.PROCESS_COLUMNS == [
        "namespace",
        "pod",
        "container",
        "pid",
        "user",
        "cpu_pct",
        "mem_pct",
        "rss_bytes",
        "command",
    ]
    assert kexec.POD_DISK_COLUMNS == [
        "pod",
        "container",
        "filesystem",
        "size_bytes",
        "used_bytes",
        "use_pct",
        "mounted_on",
    ]
    assert kexec.CONNECTIVITY_COLUMNS == ["from_pod", "target", "ok", "latency_ms", "error"]
    assert probe.HEALTH_COLUMNS == [
        "url",
        "status",
        "ok",
        "total_ms",
        "connect_ms",
        "ttfb_ms",
        "error",
        "headers",
        "tls_days_left",
        "tls_error",
    ]
    assert probe.LATENCY_COLUMNS == [
        "status",
        "dns_ms",
        "connect_ms",
        "tls_ms",
        "ttfb_ms",
        "total_ms",
        "error",
        "tls_days_left",
        "tls_error",
    ]
    assert metrics.LEAK_COLUMNS[:7] == [
        "namespace",
        "pod",
        "container",
        "growth_bytes_per_hour",
        "memory_bytes",
        "limit_bytes",
        "hours_to_limit",
    ]
    assert metrics.SERIES_COLUMNS == prometheus.SERIES_COLUMNS
    assert prometheus.ALERT_COLUMNS == [
        "source",
        "alertname",
        "state",
        "silenced",
        "severity",
        "namespace",
        "service",
        "summary",
        "active_at",
        "labels",
    ]
    assert comms.NOTIFICATION_COLUMNS == ["kind", "text", "posted", "post_result"]
    assert metrics.DISK_COLUMNS == [
        "kind",
        "node",
        "namespace",
        "pod",
        "used_bytes",
        "capacity_bytes",
        "available_bytes",
        "used_pct",
        "volume",  # kind "volume": a pod's persistent volume (issue 14)
    ]
    assert postmortem.TIMELINE_COLUMNS == [
        "time",
        "kind",
        "what",
        "detail",
        "scenario",
        "run_id",
        "approximate",
    ]
    assert postmortem.SEVERITY_COLUMNS == ["time", "level", "rank", "scenario", "run_id", "reason"]


def test_every_sql_constant_carries_the_runbook_marker() -> None:
    """pg_stat_statements readers (and the benchmark) tell the runbook's own statements by this
    comment."""
    from incidentlib.pg import actions, activity, connections, locks, space, statements

    constants = [
        activity.SESSIONS_SQL,
        connections.SERVER_SQL,
        statements.EXTENSION_SQL,
        statements.STATEMENTS_SQL,
        locks.BLOCKING_SQL,
        space.DATABASE_SIZES_SQL,
        space.TABLES_SQL,
        space.REPLICATION_SQL,
        space.SLOTS_SQL,
        actions.SIGNAL_SQL,
        actions.STILL_RUNNING_SQL,
    ]
    assert all(c.startswith("/* incident-runbook: ") for c in constants)
