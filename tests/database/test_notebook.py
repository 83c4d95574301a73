"""notebooks/database.ipynb executed with papermill against the real throwaway PostgreSQL (and
the simulated cluster for the pods section), with real staged incidents. Few runs, each a few
seconds."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import pandas as pd
import papermill as pm
import psycopg
import pytest
import scrapbook as sb

from incidentlib.sandbox.postgres import SUPERUSER_PASSWORD, Stager

pytestmark = [pytest.mark.notebook, pytest.mark.pg]

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "database.ipynb"
CARD = "4111111111111111"


def execute(tmp_path: Path, **parameters):
    """Run the notebook; return its scraps, the executed file's text and the printed lines."""
    out = tmp_path / "database-out.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=60,
        cwd=str(tmp_path),
    )
    nb = sb.read_notebook(str(out))
    scraps = {name: scrap.data for name, scrap in nb.scraps.items()}
    printed = "".join(
        o.get("text", "")
        for c in nb.node.cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )
    return scraps, out.read_text(), printed


def _source(scraps, name):
    return next(s for s in scraps["sources"] if s["source"] == name)


def _no_password_dsn(pg_server, dbname: str = "app", user: str = "postgres") -> str:
    return f"host=127.0.0.1 port={pg_server.port} dbname={dbname} user={user}"


def _alive(dsn: str, pid: int) -> bool:
    with psycopg.connect(dsn, autocommit=True) as c:
        return (
            c.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]
            == 1
        )


@pytest.fixture(scope="module")
def monitor_role(pg_server):
    """An ordinary role with pg_monitor: what the runbook should run as."""
    name = f"nb_monitor_{os.getpid()}"
    pg_server.create_role(name, "monitor-nb-pw", monitor=True)
    return name, "monitor-nb-pw"


def test_a_staged_incident_is_found_explained_and_left_alone(
    pg_server, pg_dsn, stager, monitor_role, tmp_path, monkeypatch
):
    with psycopg.connect(pg_dsn, autocommit=True) as su:
        su.execute("SELECT pg_stat_statements_reset()")
    stager.slow_statement(0.3, 3)
    a, b, c = stager.lock_chain(3)
    idle = stager.idle_in_transaction(app="reports")
    busy = stager.long_query(
        60, sql_text=f"SELECT pg_sleep(60), count(*) FROM stage_cards WHERE card = '{CARD}'"
    )
    time.sleep(2.2)
    role, password = monitor_role
    monkeypatch.setenv(
        "PGPASSWORD", password
    )  # the safe way: the password stays out of the parameters
    scraps, text, printed = execute(
        tmp_path, dsn=_no_password_dsn(pg_server, user=role), long_query_threshold="2s", top_n=5
    )
    assert f"as {role} (superuser: False, pg_monitor: True" in printed
    assert not [f for f in scraps["findings"] if "hidden" in f["title"]]

    blocking = scraps["blocking"]
    chain = blocking[blocking["blocked_pid"].isin([b, c])].sort_values("blocked_pid")
    assert chain[["blocked_pid", "blocking_pid", "root_blocking_pid"]].values.tolist() == [
        [b, a, a],
        [c, b, a],
    ]
    assert {"wait_s", "mode", "relation"} <= set(blocking.columns) and set(chain["relation"]) == {
        "stage_accounts"
    }
    [blocker] = [f for f in scraps["findings"] if f.get("pid") == a and "blocks" in f["title"]]
    assert blocker["next_step"].startswith(f"terminate pid {a} ")
    assert f"pid {a} [idle in transaction" in printed  # the tree

    slow = scraps["slow_queries"]
    top = slow.sort_values("mean_ms", ascending=False).iloc[0]
    assert (top["query"], top["calls"]) == ("SELECT pg_sleep($1)", 3) and top["mean_ms"] >= 300
    assert {"query", "calls", "mean_ms", "total_ms", "rows"} <= set(slow.columns)
    assert (
        "statement statistics accumulated since " in printed
        and "about the incident window (30m)" in printed
    )

    long_running = scraps["long_running"]
    row = long_running[long_running["pid"] == busy].iloc[0]
    assert (
        row["query"] == "SELECT pg_sleep(?), count(*) FROM stage_cards WHERE card = ?"
        and row["query_s"] >= 2
    )
    idle_tx = scraps["idle_in_transaction"]
    assert idle_tx.loc[idle_tx["pid"] == idle, "idle_s"].item() >= 2
    assert any(
        f["title"].startswith(f"pid {idle} idle in transaction for ") for f in scraps["findings"]
    )

    expected = "SEV2" if chain["wait_s"].max() >= 5 else "SEV3"
    assert scraps["severity"]["level"] == expected
    [action] = scraps["actions"]
    assert (action["action"], action["applied"], [t["pid"] for t in action["sessions"]]) == (
        "terminate_blocker",
        False,
        [a],
    )
    assert action["status"] == "shown" and f"SELECT pg_terminate_backend({a})" in action["command"]
    assert _alive(pg_dsn, a) and not stager.finished(
        b, timeout=0.2
    )  # apply=False: nothing was touched

    assert CARD not in text and password not in text
    assert all(s["ok"] for s in scraps["sources"] if s["source"].startswith("postgres"))
    assert _source(scraps, "kubernetes: connect")["status"] == "skipped"
    assert text.count('"image/png"') >= 3  # slow statements, connections, lock waits
    for name in (
        "connections",
        "activity",
        "database_sizes",
        "started_at",
        "finished_at",
        "scenario",
    ):
        assert name in scraps
    assert set(scraps["database_sizes"]["database"]) >= {"app", "postgres"}


def test_apply_terminates_the_root_blocker_and_the_chain_proceeds(
    pg_server, pg_dsn, stager, tmp_path, monkeypatch
):
    a, b, c = stager.lock_chain(3)
    monkeypatch.setenv("PGPASSWORD", SUPERUSER_PASSWORD)
    scraps, _, printed = execute(
        tmp_path, dsn=_no_password_dsn(pg_server), apply=True, mitigation="terminate_blocker"
    )
    [action] = scraps["actions"]
    assert action["applied"] is True
    assert [(r["pid"], r["outcome"]) for r in action["results"] if r["pid"] == a] == [
        (a, "terminated")
    ]
    assert stager.finished(b) and stager.finished(c)
    assert not _alive(pg_dsn, a)
    assert "after the mitigation:" in printed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.sim
def test_database_down_is_sev1_with_the_pods_shown_and_the_restart_done(sim_cluster, tmp_path):
    sim = sim_cluster("database")
    dsn = f"host=127.0.0.1 port={_free_port()} dbname=app user=postgres password=down-pw-9"
    scraps, text, printed = execute(
        tmp_path, dsn=dsn, kubeconfig=str(sim.kubeconfig), mitigation="restart", apply=True
    )
    assert (
        scraps["severity"]["level"] == "SEV1"
        and "(rule: database unreachable = outage, SEV1)" in scraps["severity"]["reason"]
    )
    connect = _source(scraps, "postgres: connect")
    assert (
        connect["status"] == "failed"
        and "cannot connect to PostgreSQL at host=127.0.0.1" in connect["error"]
    )
    assert _source(scraps, "postgres: sessions")["status"] == "skipped"
    assert any(
        f["title"]
        == f"database unreachable: host=127.0.0.1 port={dsn.split('port=')[1].split()[0]} "
        "dbname=app user=postgres"
        for f in scraps["findings"]
    )
    pods = scraps["db_pods"]
    assert (
        list(pods["name"].str.startswith("postgres-")) == [True] and pods["restarts"].iloc[0] >= 4
    )
    assert pods["last_termination_reason"].iloc[0] == "Error"
    assert any(
        f["title"].startswith("database pod postgres-") and "restarted" in f["title"]
        for f in scraps["findings"]
    )
    assert "remaining connection slots are reserved" in text
    [action] = scraps["actions"]
    assert (action["action"], action["target"], action["applied"], action["status"]) == (
        "restart",
        "deployment/postgres in production",
        True,
        "rolled out",
    )
    assert action["verified"].startswith("1 of 1 pods from the new template, 1 ready; ")
    assert "the database does not answer: cannot connect to PostgreSQL" in action["verified"]
    assert "the database's pods after the restart:" in text
    got = sim.kubectl("get", "deploy", "postgres", "-n", "production", "-o", "json")
    annotations = json.loads(got.stdout)["spec"]["template"]["metadata"].get("annotations", {})
    sent = json.loads(action["requests"][0]["body"])["spec"]["template"]["metadata"]["annotations"]
    stamp = annotations["kubectl.kubernetes.io/restartedAt"]
    assert stamp == sent["kubectl.kubernetes.io/restartedAt"]
    # stamped while the notebook ran, to the second, as kubectl stamps it
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    started = pd.Timestamp(scraps["started_at"]).floor("s")
    assert started <= pd.Timestamp(stamp) <= pd.Timestamp(scraps["finished_at"])
    assert "down-pw-9" not in printed
    for name in (
        "connections",
        "activity",
        "long_running",
        "slow_queries",
        "blocking",
        "database_sizes",
    ):
        assert len(scraps[name]) == 0


def test_a_plain_role_without_the_extension_under_an_exclusive_lock_still_completes(
    pg_server, tmp_path
):
    name = f"bare_nb_{os.getpid()}"
    with psycopg.connect(pg_server.superuser_dsn_for("postgres"), autocommit=True) as su:
        su.execute(f'CREATE DATABASE "{name}"')
    superuser = pg_server.superuser_dsn_for(name)
    with psycopg.connect(superuser, autocommit=True) as su:
        su.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        su.execute("INSERT INTO orders SELECT g, 'n' FROM generate_series(1, 500) g")
    role = f"nb_plain_{os.getpid()}"
    plain = pg_server.create_role(role, "plain-nb-pw").replace("dbname=app", f"dbname={name}")
    holder = Stager(superuser)
    try:
        holder.access_exclusive("orders")
        scraps, text, printed = execute(tmp_path, dsn=plain)
    finally:
        holder.close()
    pgss = _source(scraps, "postgres: pg_stat_statements")
    assert (
        pgss["status"] == "failed"
        and "shared_preload_libraries" in pgss["error"]
        and "CREATE EXTENSION" in pgss["error"]
    )
    exact = _source(scraps, "postgres: largest tables")
    assert exact["status"] == "failed" and "lock_timeout expired" in exact["error"]
    assert _source(scraps, "postgres: largest tables (estimated, takes no lock)")["ok"]
    assert "orders" in set(scraps["tables"]["table"]) and scraps["tables"]["estimated"].all()
    hidden = [f for f in scraps["findings"] if "hidden from role" in f["title"]]
    assert hidden and hidden[0]["next_step"].startswith(f"GRANT pg_monitor TO {role}")
    assert "hidden from" in printed
    assert (
        _source(scraps, "postgres: sessions")["ok"] and _source(scraps, "postgres: blocking")["ok"]
    )
    # nothing measured above SEV4, but two sources unread: said so, never an all-clear
    assert scraps["severity"] == {
        "level": "SEV4",
        "rule": "partly-assessed",
        "reason": "no problem was measured (rule: nothing above the SEV4 thresholds); but "
        "postgres: pg_stat_statements, postgres: largest tables could not be read, so this is "
        "not an all-clear",
    }


@pytest.mark.parametrize("case", ["wrong password", "closed port"])
def test_a_refused_login_claims_no_severity_and_a_closed_port_is_sev1(
    pg_server, tmp_path, monkeypatch, case
):
    port = pg_server.port if case == "wrong password" else _free_port()
    target = f"host=127.0.0.1 port={port} dbname=app user=postgres"
    monkeypatch.setenv("PGPASSWORD", "wrong-nb-pw-61")
    scraps, text, printed = execute(tmp_path, dsn=target)
    connect = _source(scraps, "postgres: connect")
    severity, figures = scraps["severity"], scraps["figures"]
    assert connect["status"] == "failed" and _source(scraps, "postgres: sessions")["status"] == (
        "skipped"
    )
    if case == "wrong password":
        assert connect["error"].startswith(f"PostgreSQL at {target} refused the runbook's login: ")
        assert scraps["findings"] == [
            {
                "severity": None,
                "title": f"the runbook could not log in to {target}",
                "detail": connect["error"] + " (the server answered: this says nothing about the "
                "database's health, which was not measured)",
                "next_step": "fix the password of the dsn's user: PGPASSWORD, ~/.pgpass or the "
                "service file; then run this notebook again",
            }
        ]
        assert (severity["level"], severity["rule"]) == ("SEV4", "not-assessed")
        assert figures["database_reachable"] is None and figures["database_login_refused"] is True
        assert f"----  the runbook could not log in to {target}" in printed
    else:
        assert connect["error"].startswith(f"cannot connect to PostgreSQL at {target}: ")
        assert [(f["severity"], f["title"]) for f in scraps["findings"]] == [
            ("SEV1", f"database unreachable: {target}")
        ]
        assert (severity["level"], severity["reason"]) == (
            "SEV1",
            f"{target} is unreachable (rule: database unreachable = outage, SEV1)",
        )
        assert figures["database_reachable"] is False and "database_login_refused" not in figures
    assert "wrong-nb-pw-61" not in text
