"""triage's database check through its steps against the real throwaway PostgreSQL (no cluster, no
health URL, so the database alone decides): a refused login claims no severity and says what to
fix; a closed port is SEV1 with the database notebook next."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from incidentlib.errors import DatabaseError
from incidentlib.notebook.run import Run
from incidentlib.sandbox.postgres import ThrowawayPostgres
from incidentlib.scenarios import triage

pytestmark = pytest.mark.pg


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable_kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: "
        f"'http://127.0.0.1:{closed_port()}'}}}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: "
        "u}}]\ncurrent-context: x\n"
    )
    return str(path)


def triage_steps(dsn: str, tmp_path: Path) -> tuple[Run, triage.Triage]:
    run = Run("triage", quiet=True)
    cfg = triage.Params.check(
        {"dsn": dsn, "kubeconfig": unreachable_kubeconfig(tmp_path), "timeout": 2}
    )
    t = triage.read_all(run, cfg)
    triage.show_database(run, t)
    severity = triage.suggest(run, t, cfg)
    triage.show_next(run, t, cfg, severity)
    run.figures["severity"] = severity.as_dict()
    return run, t


def test_check_database_tells_a_refused_login_from_an_unreachable_server(
    pg_server: ThrowawayPostgres,
) -> None:
    with pytest.raises(DatabaseError) as refused:
        triage.check_database(
            f"host=127.0.0.1 port={pg_server.port} dbname=app user=postgres password=wrong-71"
        )
    assert (refused.value.refused, refused.value.sqlstate) == (True, "28P01")
    with pytest.raises(DatabaseError) as down:
        triage.check_database(f"host=127.0.0.1 port={closed_port()} dbname=app user=postgres")
    assert down.value.refused is False


def test_a_refused_login_in_triage_is_no_sev1_and_one_finding_to_fix_it(
    pg_server: ThrowawayPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"host=127.0.0.1 port={pg_server.port} dbname=app user=postgres"
    run, t = triage_steps(f"{target} password=wrong-72", tmp_path)
    assert t.database_refused and t.database is None
    assert t.database_error is not None and t.database_error.startswith(
        f"PostgreSQL at {target} refused the runbook's login: "
    )
    severity = run.figures.pop("severity")
    assert severity["level"] == "SEV4" and severity["rule"] == "not-assessed"
    assert run.figures == {"database_login_refused": True, "database_error": t.database_error}
    assert t.next.empty
    assert run.findings == [
        {
            "severity": None,
            "title": "the runbook could not log in to the database",
            "detail": t.database_error + " (the server answered: its health was not measured)",
            "next_step": "fix the runbook's login: the password (PGPASSWORD, ~/.pgpass or the "
            "service file), the user and dbname in dsn, a pg_hba.conf entry for this host; then "
            "run triage again",
        }
    ]
    printed = capsys.readouterr().out
    assert "✗ the runbook could not log in to the database (it answered): PostgreSQL at " in printed
    assert "unreachable" not in printed and "wrong-72" not in printed


def test_a_closed_port_in_triage_is_sev1_with_the_database_notebook_next(
    tmp_path: Path,
) -> None:
    target = f"host=127.0.0.1 port={closed_port()} dbname=app user=postgres"
    run, t = triage_steps(target, tmp_path)
    assert not t.database_refused
    severity = run.figures.pop("severity")
    assert (severity["level"], severity["rule"]) == ("SEV1", "outage")
    assert severity["reason"].startswith(
        f"the database is unreachable (cannot connect to PostgreSQL at {target}: "
    )
    assert run.figures["database_reachable"] is False
    assert t.next["notebook"].tolist() == ["database"]
    assert [(f["severity"], f["title"]) for f in run.findings] == [
        ("SEV1", "the database is unreachable")
    ]
