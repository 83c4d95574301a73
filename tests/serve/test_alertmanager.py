"""The alert path with the real parts: Prometheus scrapes the demo service (half its requests fail),
its rule on the error rate fires, Alertmanager (group_wait 1s) posts to `runbook serve` with a
bearer token; the incident folder then holds the triage and performance runs of the real
notebooks against the simulated cluster, and verifies. The fault is fixed (error rate back to zero):
the alert resolves, Alertmanager says so, and the recovery run (performance against the first
run's figures) and the resolution message follow."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from incidentlib.evidence import load_manifest, read_scraps, verify
from incidentlib.sandbox.demoapp import DemoApp

from . import stack
from .helpers import get, wait_for

pytestmark = [pytest.mark.notebook, pytest.mark.sim, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
RUNBOOK = Path(sys.executable).parent / "runbook"
TOKEN = "am-to-runbook-token-0123456789"


def traffic(url: str, stop: threading.Event) -> None:
    """Requests to the service, about 20 a second (the error rate needs requests to exist)."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
        except OSError:
            pass  # a 500 is the point
        stop.wait(0.05)


def test_an_alert_from_alertmanager_leaves_evidence_and_its_resolution_a_recovery_run(
    sim_cluster: Callable[..., Any], tmp_path: Path
) -> None:
    why = stack.missing()
    if why:
        pytest.skip(why)
    sim = sim_cluster("demo")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    outputs, port = tmp_path / "outputs", stack.free_port()
    stop, procs = threading.Event(), []
    app = DemoApp(error_rate=0.5).start()
    server = None
    try:
        pusher = threading.Thread(target=traffic, args=(app.url + "/health", stop), daemon=True)
        pusher.start()
        am = stack.alertmanager(
            tmp_path, webhook=f"http://127.0.0.1:{port}/alerts", token_file=token
        )
        procs.append(am)
        prom = stack.prometheus(tmp_path, target=f"127.0.0.1:{app.port}", alertmanager_url=am.url)
        procs.append(prom)
        server = subprocess.Popen(
            [
                str(RUNBOOK),
                "serve",
                "--port",
                str(port),
                "--outputs",
                str(outputs),
                "--notebooks",
                str(REPO / "notebooks"),
                "--token-file",
                str(token),
                "-p",
                "kubeconfig",
                str(sim.kubeconfig),
                "-p",
                "health_url",
                app.url + "/health",
                "-p",
                "prometheus_url",
                prom.url,
                "-p",
                "since",
                "5m",
                "-p",
                "probe_count",
                "5",
                "-p",
                "samples",
                "1",
                "-p",
                "sample_interval_s",
                "0",
                "-p",
                "health_probes",
                "10",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _status(url + "/readyz") == 200, timeout=60, what="runbook serve")

        def incident_dirs() -> list[Path]:
            return [p for p in outputs.glob("INC-*") if (p / "manifest.json").exists()]

        def first_runs() -> list[dict[str, Any]]:
            dirs = incident_dirs()
            runs = load_manifest(dirs[0])["runs"] if dirs else []
            return runs if len(runs) >= 2 else []

        runs = wait_for(first_runs, timeout=180, what="the triage and performance runs")
        (incident,) = incident_dirs()
        assert sorted(r["scenario"] for r in runs) == ["performance", "triage"]
        assert all(r["status"] in ("ok", "incomplete") for r in runs), runs
        assert all(r["parameters"]["apply"] is False for r in runs)
        assert all(r["parameters"]["namespace"] == "production" for r in runs)
        report = verify(incident)
        assert report.ok and len(report.matching) == 4, report.lines()
        triage = next(r for r in runs if r["scenario"] == "triage")
        figures = read_scraps(incident / triage["files"][0]["path"], names=("figures",))["figures"]
        assert 0.3 <= figures["error_rate"] <= 0.7  # the probes met the staged 50% of errors
        # the index shows it, the initial message links to it
        status, page, _ = get(url + "/", token=TOKEN)
        assert status == 200 and incident.name in page.decode()
        assert "INCIDENT [" + incident.name + "]" in page.decode()
        # the triage notebook's own filled template (its notifications scrap), not a stand-in
        assert "Incident Commander: " in page.decode() and "Paged: " in page.decode()

        app.set(error_rate=0.0)  # the fix: Prometheus sees it, the alert resolves

        def resolved() -> list[dict[str, Any]]:
            all_runs = load_manifest(incident)["runs"]
            return all_runs if len(all_runs) >= 3 else []

        after = wait_for(resolved, timeout=180, what="the recovery run")
        recovery = after[2]
        assert recovery["scenario"] == "performance"
        first_perf = next(r for r in runs if r["scenario"] == "performance")
        assert recovery["parameters"]["baseline"].endswith(first_perf["files"][0]["path"])
        verdict = read_scraps(incident / recovery["files"][0]["path"], names=("figures",))
        assert verdict["figures"]["recovery_verdict"] == "recovered"
        check = subprocess.run(
            [str(RUNBOOK), "verify", str(incident)], capture_output=True, text=True, timeout=60
        )
        assert check.returncode == 0 and "OK: 6 file(s) match" in check.stdout, check.stdout
        page = wait_for(
            lambda: (p := get(url + "/", token=TOKEN)[1].decode()) and "RESOLVED [" in p and p,
            timeout=30,
            what="the resolution message",
        )
        assert "Recovery verification: RECOVERED" in page
    finally:
        stop.set()
        if server is not None:
            server.send_signal(signal.SIGTERM)
            out, _ = server.communicate(timeout=60)
            assert server.returncode == 0, out[-3000:]
        for proc in procs:
            proc.stop()
        app.stop()


def _status(url: str) -> int:
    try:
        return get(url)[0]
    except OSError:
        return 0
