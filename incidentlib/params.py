"""Validation and parsing of the notebooks' parameters and of the values they meet: durations
(`since`), Kubernetes names, replica counts, label selectors, RFC 3339 timestamps.

Each check raises InvalidParameter quoting the bad value and the rule, before anything is
touched."""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Self

from .errors import InvalidParameter

_UNITS = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "d": 86400,
    "w": 604800,
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|secs|sec|s|mins|min|m|hrs|hr|h|d|w)")
_DURATION_RULE = "a number and a unit, e.g. 30s, 5m, 5min, 2h, 1d (or combined: 1h30m)"


def parse_duration(value: str | int | float | timedelta, *, what: str = "duration") -> timedelta:
    """Parse `30s`, `5m`, `5min`, `2h`, `1d`, `1h30m` (or plain seconds as a number) into a
    timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise InvalidParameter(f"{what} {value!r} is not a duration: expected {_DURATION_RULE}")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        pos, seconds = 0, 0.0
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if not text or pos != len(text):
            raise InvalidParameter(f"{what} {value!r} is not a duration: expected {_DURATION_RULE}")
    else:
        raise InvalidParameter(f"{what} {value!r} is not a duration: expected {_DURATION_RULE}")
    if seconds <= 0:
        raise InvalidParameter(
            f"{what} {value!r} must be longer than zero: expected {_DURATION_RULE}"
        )
    return timedelta(seconds=seconds)


def format_duration(seconds: float | timedelta | None) -> str:
    """A short human duration like kubectl prints ages: 45s, 6m12s, 3h4m, 2d5h."""
    if seconds is None:
        return ""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h{m}m" if h < 8 and m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d{h}h" if d < 8 and h else f"{d}d"


_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

# Namespaces (and services) are RFC 1123 labels; deployments, pods, configmaps are RFC 1123
# subdomains.
_LABEL_KINDS = {"namespace", "service", "container"}


def validate_name(value: object, *, what: str = "namespace") -> str:
    """Check a Kubernetes object name against the API server's own rule; return it unchanged."""
    label = what in _LABEL_KINDS
    limit = 63 if label else 253
    rule = (
        f"a {what} name must be at most {limit} characters of lowercase letters, digits and '-'"
        + ("" if label else " or '.'")
        + ", starting and ending with a letter or digit (RFC 1123), e.g. 'production'"
    )
    if not isinstance(value, str) or not value:
        raise InvalidParameter(f"invalid {what} {value!r}: {rule}")
    pattern = _LABEL if label else _SUBDOMAIN
    if len(value) > limit or not pattern.fullmatch(value):
        hint = (
            f"; did you mean {value.lower().replace('_', '-')!r}?"
            if value.lower().replace("_", "-") != value
            and pattern.fullmatch(value.lower().replace("_", "-"))
            else ""
        )
        raise InvalidParameter(f"invalid {what} {value!r}: {rule}{hint}")
    return value


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"[-A-Za-z0-9_.]*"
_SELECTOR_TERM = re.compile(
    rf"!?{_KEY}(\s*(==?|!=)\s*{_VALUE})?|{_KEY}\s+(in|notin)\s+\(\s*{_VALUE}(\s*,\s*{_VALUE})*\s*\)"
)


def _selector_terms(value: str) -> list[str]:
    """The terms of a selector: split at the commas outside parentheses (`app in (a,b),tier`)."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(value):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            terms.append(value[start:i])
            start = i + 1
    return [*terms, value[start:]]


def validate_selector(value: object, *, what: str = "label selector") -> str:
    """Check a label selector as kubectl's `-l` takes it: `app=postgres,tier!=cache`, `app in
    (postgres)`, `!canary`."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter(
            f"invalid {what} {value!r}: expected terms separated by commas, e.g. 'app=postgres' or "
            "'app in (postgres)'"
        )
    for term in _selector_terms(value):
        if not _SELECTOR_TERM.fullmatch(term.strip()):
            raise InvalidParameter(
                f"invalid {what} {value!r}: term {term.strip()!r} is not key, !key, key=value, "
                "key!=value, key in (v1,v2) or key notin (v1,v2)"
            )
    return value


def validate_replicas(value: object, *, maximum: int = 1000) -> int:
    """A replica count must be a whole number from 0 to `maximum`."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidParameter(
            f"invalid replicas {value!r}: expected a whole number from 0 to {maximum}"
        )
    try:
        n = int(value)
    except ValueError:
        raise InvalidParameter(
            f"invalid replicas {value!r}: expected a whole number from 0 to {maximum}"
        ) from None
    if n < 0 or n > maximum:
        raise InvalidParameter(
            f"invalid replicas {value!r}: expected a whole number from 0 to {maximum}"
        )
    return n


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp from the API (`2026-11-27T09:02:00Z`) as an aware datetime; None if
    absent."""
    if not value:
        return None
    return _parse_rfc3339(value)


@lru_cache(maxsize=1 << 14)
def _parse_rfc3339(value: str) -> datetime | None:
    """parse_time's work, once per distinct text: a big cluster's objects share their timestamps
    (thousands of events and pods made in the same seconds), and datetimes are immutable."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------ notebook parameters
Check = Callable[[Any, str], Any]
"""A parameter's rule: (value, parameter name) -> the value to use, or InvalidParameter naming
both."""


def param(default: Any = None, *, check: Check | None = None) -> Any:
    """A scenario parameter: the notebook's default and the rule its value must follow."""
    return field(default=default, metadata={"check": check})


def free_text(value: Any, name: str) -> str | None:
    """Any text, or None."""
    if value is not None and not isinstance(value, str):
        raise InvalidParameter(f"{name} {value!r} must be text or None")
    return value


def flag(value: Any, name: str) -> bool:
    """True or False, nothing else (a string 'yes' is a mistake worth stopping for)."""
    if not isinstance(value, bool):
        raise InvalidParameter(f"invalid {name} {value!r}: True or False")
    return value


def name_of(kind: str) -> Check:
    """A Kubernetes object name of this kind (RFC 1123, like the API server checks it)."""
    return lambda value, name: validate_name(value, what=kind)


def duration(value: Any, name: str) -> str:
    """A duration such as 30m or 2h, kept as given (`Parameters.window` has it as a timedelta)."""
    parse_duration(value, what=name)
    return str(value)


def whole(low: int, high: int, *, unit: str = "") -> Check:
    """A whole number from `low` to `high`."""

    def check(value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidParameter(
                f"{name} {value!r} must be a whole number{unit} from {low} to {high}"
            )
        return value

    return check


def number(low: float, high: float, *, unit: str = "") -> Check:
    """A number (whole or not) from `low` to `high`."""

    def check(value: Any, name: str) -> float:
        try:
            n = float(value)
        except (TypeError, ValueError):
            n = math.nan
        if isinstance(value, bool) or not low <= n <= high:
            raise InvalidParameter(
                f"invalid {name} {value!r}: {unit or 'a number'} from {low:g} to {high:g}"
            )
        return n

    return check


def one_of(choices: tuple[str, ...]) -> Check:
    """One of a few words."""

    def check(value: Any, name: str) -> str:
        if value not in choices:
            raise InvalidParameter(f"invalid {name} {value!r}: one of {', '.join(choices)}")
        return str(value)

    return check


def optional(rule: Check) -> Check:
    """None, or a value that follows `rule`."""
    return lambda value, name: None if value is None else rule(value, name)


def url(value: Any, name: str) -> str | None:
    """A full http(s) URL, or None."""
    if value is None:
        return None
    parts = urllib.parse.urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(
            f"invalid {name} {value!r}: a full http(s) URL, e.g. https://api.example.com/health"
        )
    return value


def url_origin(value: str) -> str:
    """scheme://host[:port] of a URL as it was given, for messages about a URL whose path may be a
    secret (a webhook's); user and password left out. Never raises (an unparsable URL is named as
    such)."""
    try:
        p = urllib.parse.urlsplit(value)
    except ValueError:
        return "(a URL that cannot be parsed)"
    return f"{p.scheme}://{p.netloc.rpartition('@')[2]}"


def webhook(value: Any, name: str = "notify_webhook") -> str | None:
    """An incoming-webhook URL, or None (nothing is posted): http(s), a host, a port from 1 to
    65535 if one is given, no spaces or control characters. Its path is a secret, so it is never
    echoed: a message shows at most scheme://host:port."""
    if value is None or value == "":
        return None
    example = "give the incoming-webhook URL, e.g. https://hooks.slack.com/services/..."
    if not isinstance(value, str):
        raise InvalidParameter(f"{name} must be a URL (a string), not {type(value).__name__}")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise InvalidParameter(
            f"{name} contains spaces or control characters (not echoed: a webhook's path is a "
            f"secret); {example}"
        )
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        raise InvalidParameter(
            f"{name} is not a URL that can be parsed (not echoed: a webhook's path is a secret); "
            f"{example}"
        ) from None
    origin = url_origin(value)
    if parts.scheme not in ("http", "https") and parts.scheme and parts.netloc:
        raise InvalidParameter(f"{name} {origin} is not an http(s) URL; {example}")
    if parts.scheme not in ("http", "https"):
        raise InvalidParameter(
            f"{name} does not start with http:// or https:// and a host (not echoed: a webhook's "
            f"path is a secret); {example}"
        )
    if not parts.hostname:
        raise InvalidParameter(f"{name} {origin} has no host; {example}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise InvalidParameter(
            f"{name} {origin} has a port that is not a number from 1 to 65535; {example}"
        )
    return value


RENAMED = {
    "deployment": "give app_deployment (the application's Deployment) or db_deployment (the "
    "database's own Deployment or StatefulSet)",
}
"""Parameters that no longer exist, and what to give instead (a command line written for the old
name is refused, never silently ignored)."""


_ESCALATION_RULE = (
    "'SEVn: who; SEVm: who', e.g. 'SEV1: CTO, VP Eng; SEV2: eng-manager' (levels SEV1 to SEV4, "
    "each once, with at least one name)"
)


def parse_escalation(value: str | None) -> dict[str, str]:
    """Who is paged per severity, from `escalation` ("SEV1: CTO, VP Eng; SEV2: eng-manager") as
    {"SEV1": "CTO, VP Eng", "SEV2": "eng-manager"}; {} for None. Raises InvalidParameter naming
    the part that does not follow the rule."""
    if value is None or not value.strip():
        return {}
    out: dict[str, str] = {}
    for part in value.split(";"):
        if not part.strip():
            continue
        level, sep, who = part.partition(":")
        level, who = level.strip().upper(), who.strip()
        if not sep or level not in ("SEV1", "SEV2", "SEV3", "SEV4") or not who or level in out:
            raise InvalidParameter(
                f"invalid escalation {value!r}: {part.strip()!r} does not fit; expected "
                + _ESCALATION_RULE
            )
        out[level] = who
    return out


def escalation(value: Any, name: str) -> str | None:
    """Who is paged per severity ("SEV1: CTO, VP Eng; SEV2: eng-manager"), or None."""
    if value is not None and not isinstance(value, str):
        raise InvalidParameter(f"invalid {name} {value!r}: expected " + _ESCALATION_RULE)
    parse_escalation(value)
    return value


class Parameters:
    """The checked parameters of a notebook: a frozen dataclass whose fields are made with `param`.

    `check(values)` takes the notebook's variables (`globals()` in a notebook, a dict in a test),
    checks every field with its rule before anything is read, and returns the instance; a value
    missing from `values` takes the field's default. `recorded()` is what the run records (secrets
    redacted)."""

    @classmethod
    def check(cls, values: Mapping[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        for old, new in RENAMED.items():
            if old in values and old not in names:
                raise InvalidParameter(f"parameter {old!r} was renamed: {new}")
        given = {}
        for f in fields(cls):  # type: ignore[arg-type]
            value = values.get(f.name, f.default)
            rule = f.metadata.get("check")
            given[f.name] = rule(value, f.name) if rule is not None else value
        checked = cls(**given)
        checked.check_together()
        return checked

    def check_together(self) -> None:
        """Rules that involve several parameters (none by default)."""

    def recorded(self) -> dict[str, Any]:
        """The parameters as the run records them: DSN passwords, URL credentials and tokens
        redacted, a webhook's secret path never kept."""
        from .redact import redact_dsn, redact_value

        out = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        if out.get("dsn"):
            out["dsn"] = redact_dsn(out["dsn"])
        if out.get("notify_webhook"):
            out["notify_webhook"] = url_origin(out["notify_webhook"]) + "/***"
        return dict(redact_value(out))


@dataclass(frozen=True)
class Common(Parameters):
    """The parameters every scenario notebook takes (DESIGN.md), so one command line fits them
    all."""

    namespace: str = param("production", check=name_of("namespace"))
    context: str | None = param(None, check=free_text)
    kubeconfig: str | None = param(None, check=free_text)
    app_deployment: str = param("backend", check=name_of("app_deployment"))
    db_deployment: str = param("postgres", check=name_of("db_deployment"))
    since: str = param("30m", check=duration)
    incident_id: str | None = param(None, check=free_text)
    dsn: str | None = param(None, check=free_text)
    health_url: str | None = param(None, check=url)
    prometheus_url: str | None = param(None, check=url)
    apply: bool = param(False, check=flag)
    commander: str | None = param(None, check=free_text)
    notify_webhook: str | None = param(None, check=webhook)
    data_loss: bool = param(False, check=flag)
    security_incident: bool = param(False, check=flag)
    payment_failure: bool = param(False, check=flag)
    escalation: str | None = param(None, check=escalation)
    grafana_url: str | None = param(None, check=url)
    logs_url: str | None = param(None, check=url)
    status_page_url: str | None = param(None, check=url)
    alertmanager_url: str | None = param(None, check=url)

    @property
    def window(self) -> timedelta:
        """`since` as a timedelta: the incident window every time-bounded read uses."""
        return parse_duration(self.since, what="since")
