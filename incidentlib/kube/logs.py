"""ERROR lines in a deployment's logs over the incident window: the runbook's `grep -c ERROR`, per
pod, as a rate per minute, per minute over time, and the most frequent messages grouped (numbers,
ids, addresses normalized). `fetch_logs` reads; the rest are pure functions of the log text."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from ..params import parse_time
from ..redact import redact_text

ERROR_COLUMNS = [
    "pod",
    "container",
    "lines",
    "error_lines",
    "minutes",
    "errors_per_min",
    "read_error",
]
_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (.*)$")
_NORMALIZERS = [
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (
        re.compile(
            r"\b(?:0x)?[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*\b|\b(?:0x)?[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*\b",
            re.I,
        ),
        "<id>",
    ),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
]
_MIN_HEX_ID = 6
_FRACTION = re.compile(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$")


@dataclass(frozen=True)
class PodLog:
    """One container's log text over the window, and how long the window really was for it."""

    pod: str
    container: str
    text: str
    minutes: float
    read_error: str | None = None


def split_timestamp(line: str) -> tuple[datetime | None, str]:
    """`2026-11-27T09:00:00.123456789Z msg` -> (aware datetime, msg); (None, line) without a
    timestamp."""
    m = _TS.match(line)
    if not m:
        return None, line
    head, digits, tz = _FRACTION.match(m.group(1)).groups()  # type: ignore[union-attr]
    raw = head + (f".{digits[:6]}" if digits else "") + tz  # Python keeps microseconds only
    return parse_time(raw), m.group(2)


def _is_error(msg: str) -> bool:
    return "ERROR" in msg


def normalize(message: str) -> str:
    """Group key of a message: uuids, IPs, hex ids and numbers replaced, so the same error groups
    together."""
    out = message.strip()
    for pattern, repl in _NORMALIZERS:
        if repl == "<id>":
            out = pattern.sub(
                lambda m: "<id>" if len(m.group(0)) >= _MIN_HEX_ID else m.group(0), out
            )
        else:
            out = pattern.sub(repl, out)
    return out


def error_counts(logs: Iterable[PodLog]) -> pd.DataFrame:
    """ERROR lines per pod and container (the runbook's `grep -c ERROR`) and their rate per
    minute."""
    rows = []
    for log in logs:
        lines = [ln for ln in log.text.splitlines() if ln.strip()]
        errors = sum(1 for ln in lines if _is_error(split_timestamp(ln)[1]))
        rows.append(
            {
                "pod": log.pod,
                "container": log.container,
                "lines": len(lines),
                "error_lines": errors,
                "minutes": round(log.minutes, 3),
                "errors_per_min": errors / log.minutes
                if log.minutes > 0 and log.read_error is None
                else math.nan,
                "read_error": None if log.read_error is None else redact_text(log.read_error),
            }
        )
    df = pd.DataFrame(rows, columns=ERROR_COLUMNS).astype(
        {"lines": "int64", "error_lines": "int64"}
    )
    return df.sort_values("error_lines", ascending=False, kind="stable").reset_index(drop=True)


def errors_per_minute(logs: Iterable[PodLog]) -> pd.DataFrame:
    """ERROR lines per pod per minute (timestamped lines only): minute (UTC), pod, error_lines."""
    counts: Counter[tuple[datetime, str]] = Counter()
    for log in logs:
        for ln in log.text.splitlines():
            ts, msg = split_timestamp(ln)
            if ts is not None and _is_error(msg):
                counts[(ts.replace(second=0, microsecond=0), log.pod)] += 1
    df = pd.DataFrame(
        [(m, p, n) for (m, p), n in sorted(counts.items())],
        columns=["minute", "pod", "error_lines"],
    )
    df["minute"] = pd.to_datetime(df["minute"], utc=True)
    return df.astype({"error_lines": "int64"})


def top_messages(logs: Iterable[PodLog], *, limit: int = 10) -> pd.DataFrame:
    """The most frequent ERROR messages, grouped: message (normalized), count, pods, example
    (redacted)."""
    count: Counter[str] = Counter()
    pods: dict[str, set[str]] = {}
    example: dict[str, str] = {}
    for log in logs:
        for ln in log.text.splitlines():
            _, msg = split_timestamp(ln)
            if not _is_error(msg):
                continue
            key = normalize(msg)
            count[key] += 1
            pods.setdefault(key, set()).add(log.pod)
            example.setdefault(key, msg.strip())
    rows = [
        {
            "message": redact_text(k),
            "count": n,
            "pods": len(pods[k]),
            "example": redact_text(example[k]),
        }
        for k, n in count.most_common(limit)
    ]
    return pd.DataFrame(rows, columns=["message", "count", "pods", "example"])


def findings(
    counts: pd.DataFrame, messages: pd.DataFrame, *, deployment: str
) -> list[dict[str, str]]:
    """One finding when the deployment logs ERROR lines: the rate and the most frequent message."""
    total = int(counts["error_lines"].sum()) if len(counts) else 0
    if not total:
        return []
    rate = float(counts["errors_per_min"].sum())
    top = messages.iloc[0] if len(messages) else None
    detail = f"{total} ERROR lines in {len(counts)} container(s), {rate:.1f}/min"
    if top is not None:
        detail += f"; most frequent ({top['count']}x): {top['message']}"
    return [
        {
            "severity": "SEV3",
            "title": f"ERROR lines in deployment {deployment} logs",
            "detail": detail,
            "next_step": f"kubectl logs deploy/{deployment} --since=... | grep ERROR; look at the "
            "top message first",
        }
    ]
