"""Fixtures of the performance tests: the demo HTTP service and a real Prometheus scraping it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from incidentlib.sandbox.demoapp import DemoApp
from incidentlib.sandbox.monitoring import LoopbackServer

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class ThrowawayPrometheus(LoopbackServer):
    """Debian's prometheus on loopback with a temp config scraping `targets` every second."""

    def __init__(self, targets: list[str]) -> None:
        folder = Path(tempfile.mkdtemp(prefix="perf-prom-"))
        config = {
            "global": {
                "scrape_interval": "1s",
                "evaluation_interval": "1s",
                "scrape_timeout": "900ms",
            },
            "scrape_configs": [{"job_name": "demo", "static_configs": [{"targets": targets}]}],
        }
        (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        super().__init__(
            folder,
            [
                PROMETHEUS,
                "--config.file=prometheus.yml",
                "--storage.tsdb.path=data",
                "--storage.tsdb.retention.time=1h",
            ],
        )

    def wait_scraped(self, *, samples: int = 2, timeout: float = 20) -> None:
        """Wait until the demo target has been scraped `samples` times since now."""
        deadline = time.monotonic() + timeout
        first = None
        while time.monotonic() < deadline:
            try:
                q = urllib.parse.urlencode({"query": 'count_over_time(up{job="demo"}[1h])'})
                with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=2) as r:
                    res = json.loads(r.read())["data"]["result"]
                n = int(float(res[0]["value"][1])) if res else 0
                first = n if first is None else first
                if n - first >= samples:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("prometheus did not scrape the demo app in time")

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def demo_app() -> Iterator[DemoApp]:
    """A fresh demo service with no latency and no errors; tests set what they need."""
    with DemoApp() as app:
        yield app


@pytest.fixture(scope="session")
def prom_stack() -> Iterator[tuple[DemoApp, ThrowawayPrometheus]]:
    """A demo service and a real Prometheus scraping it every second (skips when prometheus is
    missing)."""
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip(f"prometheus binary not found at {PROMETHEUS}: apt-get install -y prometheus")
    with DemoApp() as app:
        try:
            prom = ThrowawayPrometheus([f"127.0.0.1:{app.port}"])
        except RuntimeError as e:  # installed but crashing: a failure, never a skip
            pytest.fail(f"prometheus could not start: {e}", pytrace=False)
        try:
            yield app, prom
        finally:
            prom.stop()


@pytest.fixture(scope="module")
def broken_prometheus() -> Iterator[str]:
    """/fail answers every query with HTTP 500; /hang answers after 3 s."""

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/hang"):
                time.sleep(3)
            body = b'{"status":"error","errorType":"internal","error":"query engine crashed"}'
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
