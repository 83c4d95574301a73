"""Alertmanager's API v2 (`/api/v2/alerts`), read with a timeout: every alert it holds, with those a
silence or an inhibition suppresses marked as such.

`Alertmanager(url).alerts()` returns the same columns as Prometheus' alerts
(`prometheus.ALERT_COLUMNS`): state `firing` (active), `silenced`, `inhibited` or `unprocessed`,
and `silenced` True for an alert a silence mutes. Any failure (refused, timeout, an HTTP error, an
answer that is not JSON) is a SourceUnavailable naming the URL (its query values redacted) and
why."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ..errors import InvalidParameter, SourceUnavailable
from ..redact import redact_text
from .prometheus import alert_row, alerts_table, get_json


class Alertmanager:
    """An Alertmanager's API v2; every call has `timeout` seconds."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidParameter(
                f"alertmanager_url {redact_text(str(url))!r} is not an http(s) URL; give e.g. "
                "http://alertmanager:9093"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.where = redact_text(self.url)

    def _get(self, path: str) -> Any:
        return get_json(self.url + path, timeout=self.timeout, who=f"Alertmanager at {self.where}")

    def alerts(self) -> pd.DataFrame:
        """Every alert it holds (active, silenced, inhibited), as `alerts_frame`."""
        data = self._get("/api/v2/alerts")
        if not isinstance(data, list):
            raise SourceUnavailable(
                f"Alertmanager at {self.where} answered /api/v2/alerts with something that is not "
                "a list of alerts (is this an Alertmanager, API v2?)"
            )
        return alerts_frame(data)


def _state(status: Mapping[str, Any]) -> tuple[str, bool]:
    state = str(status.get("state") or "")
    silenced = bool(status.get("silencedBy"))
    if state == "active":
        return "firing", False
    if state == "suppressed":
        return ("silenced" if silenced else "inhibited"), silenced
    return state or "unknown", silenced


def alerts_frame(alerts: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """`/api/v2/alerts` -> ALERT_COLUMNS (source alertmanager): state firing (active), silenced or
    inhibited (suppressed), unprocessed; `silenced` True when a silence mutes it."""
    rows = []
    for a in alerts:
        state, silenced = _state(a.get("status") or {})
        rows.append(
            alert_row(
                a.get("labels") or {},
                a.get("annotations") or {},
                source="alertmanager",
                state=state,
                silenced=silenced,
                active_at=a.get("startsAt"),
            )
        )
    return alerts_table(rows)


def merge(prometheus: pd.DataFrame | None, alertmanager: pd.DataFrame | None) -> pd.DataFrame:
    """Both sources in one table: an alert Alertmanager knows (the same labels) takes its state and
    silence from Alertmanager, and is listed once."""
    frames = [f for f in (alertmanager, prometheus) if f is not None and len(f)]
    if not frames:
        return alerts_table([])
    both = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(frames) > 1:
        both = both.drop_duplicates("labels", keep="first")
    return alerts_table(both.to_dict("records"))
