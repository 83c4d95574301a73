"""Shared pieces of the serve tests (plain functions, no fixtures): tiny scenario notebooks, webhook
payloads as Alertmanager builds them, a client."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat as nbf

PARAMS = {
    "triage": 'namespace = "production"  # the namespace\n'
    'app_deployment = "backend"  # the application\n'
    "incident_id = None  # the incident\n"
    "apply = False  # never used\n"
    "pause = 0.0  # seconds to sleep (a run long enough to be cut short)",
    "performance": 'namespace = "production"  # the namespace\n'
    'app_deployment = "backend"  # the application\n'
    "incident_id = None  # the incident\n"
    "apply = False  # what a mitigation would do\n"
    "baseline = None  # an earlier evidence notebook\n"
    "latency_slo_ms = 500.0  # the SLO",
    "outage": 'namespace = "production"  # the namespace\n'
    'app_deployment = "backend"  # the application\n'
    "incident_id = None  # the incident\n"
    "apply = False  # what a mitigation would do",
}
CELLS = {
    "triage": [
        "import json\nimport time\n\nfrom ipykernel import get_connection_file\n\n"
        "from incidentlib.notebook.run import Run\n"
        "from incidentlib.severity import Severity\n\n"
        'print("transport:", json.load(open(get_connection_file()))["transport"])\n'
        'run = Run("triage", params={"namespace": namespace, "app_deployment": app_deployment})',
        "time.sleep(pause)",
        'run.finding("SEV2", f"deployment/{app_deployment} in {namespace} fails",'
        ' "half the requests", "roll back")\n'
        'run.glue("notifications", {"initial": f"🚨 INCIDENT [{incident_id}]: '
        '{app_deployment} in {namespace} fails"})\n'
        'run.finish(Severity("SEV2", "error-rate", "error rate 50%"))',
    ],
    "performance": [
        "import pandas as pd\n\nfrom incidentlib.notebook.run import Run\n"
        "from incidentlib.severity import Severity\n\n"
        'run = Run("performance")\nprint(f"apply={apply} baseline={baseline}")',
        "if baseline:\n"
        '    run.figures["recovery_verdict"] = "recovered"\n'
        '    run.glue("comparison", pd.DataFrame({"figure": ["error_rate"], "before": [0.5],'
        ' "after": [0.0]}))',
        'run.finish(Severity("SEV3", "latency", "p95 above the SLO"))',
    ],
    "outage": [
        "from incidentlib.notebook.run import Run\nfrom incidentlib.severity import Severity\n\n"
        'run = Run("outage")\nprint(f"apply={apply}")\n'
        'run.finish(Severity("SEV2", "pods", "pods crash"))',
    ],
}


def make_notebooks(
    where: Path, names: tuple[str, ...] = ("triage", "performance", "outage")
) -> Path:
    """Tiny scenario notebooks named like the real ones (their Params check the values)."""
    where.mkdir(parents=True, exist_ok=True)
    for name in names:
        nb = nbf.v4.new_notebook()
        params = nbf.v4.new_code_cell(PARAMS[name])
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, *[nbf.v4.new_code_cell(c) for c in CELLS[name]]]
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name}-{i}"
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbf.write(nb, where / f"{name}.ipynb")
    return where


def alert(
    alertname: str = "HighErrorRate",
    *,
    status: str = "firing",
    fingerprint: str = "a1b2c3d4e5f60718",
    started: datetime | None = None,
    **labels: str,
) -> dict[str, Any]:
    start = started or datetime.now(UTC) - timedelta(seconds=30)
    return {
        "status": status,
        "labels": {"alertname": alertname, **labels},
        "annotations": {"summary": f"{alertname} fires"},
        "startsAt": start.isoformat().replace("+00:00", "Z"),
        "endsAt": (
            datetime.now(UTC).isoformat().replace("+00:00", "Z")
            if status == "resolved"
            else "0001-01-01T00:00:00Z"
        ),
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


def payload(
    *alerts: dict[str, Any], group: str = "HighErrorRate", status: str | None = None
) -> dict[str, Any]:
    alerts = alerts or (alert(),)
    common = dict(alerts[0]["labels"])
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{group}"}}',
        "truncatedAlerts": 0,
        "status": status
        or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved"),
        "receiver": "runbook",
        "groupLabels": {"alertname": group},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def post(
    url: str,
    body: bytes | dict[str, Any],
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST to the server: (status, JSON reply, headers)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url + "/alerts",
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            reply = json.loads(text)
        except ValueError:
            reply = {"raw": text.decode(errors="replace")}
        return e.code, reply, dict(e.headers)


def get(url: str, *, token: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def wait_for(check: Any, *, timeout: float = 120, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout} s")


RUNBOOK = Path(sys.executable).parent / "runbook"


def start(
    notebooks: Path, outputs: Path | str, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """`runbook serve` on a free port, one worker and one warm kernel, ready: (process, its URL)."""
    proc = subprocess.Popen(
        [
            str(RUNBOOK),
            "serve",
            "--port",
            "0",
            "--notebooks",
            str(notebooks),
            "--outputs",
            str(outputs),
            "--workers",
            "1",
            "--warm-kernels",
            "1",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "listening on http://" in first, first + proc.stdout.read()
    url = first.split("listening on ", 1)[1].split()[0]
    wait_for(lambda: get(url + "/readyz")[0] == 200, timeout=60, what="readyz")
    return proc, url


def sleeping(running: Iterable[Path]) -> bool:
    """papermill saved one of these running notebooks with its sleep cell started."""
    for nb in running:
        cells = json.loads(nb.read_text())["cells"]
        if any(
            "time.sleep" in "".join(c["source"])
            and c["metadata"].get("papermill", {}).get("start_time")
            for c in cells
        ):
            return True
    return False
