"""The severity matrix rule by rule, each reason asserted word for word: the default reason, the
figure given in `details` instead, which rule wins when several hold (pure; `make mutate` runs
these against every mutant of severity.py)."""

from __future__ import annotations

import pytest

from incidentlib.severity import DECLARED, Severity, assess, declared, with_declared, worst

# (flag, its value, level, rule, the default reason)
RULES = [
    (
        "certificate_expired",
        True,
        "SEV1",
        "certificate-expired",
        "the service's TLS certificate has expired (rule: an expired certificate = outage for "
        "every client that verifies, SEV1)",
    ),
    (
        "health_ok",
        False,
        "SEV1",
        "outage",
        "the health check is failing (rule: health check failing = complete outage, SEV1)",
    ),
    (
        "service_down",
        True,
        "SEV1",
        "outage",
        "the service has no ready pods (rule: service down = complete outage, SEV1)",
    ),
    (
        "database_reachable",
        False,
        "SEV1",
        "outage",
        "the database is unreachable (rule: database unreachable = outage, SEV1)",
    ),
    ("data_loss", True, "SEV1", "data-loss", "data loss (rule: data loss, SEV1)"),
    (
        "security_incident",
        True,
        "SEV1",
        "security-breach",
        "a security breach (rule: a security breach, SEV1)",
    ),
    (
        "payment_failure",
        True,
        "SEV1",
        "payment-failure",
        "payment processing failures (rule: payment processing failures, SEV1)",
    ),
    (
        "critical_alert",
        True,
        "SEV2",
        "alert",
        "a critical alert is firing (rule: a firing critical or page alert is a SEV1/SEV2 "
        "candidate: SEV2 unless the figures show a complete outage, data loss, a breach or failing "
        "payments)",
    ),
    (
        "core_blocked",
        True,
        "SEV2",
        "major-degradation",
        "core features are blocked (rule: core features blocked = major degradation, SEV2)",
    ),
    (
        "degraded",
        True,
        "SEV2",
        "major-degradation",
        "major functionality is degraded (rule: major functionality degraded, SEV2)",
    ),
    (
        "slow",
        True,
        "SEV3",
        "minor-degradation",
        "responses are slow (rule: slow = minor degradation, SEV3)",
    ),
]
NOTHING = Severity(
    "SEV4", "no-impact", "no problem was measured (rule: nothing above the SEV4 thresholds)"
)


@pytest.mark.parametrize(("flag", "value", "level", "rule", "reason"), RULES)
def test_each_rule_alone_with_its_default_reason(flag, value, level, rule, reason):
    assert assess(**{flag: value}) == Severity(level, rule, reason)


@pytest.mark.parametrize(("flag", "value", "level", "rule", "reason"), RULES)
def test_each_rule_names_the_figure_given_for_it(flag, value, level, rule, reason):
    figure = f"measured: {flag} at 09:31"
    default = reason.split(" (rule: ")[0]
    s = assess(**{flag: value}, details={flag: figure, "other": "ignored"})
    assert s == Severity(level, rule, reason.replace(default, figure, 1))
    # an empty figure falls back on the default words
    assert assess(**{flag: value}, details={flag: ""}).reason == reason


@pytest.mark.parametrize(("flag", "value", "level", "rule", "reason"), RULES)
def test_the_opposite_or_unmeasured_value_claims_nothing(flag, value, level, rule, reason):
    assert assess(**{flag: None}) == NOTHING
    assert assess(**{flag: not value}) == NOTHING


def test_the_error_rate_figure_given_is_named():
    s = assess(error_rate=0.08, details={"error_rate": "5xx share 8.0% of 1,000 requests"})
    assert s.reason == (
        "5xx share 8.0% of 1,000 requests is above 5.0% (rule: error rate > 5%, SEV2)"
    )


def test_nothing_measured_is_sev4_no_impact():
    assert assess() == NOTHING
    assert assess(details={"health_ok": "GET /health answered 200"}) == NOTHING


def test_the_worst_rule_wins_and_the_first_of_a_level_is_kept():
    s = assess(slow=True, core_blocked=True, error_rate=0.5)
    assert (s.level, s.rule) == ("SEV2", "major-degradation")  # core_blocked before error rate
    s = assess(error_rate=0.5, slow=True)
    assert (s.level, s.rule) == ("SEV2", "error-rate")
    s = assess(degraded=True, critical_alert=True)
    assert (s.level, s.rule) == ("SEV2", "alert")  # the alert is listed first
    s = assess(health_ok=False, certificate_expired=True, slow=True)
    assert (s.level, s.rule) == ("SEV1", "certificate-expired")
    s = assess(database_reachable=False, service_down=True)
    assert s.reason.startswith("the service has no ready pods")
    s = assess(error_rate=0.001, slow=True)
    assert (s.level, s.rule) == ("SEV3", "minor-degradation")  # slow beats a SEV4 error rate


def test_rank_worst_str_and_dict():
    levels = [Severity(lv, "r", "why") for lv in ("SEV1", "SEV2", "SEV3", "SEV4")]
    assert [s.rank for s in levels] == [1, 2, 3, 4]
    first, second = Severity("SEV2", "a", "first"), Severity("SEV2", "b", "second")
    assert worst(second, None, Severity("SEV3", "c", "x"), first) is second
    assert worst(Severity("SEV4", "d", "x"), first, second) is first
    assert worst() == worst(None) == Severity("SEV4", "no-impact", "no problem was measured")
    assert str(first) == "SEV2: first"
    assert first.as_dict() == {"level": "SEV2", "rule": "a", "reason": "first"}
    with pytest.raises(ValueError) as e:
        Severity("SEV5", "x", "y")
    assert str(e.value) == "severity level 'SEV5' is not one of SEV1, SEV2, SEV3, SEV4"


def test_declared_conditions_name_each_one_in_order():
    assert declared() is None
    assert declared(data_loss=False, security_incident=False) is None
    assert declared(payment_failure=True, data_loss=True) == Severity(
        "SEV1",
        "declared",
        "declared: data loss (data_loss=True), payment processing failures (payment_failure=True) "
        "(rule: data loss, a security breach or payment processing failures = SEV1)",
    )
    assert declared(security_incident=True).reason.startswith(
        "declared: a security breach (security_incident=True) (rule:"
    )
    assert declared(data_loss="yes") is None  # type: ignore[arg-type]  # only True declares
    assert set(DECLARED) == {"data_loss", "security_incident", "payment_failure"}


def test_with_declared_puts_the_declaration_first_once():
    measured = assess(slow=True)
    flags = {"security_incident": True, "namespace": "production", "data_loss": "true"}
    s = with_declared(measured, flags)
    assert s == Severity(
        "SEV1",
        "declared",
        "declared: a security breach (security_incident=True) (rule: data loss, a security breach "
        f"or payment processing failures = SEV1); measured: {measured.reason}",
    )
    assert with_declared(s, flags) is s  # twice changes nothing
    assert with_declared(measured, {"data_loss": False, "namespace": "x"}) is measured
    assert with_declared(measured, {}) is measured
