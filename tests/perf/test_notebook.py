"""notebooks/performance.ipynb executed with papermill against the demo service, a real Prometheus
and the simulated cluster: the issue's "What must hold" values."""

from __future__ import annotations

import concurrent.futures
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import papermill as pm
import pytest
import scrapbook as sb

from incidentlib.service import prometheus as prom
from incidentlib.service.probe import probe

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "performance.ipynb"

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def run_notebook(out: Path, **parameters: Any) -> dict[str, Any]:
    """Execute the notebook; return its scraps as plain values, plus `_text`: every printed line."""
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(out.parent),
    )
    nb = sb.read_notebook(str(out))
    scraps = {name: s.data for name, s in nb.scraps.items()}
    scraps["_text"] = "\n".join(
        o.get("text", "")
        for c in nb.node.cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )
    return scraps


def sources(scraps: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["source"]: s for s in scraps["sources"]}


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections for the whole test: bound (so no kernel or server can take
    it, as a port closed again could be) but never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def test_parameters_cell_defaults_match_the_library() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    params = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    ns: dict[str, Any] = {}
    exec("".join(params["source"]), ns)  # noqa: S102 - our own committed parameters cell
    for name in prom.DEFAULT_QUERIES:
        assert (
            ns[f"query_{name}"] is None
        )  # None: the library default (papermill cannot parse '=' in values)
    assert prom.queries(error_rate="sum(x)", cpu=None)["error_rate"] == "sum(x)"
    assert prom.queries(cpu=None)["cpu"] == prom.DEFAULT_QUERIES["cpu"]
    parsed = pm.inspect_notebook(str(NOTEBOOK))  # what --help-notebook and `runbook list` see
    assert set(parsed) == {k for k in ns if not k.startswith("__")}
    assert all(p["help"] for p in parsed.values())
    assert (
        ns["probe_count"],
        ns["latency_slo_ms"],
        ns["replicas"],
        ns["cache_key"],
        ns["apply"],
    ) == (10, 500, 5, "CACHE_ENABLED", False)
    headings = [
        "".join(c["source"]).splitlines()[0] for c in nb["cells"] if c["cell_type"] == "markdown"
    ]
    assert headings[-1] == "## Notifications"  # issue 8 fills this last section


def test_8_percent_is_sev2_with_prometheus_agreeing_then_recovery(
    prom_stack, tmp_path: Path
) -> None:
    app, server = prom_stack
    app.set(latency_ms=300, error_rate=0.08)
    server.wait_scraped(samples=2)
    with concurrent.futures.ThreadPoolExecutor(10) as pool:  # traffic before the incident review
        list(pool.map(lambda _: probe(app.url + "/health", timeout=5), range(100)))
    server.wait_scraped(samples=2)

    before = run_notebook(
        tmp_path / "before.ipynb",
        health_url=app.url + "/health",
        probe_count=25,
        prometheus_url=server.url,
        since="10m",
        prom_rate_window="30s",
        kubeconfig=str(tmp_path / "no-kubeconfig"),
    )
    summary = before["latency_summary"].iloc[0]
    assert summary["count"] == 25 and summary["error_rate"] == pytest.approx(0.08)
    assert abs(summary["p50_ms"] - 300) <= 0.2 * 300
    sev = before["severity"]
    assert sev["level"] == "SEV2" and "error rate 8.0% (2 of 25 probes" in sev["reason"]
    rates = before["error_rates"].set_index("source")["value"]
    assert abs(rates["prometheus"] - 0.08) <= 0.02, rates
    assert abs(before["figures"]["prom_p95_ms"] - summary["p95_ms"]) <= 0.15 * summary["p95_ms"], (
        before["figures"]["prom_p95_ms"],
        summary["p95_ms"],
    )
    assert set(before["prometheus"]["query"]) >= {"request_rate", "error_rate", "latency_p95"}
    assert list(before["latency"].columns) == [
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

    app.set(latency_ms=0, error_rate=0)
    after = run_notebook(
        tmp_path / "after.ipynb",
        health_url=app.url + "/health",
        baseline=str(tmp_path / "before.ipynb"),
        kubeconfig=str(tmp_path / "no-kubeconfig"),
    )
    assert after["severity"]["level"] == "SEV4"
    assert after["figures"]["recovery_verdict"] == "recovered"
    cmp = after["comparison"].set_index("figure")
    assert (
        cmp.loc["error_rate", "before"] == pytest.approx(0.08)
        and cmp.loc["error_rate", "after"] == 0
    )
    assert cmp.loc["p50_ms", "direction"] == "better"
    assert "verdict: RECOVERED" in after["_text"]


def test_2_percent_is_sev3_and_a_hanging_prometheus_is_named(
    demo_app, broken_prometheus, tmp_path: Path
) -> None:
    demo_app.set(error_rate=0.02)
    secret_url = demo_app.url.replace("http://", "http://probe:Canary7secret@")
    out = run_notebook(
        tmp_path / "out.ipynb",
        health_url=secret_url + "/health",
        probe_count=50,
        prometheus_url=broken_prometheus + "/hang",
        prometheus_timeout_s=1.0,
        login_url=secret_url + "/login",
        login_body='{"user": "probe"}',
        kubeconfig=str(tmp_path / "no-kubeconfig"),
    )
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    shown = [
        o
        for c in nb["cells"]
        if "injected-parameters" not in c["metadata"].get("tags", [])
        for o in c.get("outputs", [])
    ]
    assert "Canary7secret" not in json.dumps(
        shown
    )  # printed lines, tables and scraps (not papermill's own cell)
    sev = out["severity"]
    assert sev["level"] == "SEV3" and "error rate 2.0% (1 of 50 probes" in sev["reason"]
    src = sources(out)
    assert src["prometheus"]["status"] == "failed"
    assert "did not answer within 1 s" in src["prometheus"]["error"]
    assert src["http: login check"]["status"] == "ok"
    assert "✗ prometheus: Prometheus at" in out["_text"]


@pytest.mark.sim
def test_unreachable_health_prometheus_500_and_no_metrics_api_complete_and_say_why(
    broken_prometheus, sim_cluster, closed_port: int, tmp_path: Path
) -> None:
    sim = sim_cluster("resource-pressure", metrics=False)
    port = closed_port
    out = run_notebook(
        tmp_path / "out.ipynb",
        health_url=f"http://127.0.0.1:{port}/health",
        probe_count=3,
        prometheus_url=broken_prometheus + "/fail",
        kubeconfig=str(sim.kubeconfig),
        samples=1,
    )
    src = sources(out)
    assert src["http: health probes"]["status"] == "failed"
    assert (
        "none of 3 requests got a reply (connection refused)" in src["http: health probes"]["error"]
    )
    assert "answered HTTP 500: query engine crashed" in src["prometheus"]["error"]
    assert src["kubernetes: connect"]["status"] == "ok"
    assert (
        src["metrics API: pods"]["status"] == "failed"
        and "metrics-server" in src["metrics API: pods"]["error"]
    )
    assert src["kubernetes: pods and nodes"]["status"] == "ok"
    assert "✗ metrics API: pods: the metrics API (metrics.k8s.io) is not available" in out["_text"]
    titles = [f["title"] for f in out["findings"]]
    assert "node node-2 under MemoryPressure" in titles  # still found without metrics
    assert (
        out["severity"]["level"] == "SEV1"
        and "health check failed on all 3 probes" in out["severity"]["reason"]
    )
    assert out["latency"]["error"].tolist() == ["connection refused"] * 3


@pytest.mark.sim
def test_resource_pressure_findings(demo_app, sim_cluster, tmp_path: Path) -> None:
    sim = sim_cluster("resource-pressure")
    out = run_notebook(
        tmp_path / "out.ipynb",
        health_url=demo_app.url + "/health",
        kubeconfig=str(sim.kubeconfig),
        samples=3,
        sample_interval_s=1.1,
        since="10m",
    )
    by_title = {f["title"]: f for f in out["findings"]}
    leak = next(
        t
        for t in by_title
        if t.startswith("memory leak suspect: container session-cache of pod session-cache-")
    )
    assert "/h to " in by_title[leak]["detail"] and "from metrics API" in by_title[leak]["detail"]
    assert out["leak_suspects"]["source"].tolist() == ["metrics API"]
    assert any(t.startswith("pod analytics-") and "OOMKilled" in t for t in by_title)
    assert by_title["node node-2 under MemoryPressure"]["severity"] == "SEV2"
    assert (
        out["severity"]["level"] == "SEV4"
    )  # the service itself answers: severity is from its error rate
    assert out["memory_trend"]["sample"].max() == 2
    assert set(out["top_nodes"]["node"]) == {"node-1", "node-2", "node-3"}
    assert (out["disk"]["kind"] == "node").sum() >= 1
    assert out["figures"]["oom_kills"] == 1
    actions = {a["action"]: a for a in out["actions"]}
    assert list(actions) == ["scale_out", "restart", "cache", "scale_down", "memory"]
    assert (
        actions["scale_out"]["command"]
        == "kubectl scale deployment/backend -n production --replicas=5"
    )
    assert (
        "-  replicas: 3" in actions["scale_out"]["change"]
        and "+  replicas: 5" in actions["scale_out"]["change"]
    )
    assert not any(a["applied"] for a in out["actions"])
    assert {k: a["status"] for k, a in actions.items()} == {
        "scale_out": "shown",
        "restart": "shown",
        "cache": "shown",
        "scale_down": "skipped",  # replicas=5 is not below the current 3, and nobody chose it
        "memory": "skipped",  # no memory_limit given
    }
    assert actions["scale_down"]["detail"] == (
        "cannot plan: scale down to 5 replicas is more than the current 3"
    )


@pytest.mark.sim
def test_apply_changes_only_the_named_mitigations_and_records_them(
    sim_cluster, tmp_path: Path
) -> None:
    sim = sim_cluster("healthy")
    out = run_notebook(
        tmp_path / "out.ipynb",
        kubeconfig=str(sim.kubeconfig),
        samples=1,
        apply=True,
        mitigations="scale_out,cache",
    )
    actions = {a["action"]: a for a in out["actions"]}
    assert actions["scale_out"]["applied"] and actions["scale_out"]["status"] == "rolled out"
    assert actions["cache"]["applied"] and actions["cache"]["status"] == "applied"
    assert "+  CACHE_ENABLED: 'true'" in actions["cache"]["change"]
    assert not actions["restart"]["applied"] and not actions["scale_down"]["applied"]
    assert actions["restart"]["detail"] == "shown only (not in `mitigations`)"
    writes = [(r["method"], r["path"]) for r in sim.requests() if r["method"] != "GET"]
    assert writes == [
        ("PATCH", "/apis/apps/v1/namespaces/production/deployments/backend/scale"),
        ("PATCH", "/api/v1/namespaces/production/configmaps/app-config"),
    ]
    assert "-> rolled out: deployment" in out["_text"]
