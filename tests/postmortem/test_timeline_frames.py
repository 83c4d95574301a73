"""The post-mortem's pure builders on hand-built evidence runs (no server, no notebook)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from incidentlib.notebook import charts
from incidentlib.scenarios import postmortem as pm


def run(
    run_id: str, scenario: str, started: str, finished: str, **scraps: object
) -> pm.EvidenceRun:
    entry = {
        "run_id": run_id,
        "scenario": scenario,
        "started_at": started,
        "finished_at": finished,
        "status": "ok",
        "parameters": {"deployment": "backend"},
        "files": [
            {"path": f"{run_id}.ipynb", "sha256": "a" * 64},
            {"path": f"{run_id}.html", "sha256": "b" * 64},
        ],
    }
    return pm.EvidenceRun(
        entry=entry, scraps={"started_at": started, "finished_at": finished, **scraps}
    )


ROLLOUTS = pd.DataFrame(
    [
        {
            "revision": 2,
            "images": "backend:2.3.1",
            "change_cause": "deploy 2.3.1",
            "created": pd.Timestamp("2026-11-24T09:00Z"),
        },
        {
            "revision": 3,
            "images": "backend:2.4.0",
            "change_cause": "deploy 2.4.0",
            "created": pd.Timestamp("2026-11-27T09:02Z"),
        },
    ]
)
PODS = pd.DataFrame(
    [
        {
            "namespace": "production",
            "name": f"backend-c-{i}",
            "owner": "backend",
            "status": "CrashLoopBackOff",
            "restarts": 5,
            "exit_code": 1,
            "created": pd.Timestamp("2026-11-27T09:02:05Z"),
            "last_restart": pd.Timestamp(f"2026-11-27T09:2{i}:00Z"),
        }
        for i in range(3)
    ]
)
EVENTS = pd.DataFrame(
    [
        {
            "namespace": "production",
            "type": "Warning",
            "reason": "BackOff",
            "object": f"pod/backend-c-{i}",
            "message": "Back-off restarting failed container",
            "count": 5,
            "first_seen": pd.Timestamp(f"2026-11-27T09:03:1{i}Z"),
            "last_seen": pd.Timestamp("2026-11-27T09:29:00Z"),
        }
        for i in range(3)
    ]
)


def incident_runs() -> list[pm.EvidenceRun]:
    outage = run(
        "20261127T093000Z-outage",
        "outage",
        "2026-11-27T09:30:00+00:00",
        "2026-11-27T09:30:20+00:00",
        rollouts=ROLLOUTS,
        pods=PODS,
        events=EVENTS,
        severity={"level": "SEV1", "rule": "outage", "reason": "backend has 0/3 ready pods"},
        figures={"pods_down": 3, "error_rate": 0.08},
        findings=[
            {
                "severity": "SEV1",
                "title": "backend crash-loops",
                "detail": "rev 3",
                "next_step": "undo",
            }
        ],
        actions=[
            {
                "action": "undo",
                "summary": "roll back backend to revision 2",
                "applied": True,
                "status": "rolled out",
                "finished_at": "2026-11-27T09:31:00+00:00",
            },
            {"action": "scale", "summary": "scale to 5", "applied": False},
        ],
    )
    again = run(
        "20261127T093500Z-outage",
        "outage",
        "2026-11-27T09:35:00+00:00",
        "2026-11-27T09:35:20+00:00",
        rollouts=ROLLOUTS,
        severity={"level": "SEV4", "rule": "no-impact", "reason": "nothing wrong"},
        figures={"pods_down": 0, "error_rate": 0.0},
    )
    return [outage, again]


def test_timeline_merges_runs_once_each_in_time_order() -> None:
    tl = pm.timeline_frame(incident_runs())
    assert list(tl.columns) == pm.TIMELINE_COLUMNS
    assert tl["time"].is_monotonic_increasing
    assert (tl["kind"] == "rollout").sum() == 2  # read by both runs, listed once
    first = tl[tl["kind"] == "first failure"].iloc[0]
    assert first["time"] == pd.Timestamp(
        "2026-11-27T09:03:10Z"
    )  # the first BackOff, not the pod creation
    assert first["what"] == "backend: first failure (3 pods CrashLoopBackOff, exit code 1)"
    assert tl[tl["kind"] == "restart"]["what"].tolist() == ["backend: 15 restarts so far (latest)"]
    mitigation = tl[tl["kind"] == "mitigation"]
    assert mitigation["what"].tolist() == ["outage: roll back backend to revision 2 (rolled out)"]
    assert mitigation["time"].iloc[0] == pd.Timestamp("2026-11-27T09:31:00Z")
    recovery = tl[tl["kind"] == "recovery"]
    assert recovery["what"].tolist() == ["outage: back to SEV4 after SEV1"]
    assert tl[tl["kind"] == "severity"]["what"].tolist() == [
        "outage: SEV1",
        "outage: SEV4 (from SEV1)",
    ]


def test_first_failure_without_events_falls_back_to_creation_and_says_so() -> None:
    r = run("r1", "outage", "2026-11-27T09:30:00Z", "2026-11-27T09:30:20Z", pods=PODS)
    first = pm.timeline_frame([r]).query("kind == 'first failure'").iloc[0]
    assert bool(first["approximate"]) and first["time"] == pd.Timestamp("2026-11-27T09:02:05Z")


def test_window_keeps_the_last_rollout_before_the_trouble() -> None:
    shown = pm.incident_window(pm.timeline_frame(incident_runs()))
    assert shown[shown["kind"] == "rollout"]["what"].tolist() == [
        "backend revision 3 rolled out (backend:2.4.0)"
    ]


def test_hypothesis_rollout_then_crash_loop() -> None:
    found = pm.hypotheses(pm.timeline_frame(incident_runs()))
    assert [h["kind"] for h in found] == ["rollout followed by failures"]
    assert found[0]["hypothesis"].startswith(
        "backend revision 3 (rolled out at 09:02:00) caused the failures of backend: its pods "
        "first failed 70 s later, "
        "at 09:03:10"
    )


def test_no_hypothesis_when_the_rollout_is_too_old() -> None:
    old = ROLLOUTS.assign(
        created=[pd.Timestamp("2026-11-20T09:00Z"), pd.Timestamp("2026-11-24T09:00Z")]
    )
    r = run(
        "r1",
        "outage",
        "2026-11-27T09:30:00Z",
        "2026-11-27T09:30:20Z",
        rollouts=old,
        pods=PODS,
        events=EVENTS,
    )
    assert pm.hypotheses(pm.timeline_frame([r])) == []


def test_blocker_and_lock_waits_from_the_blocking_scrap() -> None:
    blocking = pd.DataFrame(
        [
            {
                "blocked_pid": 12,
                "blocking_pid": 11,
                "root_blocking_pid": 11,
                "depth": 1,
                "wait_s": 60.0,
                "mode": "ShareLock",
                "relation": "accounts",
                "locktype": "transactionid",
                "blocked_query": "UPDATE accounts ...",
                "blocking_state": "idle in transaction",
                "blocking_application": "billing",
                "blocking_query": "UPDATE ...",
                "blocking_xact_start": pd.Timestamp("2026-11-27T09:10:00Z"),
                "blocking_xact_s": 1200.0,
            },
            {
                "blocked_pid": 13,
                "blocking_pid": 12,
                "root_blocking_pid": 11,
                "depth": 2,
                "wait_s": 30.0,
                "mode": "ShareLock",
                "relation": "accounts",
                "locktype": "transactionid",
                "blocked_query": "UPDATE accounts ...",
                "blocking_state": "active",
                "blocking_application": "billing",
                "blocking_query": "UPDATE ...",
                "blocking_xact_start": pd.Timestamp("2026-11-27T09:29:00Z"),
                "blocking_xact_s": 60.0,
            },
        ]
    )
    r = run("r1", "database", "2026-11-27T09:30:00Z", "2026-11-27T09:30:05Z", blocking=blocking)
    tl = pm.timeline_frame([r])
    blocker = tl[tl["kind"] == "blocker"].iloc[0]
    assert blocker["time"] == pd.Timestamp("2026-11-27T09:10:00Z")
    assert (
        blocker["what"]
        == "pid 11 (app billing, idle in transaction) began the transaction that blocks 2 "
        "sessions (root blocker)"
    )
    waits = tl[tl["kind"] == "lock wait"]
    # snapshot = 09:10:00 + 1200 s = 09:30:00; waits began 60 s and 30 s before it
    assert waits["time"].tolist() == [
        pd.Timestamp("2026-11-27T09:29:00Z"),
        pd.Timestamp("2026-11-27T09:29:30Z"),
    ]
    found = pm.hypotheses(tl)
    assert found[0]["kind"] == "blocker followed by a pile-up"
    assert found[0]["hypothesis"].startswith(
        "pid 11 held a transaction open from 09:10:00 (app billing, idle in "
        "transaction) and blocked 2 sessions: the first lock wait behind it began ≈19 min later"
    )


def test_severity_impact_findings_and_evidence() -> None:
    runs = incident_runs()
    sev = pm.severity_frame(runs)
    assert sev[["level", "rank", "scenario"]].values.tolist() == [
        ["SEV1", 1, "outage"],
        ["SEV4", 4, "outage"],
    ]
    impact = pm.impact_frame(runs, pm.timeline_frame(runs)).set_index("figure")
    assert impact.loc["pods down (at worst)", "value"] == "3"
    assert impact.loc["error rate (at worst)", "value"] == "8.0%"
    assert impact.loc["error rate (at worst)", "measured_by"] == "20261127T093000Z-outage"
    assert impact.loc["duration, min (first failure to recovery)", "value"] == "32"
    findings = pm.findings_frame(runs)
    assert findings[["title", "evidence"]].values.tolist() == [
        ["backend crash-loops", "20261127T093000Z-outage.html"]
    ]
    files = pm.evidence_frame({"runs": [r.entry for r in runs]})
    assert len(files) == 4 and set(files["sha256"]) == {"a" * 64, "b" * 64}


def test_charts_render_to_png() -> None:
    runs = incident_runs()
    for fig in (
        charts.incident_timeline(pm.timeline_frame(runs)),
        charts.severity_over_time(pm.severity_frame(runs)),
        charts.incident_timeline(pm.timeline_frame([])),
    ):
        assert charts.png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_first_revision_is_a_creation_not_a_suspect_change() -> None:
    first_only = ROLLOUTS.iloc[[0]].assign(revision=1, created=pd.Timestamp("2026-11-27T09:02Z"))
    r = run(
        "r1",
        "outage",
        "2026-11-27T09:30:00Z",
        "2026-11-27T09:30:20Z",
        rollouts=first_only,
        pods=PODS,
        events=EVENTS,
    )
    assert pm.hypotheses(pm.timeline_frame([r])) == []


def test_rollouts_without_a_deployment_column_are_named_from_their_replicaset() -> None:
    named = ROLLOUTS.assign(replicaset=["backend-8gr8h7m67q", "backend-p485vztq2l"])
    a = run("r1", "outage", "2026-11-27T09:30:00Z", "2026-11-27T09:30:20Z", rollouts=named)
    a.entry["parameters"] = {}
    b = run(
        "r2",
        "triage",
        "2026-11-27T09:31:00Z",
        "2026-11-27T09:31:20Z",
        rollouts=ROLLOUTS.assign(deployment="backend"),
    )
    tl = pm.timeline_frame([a, b])
    assert tl[tl["kind"] == "rollout"]["what"].tolist() == [
        "backend revision 2 rolled out (backend:2.3.1)",
        "backend revision 3 rolled out (backend:2.4.0)",
    ]


def test_the_resolution_message_of_the_whole_incident() -> None:
    from incidentlib.notebook.comms import resolution
    from incidentlib.severity import Severity

    runs = incident_runs()
    tl = pm.timeline_frame(runs)
    whole = pm.merged_run(
        pm.Incident("INC-1", Path("."), {"runs": [r.entry for r in runs]}, runs), tl
    )
    assert (
        whole.figures["pods_down"] == 3 and whole.figures["error_rate"] == 0.08
    )  # the worst of both runs
    assert pm.resolved_at(tl) == pd.Timestamp("2026-11-27T09:35:20Z")
    text = resolution(
        whole,
        Severity("SEV1", "outage", "backend down"),
        incident_id="INC-1",
        resolved_at=pm.resolved_at(tl),
    )
    assert text.splitlines() == [
        "✅ RESOLVED [INC-1]: backend crash-loops",
        "Duration: 32 min (2026-11-27 09:03 UTC to 2026-11-27 09:35 UTC)",
        "Impact: 32 min; every user: 3 pods down, error rate 8.0%",
        "Root Cause: backend crash-loops: rev 3",
        "Resolution: roll back backend to revision 2: rolled out",
        "Post-mortem: runbook postmortem --incident INC-1",
    ]


def test_readable_timeline_marks_derived_times() -> None:
    r = run("r1", "outage", "2026-11-27T09:30:00Z", "2026-11-27T09:30:20Z", pods=PODS)
    shown = pm.readable(pm.timeline_frame([r]))
    assert list(shown.columns) == ["time", "kind", "what", "detail", "scenario"]
    assert shown["time"].tolist()[0] == "≈2026-11-27 09:02:05"
