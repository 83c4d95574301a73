"""Debian's real Prometheus and Alertmanager on loopback (tests and benchmarks).

`HistoryPrometheus` backfills hours of history with `promtool tsdb create-blocks-from openmetrics`
and starts Prometheus on that data with alerting rules; `ThrowawayAlertmanager` is a single node
(`--cluster.listen-address=""`) that alerts are posted to (`/api/v2/alerts`) and silenced in."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, body: Any = None, *, timeout: float = 5) -> Any:
    """GET (or POST `body` as JSON) and decode the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


class LoopbackServer:
    """A server process on a free loopback port (`--web.listen-address`, as Prometheus and
    Alertmanager take it), its log in its folder, ready when `/-/ready` answers; `stop()` ends
    it."""

    def __init__(self, folder: Path, argv: list[str]) -> None:
        self.dir = folder
        self.name = Path(argv[0]).name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*argv, f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
        )
        try:
            self.wait_until(self._ready, what="ready")
        except RuntimeError:
            self.stop()
            raise

    def _ready(self) -> bool:
        with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
            return resp.status == 200

    def wait_until(self, ok: Callable[[], Any], *, what: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            try:
                value = ok()
                if value:
                    return value
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not {what} after {timeout} s: {self.tail()}")
            time.sleep(0.2)

    def tail(self) -> str:
        return (self.dir / "server.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def openmetrics(
    series: Mapping[str, Iterable[tuple[dict[str, str], Iterable[tuple[float, float]]]]],
) -> str:
    """OpenMetrics text: {metric: [(labels, [(unix seconds, value), ...]), ...]} (gauges)."""
    lines = []
    for metric, items in series.items():
        lines.append(f"# TYPE {metric} gauge")
        for labels, points in items:
            tags = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines += [f"{metric}{{{tags}}} {v:.17g} {t:.3f}" for t, v in points]
    return "\n".join([*lines, "# EOF", ""])


class HistoryPrometheus(LoopbackServer):
    """Prometheus on backfilled history (`promtool tsdb create-blocks-from openmetrics`), with
    alerting rules evaluated every second."""

    def __init__(self, folder: Path, history: str, rules: list[dict[str, Any]]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "history.om").write_text(history)
        subprocess.run(
            [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "history.om", "data"],
            cwd=folder,
            check=True,
            capture_output=True,
            timeout=120,
        )
        groups = {"groups": [{"name": "incident", "interval": "1s", "rules": rules}]}
        (folder / "rules.yml").write_text(json.dumps(groups))  # JSON is YAML
        config = {"global": {"evaluation_interval": "1s"}, "rule_files": ["rules.yml"]}
        (folder / "prometheus.yml").write_text(json.dumps(config))
        super().__init__(
            folder,
            [
                PROMETHEUS,
                "--config.file=prometheus.yml",
                "--storage.tsdb.path=data",
                "--storage.tsdb.retention.time=30d",
            ],
        )
        want = len(rules)
        self.wait_until(
            lambda: len(call(self.url + "/api/v1/alerts")["data"]["alerts"]) >= want,
            what="evaluating its rules",
        )


class ThrowawayAlertmanager(LoopbackServer):
    """A single-node Alertmanager on loopback that routes to nobody."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config = {"route": {"receiver": "nobody"}, "receivers": [{"name": "nobody"}]}
        (folder / "alertmanager.yml").write_text(json.dumps(config))
        super().__init__(
            folder,
            [
                ALERTMANAGER,
                "--config.file=alertmanager.yml",
                "--storage.path=data",
                "--cluster.listen-address=",
            ],
        )

    def post(self, alerts: list[dict[str, Any]]) -> None:
        call(self.url + "/api/v2/alerts", alerts)

    def silence(self, alertname: str, *, comment: str) -> str:
        now = time.time()

        def stamp(t: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

        body = {
            "matchers": [{"name": "alertname", "value": alertname, "isRegex": False}],
            "startsAt": stamp(now - 60),
            "endsAt": stamp(now + 3600),
            "createdBy": "detection tests",
            "comment": comment,
        }
        return str(call(self.url + "/api/v2/silences", body)["silenceID"])

    def settled(self, count: int) -> None:
        """Wait until `count` alerts are held and none is still unprocessed."""
        self.wait_until(
            lambda: (
                len(alerts := call(self.url + "/api/v2/alerts")) >= count
                and all(a["status"]["state"] != "unprocessed" for a in alerts)
            ),
            what=f"holding {count} processed alerts",
        )
