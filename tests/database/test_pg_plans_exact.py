"""Session mitigation plans on their exact words: the own-session guard (by flag and by pid), a
hidden session asked for by pid, what `auto` chooses, and each refusal (pure; `make mutate` runs
these against every mutant of pg/actions.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.pg import actions as pg_actions
from incidentlib.pg import activity as pg_activity
from incidentlib.pg import locks as pg_locks
from incidentlib.plan import CANCELS_STATEMENTS, DROPS_SESSIONS

from .pg_rows import NOW, edge, session


def _frame(*rows):
    return pg_activity.sessions_frame(list(rows))


def _plan(mitigation, rows, *, chain=None, threshold_s=300, **kw):
    blocking = pg_locks.blocking_frame(chain) if chain else None
    return pg_actions.plan_sessions(
        mitigation, sessions=_frame(*rows), blocking=blocking, threshold_s=threshold_s, **kw
    )


def test_terminate_long_names_each_session_its_statement_and_why():
    plan = _plan(
        "terminate_long",
        [
            session(7, "active", query_s=900.4, app="", user="etl", query="SELECT pg_sleep(?)"),
            session(8, "active", query_s=1200, app="analytics"),
            session(9, "active", query_s=299.9),  # under the threshold
            session(10, "idle", query_s=5000),  # not active
        ],
        target="host=db",
    )
    assert [(s.pid, s.why) for s in plan.signals] == [
        (8, "active for 1200s, over the 300s threshold"),
        (7, "active for 900s, over the 300s threshold"),
    ]
    assert (plan.action, plan.summary, plan.target, plan.safety, plan.skipped) == (
        "terminate_long",
        "terminate 2 session(s) with pg_terminate_backend",
        "2 session(s) on host=db",
        DROPS_SESSIONS,
        None,
    )
    assert plan.command == "SELECT pg_terminate_backend(8); SELECT pg_terminate_backend(7)"
    assert plan.change == (
        "  SELECT pg_terminate_backend(8);  -- active, user app, app analytics: active for 1200s, "
        "over the 300s threshold; query: SELECT ?\n"
        "  SELECT pg_terminate_backend(7);  -- active, user etl, app -: active for 900s, over the "
        "300s threshold; query: SELECT pg_sleep(?)"
    )
    sig = plan.signals[1]
    assert (sig.function, sig.user, sig.application, sig.state, sig.backend_type) == (
        "pg_terminate_backend",
        "etl",
        "",
        "active",
        "client backend",
    )
    assert sig.query_s == pytest.approx(900.4) and sig.query == "SELECT pg_sleep(?)"
    # timestamps handed to psycopg as datetimes, not pandas Timestamps
    assert type(sig.backend_start).__name__ == "datetime" and sig.backend_start < NOW
    assert type(sig.query_start).__name__ == "datetime"


def test_the_threshold_is_inclusive():
    plan = _plan("terminate_long", [session(7, "active", query_s=300)])
    assert [s.pid for s in plan.signals] == [7]


def test_our_own_session_is_never_signalled_by_flag_or_by_pid():
    rows = [
        session(7, "active", query_s=900, self_=True),
        session(8, "active", query_s=900),
    ]
    plan = _plan("terminate_long", rows, own_pids=[8])
    # 7 (flagged as ours) is not even wanted; 8 (ours by pid) is wanted, then left alone
    assert plan.signals == []
    assert plan.left_alone == [{"pid": 8, "why": "this runbook's own session"}]
    asked = _plan("terminate_long", rows, pids=[7, 8], own_pids=[8])
    assert asked.signals == []
    assert asked.left_alone == [
        {"pid": 7, "why": "this runbook's own session"},
        {"pid": 8, "why": "this runbook's own session"},
    ]
    assert (asked.summary, asked.skipped) == (
        "nothing to do (no session left to touch)",
        "no session left to touch",
    )
    assert asked.command == "(none)" and asked.change == ""


def test_a_hidden_session_asked_for_by_pid_is_left_alone_with_the_reason():
    plan = _plan("terminate_long", [session(7, None, hidden=True)], pids=[7, 8])
    assert plan.signals == []
    assert plan.left_alone == [
        {
            "pid": 7,
            "why": "hidden from this role (<insufficient privilege>): cannot check what it runs",
        },
        {"pid": 8, "why": "no such backend (it ended, or the pid is wrong)"},
    ]


def test_a_non_client_backend_only_when_asked_for_by_pid():
    rows = [session(7, "active", query_s=9000, backend_type="autovacuum worker")]
    auto = _plan("terminate_long", rows)
    assert auto.signals == [] and auto.left_alone == [
        {"pid": 7, "why": "autovacuum worker: only touched when asked for by pid"}
    ]
    asked = _plan("terminate_long", rows, pids=[7])
    assert [(s.pid, s.why) for s in asked.signals] == [(7, "asked for by pid")]


def test_auto_prefers_the_root_blocker_then_long_queries_then_nothing():
    chain = [edge(102, 101, wait_s=60, blocking_state="idle in transaction"), edge(103, 101)]
    rows = [
        session(101, "idle in transaction", query_s=400, xact_s=400),
        session(102, "active", query_s=60, wait="transactionid"),
        session(103, "active", query_s=60, wait="transactionid"),
        session(104, "active", query_s=7200),
    ]
    blocker = _plan("auto", rows, chain=chain)
    assert (blocker.action, [(s.pid, s.why) for s in blocker.signals]) == (
        "terminate_blocker",
        [(101, "root blocker of 2 waiting session(s)")],
    )
    long = _plan("auto", rows)
    assert (long.action, [s.pid for s in long.signals]) == ("terminate_long", [104])
    quiet = _plan("auto", [session(1, "active", query_s=1)])
    assert (quiet.action, quiet.summary, quiet.skipped) == (
        "none",
        "nothing to do (no lock chain and no query over the threshold)",
        "no lock chain and no query over the threshold",
    )
    none = _plan("none", rows, chain=chain)
    assert (none.summary, none.skipped, none.signals) == (
        "nothing to do (mitigation=none)",
        "mitigation=none",
        [],
    )
    empty = pg_actions.plan_sessions("auto", sessions=None, blocking=None, threshold_s=1)
    assert empty.action == "none" and empty.target == "0 session(s) on the database"


def test_cancel_signals_blockers_and_long_queries_once_each():
    chain = [edge(102, 101, wait_s=60)]
    rows = [
        session(101, "active", query_s=900),  # the root blocker, also long
        session(102, "active", query_s=60, wait="transactionid"),
    ]
    plan = _plan("cancel", rows, chain=chain)
    assert [(s.pid, s.function, s.why) for s in plan.signals] == [
        (101, "pg_cancel_backend", "root blocker of 1 waiting session(s)")
    ]
    assert (plan.summary, plan.safety) == (
        "cancel the statement of 1 session(s) with pg_cancel_backend",
        CANCELS_STATEMENTS,
    )
    idle = _plan("cancel", [session(5, "idle in transaction")], pids=[5])
    assert idle.left_alone == [
        {"pid": 5, "why": "idle in transaction: no statement to cancel; terminate it instead"}
    ]


def test_restart_and_unknown_mitigations_are_refused():
    with pytest.raises(InvalidParameter) as e:
        _plan("restart", [session(1, "active")])
    assert str(e.value) == ("restart is not a session mitigation: plan it with kube.actions")
    with pytest.raises(InvalidParameter) as e:
        pg_actions.choose("kill", long_running=None, blocking=None)
    assert str(e.value) == (
        "mitigation 'kill' is not one of auto, terminate_long, terminate_stale, "
        "terminate_blocker, cancel, restart, restart_app, resources, none"
    )


def test_choose_reads_empty_frames_as_nothing():
    empty = pd.DataFrame()
    assert pg_actions.choose("auto", long_running=empty, blocking=[]) == "none"
    assert pg_actions.choose("auto", long_running=[1], blocking=[]) == "terminate_long"
    assert pg_actions.choose("auto", long_running=[1], blocking=[2]) == "terminate_blocker"
    assert pg_actions.choose("cancel", long_running=None, blocking=None) == "cancel"


def test_a_signal_without_query_time_keeps_none_not_nan():
    row = session(7, "active", query_s=10)
    row["query_s"] = math.nan
    sig = pg_actions._signal_of(row, "pg_cancel_backend", "w")
    assert sig.query_s is None and sig.why == "w" and sig.pid == 7
    row["backend_start"] = pd.NaT
    assert pg_actions._signal_of(row, "f", "w").backend_start is pd.NaT


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "pids 'abc': 'abc' is not a process id; expected whole numbers like [4711, 4712]"),
        ([True], "pids [True]: True is not a process id; expected whole numbers like [4711, 4712]"),
        ([None], "pids [None]: None is not a process id; expected whole numbers like [4711, 4712]"),
        ([0], "pids [0]: 0 is not a process id (must be positive)"),
        ("-5", "pids '-5': -5 is not a process id (must be positive)"),
    ],
)
def test_parse_pids_says_which_item_is_wrong(value, message):
    with pytest.raises(InvalidParameter) as e:
        pg_actions.parse_pids(value)
    assert str(e.value) == message


def test_parse_pids_accepts_tuples_spaces_and_an_empty_list():
    assert pg_actions.parse_pids((5, "6")) == [5, 6]
    assert pg_actions.parse_pids(" 7  8,9 ") == [7, 8, 9]
    assert pg_actions.parse_pids([]) is None
    assert pg_actions.parse_pids(1) == [1]
