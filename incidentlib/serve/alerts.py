"""Alertmanager's webhook payload (version 4), read and checked: pure, nothing else.

    {"version": "4", "groupKey": "{}:{alertname=\\"HighErrorRate\\"}", "truncatedAlerts": 0,
     "status": "firing", "receiver": "runbook", "groupLabels": {...}, "commonLabels": {...},
     "commonAnnotations": {...}, "externalURL": "http://alertmanager:9093",
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "2026-12-02T07:01:02.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://prometheus:9090/graph?...", "fingerprint": "1a2b..."}]}

A payload of the wrong shape is refused whole (`BadPayload`, the server's 400) with the first thing
wrong named by its place (`alerts[2].fingerprint is missing`): nothing runs from it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidParameter

STATUSES = ("firing", "resolved")
MAX_ALERTS = 5000
_FINGERPRINT = re.compile(r"[0-9a-fA-F]{1,64}")


class BadPayload(InvalidParameter):
    """The body is not Alertmanager's webhook payload version 4: the message says what is wrong."""


@dataclass(frozen=True)
class Alert:
    """One alert of a notification."""

    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None: Alertmanager's zero time (no end known yet)
    fingerprint: str
    generator_url: str = ""

    def as_record(self) -> dict[str, Any]:
        """What the journal keeps of it."""
        return {
            "fingerprint": self.fingerprint,
            "status": self.status,
            "labels": dict(self.labels),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
        }


@dataclass(frozen=True)
class Notification:
    """One webhook post: a group's alerts as Alertmanager sends them."""

    receiver: str
    status: str
    group_key: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def started(self) -> datetime:
        """When the earliest of its alerts started."""
        return min(a.starts_at for a in self.alerts)

    @property
    def ended(self) -> datetime | None:
        """When the last of its alerts ended (resolved notifications), else None."""
        ends = [a.ends_at for a in self.alerts if a.ends_at is not None]
        return max(ends) if ends else None


def parse(body: bytes | str) -> Notification:
    """The notification in a webhook body; BadPayload naming the first thing wrong."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadPayload(f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadPayload(f"the body must be a JSON object, not {type(doc).__name__}")
    version = _field(doc, "version", str)
    if version != "4":
        raise BadPayload(
            f"version {version!r} is not supported: runbook serve reads Alertmanager's webhook "
            "payload version 4"
        )
    status = _status(doc, "status")
    raw_alerts = _field(doc, "alerts", list)
    if not raw_alerts:
        raise BadPayload("alerts is empty: a notification carries at least one alert")
    if len(raw_alerts) > MAX_ALERTS:
        raise BadPayload(f"alerts holds {len(raw_alerts)} alerts, more than {MAX_ALERTS}")
    group_key = _field(doc, "groupKey", str)
    if not group_key.strip() or len(group_key) > 4096:
        raise BadPayload("groupKey must be a non-empty text of at most 4096 characters")
    truncated = doc.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise BadPayload(f"truncatedAlerts must be a whole number, not {truncated!r}")
    return Notification(
        receiver=_field(doc, "receiver", str),
        status=status,
        group_key=group_key,
        group_labels=_labels(doc, "groupLabels"),
        common_labels=_labels(doc, "commonLabels"),
        common_annotations=_labels(doc, "commonAnnotations"),
        external_url=_field(doc, "externalURL", str),
        alerts=tuple(_alert(a, f"alerts[{i}]") for i, a in enumerate(raw_alerts)),
        truncated_alerts=truncated,
    )


def _alert(raw: Any, where: str) -> Alert:
    if not isinstance(raw, dict):
        raise BadPayload(f"{where} must be an object, not {type(raw).__name__}")
    fingerprint = _field(raw, "fingerprint", str, where)
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise BadPayload(f"{where}.fingerprint {fingerprint[:80]!r} is not a hexadecimal hash")
    labels = _labels(raw, "labels", where)
    if not labels:
        raise BadPayload(f"{where}.labels is empty: an alert is named by its labels")
    starts = _time(raw, "startsAt", where)
    if starts is None:
        raise BadPayload(f"{where}.startsAt is the zero time: when did the alert start?")
    return Alert(
        status=_status(raw, "status", where),
        labels=labels,
        annotations=_labels(raw, "annotations", where),
        starts_at=starts,
        ends_at=_time(raw, "endsAt", where),
        fingerprint=fingerprint.lower(),
        generator_url=_field(raw, "generatorURL", str, where),
    )


def _field(doc: dict[str, Any], name: str, kind: type, where: str = "") -> Any:
    place = f"{where}.{name}" if where else name
    if name not in doc:
        raise BadPayload(f"{place} is missing")
    value = doc[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadPayload(
            f"{place} must be {'a text' if kind is str else 'a list'}, not {type(value).__name__}"
        )
    return value


def _status(doc: dict[str, Any], name: str, where: str = "") -> str:
    value = _field(doc, name, str, where)
    if value not in STATUSES:
        raise BadPayload(
            f"{f'{where}.' if where else ''}{name} {value[:40]!r} is not firing or resolved"
        )
    return str(value)


def _labels(doc: dict[str, Any], name: str, where: str = "") -> dict[str, str]:
    place = f"{where}.{name}" if where else name
    if name not in doc:
        raise BadPayload(f"{place} is missing")
    value = doc[name]
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadPayload(f"{place} must be an object of texts (name: value)")
    return dict(value)


def _time(doc: dict[str, Any], name: str, where: str) -> datetime | None:
    value = _field(doc, name, str, where)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadPayload(f"{where}.{name} {value[:40]!r} is not an RFC 3339 time") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return None if when.year <= 1 else when.astimezone(UTC)
