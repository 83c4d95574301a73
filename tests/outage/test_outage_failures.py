"""The outage notebook when sources fail: it completes, says which source failed and why, and is
archived."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from incidentlib.evidence.run import run_notebook
from incidentlib.sim.handle import write_kubeconfig

from .nbrun import NOTEBOOK, chart_helpers_after, execute, text_of

pytestmark = [pytest.mark.sim, pytest.mark.notebook]


def _failed(scraps: dict[str, Any]) -> dict[str, str]:
    return {s["source"]: s["error"] for s in scraps["sources"] if s["status"] == "failed"}


def test_api_unreachable_completes_and_is_archived(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = write_kubeconfig(tmp_path / "kubeconfig", url=f"http://127.0.0.1:{port}")
    result = run_notebook(
        NOTEBOOK,
        outputs=tmp_path / "outputs",
        incident="INC-outage-unreachable",
        parameters={"kubeconfig": str(kc)},
        html=False,
    )
    # it ran to the end, but a source was not read: "incomplete", never "ok"
    assert result.status == "incomplete" and result.completed, result
    assert result.error and "kubernetes: connect" in result.error
    import scrapbook as sb

    scraps = {n: s.data for n, s in sb.read_notebook(str(result.notebook)).scraps.items()}
    failed = _failed(scraps)
    assert list(failed) == ["kubernetes: connect"]
    assert (
        f"cannot reach the Kubernetes API at http://127.0.0.1:{port}"
        in failed["kubernetes: connect"]
    )
    skipped = {s["source"] for s in scraps["sources"] if s["status"] == "skipped"}
    assert {"kubernetes: pods in production", "metrics API: nodes"} <= skipped
    assert any(f["title"] == "the cluster's state could not be read" for f in scraps["findings"])
    assert scraps["severity"]["level"] == "SEV2" and "unknown" in scraps["severity"]["reason"]
    assert len(scraps["pods"]) == 0 and "pods" in scraps and "rollouts" in scraps
    nb_text = result.notebook.read_text()
    assert "pods across namespaces could not be read" in nb_text
    assert "the cluster could not be read, so no mitigation can be chosen" in nb_text


def test_metrics_missing_and_deployment_missing(sim_cluster: Any, tmp_path: Path) -> None:
    sim = sim_cluster("bad-rollout", metrics=False)
    scraps, nb = execute(
        tmp_path / "out.ipynb", kubeconfig=str(sim.kubeconfig), app_deployment="nosuch"
    )
    failed = _failed(scraps)
    assert set(failed) == {
        "metrics API: pods in production",
        "metrics API: nodes",
        "kubernetes: deployment/nosuch",
    }
    assert "the metrics API (metrics.k8s.io) is not available" in failed["metrics API: nodes"]
    assert (
        "deployment 'nosuch' not found in namespace 'production'"
        in failed["kubernetes: deployment/nosuch"]
    )
    text = text_of(nb)
    assert "✗ metrics API: nodes: the metrics API (metrics.k8s.io) is not available" in text
    assert len(scraps["pods"]) == 5 and len(scraps["top_pods"]) == 0
    assert any(f["title"] == "deployment/nosuch could not be read" for f in scraps["findings"])
    assert any(f["title"] == "3 pod(s) CrashLoopBackOff" for f in scraps["findings"])


def test_namespace_missing_and_forbidden(sim_cluster: Any, tmp_path: Path) -> None:
    sim = sim_cluster("bad-rollout", forbidden_namespaces={"payments"})
    missing, _ = execute(
        tmp_path / "missing.ipynb", kubeconfig=str(sim.kubeconfig), namespace="nosuch"
    )
    failed = _failed(missing)
    assert (
        "namespace 'nosuch' does not exist; namespaces: " in failed["kubernetes: namespace nosuch"]
    )
    assert "production" in failed["kubernetes: namespace nosuch"]
    assert missing["severity"]["level"] == "SEV2"
    forbidden, nb = execute(
        tmp_path / "forbidden.ipynb", kubeconfig=str(sim.kubeconfig), namespace="payments"
    )
    failed = _failed(forbidden)
    assert "403 Forbidden" in failed["kubernetes: pods in payments"]
    assert "ask for read access" in failed["kubernetes: pods in payments"]
    assert "✗ kubernetes: pods in payments" in text_of(nb)
    assert any(f["title"] == "the cluster's state could not be read" for f in forbidden["findings"])


def test_invalid_namespace_fails_in_the_first_cell(tmp_path: Path) -> None:
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as err:
        execute(tmp_path / "bad.ipynb", namespace="Prod_NS")
    assert err.value.ename == "InvalidParameter"
    assert "invalid namespace 'Prod_NS'" in err.value.evalue and "RFC 1123" in err.value.evalue
    assert "did you mean 'prod-ns'?" in err.value.evalue
    import nbformat

    nb = nbformat.read(str(tmp_path / "bad.ipynb"), as_version=4)
    code = [
        c
        for c in nb.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]
    failing = [
        i
        for i, c in enumerate(code)
        if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert failing == [1]  # the first cell after the parameters
    assert chart_helpers_after(10) == []  # the chart helper it had started ended with the kernel
