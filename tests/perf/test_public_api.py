"""The public surface of the performance modules, pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "probe": [
        "LATENCY_COLUMNS", "ProbeResult", "SUMMARY_COLUMNS", "check_login", "findings", "latency_frame",
        "latency_summary", "plot_latency", "probe", "probe_many", "require_reachable", "severity_inputs",
        "slo_verdict",
    ],
    "prom": [
        "DEFAULT_QUERIES", "Prometheus", "QueryError", "collect", "findings", "first_breach", "instant_frame",
        "last_value", "long_frame", "plot_series", "queries", "queries_table", "range_frame", "render",
        "rendered", "window_error_rate",
    ],
    "demoapp": [
        "BUCKETS", "DemoApp", "main",
    ],
    "resources": [
        "DISK_COLUMNS", "LEAK_COLUMNS", "NEAR_LIMIT", "NODE_USAGE_COLUMNS", "OOM_COLUMNS",
        "POD_USAGE_COLUMNS", "TREND_COLUMNS", "disk_frame", "fetch_disk", "findings", "leak_suspects",
        "memory_trend", "near_limit", "node_usage_frame", "oom_kills", "pending_pods", "plot_memory",
        "pod_usage_frame", "pressure_nodes", "quantity", "sample_pods", "top_nodes_view", "top_pods_view",
        "total_restarts", "trend_note",
    ],
    "logscan": [
        "ERROR_COLUMNS", "PodLog", "deployment_selector", "error_counts", "errors_per_minute", "fetch_logs",
        "findings", "normalize", "plot_errors", "split_timestamp", "top_messages",
    ],
    "compare": [
        "COMPARISON_COLUMNS", "FIGURES", "assess_run", "compare", "current_figures", "error_rates_frame",
        "figures_from_scraps", "read_baseline", "verdict",
    ],
    "perf_actions": [
        "MITIGATIONS", "chosen", "enable_cache", "mitigate", "plan_text", "rollout_restart", "scale",
        "scale_down", "scale_out",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_api_is_pinned(module: str) -> None:
    mod = importlib.import_module(f"incidentlib.{module}")
    assert sorted(mod.__all__) == PUBLIC[module]
    assert all(hasattr(mod, name) for name in mod.__all__)
