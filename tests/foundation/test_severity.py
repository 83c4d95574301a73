import pytest

from incidentlib.severity import Severity, assess, worst

SEV2_RULE = "is above 5.0% (rule: error rate > 5%, SEV2)"
SEV3_RULE = "is between 1.0% and 5.0% (rule: error rate 1-5%, SEV3)"
SEV4_RULE = "is below 1.0% (rule: error rate < 1%, SEV4)"


@pytest.mark.parametrize(
    ("rate", "level", "reason"),
    [
        (0.08, "SEV2", f"error rate 8.0% {SEV2_RULE}"),
        (0.0501, "SEV2", f"error rate 5.0% {SEV2_RULE}"),  # 5.01% shown to one decimal
        (0.05, "SEV3", f"error rate 5.0% {SEV3_RULE}"),
        (0.02, "SEV3", f"error rate 2.0% {SEV3_RULE}"),
        (0.01, "SEV3", f"error rate 1.0% {SEV3_RULE}"),
        (0.0099, "SEV4", f"error rate 1.0% {SEV4_RULE}"),
        (0.005, "SEV4", f"error rate 0.5% {SEV4_RULE}"),
        (0.0, "SEV4", f"error rate 0.0% {SEV4_RULE}"),
    ],
)
def test_error_rate_thresholds_name_figure_and_threshold(rate, level, reason):
    s = assess(error_rate=rate)
    assert (s.level, s.rule, s.reason) == (level, "error-rate", reason)


def test_health_failure_is_sev1_and_wins():
    s = assess(
        health_ok=False, error_rate=0.02, details={"health_ok": "GET http://x/health answered 503"}
    )
    assert s.level == "SEV1" and s.rule == "outage"
    assert "503" in s.reason and "SEV1" in s.reason


@pytest.mark.parametrize(
    ("kw", "level", "rule"),
    [
        ({"service_down": True}, "SEV1", "outage"),
        ({"database_reachable": False}, "SEV1", "outage"),
        ({"data_loss": True}, "SEV1", "data-loss"),
        ({"core_blocked": True}, "SEV2", "major-degradation"),
        ({"degraded": True}, "SEV2", "major-degradation"),
        ({"slow": True}, "SEV3", "minor-degradation"),
        ({}, "SEV4", "no-impact"),
        ({"health_ok": True, "database_reachable": True}, "SEV4", "no-impact"),
    ],
)
def test_matrix(kw, level, rule):
    s = assess(**kw)
    assert (s.level, s.rule) == (level, rule)


def test_worst_and_validation():
    a, b = Severity("SEV3", "r", "x"), Severity("SEV2", "r", "y")
    assert worst(a, None, b) is b
    assert worst().level == "SEV4"
    with pytest.raises(ValueError, match="SEV5"):
        Severity("SEV5", "r", "x")
