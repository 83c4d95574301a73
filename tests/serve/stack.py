"""Debian's real Prometheus (scraping the demo service, one alerting rule on its error rate) and
Alertmanager (group_wait of a second, posting to `runbook serve` with a bearer token), on loopback,
with intervals of a second so an alert fires and resolves within seconds."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
RULE = 'sum(rate(http_requests_total{status="500"}[5s])) / sum(rate(http_requests_total[5s])) > 0.1'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing() -> str | None:
    """Why the stack cannot run here, or None."""
    for binary, package in ((PROMETHEUS, "prometheus"), (ALERTMANAGER, "prometheus-alertmanager")):
        if not os.access(binary, os.X_OK):
            return f"{binary} not found: apt-get install -y {package} (.ci/run installs it)"
    return None


class Process:
    """A server process with its log, stopped by `stop()`."""

    def __init__(self, name: str, cmd: list[str], workdir: Path, ready_url: str) -> None:
        self.name, self.ready_url = name, ready_url
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def alertmanager(workdir: Path, *, webhook: str, token_file: Path) -> Process:
    port = free_port()
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
    (workdir / "alertmanager.yml").write_text(json.dumps(config))  # JSON is YAML
    return Process(
        "alertmanager",
        [
            ALERTMANAGER,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        workdir,
        f"http://127.0.0.1:{port}/-/ready",
    )


def prometheus(workdir: Path, *, target: str, alertmanager_url: str) -> Process:
    port = free_port()
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
    (workdir / "rules.yml").write_text(json.dumps(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [str(workdir / "rules.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager_url.split("//", 1)[1]]}]}
            ]
        },
        "scrape_configs": [{"job_name": "demo", "static_configs": [{"targets": [target]}]}],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))
    return Process(
        "prometheus",
        [
            PROMETHEUS,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={workdir / 'prom-data'}",
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ],
        workdir,
        f"http://127.0.0.1:{port}/-/ready",
    )


def url_of(process: Process) -> str:
    return process.ready_url.rsplit("/-/ready", 1)[0]
