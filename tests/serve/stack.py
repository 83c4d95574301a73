"""Debian's real Prometheus (scraping the demo service, one alerting rule on its error rate) and
Alertmanager (group_wait of a second, posting to `runbook serve` with a bearer token), on loopback,
with intervals of a second so an alert fires and resolves within seconds (started
as `incidentlib.sandbox.monitoring` starts them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from incidentlib.sandbox.monitoring import ALERTMANAGER, PROMETHEUS, LoopbackServer, free_port

RULE = 'sum(rate(http_requests_total{status="500"}[5s])) / sum(rate(http_requests_total[5s])) > 0.1'
__all__ = ["RULE", "alertmanager", "free_port", "missing", "prometheus"]


def missing() -> str | None:
    """Why the stack cannot run here, or None."""
    for binary, package in ((PROMETHEUS, "prometheus"), (ALERTMANAGER, "prometheus-alertmanager")):
        if not os.access(binary, os.X_OK):
            return f"{binary} not found: apt-get install -y {package} (.ci/run installs it)"
    return None


def alertmanager(workdir: Path, *, webhook: str, token_file: Path) -> LoopbackServer:
    folder = workdir / "alertmanager"
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "route": {
            "receiver": "runbook",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "runbook",
                "webhook_configs": [
                    {
                        "url": webhook,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": str(token_file)}
                        },
                    }
                ],
            }
        ],
    }
    (folder / "alertmanager.yml").write_text(json.dumps(config))  # JSON is YAML
    return LoopbackServer(
        folder,
        [
            ALERTMANAGER,
            "--config.file=alertmanager.yml",
            "--storage.path=data",
            "--cluster.listen-address=",
        ],
    )


def prometheus(workdir: Path, *, target: str, alertmanager_url: str) -> LoopbackServer:
    folder = workdir / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    rules = {
        "groups": [
            {
                "name": "demo",
                "interval": "1s",
                "rules": [
                    {
                        "alert": "DemoHighErrorRate",
                        "expr": RULE,
                        "labels": {"namespace": "production", "deployment": "backend"},
                        "annotations": {"summary": "more than 10% of requests fail"},
                    }
                ],
            }
        ]
    }
    (folder / "rules.yml").write_text(json.dumps(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": ["rules.yml"],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager_url.split("//", 1)[1]]}]}
            ]
        },
        "scrape_configs": [{"job_name": "demo", "static_configs": [{"targets": [target]}]}],
    }
    (folder / "prometheus.yml").write_text(json.dumps(config))
    return LoopbackServer(
        folder,
        [
            PROMETHEUS,
            "--config.file=prometheus.yml",
            "--storage.tsdb.path=data",
            "--rules.alert.resend-delay=1s",
        ],
    )
