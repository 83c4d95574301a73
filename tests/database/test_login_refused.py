"""The database scenario's steps against the real throwaway PostgreSQL: a login the server refused
is a finding about the runbook's configuration with no severity claim; a closed port is SEV1."""

from __future__ import annotations

import socket

import pytest

from incidentlib.notebook.run import Run
from incidentlib.scenarios import database

pytestmark = pytest.mark.pg


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_and_assess(dsn: str):
    run = Run("database", quiet=True)
    cfg = database.Params.check({"dsn": dsn})
    db = database.connect(run, cfg)
    severity = database.assess_database(run, cfg, db)
    return run, db, severity


def test_a_wrong_password_is_a_refused_login_with_no_severity_claim(pg_server, capsys):
    target = f"host=127.0.0.1 port={pg_server.port} dbname=app user=postgres"
    run, db, severity = connect_and_assess(f"{target} password=wrong-pw-51")
    assert (db.login_refused, db.connect_sqlstate, db.database_reachable) == (True, "28P01", None)
    [connect] = [s for s in run.sources if s.source == "postgres: connect"]
    assert connect.status == "failed" and connect.error.startswith(
        f"PostgreSQL at {target} refused the runbook's login: "
    )
    [f] = run.findings
    assert (f["severity"], f["title"], f["next_step"]) == (
        None,
        f"the runbook could not log in to {target}",
        "fix the password of the dsn's user: PGPASSWORD, ~/.pgpass or the service file; then "
        "run this notebook again",
    )
    assert f["detail"] == (
        connect.error + " (the server answered: this says nothing about the database's health, "
        "which was not measured)"
    )
    assert (severity.level, severity.rule) == ("SEV4", "not-assessed")
    assert severity.reason.startswith("NOT ASSESSED: nothing could be measured (postgres: connect)")
    assert run.figures["database_reachable"] is None and run.figures["database_login_refused"]
    printed = capsys.readouterr().out
    assert f"----  the runbook could not log in to {target}" in printed
    assert "wrong-pw-51" not in printed + str(run.findings) + str(run.sources)


def test_a_closed_port_is_unreachable_and_sev1(capsys):
    target = f"host=127.0.0.1 port={_closed_port()} dbname=app user=postgres"
    run, db, severity = connect_and_assess(f"{target} password=closed-pw-52")
    assert (db.login_refused, db.database_reachable) == (False, False)
    [f] = run.findings
    assert (f["severity"], f["title"]) == ("SEV1", f"database unreachable: {target}")
    assert (severity.level, severity.rule, severity.reason) == (
        "SEV1",
        "outage",
        f"{target} is unreachable (rule: database unreachable = outage, SEV1)",
    )
    assert run.figures["database_reachable"] is False
    assert "database_login_refused" not in run.figures


def test_a_percent_encoded_password_in_a_uri_dsn_logs_in_and_stays_out_of_the_archive(
    pg_server, tmp_path
):
    # psql takes postgresql://u:p%40ss@host/db as the password p@ss: so must the runbook, or it
    # reports a healthy database as down (the false SEV1 of issue 13)
    from pathlib import Path

    from incidentlib.evidence import run_notebook
    from incidentlib.evidence.run import read_scraps

    role, password = f"pct_{pg_server.port}", "p@ss:w/rd-73"
    pg_server.create_role(role, password, monitor=True)
    uri = f"postgresql://{role}:p%40ss%3Aw%2Frd-73@127.0.0.1:{pg_server.port}/app"
    result = run_notebook(
        Path(__file__).parents[2] / "notebooks" / "database.ipynb",
        outputs=tmp_path,
        incident="INC-pct-password",
        parameters={"dsn": uri},
    )
    scraps = read_scraps(result.notebook)
    [connect] = [s for s in scraps["sources"] if s["source"] == "postgres: connect"]
    assert connect["status"] == "ok", connect
    assert scraps["figures"]["database_reachable"] is True
    assert not [f for f in scraps["findings"] if f["severity"] == "SEV1"]
    archived = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.suffix for p in archived} >= {".ipynb", ".html", ".json"}
    for p in archived:
        text = p.read_text(errors="replace")
        assert password not in text and "p%40ss%3Aw%2Frd-73" not in text, p
