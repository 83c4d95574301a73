"""The simulated clock: wall-clock time plus whatever tests advanced it by."""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
import time

from ..kube.podstatus import human_duration

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
    """kubectl's short age (45s, 10m, 3h20m, 3d4h, 12d): apimachinery's HumanDuration, as a real
    server prints it."""
    return human_duration(max(0.0, seconds))
