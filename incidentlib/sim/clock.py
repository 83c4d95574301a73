"""The simulated clock: wall-clock time plus whatever tests advanced it by."""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
import time

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Clock:
    """Real time moved forward by `advance`; `now()` is seconds since the epoch."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never backward)."""
        if seconds < 0:
            raise ValueError(f"cannot move the simulated clock backward ({seconds} s)")
        with self._lock:
            self._offset += seconds


def iso(ts: float) -> str:
    """RFC 3339 with seconds, as Kubernetes writes timestamps."""
    return _iso(int(ts))


@functools.lru_cache(maxsize=65536)
def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_nano(ts: float) -> str:
    """RFC 3339 with nanoseconds, as kubelet log timestamps are written."""
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}000Z"


@functools.lru_cache(maxsize=65536)
def parse_iso(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_duration(text: str | int | float) -> float:
    """Seconds of '90s', '10m', '3d', '1h30m' or a plain number of seconds."""
    if isinstance(text, int | float):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not parts or "".join(a + b for a, b in parts) != text.strip():
        raise ValueError(f"invalid duration {text!r}: use e.g. 90s, 10m, 2h, 3d")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def go_duration(text: str) -> float:
    """Seconds of a Go duration ('2s', '1m0s', '500ms')."""
    total = 0.0
    for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text):
        total += float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[u]
    return total


def human_age(seconds: float) -> str:
    """kubectl's short age: 45s, 10m, 3h20m, 3d4h, 12d."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y"
