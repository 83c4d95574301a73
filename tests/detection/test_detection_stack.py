"""Detection, severity and communication against real parts, one stack for the module: the simulated
cluster (resource-pressure), Debian's Prometheus on three hours of backfilled container memory
(`promtool tsdb create-blocks-from openmetrics`) with alerting rules, Debian's Alertmanager with
alerts posted and one silenced, and real HTTPS servers with an expired certificate and one expiring
in 10 days. The triage and performance notebooks run once each against it with papermill."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import pytest
import scrapbook as sb

from incidentlib.errors import SourceUnavailable
from incidentlib.kube import client as kube
from incidentlib.kube import metrics, reads
from incidentlib.sandbox.certs import https_servers
from incidentlib.sandbox.monitoring import (
    ALERTMANAGER,
    PROMETHEUS,
    HistoryPrometheus,
    ThrowawayAlertmanager,
    openmetrics,
)
from incidentlib.scenarios import alerts as firing
from incidentlib.service import alertmanager, prometheus
from incidentlib.sim.testing import running_sim

pytestmark = [pytest.mark.sim, pytest.mark.server, pytest.mark.slow]
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
MiB = 2**20
LEAK_PER_HOUR = 60 * MiB  # the leaking container: 300 MiB three hours ago, 480 MiB now
LIMIT = 512 * MiB  # the sim's backend limit, as cAdvisor reports it too

RULES = [
    {
        "alert": "BackendMemoryGrowing",
        "expr": "max by (namespace, pod, container) (max_over_time("
        'container_memory_working_set_bytes{namespace="production", container="backend"}[30m]))'
        " > 450 * 1024 * 1024",
        "labels": {"severity": "critical", "deployment": "backend"},
        "annotations": {"summary": "memory of {{ $labels.pod }} above 450 MiB"},
    },
    {
        "alert": "PostgresConnectionsHigh",
        "expr": "vector(1)",
        "for": "1h",
        "labels": {"severity": "warning", "namespace": "production", "service": "postgres"},
        "annotations": {"summary": "connections at 85% of max_connections"},
    },
]
POSTED = [
    {
        "labels": {
            "alertname": "CheckoutErrorRate",
            "severity": "page",
            "namespace": "production",
            "service": "frontend",
        },
        "annotations": {"summary": "8% of checkout requests fail"},
    },
    {
        "labels": {"alertname": "DiskFilling", "severity": "critical", "namespace": "production"},
        "annotations": {"summary": "root file system 91% full"},
    },
]


@dataclass
class Stack:
    sim: Any
    prom: HistoryPrometheus
    am: ThrowawayAlertmanager
    ca: Path
    urls: dict[str, str]
    backend: list[str]  # the backend pods: the first one leaks
    names: set[str]  # every pod, deployment, node and namespace name of the cluster


def history(backend: list[str], flat: list[str], *, end: float) -> str:
    """Three hours of working set every 30 s: backend[0] rises 60 MiB/h (with a little noise),
    the others hold steady; every container's limit 512 MiB."""
    times = [end - 3 * 3600 + 30 * i for i in range(361)]
    memory = []
    limits = []
    for i, pod in enumerate([*backend, *flat]):
        container = "backend" if pod.startswith("backend-") else pod.rsplit("-", 2)[0]
        labels = {"namespace": "production", "pod": pod, "container": container}
        if i == 0:
            values = [300 * MiB + LEAK_PER_HOUR * (t - times[0]) / 3600 for t in times]
        else:
            values = [310 * MiB for _ in times]
        noise = [((7 * k + 3 * i) % 11 - 5) * 0.4 * MiB for k in range(len(times))]
        memory.append((labels, [(t, v + n) for t, v, n in zip(times, values, noise, strict=True)]))
        limits.append((labels, [(t, float(LIMIT)) for t in times]))
    return openmetrics(
        {"container_memory_working_set_bytes": memory, "container_spec_memory_limit_bytes": limits}
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for binary in (PROMETHEUS, ALERTMANAGER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing: apt-get install prometheus prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("detection")
    with (
        running_sim("resource-pressure", workdir=tmp / "sim") as sim,
        https_servers(tmp / "certs") as (ca, urls),
    ):
        cluster = kube.connect(kubeconfig=str(sim.kubeconfig))
        pods = reads.fetch_pods(cluster, None)
        names = {p["metadata"]["name"] for p in pods} | {p["metadata"]["namespace"] for p in pods}
        names |= {n["metadata"]["name"] for n in reads.fetch_nodes(cluster)}
        names |= {d["metadata"]["name"] for d in reads.fetch_deployments(cluster, None)}
        backend = sorted(n for n in names if n.startswith("backend-"))
        cache = sorted(n for n in names if n.startswith("session-cache-"))
        prom = HistoryPrometheus(tmp / "prom", history(backend, cache, end=time.time() - 20), RULES)
        am = ThrowawayAlertmanager(tmp / "am")
        try:
            am.post(POSTED)
            am.silence("DiskFilling", comment="known: log rotation runs at 10:00")
            am.settled(len(POSTED))
            yield Stack(sim, prom, am, ca, urls, backend, names)
        finally:
            prom.stop()
            am.stop()


def run_notebook(name: str, out: Path, **parameters: Any) -> tuple[dict[str, Any], str, str]:
    """Execute a notebook: its scraps, every printed line, and every output (papermill's injected
    parameters cell left out) as JSON text."""
    pm.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(out.parent),
    )
    scraps = {k: s.data for k, s in sb.read_notebook(str(out)).scraps.items()}
    nb = nbformat.read(str(out), as_version=4)
    outputs = [
        o
        for c in nb.cells
        if "injected-parameters" not in c.metadata.get("tags", [])
        for o in c.get("outputs", [])
    ]
    text = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    return scraps, text, json.dumps(outputs)


def test_alerts_of_prometheus_and_alertmanager(stack: Stack) -> None:
    prom_alerts = prometheus.Prometheus(stack.prom.url, timeout=5).alerts()
    assert list(prom_alerts.columns) == prometheus.ALERT_COLUMNS
    rows = prom_alerts[["alertname", "state", "severity", "namespace", "service"]].values.tolist()
    assert rows == [
        ["BackendMemoryGrowing", "firing", "critical", "production", "backend"],
        ["PostgresConnectionsHigh", "pending", "warning", "production", "postgres"],
    ]
    assert prom_alerts["summary"].iloc[0] == f"memory of {stack.backend[0]} above 450 MiB"
    assert f"pod={stack.backend[0]}" in prom_alerts["labels"].iloc[0]
    am_alerts = alertmanager.Alertmanager(stack.am.url, timeout=5).alerts()
    assert am_alerts[["alertname", "state", "silenced", "source"]].values.tolist() == [
        ["CheckoutErrorRate", "firing", False, "alertmanager"],
        ["DiskFilling", "silenced", True, "alertmanager"],
    ]
    both = alertmanager.merge(prom_alerts, am_alerts)
    assert both["alertname"].tolist() == [
        "BackendMemoryGrowing",
        "CheckoutErrorRate",
        "PostgresConnectionsHigh",
        "DiskFilling",
    ]
    nxt = firing.alert_notebooks(both, namespace="production", deployment="backend")
    assert nxt[["notebook", "namespace", "deployment", "alerts"]].values.tolist() == [
        ["performance", "production", "backend", "BackendMemoryGrowing"],
        ["performance", "production", "frontend", "CheckoutErrorRate"],
    ]
    figures = firing.severity_figures(both)
    assert {k: figures[k] for k in figures if k != "critical_alert"} == {
        "alerts_firing": 2,
        "alerts_pending": 1,
        "alerts_silenced": 1,
        "critical_alerts": 2,
    }
    assert figures["critical_alert"].startswith(
        "alert BackendMemoryGrowing is firing, severity=critical since "
    )
    # each API refuses what is not its own, in one clear line
    with pytest.raises(SourceUnavailable, match=r"Alertmanager at .* answered HTTP 404"):
        alertmanager.Alertmanager(stack.prom.url, timeout=5).alerts()
    with pytest.raises(SourceUnavailable, match="is unreachable: .*Connection refused"):
        alertmanager.Alertmanager("http://127.0.0.1:1", timeout=1).alerts()


def test_a_leak_is_found_in_real_history_and_a_flat_container_is_not(stack: Stack) -> None:
    client = prometheus.Prometheus(stack.prom.url, timeout=5)
    series = prometheus.container_memory(
        client, namespace="production", since=dt.timedelta(hours=2)
    )
    per = series.groupby(["pod", "container"]).size()
    assert len(per) == 4 and per.min() >= 200  # two hours, a point every 28.8 s
    limits = prometheus.container_memory_limits(client, namespace="production")
    assert set(limits.values()) == {float(LIMIT)} and len(limits) == 4
    leaks = metrics.leak_suspects(series, limits, source="prometheus")
    assert leaks[["pod", "container"]].values.tolist() == [[stack.backend[0], "backend"]]
    row = leaks.iloc[0]
    assert row["growth_bytes_per_hour"] == pytest.approx(LEAK_PER_HOUR, rel=0.03)
    assert row["memory_bytes"] == pytest.approx(480 * MiB, rel=0.01)
    assert row["hours_to_limit"] == pytest.approx((512 - 480) / 60, abs=0.1)
    assert row["fit_r2"] > 0.99 and row["limit_bytes"] == LIMIT
    # a short window of the same history cannot tell the slow rise from its noise
    short = prometheus.container_memory(
        client, namespace="production", since=dt.timedelta(minutes=2)
    )
    assert metrics.leak_suspects(short, limits).empty


def test_triage_lists_what_fires_first_and_says_it_in_every_message(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(stack.ca))  # the certificate is refused for expiry
    scraps, text, shown = run_notebook(
        "triage",
        tmp_path / "triage.ipynb",
        kubeconfig=str(stack.sim.kubeconfig),
        health_url=stack.urls["expired"],
        health_probes=3,
        prometheus_url=stack.prom.url,
        alertmanager_url=stack.am.url,
        data_loss=True,
        escalation="SEV1: CTO, VP Eng; SEV2: eng-manager",
        grafana_url="https://grafana.example.com/d/abc/backend?orgId=1&auth_token=Canary9secret",
        status_page_url="https://status.example.com",
        incident_id="INC-D16",
        commander="Dana",
    )
    alerts = scraps["alerts"]
    assert alerts[["alertname", "state", "silenced"]].values.tolist() == [
        ["BackendMemoryGrowing", "firing", False],
        ["CheckoutErrorRate", "firing", False],
        ["PostgresConnectionsHigh", "pending", False],
        ["DiskFilling", "silenced", True],
    ]
    assert text.index("2 alert(s) firing (2 critical or page), 1 pending, 1 silenced") < text.index(
        "requests to the health URL"
    )
    health = scraps["health"]
    assert set(health["tls_error"]) == {"certificate has expired"}
    assert (health["tls_days_left"] < -3).all()
    sev = scraps["severity"]
    assert (sev["level"], sev["rule"]) == ("SEV1", "declared")
    assert sev["reason"].startswith("declared: data loss (data_loss=True)")
    assert "; measured: the health URL's TLS certificate expired 3.0 days ago" in sev["reason"]
    nxt = scraps["next_notebooks"]
    by_target = {(r["notebook"], r["deployment"]): r for r in nxt.to_dict("records")}
    assert by_target[("performance", "backend")]["alerts"] == "BackendMemoryGrowing"
    assert by_target[("performance", "frontend")]["alerts"] == "CheckoutErrorRate"
    assert (
        "the health check fails (TLS error: certificate verify failed: certificate has expired"
        in (by_target[("outage", "backend")]["reason"])
    )
    findings = {f["title"]: f for f in scraps["findings"]}
    cert = findings["TLS certificate of 127.0.0.1 expired 3 days ago"]
    assert cert["severity"] == "SEV1" and cert["root_cause"] is True
    alert = findings["alert CheckoutErrorRate firing for frontend in production"]
    assert alert["severity"] == "SEV2" and alert["next_step"].startswith(
        "run the performance notebook: runbook run performance -p namespace production "
        "-p app_deployment frontend -p kubeconfig "
    )
    assert alert["next_step"].endswith(" --incident INC-D16")
    notes = scraps["notifications"]
    assert notes["kind"].tolist() == ["initial", "customer"] and not notes["posted"].any()
    initial, customer = notes["text"].tolist()
    assert initial.startswith("🚨 INCIDENT [INC-D16]: ")
    for line in (
        "Declared: data loss (SEV1, whatever the figures say)",
        "Status: Identified",  # the expired certificate explains it
        "Response: within 15 minutes (SEV1); updates every 15 min",
        "Paged: CTO, VP Eng",
        "Incident Commander: Dana",
        "Links: Grafana https://grafana.example.com/d/abc/backend?orgId=***&auth_token=*** · "
        "Status page https://status.example.com",
    ):
        assert line in initial.splitlines(), line
    assert customer.splitlines()[:3] == [
        "Identified: We have identified the cause of an issue affecting [fill in: the service, as "
        "customers know it] and are working on a fix.",
        "The service is unavailable.",
        "Some recently saved data may be affected; we will contact affected customers directly.",
    ]
    assert customer.endswith("Follow it at https://status.example.com")
    leaked = [n for n in stack.names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", customer)]
    assert leaked == []  # no pod, deployment, node or namespace name
    assert "Canary9secret" not in shown  # not in a table, a line, a link or a scrap
    link = 'href="https://grafana.example.com/d/abc/backend?orgId=***&amp;auth_token=***"'
    assert json.dumps(link)[1:-1] in shown  # the header's link, redacted too


def test_performance_fits_leaks_over_prometheus_history_and_offers_the_memory_patch(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(stack.ca))
    scraps, text, _ = run_notebook(
        "performance",
        tmp_path / "performance.ipynb",
        kubeconfig=str(stack.sim.kubeconfig),
        health_url=stack.urls["expiring"],
        probe_count=3,
        prometheus_url=stack.prom.url,
        since="2h",
        replicas=1,
        mitigations="scale_down",
        memory_limit="1Gi",
        payment_failure=True,
        status_page_url="https://status.example.com",
    )
    leaks = scraps["leak_suspects"]
    # from Prometheus' history: the backend container; not session-cache, whose leak only the
    # metrics API would show (its history is flat)
    assert leaks[["pod", "container", "source"]].values.tolist() == [
        [stack.backend[0], "backend", "prometheus"]
    ]
    assert leaks["growth_bytes_per_hour"].iloc[0] == pytest.approx(LEAK_PER_HOUR, rel=0.05)
    assert scraps["memory_trend"]["sample"].max() == 0  # history was there: one metrics read
    assert "fitted over the last 2h of container_memory_working_set_bytes (Prometheus)" in text
    titles = {f["title"]: f for f in scraps["findings"]}
    leak = titles[f"memory leak suspect: container backend of pod {stack.backend[0]}"]
    assert leak["root_cause"] is True
    assert re.search(r"reaches its 512Mi limit in about 0\.[56] h$", leak["detail"])
    cert = titles["TLS certificate of 127.0.0.1 expires in 10 days"]
    assert cert["severity"] == "SEV3"
    assert all(9.9 < d < 10.1 for d in scraps["latency"]["tls_days_left"])
    actions = {a["action"]: a for a in scraps["actions"]}
    assert list(actions) == ["scale_out", "restart", "cache", "scale_down", "memory"]
    assert actions["scale_down"]["command"] == (
        "kubectl scale deployment/backend -n production --replicas=1"
    )
    assert actions["scale_down"]["status"] == "shown"
    assert actions["scale_out"]["status"] == "skipped"  # replicas=1 is no scale-out, not chosen
    memory = actions["memory"]
    assert memory["command"] == (
        "kubectl set resources deployment/backend -n production -c backend --limits=memory=1Gi"
    )
    assert re.match(
        r"container backend leaks: it reaches its limit in about 0\.[56] h", memory["why"]
    )
    assert "-            memory: 512Mi\n+            memory: 1Gi" in memory["change"]
    sev = scraps["severity"]
    assert (sev["level"], sev["rule"]) == ("SEV1", "declared")
    assert "payment processing failures (payment_failure=True)" in sev["reason"]
    notes = scraps["notifications"].set_index("kind")["text"]
    assert list(notes.index) == ["initial", "update", "resolution", "customer"]
    for kind in ("initial", "update", "resolution"):
        assert "Declared: payment processing failures" in notes[kind], kind
    assert "Status: Identified" in notes["update"]  # the leak is a root cause; nothing applied
    assert "Payments may fail or be delayed." in notes["customer"].splitlines()
    assert "Impact: " in notes["resolution"] and math.isfinite(leaks["hours_to_limit"].iloc[0])
