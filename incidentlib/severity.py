"""Severity from measured figures: the runbook's matrix, as one tested function shared by every
notebook.

| level | rule |
| SEV1 | complete outage (health check failing, no ready pods) or data loss, database unreachable |
| SEV2 | major functionality degraded, core features blocked, or error rate above 5% |
| SEV3 | minor degradation: error rate 1 to 5%, or slow |
| SEV4 | error rate below 1%, nothing else wrong |
The reason always names the figure and the threshold that decided."""

from __future__ import annotations

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
