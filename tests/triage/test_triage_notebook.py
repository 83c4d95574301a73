"""triage.ipynb executed with papermill against the simulated cluster and a real PostgreSQL with a
lock chain."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import papermill as pm
import pytest
import scrapbook as sb

from incidentlib.sandbox.demoapp import DemoApp
from incidentlib.sandbox.postgres import Stager

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "triage.ipynb"
pytestmark = [pytest.mark.notebook, pytest.mark.sim, pytest.mark.pg]


def execute(tmp_path: Path, **parameters: Any) -> tuple[dict[str, Any], str]:
    out = tmp_path / "triage-out.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path),
    )
    scraps = {name: s.data for name, s in sb.read_notebook(str(out)).scraps.items()}
    return scraps, out.read_text()


def without_password(dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The documented safe way: the password goes to the kernel through PGPASSWORD, never as a
    parameter."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(dsn)
    monkeypatch.setenv("PGPASSWORD", str(parts.pop("password")))
    return make_conninfo(**parts)


def test_triage_on_demo_names_outage_and_database_with_sev1(
    sim_cluster: Callable[..., Any],
    stager: Stager,
    pg_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = sim_cluster("demo")
    dsn = without_password(pg_dsn, monkeypatch)
    root, *waiting = stager.lock_chain(3)
    app = DemoApp(error_rate=0.08).start()
    try:
        scraps, text = execute(
            tmp_path,
            kubeconfig=str(sim.kubeconfig),
            dsn=dsn,
            health_url=app.url + "/health",
            incident_id="INC-T1",
            commander="Dana",
        )
    finally:
        app.stop()
    sev = scraps["severity"]
    assert sev["level"] == "SEV1"
    assert "deployment backend in production has 0/3 ready pods" in sev["reason"]
    nxt = scraps["next_notebooks"].set_index("notebook")["reason"].to_dict()
    assert set(nxt) >= {"outage", "database"}
    assert "3 pods of backend are CrashLoopBackOff" in nxt["outage"]
    assert (
        f"lock chain: pid {root} (idle in transaction, app billing) blocks 2 sessions"
        in nxt["database"]
    )
    blocking = scraps["blocking"]
    assert set(blocking["root_blocking_pid"]) == {root}
    assert set(blocking["blocked_pid"]) == set(waiting)
    figures = scraps["figures"]
    assert (
        figures["pods_down"] == 3
        and figures["blocked_sessions"] == 2
        and figures["database_reachable"] is True
    )
    assert abs(figures["error_rate"] - 0.08) <= 0.05
    # the initial notification, filled
    notes = scraps["notifications"].set_index("kind")["text"]
    initial = notes["initial"]
    assert initial.startswith(
        "🚨 INCIDENT [INC-T1]: backend fails since revision 3 (registry.example.com/backend:2.4.0)"
    )
    assert (
        "Severity: SEV1 — deployment backend in production has 0/3 ready pods (rule: service down"
        in initial
    )
    assert "Impact: 3 of 3 pods down" in initial and "2 blocked sessions" in initial
    assert initial.endswith("Incident Commander: Dana")
    assert list(notes.index) == ["initial", "customer"]  # SEV1: the customer message too
    assert not scraps["notifications"]["posted"].any()
    # the crash-looping backend pods are in the unhealthy table with their reason
    unhealthy = scraps["unhealthy_pods"]
    backend = unhealthy[unhealthy["owner"] == "backend"]
    assert (
        len(backend) == 3
        and set(backend["status"]) == {"CrashLoopBackOff"}
        and set(backend["exit_code"]) == {1}
    )
    # the password of the DSN never reaches the evidence
    assert "sandbox-superuser-pw" not in text


def test_triage_with_nothing_reachable_completes_and_says_why(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: "
        f"'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: "
        "u}}]\ncurrent-context: x\n"
    )
    scraps, text = execute(
        tmp_path,
        kubeconfig=str(kubeconfig),
        dsn=f"host=127.0.0.1 port={port} dbname=app user=x",
        health_url=f"http://127.0.0.1:{port}/health",
        health_probes=3,
        timeout=2,
    )
    assert scraps["severity"]["level"] == "SEV1"
    failed = {r["source"]: r["error"] for r in scraps["sources"] if r["status"] == "failed"}
    assert "cannot reach the Kubernetes API" in failed["kubernetes: connect"]
    skipped = {r["source"]: r["error"] for r in scraps["sources"] if r["status"] == "skipped"}
    assert skipped["kubernetes: pods (all namespaces)"] == "no cluster connection"
    assert "cannot connect to PostgreSQL" in failed["postgresql"]
    nxt = scraps["next_notebooks"].set_index("notebook")["reason"].to_dict()
    assert nxt["database"].startswith("the database is unreachable (cannot connect to PostgreSQL")
    assert nxt["outage"].startswith("the health check fails (")


@pytest.mark.parametrize("case", ["wrong password", "closed port"])
def test_triage_tells_a_refused_login_from_an_unreachable_database(
    pg_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    import socket

    def closed_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: "
        f"'http://127.0.0.1:{closed_port()}'}}}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: "
        "u}}]\ncurrent-context: x\n"
    )
    port = pg_server.port if case == "wrong password" else closed_port()
    target = f"host=127.0.0.1 port={port} dbname=app user=postgres"
    monkeypatch.setenv("PGPASSWORD", "wrong-triage-pw-81")
    scraps, text = execute(tmp_path, kubeconfig=str(kubeconfig), dsn=target, timeout=2)
    failed = {r["source"]: r["error"] for r in scraps["sources"] if r["status"] == "failed"}
    severity, figures = scraps["severity"], scraps["figures"]
    nxt = scraps["next_notebooks"]
    if case == "wrong password":
        assert failed["postgresql"].startswith(
            f"PostgreSQL at {target} refused the runbook's login: "
        )
        assert (severity["level"], severity["rule"]) == ("SEV4", "not-assessed")
        assert figures == {"database_login_refused": True, "database_error": failed["postgresql"]}
        assert nxt.empty
        assert scraps["findings"] == [
            {
                "severity": None,
                "title": "the runbook could not log in to the database",
                "detail": failed["postgresql"] + " (the server answered: its health was not "
                "measured)",
                "next_step": "fix the runbook's login: the password (PGPASSWORD, ~/.pgpass or the "
                "service file), the user and dbname in dsn, a pg_hba.conf entry for this host; "
                "then run triage again",
            }
        ]
        assert "✗ the runbook could not log in to the database (it answered)" in text
    else:
        assert failed["postgresql"].startswith(f"cannot connect to PostgreSQL at {target}: ")
        assert (severity["level"], severity["rule"]) == ("SEV1", "outage")
        assert severity["reason"].startswith("the database is unreachable (cannot connect to")
        assert figures["database_reachable"] is False
        assert nxt["notebook"].tolist() == ["database"]
        assert [(f["severity"], f["title"]) for f in scraps["findings"]] == [
            ("SEV1", "the database is unreachable")
        ]
    assert "wrong-triage-pw-81" not in text
