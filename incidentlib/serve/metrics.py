"""What `runbook serve` exposes at /metrics (Prometheus text format, its own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# From a second (a warm triage) to a quarter of an hour (a run up to its cell timeout).
SECONDS = (0.5, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300, 900)


class Metrics:
    """The server's counters, gauges and histograms."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.notifications = Counter(
            "runbook_serve_notifications",
            "Webhook notifications by alert status and what became of them "
            "(accepted, rejected: 400, busy: 503, unauthorized: 401).",
            ["status", "outcome"],
            registry=r,
        )
        self.alerts = Counter(
            "runbook_serve_alerts",
            "Alerts received, by outcome (ran, deduplicated, resolved, recorded).",
            ["outcome"],
            registry=r,
        )
        self.runs = Counter(
            "runbook_serve_runs",
            "Runs archived, by scenario and status (ok, incomplete, failed; error: could not run).",
            ["scenario", "status"],
            registry=r,
        )
        self.kernels = Counter(
            "runbook_serve_run_kernels",
            "Runs by the kernel they ran in: warm (started ahead) or cold.",
            ["kernel"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "runbook_serve_queue_depth", "Runs accepted and waiting for a worker.", registry=r
        )
        self.queue_capacity = Gauge(
            "runbook_serve_queue_capacity",
            "Runs the queue holds; beyond it the webhook answers 503.",
            registry=r,
        )
        self.running = Gauge("runbook_serve_running", "Runs in progress.", registry=r)
        self.warm_kernels = Gauge(
            "runbook_serve_warm_kernels", "Kernels started ahead and ready.", registry=r
        )
        self.open_incidents = Gauge(
            "runbook_serve_open_incidents", "Incidents whose alerts still fire.", registry=r
        )
        self.receipt_to_evidence = Histogram(
            "runbook_serve_receipt_to_evidence_seconds",
            "Seconds from the webhook's receipt to the run's archived evidence.",
            ["scenario"],
            buckets=SECONDS,
            registry=r,
        )
        self.alert_to_evidence = Histogram(
            "runbook_serve_alert_to_evidence_seconds",
            "Seconds from the alert's startsAt to the run's archived evidence.",
            ["scenario"],
            buckets=SECONDS,
            registry=r,
        )

    def text(self) -> bytes:
        return generate_latest(self.registry)
