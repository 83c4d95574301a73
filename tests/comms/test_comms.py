"""The three filled templates on their exact text for a staged incident, and the webhook post."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.notebook.comms import (
    impact_text,
    initial_alert,
    post_webhook,
    resolution,
    show_notifications,
    status_update,
)
from incidentlib.notebook.run import Run
from incidentlib.severity import assess

from .recorder import Recorder

NOW = datetime(2026, 11, 27, 9, 40, tzinfo=UTC)


def staged_run() -> Run:
    """A bad rollout that crash-loops the backend, at 8% errors, with a lock chain behind it."""
    run = Run(
        "outage",
        params={"namespace": "production"},
        started_at="2026-11-27T09:35:00+00:00",
        quiet=True,
    )
    run.figures.update(
        pods_down=3,
        pods_total=3,
        error_rate=0.08,
        p95_ms=412.4,
        blocked_sessions=2,
        incident_started="2026-11-27T09:03:00+00:00",
    )
    run.finding(
        "SEV1",
        "backend crash-loops since revision 3",
        "revision 3 (image backend:2.4.0) rolled out at 09:02; every pod of it has crash-looped "
        "since 09:03 with exit code 1",
        "roll back: kubectl rollout undo deployment/backend -n production --to-revision=2",
        root_cause=True,
    )
    run.finding(
        "SEV2",
        "pid 4711 blocks 2 sessions",
        "idle in transaction from app billing since 09:12",
        "terminate pid 4711",
    )
    return run


def severity():
    return assess(
        service_down=True,
        error_rate=0.08,
        details={"service_down": "deployment backend has 0/3 ready pods"},
    )


def test_impact_in_numbers() -> None:
    assert impact_text(staged_run().figures) == (
        "3 of 3 pods down, error rate 8.0%, p95 latency 412 ms, 2 blocked sessions"
    )
    assert (
        impact_text({"health_ok": False, "error_rate": 0.004})
        == "health check failing, error rate 0.4%"
    )
    assert impact_text({}) == "[fill in: impact on users]"


def test_initial_alert_exact_text() -> None:
    text = initial_alert(
        staged_run(),
        severity(),
        incident_id="INC-20261127-0935-ab12",
        commander="Dana (@dana)",
        now=NOW,
        escalation="SEV1: CTO, VP Eng; SEV2: eng-manager",
    )
    assert text == (
        "🚨 INCIDENT [INC-20261127-0935-ab12]: backend crash-loops since revision 3\n"
        "Severity: SEV1 — deployment backend has 0/3 ready pods (rule: service down = complete "
        "outage, SEV1)\n"
        "Status: Identified\n"
        "Impact: 3 of 3 pods down, error rate 8.0%, p95 latency 412 ms, 2 blocked sessions\n"
        "Started: 2026-11-27 09:03 UTC\n"
        "Response: within 15 minutes (SEV1); updates every 15 min\n"
        "Next Update: 2026-11-27 09:55 UTC\n"
        "Paged: CTO, VP Eng\n"
        "Incident Commander: Dana (@dana)"
    )


def test_initial_alert_without_commander_or_findings_says_what_to_fill() -> None:
    run = Run("performance", started_at="2026-11-27T09:35:00+00:00", quiet=True)
    run.figures.update(error_rate=0.02)
    text = initial_alert(run, assess(error_rate=0.02), now=NOW)
    assert (
        text.splitlines()[0] == "🚨 INCIDENT: performance: error rate 2.0% is between 1.0% and 5.0%"
    )
    assert "Started: 2026-11-27 09:35 UTC" in text
    assert "Next Update: 2026-11-27 10:40 UTC" in text  # SEV3: hourly
    assert "Response: within 4 hours (SEV3); updates every 1 h" in text
    assert "Status: Investigating" in text  # no finding explains it
    assert "Paged: [fill in: who is paged for SEV3 (give the escalation parameter)]" in text
    assert text.endswith("Incident Commander: [fill in: name]")


def test_status_update_exact_text() -> None:
    run = staged_run()
    run.record_action(
        {
            "action": "rollout undo",
            "target": "deployment/backend to revision 2",
            "applied": True,
            "outcome": "3/3 pods ready",
        }
    )
    run.record_action({"action": "terminate pid 4711", "applied": False})
    text = status_update(run, severity(), incident_id="INC-1", now=NOW)
    assert text == (
        "📊 UPDATE [INC-1]: backend crash-loops since revision 3\n"
        "Status: Mitigating\n"
        "Severity: SEV1\n"
        "Impact: 3 of 3 pods down, error rate 8.0%, p95 latency 412 ms, 2 blocked sessions\n"
        "Progress:\n"
        "• outage runbook found 2 problems (SEV1: deployment backend has 0/3 ready pods)\n"
        "• applied: rollout undo (deployment/backend to revision 2): 3/3 pods ready\n"
        "• prepared, not applied: terminate pid 4711\n"
        "Next Steps:\n"
        "• roll back: kubectl rollout undo deployment/backend -n production --to-revision=2\n"
        "• terminate pid 4711\n"
        "ETA: [fill in: expected resolution time]\n"
        "Next Update: 2026-11-27 09:55 UTC"
    )


def test_status_update_before_any_finding_is_investigating() -> None:
    run = Run("triage", started_at="2026-11-27T09:35:00+00:00", quiet=True)
    text = status_update(run, assess(), now=NOW)
    assert "Status: Investigating" in text
    assert "• triage runbook ran: nothing wrong found" in text
    assert "• [fill in: next step]" in text


def test_resolution_exact_text() -> None:
    run = staged_run()
    run.record_action(
        {"action": "rollout undo", "target": "deployment/backend to revision 2", "applied": True}
    )
    text = resolution(run, severity(), incident_id="INC-1", resolved_at="2026-11-27T10:17:30Z")
    assert text == (
        "✅ RESOLVED [INC-1]: backend crash-loops since revision 3\n"
        "Duration: 1 h 14 min (2026-11-27 09:03 UTC to 2026-11-27 10:17 UTC)\n"
        "Impact: 1 h 14 min; every user: 3 of 3 pods down, error rate 8.0%, p95 latency 412 ms, "
        "2 blocked sessions\n"
        "Root Cause: backend crash-loops since revision 3: revision 3 (image backend:2.4.0) "
        "rolled out at 09:02; "
        "every pod of it has crash-looped since 09:03 with exit code 1\n"
        "Resolution: rollout undo (deployment/backend to revision 2)\n"
        "Post-mortem: runbook postmortem --incident INC-1"
    )


def test_resolution_without_mitigation_leaves_the_fix_to_fill() -> None:
    run = Run("database", started_at="2026-11-27T09:35:00+00:00", quiet=True)
    text = resolution(run, assess(), resolved_at="2026-11-27T09:47:00+00:00")
    assert "Duration: 12 min (2026-11-27 09:35 UTC to 2026-11-27 09:47 UTC)" in text
    assert "Impact: 12 min; [fill in: who was affected]: [fill in: impact on users]" in text
    assert "Root Cause: [fill in: root cause]" in text
    assert "Resolution: [fill in: what fixed it]" in text
    assert text.endswith("Post-mortem: [fill in: link or date]")


def test_secrets_in_findings_never_reach_a_template() -> None:
    run = staged_run()
    run.findings.insert(
        0,
        {
            "severity": "SEV1",
            "title": "login fails",
            "detail": "Authorization: Bearer abc.def.ghi",
            "next_step": "rotate password=hunter2",
        },
    )
    texts = [f(run, severity(), now=NOW) for f in (initial_alert, status_update)]
    texts.append(resolution(run, severity(), resolved_at=NOW))
    for text in texts:
        assert "hunter2" not in text and "abc.def.ghi" not in text


# --------------------------------------------------------------------------------- the webhook
@pytest.mark.server
def test_webhook_posts_the_filled_message_once(hook: Recorder) -> None:
    line = post_webhook(hook.url, "🚨 INCIDENT: backend down", timeout=2)
    assert line.startswith("✓ notification posted to http://127.0.0.1:") and line.endswith(
        ": 200 ok"
    )
    assert "SECRETTOKEN" not in line
    assert hook.requests == [
        {
            "path": "/services/T000/B000/SECRETTOKEN",
            "content_type": "application/json",
            "body": {"text": "🚨 INCIDENT: backend down"},
        }
    ]


@pytest.mark.server
def test_webhook_500_gives_a_clear_line_and_is_not_retried(hook: Recorder) -> None:
    hook.status = 500
    line = post_webhook(hook.url, "text", timeout=2)
    assert line.startswith("✗ notification NOT posted: http://127.0.0.1:")
    assert (
        "answered 500 Internal Server Error (internal_error); post the text above by hand" in line
    )
    assert len(hook.requests) == 1


@pytest.mark.server
def test_webhook_that_hangs_times_out(hook: Recorder) -> None:
    hook.hang_s = 10  # then it hangs up: a timeout that did not fire would report that instead
    line = post_webhook(hook.url, "text", timeout=0.5)
    assert line.startswith("✗ notification NOT confirmed: http://127.0.0.1:")
    assert "did not answer within 0.5 s" in line
    assert len(hook.requests) == 1


def test_webhook_unreachable_and_bad_url() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    line = post_webhook(f"http://127.0.0.1:{port}/hook", "text", timeout=1)
    assert line.startswith(f"✗ notification NOT posted: cannot reach http://127.0.0.1:{port} (")
    assert post_webhook("hooks.slack.com/services/x", "text") == (
        "✗ notification NOT posted: notify_webhook does not start with http:// or https:// and a "
        "host (not echoed: a webhook's path is a secret); give the incoming-webhook URL, e.g. "
        "https://hooks.slack.com/services/..."
    )


@pytest.mark.server
def test_show_notifications_prints_all_three_and_posts_the_initial_alert(
    hook: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    run = staged_run()
    out = show_notifications(
        run,
        severity(),
        incident_id="INC-1",
        commander="Dana",
        notify_webhook=hook.url,
        timeout=2,
        now=NOW,
        glue=False,
    )
    printed = capsys.readouterr().out
    for key in ("initial", "update", "resolution"):
        assert out[key] in printed
    assert out["webhook"].startswith("✓ notification posted")
    assert [r["body"]["text"] for r in hook.requests] == [out["initial"]]


def test_show_notifications_without_webhook_posts_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = show_notifications(staged_run(), severity(), now=NOW, glue=False)
    assert "webhook" not in out
    assert "(not posted: give notify_webhook" in capsys.readouterr().out


@pytest.mark.server
def test_show_notifications_on_a_500_does_not_raise(hook: Recorder) -> None:
    hook.status = 500
    out = show_notifications(
        staged_run(), severity(), notify_webhook=hook.url, timeout=2, now=NOW, glue=False
    )
    assert out["webhook"].startswith("✗ notification NOT posted")


def test_mitigation_records_of_the_action_modules_read_as_one_line() -> None:
    run = staged_run()
    run.record_action(
        {
            "action": "undo",
            "deployment": "production/backend",
            "summary": "roll back backend to revision 2",
            "command": "kubectl rollout undo deployment/backend -n production --to-revision=2",
            "applied": True,
            "status": "rolled out",
            "detail": "3/3 ready",
        }
    )
    run.record_action(
        {
            "action": "terminate_blocker",
            "function": "pg_terminate_backend",
            "applied": True,
            "results": [{"pid": 4711, "function": "pg_terminate_backend", "outcome": "terminated"}],
        }
    )
    run.record_action(
        {"action": "scale", "summary": "scale backend to 5", "applied": False, "status": "shown"}
    )
    text = status_update(run, severity(), now=NOW)
    assert "• applied: roll back backend to revision 2 (production/backend): rolled out\n" in text
    assert "• applied: terminate_blocker: pid 4711: terminated\n" in text
    assert "• prepared, not applied: scale backend to 5\n" in text
    assert resolution(run, severity(), resolved_at=NOW).splitlines()[4] == (
        "Resolution: roll back backend to revision 2 (production/backend): rolled out; "
        "terminate_blocker: pid 4711: terminated"
    )


def test_a_malformed_webhook_is_refused_early_and_never_fails_the_last_cell(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from incidentlib.params import webhook

    assert webhook(None) is None
    assert (
        webhook("https://hooks.example.com/services/T/B/x")
        == "https://hooks.example.com/services/T/B/x"
    )
    with pytest.raises(
        InvalidParameter, match=r"notify_webhook does not start with http:// or https://"
    ) as e:
        webhook("hooks.slack.com/services/T/B/SECRET")
    assert "SECRET" not in str(e.value) and "T/B" not in str(e.value)
    out = show_notifications(
        staged_run(), severity(), notify_webhook="ftp://x/y", now=NOW, glue=False
    )
    assert out["webhook"].startswith(
        "✗ notification NOT posted: notify_webhook ftp://x is not an http(s) URL"
    )
