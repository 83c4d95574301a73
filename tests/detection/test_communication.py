"""The runbook's communication as it writes it (pure): the status line as the incident moves, the
response target and update cadence per severity, who is paged (never invented), what the commander
declared in every message, the customer-facing message with no internal name, the resolution's
impact, and the `notifications` rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.notebook import comms
from incidentlib.notebook.run import Run
from incidentlib.params import Common, parse_escalation
from incidentlib.severity import Severity, assess

NOW = datetime(2026, 11, 27, 9, 40, tzinfo=UTC)
INTERNAL = [  # every internal name the staged run's findings, actions and figures carry
    "backend",
    "backend-7d9f8-x2x9q",
    "orders_db",
    "node-7",
    "production",
    "pg_stat_activity",
    "SELECT",
    "payments_ledger",
    "4711",
]


def staged(**params: object) -> Run:
    """A crash-looping backend whose database is locked up, with internal names everywhere."""
    run = Run(
        "outage",
        params={"namespace": "production", "deployment": "backend", **params},
        started_at="2026-11-27T09:35:00+00:00",
        quiet=True,
    )
    run.figures.update(
        pods_down=3,
        pods_total=3,
        error_rate=0.08,
        probes=25,
        probe_failures=25,
        health_ok=False,
        blocked_sessions=2,
        incident_started="2026-11-27T09:03:00+00:00",
    )
    run.finding(
        "SEV1",
        "pod backend-7d9f8-x2x9q on node-7 crash-loops",
        "orders_db refuses: SELECT * FROM payments_ledger waits on pid 4711 (pg_stat_activity)",
        "kubectl rollout undo deployment/backend -n production",
    )
    return run


def outage_severity() -> Severity:
    return assess(health_ok=False, details={"health_ok": "GET /health failed on backend"})


def words(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def test_the_status_moves_as_the_incident_does() -> None:
    run = staged()
    assert comms.status_of(run) == "Investigating"  # a symptom explains nothing yet
    run.finding("SEV2", "revision 3 fails", "since 09:02", "roll back", root_cause=True)
    assert comms.status_of(run) == "Identified"
    run.record_action({"action": "undo", "applied": False, "status": "shown"})
    assert comms.status_of(run) == "Identified"  # shown is not applied
    run.record_action({"action": "undo", "applied": True, "status": "rolled out"})
    assert comms.status_of(run) == "Mitigating"  # applied, recovery not yet verified
    run.figures["recovery_verdict"] = "improved"
    assert comms.status_of(run) == "Mitigating"
    run.figures["recovered"] = False  # the outage runbook's health check after it still fails
    assert comms.status_of(run) == "Mitigating"
    run.figures["recovered"] = True
    assert comms.status_of(run) == "Resolved"
    del run.figures["recovered"]
    run.figures["recovery_verdict"] = "recovered"
    assert comms.status_of(run) == "Resolved"
    texts = comms.notifications(run, outage_severity(), now=NOW)
    assert "Status: Resolved" in texts["initial"] and "Status: Resolved" in texts["update"]
    assert texts["customer"].startswith("Resolved: The issue affecting ")
    assert (
        "The service was unavailable from 2026-11-27 09:03 UTC to 2026-11-27 09:40 UTC."
        in (texts["customer"])
    )
    assert texts["customer"].endswith("Thank you for your patience.")


@pytest.mark.parametrize(
    ("level", "response", "every"),
    [
        ("SEV1", "15 minutes", "15 min"),
        ("SEV2", "1 hour", "30 min"),
        ("SEV3", "4 hours", "1 h"),
        ("SEV4", "the next business day", "4 h"),
    ],
)
def test_the_initial_alert_carries_the_response_target_and_cadence(
    level: str, response: str, every: str
) -> None:
    text = comms.initial_alert(
        staged(escalation="SEV1: CTO, VP Eng; SEV2: eng-manager"),
        Severity(level, "test", "staged"),
        now=NOW,
    )
    assert f"Response: within {response} ({level}); updates every {every}" in text.splitlines()
    paged = {"SEV1": "CTO, VP Eng", "SEV2": "eng-manager"}.get(level)
    assert f"Paged: {paged or f'nobody: escalation names no one for {level}'}" in text


def test_who_is_paged_is_never_invented() -> None:
    assert comms.paged(None, "SEV1") == (
        "[fill in: who is paged for SEV1 (give the escalation parameter)]"
    )
    assert parse_escalation(" sev1 : CTO, VP Eng ;SEV2: eng-manager; ") == {
        "SEV1": "CTO, VP Eng",
        "SEV2": "eng-manager",
    }
    for bad, part in (
        ("SEV1 CTO", "'SEV1 CTO'"),
        ("SEV5: nobody", "'SEV5: nobody'"),
        ("SEV1: ", "'SEV1:'"),
        ("SEV1: a; SEV1: b", "'SEV1: b'"),
    ):
        with pytest.raises(InvalidParameter, match=re.escape(f"{part} does not fit")):
            Common.check({"escalation": bad})
    with pytest.raises(InvalidParameter, match="invalid grafana_url 'javascript:alert"):
        Common.check({"grafana_url": "javascript:alert(1)"})


def test_declared_conditions_are_sev1_and_said_in_every_message() -> None:
    run = staged(data_loss=True, payment_failure=True)
    measured = assess(error_rate=0.02)
    severity = run.checked(measured)
    assert (severity.level, severity.rule) == ("SEV1", "declared")
    assert severity.reason == (
        "declared: data loss (data_loss=True), payment processing failures (payment_failure=True) "
        "(rule: data loss, a security breach or payment processing failures = SEV1); measured: "
        + measured.reason
    )
    assert run.checked(severity) == severity  # the run's finish applies it again: no change
    assert staged().checked(measured) == measured  # nothing declared, nothing changed
    texts = comms.notifications(run, severity, now=NOW)
    assert list(texts) == ["initial", "update", "resolution", "customer"]
    for kind in ("initial", "update", "resolution"):
        assert (
            "Declared: data loss, payment processing failures (SEV1, whatever the figures say)"
            in texts[kind].splitlines()
        ), kind
    customer = texts["customer"].splitlines()
    assert "Some recently saved data may be affected; we will contact affected customers " in (
        " ".join(customer)
    )
    assert "Payments may fail or be delayed." in customer
    security = staged(security_incident=True)
    assert "We are investigating a security issue" in comms.customer_message(
        security, security.checked(measured), now=NOW
    )


def test_the_customer_message_names_nothing_internal() -> None:
    run = staged(status_page_url="https://status.example.com/?utm=incident")
    run.record_action({"action": "terminate", "target": "pid 4711 on orders_db", "applied": False})
    texts = comms.notifications(run, outage_severity(), now=NOW)
    customer = texts["customer"]
    assert customer.splitlines() == [
        "Investigating: We are investigating an issue affecting [fill in: the service, as "
        "customers know it].",
        "The service is unavailable.",
        "Next update by 2026-11-27 09:55 UTC. Follow it at https://status.example.com/?utm=***",
    ]
    assert [n for n in INTERNAL if words(customer, n)] == []
    assert [n for n in INTERNAL if words(texts["initial"], n)]  # the internal ones name them
    degraded = Run("performance", started_at="2026-11-27T09:35:00+00:00", quiet=True)
    degraded.figures.update(error_rate=0.083, pods_down=1, pods_total=3)
    assert "About 8% of requests are failing." in comms.customer_message(
        degraded, assess(error_rate=0.083), now=NOW
    )
    # no customer message below SEV2
    assert "customer" not in comms.notifications(degraded, assess(error_rate=0.02), now=NOW)


def test_the_resolution_carries_the_impact_from_measured_figures() -> None:
    text = comms.resolution(
        staged(), outage_severity(), resolved_at="2026-11-27T10:17:30Z", incident_id="INC-1"
    )
    assert text.splitlines()[2] == (
        "Impact: 1 h 14 min; every user: health check failing, 3 of 3 pods down, error rate "
        "8.0%, 25 of 25 health probes failed, 2 blocked sessions"
    )
    partial = Run("performance", started_at="2026-11-27T09:35:00+00:00", quiet=True)
    partial.figures.update(error_rate=0.083, probes=100, probe_failures=8)
    assert comms.resolution(
        partial, assess(error_rate=0.083), resolved_at="2026-11-27T09:47:00Z"
    ).splitlines()[2] == (
        "Impact: 12 min; about 8% of requests: error rate 8.3%, 8 of 100 health probes failed"
    )


def test_links_are_given_never_fetched_and_their_query_values_redacted() -> None:
    run = staged(
        grafana_url="https://grafana.example.com/d/x?orgId=1&token=T0k3nValue",
        logs_url="https://logs.example.com/app",
    )
    assert comms.links(run.params) == [
        ("Grafana", "https://grafana.example.com/d/x?orgId=***&token=***"),
        ("Logs", "https://logs.example.com/app"),
    ]
    for text in comms.notifications(run, outage_severity(), now=NOW).values():
        assert "T0k3nValue" not in text
    initial = comms.initial_alert(run, outage_severity(), now=NOW)
    assert initial.splitlines()[-1] == (
        "Links: Grafana https://grafana.example.com/d/x?orgId=***&token=*** · "
        "Logs https://logs.example.com/app"
    )


def test_the_notifications_scrap_is_one_row_per_message() -> None:
    texts = {"initial": "a", "update": "b", "customer": "c"}
    rows = comms.notifications_frame(texts, posted="update", result="✓ notification posted")
    assert list(rows.columns) == comms.NOTIFICATION_COLUMNS
    assert rows.values.tolist() == [
        ["initial", "a", False, None],
        ["update", "b", True, "✓ notification posted"],
        ["customer", "c", False, None],
    ]
    failed = comms.notifications_frame(texts, posted="update", result="✗ notification NOT posted")
    assert failed["posted"].tolist() == [False, False, False]
    with pytest.raises(InvalidParameter, match="template 'customer' is not written at SEV3"):
        comms.show_notifications(
            staged(), assess(error_rate=0.02), post="customer", now=NOW, glue=False
        )
