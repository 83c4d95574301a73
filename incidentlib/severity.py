"""Severity from measured figures: the runbook's matrix, as one tested function shared by every
notebook.

| level | rule |
| SEV1 | complete outage (health check failing, no ready pods, an expired certificate), database
|      | unreachable; data loss, a security breach, payment processing failures (declared: no probe
|      | measures them) |
| SEV2 | major functionality degraded, core features blocked, or error rate above 5%; a firing
|      | critical/page alert is at least a SEV2 candidate |
| SEV3 | minor degradation: error rate 1 to 5%, or slow |
| SEV4 | error rate below 1%, nothing else wrong |
The reason always names the figure and the threshold that decided."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

LEVELS = ("SEV1", "SEV2", "SEV3", "SEV4")
ERROR_RATE_SEV2 = 0.05
ERROR_RATE_SEV3 = 0.01


@dataclass(frozen=True)
class Severity:
    """A severity level, the rule of the matrix that produced it, and why (with the figure)."""

    level: str
    rule: str
    reason: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"severity level {self.level!r} is not one of {', '.join(LEVELS)}")

    @property
    def rank(self) -> int:
        """1 for SEV1 (worst) to 4 for SEV4."""
        return LEVELS.index(self.level) + 1

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.level}: {self.reason}"


DECLARED = {
    "data_loss": "data loss",
    "security_incident": "a security breach",
    "payment_failure": "payment processing failures",
}
"""The SEV1 conditions of the runbook's matrix that no probe measures: the incident commander
declares them (the parameters of the same names), and every notification says so."""


def declared(
    *, data_loss: bool = False, security_incident: bool = False, payment_failure: bool = False
) -> Severity | None:
    """SEV1 for each condition declared (data loss, a security breach, payment processing
    failures), the reason naming them all; None when none is declared."""
    flags = {
        "data_loss": data_loss,
        "security_incident": security_incident,
        "payment_failure": payment_failure,
    }
    named = [f"{DECLARED[k]} ({k}=True)" for k, v in flags.items() if v is True]
    if not named:
        return None
    return Severity(
        "SEV1",
        "declared",
        f"declared: {', '.join(named)} (rule: data loss, a security breach or payment "
        "processing failures = SEV1)",
    )


def with_declared(severity: Severity, flags: Mapping[str, object]) -> Severity:
    """The severity with what the incident commander declared (`DECLARED` keys in `flags`, e.g. a
    run's parameters) on top: SEV1, the declaration first in the reason, the measured verdict kept
    after it. Applying it twice changes nothing."""
    decl = declared(**{k: flags.get(k) is True for k in DECLARED})
    if decl is None or severity.rule == "declared":
        return severity
    return Severity("SEV1", "declared", f"{decl.reason}; measured: {severity.reason}")


def worst(*severities: Severity | None) -> Severity:
    """The most severe of several assessments (the first one wins a tie)."""
    present = [s for s in severities if s is not None]
    if not present:
        return Severity("SEV4", "no-impact", "no problem was measured")
    return min(present, key=lambda s: s.rank)


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def assess(
    *,
    health_ok: bool | None = None,
    service_down: bool | None = None,
    database_reachable: bool | None = None,
    data_loss: bool = False,
    security_incident: bool = False,
    payment_failure: bool = False,
    certificate_expired: bool | None = None,
    critical_alert: bool | None = None,
    core_blocked: bool | None = None,
    error_rate: float | None = None,
    degraded: bool | None = None,
    slow: bool | None = None,
    details: dict[str, str] | None = None,
) -> Severity:
    """Apply the runbook's matrix to what was measured; unmeasured figures (None) are ignored.

    `details` gives the figures behind a flag, e.g. {"health_ok": "GET /health answered 503 in 120
    ms"}."""
    d = details or {}

    def why(key: str, default: str) -> str:
        return d.get(key) or default

    found: list[Severity] = []
    if certificate_expired:
        found.append(
            Severity(
                "SEV1",
                "certificate-expired",
                why("certificate_expired", "the service's TLS certificate has expired")
                + " (rule: an expired certificate = outage for every client that verifies, SEV1)",
            )
        )
    if health_ok is False:
        found.append(
            Severity(
                "SEV1",
                "outage",
                why("health_ok", "the health check is failing")
                + " (rule: health check failing = complete outage, SEV1)",
            )
        )
    if service_down:
        found.append(
            Severity(
                "SEV1",
                "outage",
                why("service_down", "the service has no ready pods")
                + " (rule: service down = complete outage, SEV1)",
            )
        )
    if database_reachable is False:
        found.append(
            Severity(
                "SEV1",
                "outage",
                why("database_reachable", "the database is unreachable")
                + " (rule: database unreachable = outage, SEV1)",
            )
        )
    if data_loss:
        found.append(
            Severity(
                "SEV1", "data-loss", why("data_loss", "data loss") + " (rule: data loss, SEV1)"
            )
        )
    for flag, name, rule in (
        (security_incident, "security_incident", "security-breach"),
        (payment_failure, "payment_failure", "payment-failure"),
    ):
        if flag:
            found.append(
                Severity(
                    "SEV1", rule, why(name, DECLARED[name]) + f" (rule: {DECLARED[name]}, SEV1)"
                )
            )
    if critical_alert:
        found.append(
            Severity(
                "SEV2",
                "alert",
                why("critical_alert", "a critical alert is firing")
                + " (rule: a firing critical or page alert is a SEV1/SEV2 candidate: SEV2 unless "
                "the figures show a complete outage, data loss, a breach or failing payments)",
            )
        )
    if core_blocked:
        found.append(
            Severity(
                "SEV2",
                "major-degradation",
                why("core_blocked", "core features are blocked")
                + " (rule: core features blocked = major degradation, SEV2)",
            )
        )
    if degraded:
        found.append(
            Severity(
                "SEV2",
                "major-degradation",
                why("degraded", "major functionality is degraded")
                + " (rule: major functionality degraded, SEV2)",
            )
        )
    if error_rate is not None:
        figure = why("error_rate", f"error rate {_pct(error_rate)}")
        if error_rate > ERROR_RATE_SEV2:
            found.append(
                Severity(
                    "SEV2",
                    "error-rate",
                    f"{figure} is above {_pct(ERROR_RATE_SEV2)} (rule: error rate > 5%, SEV2)",
                )
            )
        elif error_rate >= ERROR_RATE_SEV3:
            found.append(
                Severity(
                    "SEV3",
                    "error-rate",
                    f"{figure} is between {_pct(ERROR_RATE_SEV3)} and {_pct(ERROR_RATE_SEV2)} "
                    "(rule: error rate 1-5%, SEV3)",
                )
            )
        else:
            found.append(
                Severity(
                    "SEV4",
                    "error-rate",
                    f"{figure} is below {_pct(ERROR_RATE_SEV3)} (rule: error rate < 1%, SEV4)",
                )
            )
    if slow:
        found.append(
            Severity(
                "SEV3",
                "minor-degradation",
                why("slow", "responses are slow") + " (rule: slow = minor degradation, SEV3)",
            )
        )
    if not found:
        return Severity(
            "SEV4", "no-impact", "no problem was measured (rule: nothing above the SEV4 thresholds)"
        )
    return worst(*found)
