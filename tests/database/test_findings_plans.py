"""Pure: findings and severity from the tables, mitigation plans, parameter checks, charts (nothing
started)."""

from __future__ import annotations

import pandas as pd
import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.notebook import charts
from incidentlib.pg import actions as pg_actions
from incidentlib.pg import activity as pg_activity
from incidentlib.pg import connections as pg_connections
from incidentlib.pg import locks as pg_locks
from incidentlib.pg import space as pg_space
from incidentlib.plan import DROPS_SESSIONS
from incidentlib.scenarios import database as pgdiag

from .pg_rows import edge, session

CHAIN = [
    edge(102, 101, wait_s=360, blocking_state="idle in transaction"),
    edge(103, 102, wait_s=240),
]


def _sessions():
    return pg_activity.sessions_frame(
        [
            session(
                101, "idle in transaction", query_s=400, xact_s=400, state_s=380, app="billing"
            ),
            session(102, "active", query_s=360, wait="transactionid"),
            session(103, "active", query_s=240, wait="transactionid"),
            session(
                104,
                "active",
                query_s=7200,
                app="analytics",
                query="SELECT count(*) FROM big WHERE k = 'x'",
            ),
            session(
                105,
                "active",
                query_s=9000,
                backend_type="autovacuum worker",
                query="autovacuum: VACUUM t",
            ),
            session(
                106, "active", query_s=8000, backend_type="walsender", query="START_REPLICATION"
            ),
            session(107, "active", query_s=1, self_=True, app="incident-runbook"),
            session(108, "active", query_s=10),
        ]
    )


# ----------------------------------------------------------------------------------------- findings
def test_the_root_blocker_finding_says_to_terminate_it_with_who_and_since_when():
    roots = pg_locks.root_blockers(pg_locks.blocking_frame(CHAIN))
    [f] = pgdiag.blocker_findings(roots)
    assert f["severity"] == "SEV2" and f["pid"] == 101
    assert f["title"] == "pid 101 blocks 2 sessions"
    assert f["detail"].startswith(
        "pid 101 has blocked 2 sessions for 6m0s; it is idle in transaction from app `billing` "
        "(user app) since 09:24:00 UTC"
    )
    assert f["next_step"].startswith("terminate pid 101 ")


def test_a_short_lock_wait_is_slow_not_blocked():
    roots = pg_locks.root_blockers(pg_locks.blocking_frame([edge(2, 1, wait_s=1.5)]))
    assert pgdiag.blocker_findings(roots)[0]["severity"] == "SEV3"


def test_long_running_and_idle_in_transaction_findings():
    s = _sessions()
    lr = pg_activity.long_running_frame(pg_activity.activity_frame(s), threshold_s=300)
    found = pgdiag.long_running_findings(lr, threshold_s=300)
    assert [f["pid"] for f in found] == [105, 106, 104, 102]
    assert "over the 5m0s threshold: SELECT count(*) FROM big WHERE k = ?" in found[2]["detail"]
    waiting = {102, 103}  # lock waiters are explained by their root blocker's finding
    assert [
        f["pid"] for f in pgdiag.long_running_findings(lr, threshold_s=300, waiting=waiting)
    ] == [105, 106, 104]
    idle = pg_activity.idle_in_transaction_frame(s)
    assert pgdiag.idle_in_transaction_findings(idle, threshold_s=300, blockers={101}) == []
    [f] = pgdiag.idle_in_transaction_findings(idle, threshold_s=300)
    assert f["title"] == "pid 101 idle in transaction for 6m20s"


def test_connection_findings_slots_running_out_and_hidden_sessions():
    summary = {
        "used": 93,
        "by_state": {"idle": 93},
        "hidden": 4,
        "max_connections": 100,
        "reserved": 3,
        "available": 4,
        "usage": 93 / 97,
    }
    found = pgdiag.connection_findings(summary, role="sre")
    assert [f["severity"] for f in found] == ["SEV2", "SEV4"]
    assert found[0]["title"] == "connections at 96% of the usable slots"
    assert found[1]["next_step"].startswith("GRANT pg_monitor TO sre")
    assert pgdiag.connection_findings({**summary, "usage": 0.5, "hidden": 0}) == []


def test_space_and_replication_findings():
    sizes = pg_space.database_sizes_frame(
        [
            {
                "database": "app",
                "size_bytes": 1,
                "xid_age": 1_200_000_000,
                "connections": 1,
                "cache_hit_ratio": 1.0,
                "commits": 1,
                "rollbacks": 0,
                "deadlocks": 0,
                "temp_bytes": 0,
            }
        ]
    )
    tables = pg_space.tables_frame(
        [
            {
                "schema": "public",
                "table": "events",
                "total_bytes": 1,
                "table_bytes": 1,
                "index_bytes": 0,
                "toast_bytes": 0,
                "live_tuples": 30_000,
                "dead_tuples": 20_000,
                "last_vacuum": None,
                "last_autovacuum": None,
                "last_autoanalyze": None,
                "xid_age": 1,
            }
        ]
    )
    found = pgdiag.space_findings(sizes, tables)
    assert [(f["severity"], f["title"]) for f in found] == [
        ("SEV2", "database app: transaction-ID age at 56% of wraparound"),
        ("SEV4", "table public.events: 40% dead tuples"),
    ]
    rep = pg_space.replication_frame(
        [
            {
                "replica": "r1",
                "client": "10.0.0.9",
                "state": "streaming",
                "sync_state": "async",
                "lag_bytes": 5e9,
                "write_lag_s": 1,
                "flush_lag_s": 1,
                "replay_lag_s": 125.0,
            }
        ]
    )
    slots = pg_space.slots_frame(
        [
            {
                "slot_name": "old",
                "slot_type": "physical",
                "database": None,
                "active": False,
                "retained_bytes": 3 * 2**30,
                "wal_status": "extended",
            },
            {"slot_name": "gone", "slot_type": "logical", "active": False, "wal_status": "lost"},
        ]
    )
    assert [f["title"] for f in pgdiag.replication_findings(rep, slots)] == [
        "replica r1 lags 2m5s",
        "inactive replication slot old retains 3.0 GB of WAL",
        "replication slot gone: its WAL is lost",
    ]
    assert slots["retained"].tolist() == ["3.0 GB", ""]


def test_severity_follows_the_matrix():
    assert pgdiag.database_severity(reachable=False, findings=[], target="host=db").level == "SEV1"
    down = pgdiag.database_severity(
        reachable=False,
        target="host=db",
        findings=pgdiag.unreachable_findings(reachable=False, target="host=db", error="refused"),
    )
    assert (down.level, down.reason) == (
        "SEV1",
        "host=db is unreachable (rule: database unreachable = outage, SEV1)",
    )
    blocked = [{"severity": "SEV2", "title": "pid 101 blocks 2 sessions"}]
    sev = pgdiag.database_severity(reachable=True, findings=blocked)
    assert (sev.level, sev.rule) == (
        "SEV2",
        "major-degradation",
    ) and "pid 101 blocks 2 sessions" in sev.reason
    assert (
        pgdiag.database_severity(
            reachable=True, findings=[{"severity": "SEV3", "title": "slow"}]
        ).level
        == "SEV3"
    )
    assert (
        pgdiag.database_severity(
            reachable=True, findings=[{"severity": "SEV4", "title": "x"}]
        ).level
        == "SEV4"
    )


def test_unreachable_finding_and_figures():
    [f] = pgdiag.unreachable_findings(reachable=False, target="host=db", error="connection refused")
    assert (f["severity"], f["title"], f["detail"]) == (
        "SEV1",
        "database unreachable: host=db",
        "connection refused",
    )
    assert pgdiag.unreachable_findings(reachable=True, target="x", error=None) == []
    b = pg_locks.blocking_frame(CHAIN)
    fig = pgdiag.figures(
        reachable=True,
        summary={"used": 5, "max_connections": 100, "hidden": 0},
        blocking=b,
        long_running=b.iloc[:1],
        idle=b.iloc[:0],
        pods=None,
    )
    assert fig == {
        "database_reachable": True,
        "connections_used": 5,
        "max_connections": 100,
        "connections_hidden": 0,
        "blocked_sessions": 2,
        "longest_lock_wait_s": 360.0,
        "long_running_queries": 1,
        "idle_in_transaction": 0,
    }


def test_pod_findings():
    pods = pd.DataFrame(
        [
            {
                "name": "postgres-0",
                "ready": "0/1",
                "status": "CrashLoopBackOff",
                "restarts": 4,
                "last_termination_reason": "OOMKilled",
                "exit_code": 137,
            }
        ]
    )
    found = pgdiag.pod_findings(pods)
    assert [f["severity"] for f in found] == ["SEV1", "SEV3"]
    assert (
        found[1]["detail"] == "status CrashLoopBackOff, last termination: OOMKilled (exit code 137)"
    )


# -------------------------------------------------------------------------------------- mitigations
def _pids(plan):
    return [sig.pid for sig in plan.signals]


def test_auto_picks_the_root_blocker_and_leaves_everything_else_alone():
    plan = pg_actions.plan_sessions(
        "auto",
        sessions=_sessions(),
        blocking=pg_locks.blocking_frame(CHAIN),
        threshold_s=300,
        target="host=db",
    )
    assert (plan.action, _pids(plan)) == ("terminate_blocker", [101])
    assert plan.signals[0].function == "pg_terminate_backend"
    assert plan.signals[0].why == "root blocker of 2 waiting session(s)"
    assert (plan.summary, plan.target, plan.safety) == (
        "terminate 1 session(s) with pg_terminate_backend",
        "1 session(s) on host=db",
        DROPS_SESSIONS,
    )
    assert plan.command == "SELECT pg_terminate_backend(101)"
    assert "SELECT pg_terminate_backend(101);  -- idle in transaction" in plan.describe()


def test_terminate_long_skips_autovacuum_replication_and_our_own_session():
    plan = pg_actions.plan_sessions(
        "terminate_long", sessions=_sessions(), blocking=None, threshold_s=300
    )
    assert _pids(plan) == [104, 102]
    assert {s["pid"]: s["why"] for s in plan.left_alone} == {
        105: "autovacuum worker: only touched when asked for by pid",
        106: "walsender: only touched when asked for by pid",
    }


def test_explicit_pids_reach_autovacuum_but_never_our_own_session():
    plan = pg_actions.plan_sessions(
        "terminate_long",
        sessions=_sessions(),
        blocking=None,
        threshold_s=300,
        pids=[105, 107, 999],
        own_pids={107},
    )
    assert _pids(plan) == [105]
    assert [s["pid"] for s in plan.left_alone] == [107, 999]


def test_cancel_cannot_cancel_an_idle_transaction():
    plan = pg_actions.plan_sessions(
        "cancel", sessions=_sessions(), blocking=pg_locks.blocking_frame(CHAIN), threshold_s=300
    )
    assert [sig.function for sig in plan.signals] == ["pg_cancel_backend"] * 2 and _pids(plan) == [
        104,
        102,
    ]
    assert plan.left_alone[0] == {
        "pid": 101,
        "why": "idle in transaction: no statement to cancel; terminate it instead",
    }


def test_nothing_to_do_and_apply_false_does_nothing():
    quiet = pg_activity.sessions_frame([session(1, "active", query_s=1)])
    plan = pg_actions.plan_sessions("auto", sessions=quiet, blocking=None, threshold_s=300)
    assert plan.action == "none" and _pids(plan) == []
    assert plan.skipped == "no lock chain and no query over the threshold"
    plan = pg_actions.plan_sessions(
        "terminate_long", sessions=_sessions(), blocking=None, threshold_s=300
    )
    recorded = []
    out = pg_actions.execute(plan, dsn="host=/nonexistent", apply=False, record=recorded.append)
    assert (out["status"], out["applied"]) == ("shown", False) and recorded == [out]
    assert [r["outcome"] for r in out["results"]] == ["not done (apply=False)"] * 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), (4711, [4711]), ("4711, 4712", [4711, 4712]), ([1, "2"], [1, 2])],
)
def test_parse_pids(value, expected):
    assert pg_actions.parse_pids(value) == expected


@pytest.mark.parametrize("value", ["abc", [0], [True], "-5"])
def test_parse_pids_refuses_what_is_not_a_pid(value):
    with pytest.raises(InvalidParameter, match="pids"):
        pg_actions.parse_pids(value)


# ------------------------------------------------------------------------------------------- params
GOOD = dict(
    namespace="production",
    context=None,
    kubeconfig=None,
    db_deployment="postgres",
    db_selector="app=postgres",
    since="30m",
    dsn=None,
    apply=False,
    long_query_threshold="5min",
    top_n=10,
    mitigation="auto",
    pids=None,
    statement_timeout_ms=5000,
    lock_timeout_ms=1000,
)


def test_params_are_checked_and_parsed():
    p = pgdiag.Params.check({**GOOD, "pids": "12,13", "long_query_threshold": "2s"})
    assert p.threshold_s == 2.0 and p.pids == [12, 13] and p.window.total_seconds() == 1800
    assert pgdiag.Params.check({}).db_deployment == "postgres"  # the database's default workload
    assert pgdiag.Params.check({}).app_deployment == "backend"


@pytest.mark.parametrize("scenario", ["database", "outage", "performance", "triage"])
def test_the_old_deployment_parameter_is_refused_with_what_to_give_instead(scenario):
    """A command line written for the old name (`-p deployment backend`) would have been ignored,
    or worse, restarted the wrong workload: it is refused, naming both new parameters."""
    import importlib

    params = importlib.import_module(f"incidentlib.scenarios.{scenario}").Params
    with pytest.raises(InvalidParameter, match="'deployment' was renamed: give app_deployment .*"):
        params.check({"deployment": "backend"})


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("namespace", "Prod_NS", "invalid namespace 'Prod_NS'"),
        ("since", "soon", "since 'soon' is not a duration"),
        ("long_query_threshold", "0s", "must be longer than zero"),
        ("top_n", 0, "top_n 0"),
        ("mitigation", "kill", "invalid mitigation 'kill': one of auto, terminate_long"),
        ("apply", "yes", "apply 'yes'"),
        ("lock_timeout_ms", -1, "lock_timeout_ms -1"),
        ("db_selector", "a b", "label selector 'a b'"),
        ("dsn", 5, "dsn 5"),
        ("pids", "abc", "pids 'abc'"),
    ],
)
def test_params_refuse_bad_input_with_the_rule(name, value, match):
    with pytest.raises(InvalidParameter, match=match):
        pgdiag.Params.check({**GOOD, name: value})


# ------------------------------------------------------------------------------------------- charts
def test_charts_are_small_and_absent_without_data():
    s = _sessions()
    con = pg_connections.connections_frame(s)
    fig = charts.connections(pg_connections.connection_summary(con, {"max_connections": 20}))
    assert tuple(fig.get_size_inches()) == (8, 3) and fig.dpi == 80
    assert charts.lock_waits(pg_locks.blocking_frame(CHAIN)).axes[0].get_title() == "lock waits"
    assert charts.lock_waits(pg_locks.blocking_frame([])) is None
    assert charts.connections({"by_state": {}}) is None


def test_findings_text_lists_the_worst_first_with_the_next_step():
    text = pgdiag.findings_text(
        [
            {"severity": "SEV3", "title": "slow", "detail": "d3", "next_step": "n3"},
            {"severity": "SEV2", "title": "blocked", "detail": "d2", "next_step": "n2"},
        ]
    )
    assert text.splitlines() == [
        "SEV2  blocked",
        "      d2",
        "      → n2",
        "SEV3  slow",
        "      d3",
        "      → n3",
    ]
    assert pgdiag.findings_text([]) == "no problem found"


def test_a_refused_login_is_a_finding_of_the_runbook_not_a_sev1():
    error = (
        "PostgreSQL at host=db dbname=app user=sre refused the runbook's login: password "
        'authentication failed for user "sre"; the password was refused: check PGPASSWORD, '
        "~/.pgpass or the service file"
    )
    [f] = pgdiag.unreachable_findings(
        reachable=False,
        target="host=db dbname=app user=sre",
        error=error,
        refused=True,
        sqlstate="28P01",
    )
    assert f == {
        "severity": None,
        "title": "the runbook could not log in to host=db dbname=app user=sre",
        "detail": error + " (the server answered: this says nothing about the database's health, "
        "which was not measured)",
        "next_step": "fix the password of the dsn's user: PGPASSWORD, ~/.pgpass or the service "
        "file; then run this notebook again",
    }
    for sqlstate, fix in (
        ("28000", "fix the user in dsn, or add a pg_hba.conf entry for this role from this host"),
        ("3D000", "fix dbname in dsn (psql -l lists the databases)"),
        ("42501", "GRANT CONNECT ON DATABASE to the dsn's role"),
        (None, "fix the runbook's login: the password (PGPASSWORD, ~/.pgpass), the user and"),
    ):
        [g] = pgdiag.unreachable_findings(
            reachable=False, target="host=db", error="x", refused=True, sqlstate=sqlstate
        )
        assert g["next_step"].startswith(fix) and g["severity"] is None
    sev = pgdiag.database_severity(reachable=None, findings=[f], target="host=db")
    assert (sev.level, sev.rule) == ("SEV4", "no-impact")  # Run.checked makes it "not assessed"
    fig = pgdiag.figures(
        reachable=None,
        summary=None,
        blocking=None,
        long_running=None,
        idle=None,
        pods=None,
        login_refused=True,
    )
    assert fig == {"database_reachable": None, "database_login_refused": True}
    assert pgdiag.findings_text(
        [f, {"severity": "SEV3", "title": "slow", "detail": "d", "next_step": "s"}]
    ).splitlines()[::3] == [
        "SEV3  slow",
        "----  the runbook could not log in to host=db dbname=app user=sre",
    ]


def test_a_refused_login_is_recorded_without_a_severity_and_redacted():
    from incidentlib.notebook.run import Run
    from incidentlib.redact import register_secret

    register_secret("pw-in-a-message-77")
    run = Run("database", quiet=True)
    [f] = pgdiag.unreachable_findings(
        reachable=False, target="host=db", error="refused pw-in-a-message-77", refused=True
    )
    pgdiag.record_finding(run, f)
    assert run.findings[0]["severity"] is None
    assert "pw-in-a-message-77" not in run.findings[0]["detail"]
