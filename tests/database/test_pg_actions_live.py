"""pg.actions against the real throwaway PostgreSQL: what `execute` signals, what it leaves alone,
and the outcome it records for each pid. In `make mutate`'s selection: each test stages only what
it needs, and plans from the sessions it staged (mutmut runs two test sessions at once on one
server, whose sessions are not ours to plan for)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from incidentlib.errors import DatabaseError
from incidentlib.pg import actions as pg_actions
from incidentlib.pg import activity as pg_activity
from incidentlib.pg import connections as pg_connections
from incidentlib.pg import locks as pg_locks
from incidentlib.pg import session as pg

pytestmark = pytest.mark.pg


def _sessions(conn, *pids):
    """The sessions frame of this snapshot, our own session and the staged `pids` only."""
    sessions = pg_activity.sessions_frame(pg_activity.fetch_sessions(conn))
    return sessions[sessions["self"] | sessions["pid"].isin(pids)]


def _blocking(conn, root):
    rows = pg_locks.fetch_blocking(
        conn, server_version_num=pg_connections.fetch_server(conn)["server_version_num"]
    )
    blocking = pg_locks.blocking_frame(rows)
    return blocking[blocking["root_blocking_pid"] == root]


def _alive(conn, pid) -> bool:
    return pid in set(pg_activity.sessions_frame(pg_activity.fetch_sessions(conn))["pid"])


def _to_cancel(stager, conn, sql_text=None):
    """A statement running (30 s of pg_sleep unless `sql_text`) and the plan to cancel it."""
    pid = stager.long_query(sql_text=sql_text)
    plan = pg_actions.plan_sessions(
        "cancel", sessions=_sessions(conn, pid), blocking=None, threshold_s=0, pids=[pid]
    )
    return pid, plan


def _outcomes(out: dict) -> list[tuple[int, str, str]]:
    return [(r["pid"], r["function"], r["outcome"]) for r in out["results"]]


def test_apply_false_terminates_nothing(stager, conn, pg_dsn):
    a, b, c = stager.lock_chain(3)
    plan = pg_actions.plan_sessions(
        "auto", sessions=_sessions(conn, a, b, c), blocking=_blocking(conn, a), threshold_s=300
    )
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=False)
    assert _outcomes(out) == [(a, "pg_terminate_backend", "not done (apply=False)")]
    assert (out["status"], out["applied"]) == ("shown", False)
    assert not stager.finished(b, timeout=0.3)
    assert _alive(conn, a)


def test_apply_terminates_the_root_blocker_and_the_chain_drains(stager, conn, pg_dsn):
    a, b, c = stager.lock_chain(3)
    plan = pg_actions.plan_sessions(
        "terminate_blocker",
        sessions=_sessions(conn, a, b, c),
        blocking=_blocking(conn, a),
        threshold_s=300,
    )
    assert [sig.pid for sig in plan.signals] == [a]
    recorded = []
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True, record=recorded.append)
    assert _outcomes(out) == [(a, "pg_terminate_backend", "terminated")]
    assert (out["status"], out["applied"], recorded) == ("applied", True, [out])
    assert out["detail"] == f"pid {a}: terminated"
    assert stager.finished(b) and stager.finished(c)
    assert not _alive(conn, a)


def test_cancel_stops_the_statement_and_keeps_the_session(stager, conn, pg_dsn):
    busy, plan = _to_cancel(stager, conn)
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True)
    assert _outcomes(out) == [(busy, "pg_cancel_backend", "cancelled: the session is now idle")]
    assert (out["status"], out["applied"]) == ("applied", True)
    assert stager.sessions[busy].done.wait(5) and "canceling statement" in (
        stager.sessions[busy].error or ""
    )
    assert _alive(conn, busy)


# the statement answers the cancel by ending its own session
ENDS_ON_CANCEL = (
    "DO $$ BEGIN PERFORM pg_sleep(30); "
    "EXCEPTION WHEN query_canceled THEN PERFORM pg_terminate_backend(pg_backend_pid()); END $$"
)


def test_a_cancel_that_ends_the_session_says_so(stager, conn, pg_dsn):
    busy, plan = _to_cancel(stager, conn, ENDS_ON_CANCEL)
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True)
    assert _outcomes(out) == [(busy, "pg_cancel_backend", "cancelled (the session ended)")]
    assert (out["status"], out["applied"]) == ("applied", True)
    assert not _alive(conn, busy)


def test_a_reused_pid_is_left_alone_beside_one_terminated_and_our_own_never_touched(
    stager, conn, pg_dsn
):
    idle, other = stager.idle_in_transaction(), stager.idle_in_transaction()
    sessions = _sessions(conn, idle, other)
    own = int(sessions.loc[sessions["self"], "pid"].item())
    plan = pg_actions.plan_sessions(
        "terminate_long",
        sessions=sessions,
        blocking=None,
        threshold_s=300,
        pids=[idle, own, other],
    )
    assert [sig.pid for sig in plan.signals] == [idle, other]
    assert plan.left_alone == [{"pid": own, "why": "this runbook's own session"}]
    sig = plan.signals[0]
    plan.signals[0] = dataclasses.replace(
        sig, backend_start=sig.backend_start.replace(year=2000)
    )  # as if the pid had been reused by another backend
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True)
    gone = "gone already (the backend ended or its pid was reused): nothing done"
    assert _outcomes(out) == [
        (idle, "pg_terminate_backend", gone),
        (other, "pg_terminate_backend", "terminated"),
    ]
    assert (out["status"], out["applied"]) == ("partly applied", True)
    assert out["detail"] == f"pid {idle}: {gone}, pid {other}: terminated"
    assert _alive(conn, idle) and not _alive(conn, other) and _alive(conn, own)
    plan.signals = plan.signals[:1]
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True)
    assert (out["status"], out["applied"]) == ("nothing done", False)


def test_terminate_stale_ends_a_session_idle_in_transaction(stager, conn, pg_dsn):
    idle = stager.idle_in_transaction()
    time.sleep(0.2)
    plan = pg_actions.plan_sessions(
        "terminate_stale",
        sessions=_sessions(conn, idle),
        blocking=None,
        threshold_s=300,
        stale_s=0.1,
    )
    assert [(s.pid, s.state) for s in plan.signals] == [(idle, "idle in transaction")]
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True)
    assert _outcomes(out) == [(idle, "pg_terminate_backend", "terminated")]
    assert not _alive(conn, idle)
    with pytest.raises(psycopg.OperationalError):
        stager.sessions[idle].conn.execute("SELECT 1")


def _idle_seen_by(stager, dsn):
    """A session idle in transaction, the plan to terminate it made from what the role of `dsn`
    sees, and that sessions frame."""
    idle = stager.idle_in_transaction()
    c = pg.connect(dsn)
    try:
        seen = _sessions(c, idle)
    finally:
        c.close()
    plan = pg_actions.plan_sessions(
        "terminate_long", sessions=seen, blocking=None, threshold_s=300, pids=[idle]
    )
    return idle, plan, seen


def test_a_hidden_session_asked_for_by_pid_is_left_alone(stager, conn, roles, pg_dsn):
    idle, plan, seen = _idle_seen_by(stager, roles["plain"])
    assert seen.loc[seen["pid"] == idle, "hidden"].tolist() == [True]
    why = "hidden from this role (<insufficient privilege>): cannot check what it runs"
    assert (plan.signals, plan.left_alone) == ([], [{"pid": idle, "why": why}])
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True)
    assert (out["status"], out["applied"], out["results"]) == ("skipped", False, [])
    assert _alive(conn, idle)


def test_a_role_without_pg_signal_backend_is_refused_with_what_to_grant(stager, roles):
    idle, plan, _ = _idle_seen_by(stager, roles["monitor"])
    out = pg_actions.execute(plan, dsn=roles["monitor"], apply=True)
    [(_, _, outcome)] = _outcomes(out)
    assert outcome.startswith("refused: pg_terminate_backend: permission denied (")
    assert outcome.endswith(
        "; grant pg_signal_backend to this role, or connect as the session's owner"
    )
    assert (out["status"], out["applied"]) == ("nothing done", False)


def test_a_backend_that_cannot_be_signalled_is_reported(conn, pg_dsn):
    # the checkpointer is listed in pg_stat_activity but is no client backend: the server
    # answers false (with a warning) and the outcome says so
    sessions = pg_activity.sessions_frame(pg_activity.fetch_sessions(conn))
    [checkpointer] = sessions.loc[sessions["backend_type"] == "checkpointer", "pid"].tolist()
    plan = pg_actions.plan_sessions(
        "terminate_long", sessions=sessions, blocking=None, threshold_s=300, pids=[checkpointer]
    )
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True)
    assert _outcomes(out) == [
        (
            checkpointer,
            "pg_terminate_backend",
            "pg_terminate_backend returned false: the backend could not be signalled",
        )
    ]
    assert _alive(conn, checkpointer)


@pytest.mark.parametrize("limit", ["statement_timeout_ms", "lock_timeout_ms"])
def test_a_bad_limit_is_refused_before_anything_is_signalled(stager, conn, pg_dsn, limit):
    idle = stager.idle_in_transaction()
    plan = pg_actions.plan_sessions(
        "terminate_long", sessions=_sessions(conn, idle), blocking=None, threshold_s=0, pids=[idle]
    )
    with pytest.raises(DatabaseError, match=f"^{limit}=0 must be a positive whole number$"):
        pg_actions.execute(plan, dsn=pg_dsn, apply=True, **{limit: 0})
    assert _alive(conn, idle)


def test_a_skipped_plan_applied_connects_to_nothing():
    plan = pg_actions.plan_sessions("none", sessions=None, blocking=None, threshold_s=300)
    out = pg_actions.execute(plan, dsn="host=/nonexistent connect_timeout=1", apply=True)
    assert (out["status"], out["applied"], out["results"]) == ("skipped", False, [])


# the block takes the cancel, then finishes its work in 0.3 s: within the wait, the session is
# seen idle
FINISHES_LATE = (
    "DO $$ BEGIN PERFORM pg_sleep(30); "
    "EXCEPTION WHEN query_canceled THEN PERFORM pg_sleep(0.3); END $$"
)


def test_a_statement_that_ends_within_the_wait_is_reported_cancelled(stager, conn, pg_dsn):
    late, plan = _to_cancel(stager, conn, FINISHES_LATE)
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True, wait_s=10)
    assert _outcomes(out) == [(late, "pg_cancel_backend", "cancelled: the session is now idle")]


def _stubborn_then_sleeper(stager, conn):
    """Two statements (one that swallows a cancel, then 30 s of pg_sleep) and the plan to cancel
    both, in that order."""
    stubborn = stager.long_query(sql_text=STUBBORN)
    sleeper = stager.long_query()
    plan = pg_actions.plan_sessions(
        "cancel",
        sessions=_sessions(conn, stubborn, sleeper),
        blocking=None,
        threshold_s=0,
        pids=[stubborn, sleeper],
    )
    return stubborn, sleeper, plan


def _end_the_mitigation_session_while_it_waits(
    pg_dsn: str, then: sql.Composable | None = None
) -> tuple[threading.Thread, list[int]]:
    """Someone ends the mitigation's own session once it checks on what it signalled (its last
    statement is the check), then runs `then` (as superuser); the pid it ended is in the list."""
    killed: list[int] = []

    def end_it() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as w:
            while not killed:
                killed.extend(
                    r[0]
                    for r in w.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND "
                        "query LIKE '%%mitigation check%%'",
                        (pg_actions.MITIGATION_APP,),
                    )
                )
                time.sleep(0.02)
            w.execute("SELECT pg_terminate_backend(%s)", (killed[0],))
            if then:
                w.execute(then)

    killer = threading.Thread(target=end_it, daemon=True)
    killer.start()
    return killer, killed


def test_the_mitigation_session_ended_during_the_wait_is_recorded_and_the_rest_done(
    stager, conn, pg_dsn
):
    stubborn, sleeper, plan = _stubborn_then_sleeper(stager, conn)
    assert [sig.pid for sig in plan.signals] == [stubborn, sleeper]
    killer, killed = _end_the_mitigation_session_while_it_waits(pg_dsn)
    recorded: list[dict] = []
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True, wait_s=20, record=recorded.append)
    killer.join(5)
    (first, first_fn, first_outcome), second = _outcomes(out)
    assert (first, first_fn) == (stubborn, "pg_cancel_backend")
    # the cancel was sent before the session ended: recorded as sent, not as done nor lost
    assert first_outcome.startswith(
        "signalled, but whether it took effect could not be checked: mitigation check failed: "
    ), first_outcome
    # libpq says either, depending on whether it read the server's last words before the close
    assert (
        "terminating connection due to administrator command" in first_outcome
        or "server closed the connection unexpectedly" in first_outcome
    ), first_outcome
    # the next signal went out on a new session, and did what it says
    assert second == (sleeper, "pg_cancel_backend", "cancelled: the session is now idle")
    assert (out["status"], out["applied"], recorded) == ("partly applied", True, [out])
    assert stager.sessions[sleeper].done.wait(5) and "canceling statement" in (
        stager.sessions[sleeper].error or ""
    )
    assert _alive(conn, sleeper) and killed[0] not in (stubborn, sleeper)
    with psycopg.connect(pg_dsn, autocommit=True) as su:  # it would swallow the teardown's cancel
        su.execute("SELECT pg_terminate_backend(%s)", (stubborn,))


def test_no_new_mitigation_session_leaves_the_rest_not_done_and_says_why(pg_server, conn, pg_dsn):
    from incidentlib.sandbox.postgres import Stager

    tag = uuid.uuid4().hex[:12]
    mitigator = f"db_mitigator_{tag}"
    mitigator_dsn = pg_server.create_role(mitigator, "mitigate-pw-1", monitor=True)
    staged = Stager(pg_server.create_role(f"db_app_{tag}", "app-pw-1"))
    with psycopg.connect(pg_dsn, autocommit=True) as su:
        su.execute(sql.SQL("GRANT pg_signal_backend TO {}").format(sql.Identifier(mitigator)))
    stubborn = 0
    try:
        stubborn, sleeper, plan = _stubborn_then_sleeper(staged, conn)
        # its session ended, and its role may no longer log in: no new session for the second
        killer, _ = _end_the_mitigation_session_while_it_waits(
            pg_dsn, then=sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(mitigator))
        )
        out = pg_actions.execute(plan, dsn=mitigator_dsn, apply=True, wait_s=20)
        killer.join(5)
        (_, _, first), (pid, _, second) = _outcomes(out)
        assert first.startswith("signalled, but whether it took effect could not be checked: ")
        assert pid == sleeper and second.startswith("not done: no new mitigation session (")
        assert "not permitted to log in" in second, second
        assert "mitigate-pw-1" not in second and "mitigate-pw-1" not in out["detail"]
        assert (out["status"], out["applied"]) == ("nothing done", False)
        assert staged.sessions[sleeper].error is None and not staged.sessions[sleeper].done.is_set()
    finally:
        if stubborn:  # it would swallow the teardown's cancel
            with psycopg.connect(pg_dsn, autocommit=True) as su:
                su.execute("SELECT pg_terminate_backend(%s)", (stubborn,))
        staged.close()


# the block catches query_canceled and sleeps on: the same statement is still active after the
# wait, and the outcome says so instead of "cancelled"
STUBBORN = (
    "DO $$ BEGIN FOR i IN 1..4 LOOP BEGIN PERFORM pg_sleep(2); "
    "EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$"
)


def test_a_statement_that_swallows_the_cancel_is_reported_still_there(stager, conn, pg_dsn):
    stubborn, plan = _to_cancel(stager, conn, STUBBORN)
    seen: list[tuple[str, str]] = []  # the mitigation session, as another session sees it
    done, watching = threading.Event(), threading.Event()

    def watch() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as w:
            watching.set()
            while not seen and not done.is_set():
                seen.extend(
                    w.execute(
                        "SELECT usename, backend_type FROM pg_stat_activity "
                        "WHERE application_name = 'incident-runbook-mitigation'"
                    ).fetchall()
                )
                time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # connected before the mitigation starts, so it cannot miss the mitigation's session, which
    # lives about half a second (a connect under load can take longer: the test failed once so)
    assert watching.wait(30)
    out = pg_actions.execute(plan, dsn=pg_dsn, apply=True, wait_s=0.5)
    done.set()
    watcher.join(5)
    assert _outcomes(out) == [
        (stubborn, "pg_cancel_backend", "signalled, but still there after 0.5s (active)")
    ]
    assert (out["status"], out["applied"]) == ("nothing done", False)
    assert out["detail"] == f"pid {stubborn}: signalled, but still there after 0.5s (active)"
    assert seen[:1] == [("postgres", "client backend")]
    with psycopg.connect(pg_dsn, autocommit=True) as su:  # it would swallow the teardown's cancel
        su.execute("SELECT pg_terminate_backend(%s)", (stubborn,))
