"""Container logs: time-stamped lines generated at a rate with a share of ERROR lines, plus lines
appended by tests, answered the way the kubelet answers `pods/<p>/log`."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from .clock import iso_nano
from .kubelet import PULL_SECONDS

RETENTION_SECONDS = 3600.0  # the kubelet keeps (rotates to) the last hour of generated lines
DEFAULT_INFO = (
    "INFO GET /healthz 200 1ms",
    "INFO request handled status=200 path=/api/v1/items duration_ms=12",
)


@dataclass(frozen=True)
class LogSpec:
    """What a container writes: `rate` lines a second, `error_share` of them ERROR lines."""

    rate: float = 1.0
    error_share: float = 0.0
    info: tuple[str, ...] = DEFAULT_INFO
    errors: tuple[str, ...] = ("ERROR unexpected failure",)
    startup: tuple[str, ...] = ()
    planted: tuple[str, ...] = ()  # lines written every `plant_every` seconds (e.g. leaked secrets)
    plant_every: float = 20.0

    @classmethod
    def from_spec(cls, spec: dict) -> LogSpec:
        return cls(
            rate=float(spec.get("rate", 1.0)),
            error_share=float(spec.get("errorShare", 0.0)),
            info=tuple(spec.get("info") or DEFAULT_INFO),
            errors=tuple(spec.get("errors") or ("ERROR unexpected failure",)),
            startup=tuple(spec.get("startup") or ()),
            planted=tuple(spec.get("planted") or ()),
            plant_every=float(spec.get("plantEvery", 20.0)),
        )


@dataclass
class LogQuery:
    """The query parameters of a log request."""

    tail_lines: int | None = None
    since_seconds: float | None = None
    since_time: float | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


def _pick(seq: tuple[str, ...], key: str) -> str:
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    return seq[h % len(seq)]


def _is_error(key: str, share: float) -> bool:
    if share <= 0:
        return False
    h = int.from_bytes(hashlib.blake2b(("e" + key).encode(), digest_size=8).digest(), "big")
    return (h % 10_000) < share * 10_000


def generate(
    spec: LogSpec,
    *,
    seed: str,
    start: float,
    end: float,
    window_start: float,
    max_lines: int | None = None,
) -> list[tuple[float, str]]:
    """The generated lines of a container that ran from start to end, within [window_start, end]."""
    out: list[tuple[float, str]] = []
    for i, text in enumerate(spec.startup):
        ts = start + 0.05 * i
        if window_start <= ts <= end:
            out.append((ts, text))
    if spec.planted and spec.plant_every > 0:
        lo = max(start, window_start, end - RETENTION_SECONDS)
        j = max(0, math.ceil((lo - start - 1.0) / spec.plant_every))
        while start + 1.0 + j * spec.plant_every <= end:
            for i, text in enumerate(spec.planted):
                out.append((start + 1.0 + j * spec.plant_every + 0.01 * i, text))
            j += 1
    if spec.rate > 0:
        period = 1.0 / spec.rate
        lo = max(start + PULL_SECONDS, window_start, end - RETENTION_SECONDS)
        first = max(0, math.ceil((lo - start - PULL_SECONDS) / period))
        last = math.floor((end - start - PULL_SECONDS) / period)
        if max_lines is not None:
            first = max(first, last - max_lines + 1)
        for i in range(first, last + 1):
            ts = start + PULL_SECONDS + i * period
            key = f"{seed}:{i}"
            text = (
                _pick(spec.errors, key)
                if _is_error(key, spec.error_share)
                else _pick(spec.info, key)
            )
            out.append((ts, text))
    out.sort(key=lambda t: t[0])
    return out


def render(lines: list[tuple[float, str]], query: LogQuery, *, now: float) -> bytes:
    """Apply sinceSeconds/sinceTime, tailLines, timestamps and limitBytes; return the body."""
    if query.since_seconds is not None:
        lines = [x for x in lines if x[0] >= now - query.since_seconds]
    if query.since_time is not None:
        lines = [x for x in lines if x[0] >= query.since_time]
    if query.tail_lines is not None:
        lines = lines[-query.tail_lines :] if query.tail_lines > 0 else []
    if query.timestamps:
        text = "".join(f"{iso_nano(ts)} {line}\n" for ts, line in lines)
    else:
        text = "".join(f"{line}\n" for _, line in lines)
    body = text.encode()
    if query.limit_bytes is not None:
        body = body[: query.limit_bytes]
    return body
