"""Validation of the notebooks' parameters: durations (`since`), Kubernetes names, replica counts.

Each check raises InvalidParameter quoting the bad value and the rule, before anything is touched."""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import InvalidParameter

__all__ = ["parse_duration", "format_duration", "validate_name", "validate_replicas", "validate_selector"]

_UNITS = {
    "ms": 0.001, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "d": 86400, "w": 604800,
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|secs|sec|s|mins|min|m|hrs|hr|h|d|w)")
_DURATION_RULE = "a number and a unit, e.g. 30s, 5m, 5min, 2h, 1d (or combined: 1h30m)"


def parse_duration(value: str | int | float | timedelta, *, what: str = "duration") -> timedelta:
    """Parse `30s`, `5m`, `5min`, `2h`, `1d`, `1h30m` (or plain seconds as a number) into a timedelta."""
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
        raise InvalidParameter(f"{what} {value!r} must be longer than zero: expected {_DURATION_RULE}")
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

# Namespaces (and services) are RFC 1123 labels; deployments, pods, configmaps are RFC 1123 subdomains.
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
        hint = f"; did you mean {value.lower().replace('_', '-')!r}?" if value.lower().replace("_", "-") != value and pattern.fullmatch(value.lower().replace("_", "-")) else ""
        raise InvalidParameter(f"invalid {what} {value!r}: {rule}{hint}")
    return value


_SELECTOR_TERM = re.compile(r"!?[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?(\s*(==?|!=)\s*[-A-Za-z0-9_.]*)?")


def validate_selector(value: object, *, what: str = "label selector") -> str:
    """Check a simple equality-based label selector like `app=postgres,tier!=cache`."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter(f"invalid {what} {value!r}: expected key=value pairs separated by commas, e.g. 'app=postgres'")
    for term in value.split(","):
        if not _SELECTOR_TERM.fullmatch(term.strip()):
            raise InvalidParameter(
                f"invalid {what} {value!r}: term {term.strip()!r} is not key, !key, key=value or key!=value"
            )
    return value


def validate_replicas(value: object, *, maximum: int = 1000) -> int:
    """A replica count must be a whole number from 0 to `maximum`."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidParameter(f"invalid replicas {value!r}: expected a whole number from 0 to {maximum}")
    try:
        n = int(value)
    except ValueError:
        raise InvalidParameter(f"invalid replicas {value!r}: expected a whole number from 0 to {maximum}") from None
    if n < 0 or n > maximum:
        raise InvalidParameter(f"invalid replicas {value!r}: expected a whole number from 0 to {maximum}")
    return n
