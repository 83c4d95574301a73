"""HTTP health and latency probes with the breakdown `curl -w` gives.

Times are curl's (cumulative from the start of the request, in ms): `dns_ms` = time_namelookup,
`connect_ms` = time_connect, `tls_ms` = time_appconnect (0 without TLS), `ttfb_ms` =
time_starttransfer, `total_ms` = time_total. Every probe has one deadline (`timeout`) covering DNS,
connect, TLS and the reply, so a probe never hangs the notebook. A failed probe is a row with
`error` set, not an exception.

Over HTTPS every probe also reports the server certificate: days left before it expires, subject,
issuer, and why verification refused it (`tls_error`). When verification fails (expired,
self-signed, wrong host) the certificate is read again over a second, unverified handshake within
the same deadline: a rejected certificate is itself the finding (`tls_findings`).
"""

from __future__ import annotations

import base64
import functools
import http.client
import ipaddress
import math
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from ..errors import InvalidParameter, SourceUnavailable
from ..redact import redact_text

LATENCY_COLUMNS = [
    "status",
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "ttfb_ms",
    "total_ms",
    "error",
    "tls_days_left",
    "tls_error",
]
SUMMARY_COLUMNS = ["p50_ms", "p95_ms", "p99_ms", "error_rate", "count"]
_MAX_BODY = 1 << 20  # read at most 1 MiB of a reply: a probe measures, it does not download


@dataclass(frozen=True)
class ProbeResult:
    """One request: its status (None when no reply came), curl-style times in ms, and why it
    failed."""

    status: int | None
    dns_ms: float
    connect_ms: float
    tls_ms: float
    ttfb_ms: float
    total_ms: float
    error: str | None = None
    headers: dict[str, str] = field(
        default_factory=dict
    )  # a few reply headers worth showing (SHOWN_HEADERS)
    tls_days_left: float | None = None  # days until the server certificate expires (< 0: expired)
    tls_error: str | None = None  # why verification refused the certificate (None: verified)
    tls_subject: str | None = None
    tls_issuer: str | None = None
    tls_not_after: str | None = None  # ISO 8601, UTC

    @property
    def ok(self) -> bool:
        """A reply with a 2xx or 3xx status."""
        return self.error is None and self.status is not None and 200 <= self.status < 400


# Reply headers a health check shows (never cookies or auth).
SHOWN_HEADERS = (
    "content-type",
    "content-length",
    "server",
    "date",
    "cache-control",
    "retry-after",
    "x-request-id",
)


def _parse_url(url: str) -> urllib.parse.SplitResult:
    if not isinstance(url, str) or not url:
        raise InvalidParameter(
            f"URL {url!r} is empty; give a full URL such as https://api.example.com/health"
        )
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(
            f"URL {url!r} is not an http(s) URL with a host; give e.g. "
            "https://api.example.com/health"
        )
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise InvalidParameter(f"URL {url!r} has an invalid port") from None
    return parts


def _resolve(host: str, port: int, deadline: float) -> list[tuple[Any, ...]]:
    """getaddrinfo bounded by the deadline (it has no timeout of its own); a hung lookup is left to
    a daemon thread so it can never keep the notebook's kernel from exiting."""
    try:
        ipaddress.ip_address(host)
        return [info[4] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    except ValueError:
        pass
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["addrs"] = [
                info[4] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            ]
        except OSError as e:
            box["error"] = e

    worker = threading.Thread(target=lookup, name=f"dns {host}", daemon=True)
    worker.start()
    worker.join(max(deadline - time.perf_counter(), 0.001))
    if worker.is_alive():
        raise TimeoutError("DNS lookup did not finish in time")
    if "error" in box:
        raise box["error"]
    return box["addrs"]


def _connect(addrs: list[tuple[Any, ...]], deadline: float) -> socket.socket:
    """Connect to the first address that accepts, in resolver order (like curl with localhost ->
    ::1, 127.0.0.1)."""
    last: OSError = ConnectionRefusedError()
    for addr in addrs:
        sock = socket.socket(
            socket.AF_INET6 if len(addr) == 4 else socket.AF_INET, socket.SOCK_STREAM
        )
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(_remaining(deadline))
            sock.connect(addr)
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError as e:
            sock.close()
            last = e
    raise last


@dataclass(frozen=True)
class Certificate:
    """A server certificate as a TLS handshake presented it: when it expires, whose it is, who
    signed it, and why verification refused it (None: verified, or not verified at all)."""

    not_after: datetime
    days_left: float
    subject: str
    issuer: str
    error: str | None = None


def certificate_info(
    der: bytes, *, error: str | None = None, now: datetime | None = None
) -> Certificate:
    """Parse a DER certificate (`getpeercert(binary_form=True)`): expiry, days left (negative once
    expired), subject and issuer as RFC 4514 strings."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    not_after = cert.not_valid_after_utc
    left = (not_after - (now or datetime.now(UTC))).total_seconds() / 86400
    return Certificate(
        not_after,
        round(left, 2),
        cert.subject.rfc4514_string(),
        cert.issuer.rfc4514_string(),
        error,
    )


def _tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """The client TLS context: verifying against `ca_file` or the system's CAs (as `SSL_CERT_FILE`
    and `SSL_CERT_DIR` say now), or verifying nothing (no CA loaded at all). Made once per
    combination: loading the system's CA bundle costs tens of milliseconds, every probe would pay
    it again."""
    if not verify:
        return _unverified()
    where = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    return _verifying(ca_file, where)


@functools.lru_cache(maxsize=8)
def _verifying(ca_file: str | None, where: tuple[str | None, str | None]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


@functools.lru_cache(maxsize=1)
def _unverified() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _peek_certificate(addrs: list[tuple[Any, ...]], host: str, deadline: float) -> bytes | None:
    """The certificate the server presents, read over an unverified handshake (after the verified
    one refused it), within what is left of the deadline; None if that fails too."""
    try:
        sock = _connect(addrs, deadline)
    except OSError:
        return None
    try:
        sock.settimeout(_remaining(deadline))
        with _tls_context(False, None).wrap_socket(sock, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    finally:
        sock.close()


def _remaining(deadline: float) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def probe(
    url: str,
    *,
    method: str = "GET",
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
    verify_tls: bool = True,
    ca_file: str | None = None,
) -> ProbeResult:
    """Send one request and time it like `curl -w`; never raises for network trouble, never exceeds
    `timeout`. Over HTTPS the server certificate is reported too (`tls_*`), even when verification
    refuses it. `ca_file`: trust these CAs instead of the system's (like `curl --cacert`; the
    notebooks take the system's, which `SSL_CERT_FILE` can point elsewhere)."""
    parts = _parse_url(url)
    if timeout <= 0:
        raise InvalidParameter(f"timeout {timeout!r} must be a positive number of seconds")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    data = body.encode() if isinstance(body, str) else body
    hdrs = {"User-Agent": "incident-runbook-probe/1", "Accept": "*/*", "Connection": "close"}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    if parts.username is not None:  # like curl: credentials in the URL become Basic auth
        user, password = (
            urllib.parse.unquote(parts.username),
            urllib.parse.unquote(parts.password or ""),
        )
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        hdrs["Authorization"] = f"Basic {token}"
    hdrs.update(headers or {})

    t0 = time.perf_counter()
    deadline = t0 + timeout
    marks = {"dns": 0.0, "connect": 0.0, "tls": 0.0, "ttfb": 0.0}
    status: int | None = None
    reply_headers: dict[str, str] = {}
    sock: socket.socket | None = None
    stage = "dns"
    cert: Certificate | None = None

    def ms(t: float) -> float:
        return round((t - t0) * 1000, 3)

    try:
        addrs = _resolve(parts.hostname or "", port, deadline)
        marks["dns"] = ms(time.perf_counter())
        stage = "connect"
        sock = _connect(addrs, deadline)
        marks["connect"] = ms(time.perf_counter())
        if tls:
            stage = "tls"
            sock.settimeout(_remaining(deadline))
            try:
                sock = _tls_context(verify_tls, ca_file).wrap_socket(
                    sock, server_hostname=parts.hostname
                )
            except ssl.SSLCertVerificationError as e:
                why = str(e.verify_message or e.reason or e)
                der = _peek_certificate(addrs, parts.hostname or "", deadline)
                cert = certificate_info(der, error=why) if der else None
                raise
            der = sock.getpeercert(binary_form=True)  # type: ignore[attr-defined]
            cert = certificate_info(der) if der else None
            marks["tls"] = ms(time.perf_counter())
        stage = "reply"
        conn = http.client.HTTPConnection(parts.hostname or "", port, timeout=_remaining(deadline))
        conn.sock = sock
        conn.request(method, target, body=data, headers=hdrs)
        sock.settimeout(_remaining(deadline))
        resp = conn.getresponse()
        marks["ttfb"] = ms(time.perf_counter())
        status = resp.status
        reply_headers = {k.lower(): v for k, v in resp.getheaders() if k.lower() in SHOWN_HEADERS}
        read = 0
        while read < _MAX_BODY:
            sock.settimeout(_remaining(deadline))
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                break
            read += len(chunk)
        resp.close()
        error = None
    except TimeoutError:
        error = f"timeout after {timeout:g} s (during {stage})"
    except ssl.SSLCertVerificationError as e:
        error = f"TLS error: certificate verify failed: {e.verify_message or e.reason or e}"
    except ssl.SSLError as e:
        error = f"TLS error: {e.reason or e}"
    except socket.gaierror as e:
        error = f"DNS lookup failed: {e.strerror or e}"
    except ConnectionRefusedError:
        error = "connection refused"
    except (OSError, http.client.HTTPException) as e:
        error = f"{type(e).__name__} during {stage}: {e}"
    finally:
        if sock is not None:
            sock.close()
    total = ms(time.perf_counter())
    return ProbeResult(
        status,
        marks["dns"],
        marks["connect"],
        marks["tls"],
        marks["ttfb"],
        total,
        error,
        headers=reply_headers,
        tls_days_left=cert.days_left if cert else None,
        tls_error=cert.error if cert else None,
        tls_subject=cert.subject if cert else None,
        tls_issuer=cert.issuer if cert else None,
        tls_not_after=cert.not_after.isoformat() if cert else None,
    )


def health_check(
    url: str,
    *,
    count: int = 1,
    timeout: float = 5.0,
    workers: int = 1,
    interval_s: float = 0.0,
    method: str = "GET",
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    ca_file: str | None = None,
) -> list[ProbeResult]:
    """The runbook's health-check loop: `count` requests, each with its own deadline; one after
    another (`interval_s` apart), or `workers` at a time (triage's quick look: 20 requests, 4 at a
    time)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1 or count > 10_000:
        raise InvalidParameter(f"probe count {count!r} must be a whole number from 1 to 10000")
    _parse_url(url)

    def one(i: int) -> ProbeResult:
        if i and interval_s > 0 and workers <= 1:
            time.sleep(interval_s)
        return probe(
            url, method=method, body=body, headers=headers, timeout=timeout, ca_file=ca_file
        )

    if workers <= 1:
        return [one(i) for i in range(count)]
    with ThreadPoolExecutor(max_workers=min(workers, count)) as pool:
        return list(pool.map(one, range(count)))


HEALTH_COLUMNS = [
    "url",
    "status",
    "ok",
    "total_ms",
    "connect_ms",
    "ttfb_ms",
    "error",
    "headers",
    "tls_days_left",
    "tls_error",
]


def health_frame(results: Iterable[ProbeResult], url: str) -> pd.DataFrame:
    """One row per health request as the outage runbook shows it: the URL (redacted), status, ok,
    times, the failure, and the reply headers worth a look."""
    rows = [
        {
            "url": redact_text(url),
            "status": r.status,
            "ok": r.ok,
            "total_ms": r.total_ms,
            "connect_ms": r.connect_ms,
            "ttfb_ms": r.ttfb_ms,
            "error": r.error,
            "headers": "; ".join(f"{k}: {v}" for k, v in r.headers.items()),
            "tls_days_left": r.tls_days_left,
            "tls_error": r.tls_error,
        }
        for r in results
    ]
    df = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    df["status"] = df["status"].astype("Int64")
    return _tls_types(df)


def _tls_types(df: pd.DataFrame) -> pd.DataFrame:
    df["tls_days_left"] = df["tls_days_left"].astype("float64")
    df["tls_error"] = df["tls_error"].astype("object")
    return df


def latency_frame(results: Iterable[ProbeResult]) -> pd.DataFrame:
    """One row per probe: status (nullable Int64), the five curl times (float ms), error (str or
    None), and over HTTPS the certificate's days left and why verification refused it."""
    rows = [asdict(r) for r in results]
    df = pd.DataFrame(rows, columns=LATENCY_COLUMNS)
    df["status"] = df["status"].astype("Int64")
    for col in LATENCY_COLUMNS[1:6]:
        df[col] = df[col].astype("float64")
    df["error"] = df["error"].astype("object")
    return _tls_types(df)


def failed(df: pd.DataFrame) -> pd.Series:
    """Which probes of a latency frame failed: no reply, an error, or a 4xx/5xx status."""
    status = df["status"].astype("float64")
    return df["error"].notna() | status.isna() | (status >= 400)


def latency_summary(df: pd.DataFrame) -> pd.DataFrame:
    """p50/p95/p99 of total_ms over the probes that got a reply, the share that failed, and the
    count."""
    replied = df.loc[df["status"].notna(), "total_ms"].astype("float64")
    count = len(df)
    q = (
        replied.quantile([0.5, 0.95, 0.99])
        if len(replied)
        else pd.Series([math.nan] * 3, index=[0.5, 0.95, 0.99])
    )
    return pd.DataFrame(
        [
            {
                "p50_ms": float(q[0.5]),
                "p95_ms": float(q[0.95]),
                "p99_ms": float(q[0.99]),
                "error_rate": float(failed(df).sum() / count) if count else math.nan,
                "count": int(count),
            }
        ],
        columns=SUMMARY_COLUMNS,
    )


def slo_verdict(summary: pd.DataFrame, *, slo_ms: float) -> str:
    """One line: is p95 within the latency SLO?"""
    p95 = float(summary["p95_ms"].iloc[0])
    if math.isnan(p95):
        return f"no reply to measure against the {slo_ms:g} ms SLO"
    if p95 <= slo_ms:
        return f"within SLO: p95 {p95:.0f} ms <= {slo_ms:g} ms"
    return f"SLO breached: p95 {p95:.0f} ms > {slo_ms:g} ms"


def check_login(url: str, *, body: str = "{}", timeout: float = 5.0) -> ProbeResult:
    """The runbook's functionality check: POST a JSON body to the login endpoint, expecting a
    2xx."""
    import json

    try:
        json.loads(body)
    except ValueError as e:
        raise InvalidParameter(
            f'login_body is not valid JSON ({e}); give e.g. \'{{"user": "probe"}}\''
        ) from None
    return probe(url, method="POST", body=body, timeout=timeout)


def require_reachable(df: pd.DataFrame, *, what: str) -> None:
    """Raise SourceUnavailable naming the first error when no probe of the latency frame got any
    reply."""
    if len(df) and df["status"].isna().all():
        raise SourceUnavailable(
            f"{what}: none of {len(df)} requests got a reply ({df['error'].iloc[0]})"
        )


def findings(summary: pd.DataFrame, *, url: str, slo_ms: float) -> list[dict[str, str]]:
    """Findings from the probes: failing health check, error share of 1% or more, p95 above the
    SLO."""
    s = summary.iloc[0]
    count, rate, p95 = int(s["count"]), float(s["error_rate"]), float(s["p95_ms"])
    out: list[dict[str, str]] = []
    url = redact_text(url)
    if not count or math.isnan(rate):
        return out
    if rate >= 1.0:
        out.append(
            {
                "severity": "SEV1",
                "title": "health check failing",
                "detail": f"all {count} probes of GET {url} failed",
                "next_step": "run the outage runbook (notebooks/outage.ipynb) now",
            }
        )
    elif rate >= 0.01:
        level = "SEV2" if rate > 0.05 else "SEV3"
        out.append(
            {
                "severity": level,
                "title": f"error rate {rate * 100:.1f}% on the health check",
                "detail": f"{round(rate * count)} of {count} probes of GET {url} failed",
                "next_step": "look at the ERROR lines and the most frequent messages below",
            }
        )
    if not math.isnan(p95) and p95 > slo_ms:
        out.append(
            {
                "severity": "SEV3",
                "title": f"p95 latency {p95:.0f} ms above the {slo_ms:g} ms SLO",
                "detail": f"p50 {float(s['p50_ms']):.0f} ms, p95 {p95:.0f} ms, p99 "
                f"{float(s['p99_ms']):.0f} ms "
                f"over {count} probes of GET {url}",
                "next_step": "check resource use below; scale out or enable caching",
            }
        )
    return out


def severity_inputs(summary: pd.DataFrame, *, url: str, slo_ms: float) -> dict[str, Any]:
    """Keyword arguments for `severity.assess` from the probes: health, error rate and slowness,
    each with the measured figure in its words (e.g. "error rate 8.0% (8 of 100 probes of GET
    http://.../health)")."""
    s = summary.iloc[0]
    count, rate, p95 = int(s["count"]), float(s["error_rate"]), float(s["p95_ms"])
    n_failed = round(rate * count)
    url = redact_text(url)
    if count == 0 or math.isnan(rate):
        return {}
    of = f"{n_failed} of {count} probes of GET {url}"
    out: dict[str, Any] = {
        "health_ok": n_failed < count,
        "error_rate": rate,
        "details": {
            "health_ok": f"the health check failed on all {count} probes of GET {url}",
            "error_rate": f"error rate {rate * 100:.1f}% ({of})",
        },
    }
    if not math.isnan(p95):
        out["slow"] = p95 > slo_ms
        out["details"]["slow"] = f"p95 latency {p95:.0f} ms is above the {slo_ms:g} ms SLO"
    return out


# ----------------------------------------------------------------------------- the certificate
CERT_WARN_DAYS = 14  # a certificate expiring within this many days is a finding


def certificate_seen(results: Iterable[ProbeResult]) -> ProbeResult | None:
    """The first probe that saw the server certificate (None over plain HTTP, or when no handshake
    got that far)."""
    return next((r for r in results if r.tls_days_left is not None), None)


def tls_figures(results: Iterable[ProbeResult]) -> dict[str, Any]:
    """The certificate as figures for the severity and the notifications: tls_days_left,
    tls_error, tls_subject, tls_issuer, tls_not_after ({} when none was seen)."""
    r = certificate_seen(results)
    if r is None:
        return {}
    return {
        "tls_days_left": r.tls_days_left,
        "tls_error": r.tls_error,
        "tls_subject": r.tls_subject,
        "tls_issuer": r.tls_issuer,
        "tls_not_after": r.tls_not_after,
    }


def _span(days: float) -> str:
    days = abs(days)
    if days < 1:
        hours = round(days * 24)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    n = int(days)
    return f"{n} day{'s' if n != 1 else ''}"


def tls_findings(
    results: Iterable[ProbeResult], *, url: str, warn_days: float = CERT_WARN_DAYS
) -> list[dict[str, Any]]:
    """Findings about the server certificate: expired (SEV1: every client that verifies refuses
    it), refused by verification for another reason such as self-signed (SEV1, the same), or
    expiring within `warn_days` (SEV3)."""
    r = certificate_seen(results)
    if r is None or r.tls_days_left is None:
        return []
    host = urllib.parse.urlsplit(url).hostname or url
    days, when = r.tls_days_left, (r.tls_not_after or "")[:19].replace("T", " ")
    whose = f"subject {r.tls_subject}, issuer {r.tls_issuer}"
    refused = "every client that verifies certificates refuses the connection"
    if days < 0:
        return [
            {
                "severity": "SEV1",
                "title": f"TLS certificate of {host} expired {_span(days)} ago",
                "detail": f"not valid after {when} UTC ({whose}); {refused}",
                "next_step": "renew the certificate and reload the server (cert-manager: "
                "`kubectl describe certificate`, or replace the TLS secret); then run this again",
                "root_cause": True,
            }
        ]
    if r.tls_error:
        return [
            {
                "severity": "SEV1",
                "title": f"TLS certificate of {host} is refused: {r.tls_error}",
                "detail": f"{whose}; expires in {_span(days)} ({when} UTC); {refused}",
                "next_step": "serve a certificate signed by a CA the clients trust, with its full "
                "chain (a self-signed one only works where it is pinned)",
                "root_cause": True,
            }
        ]
    if days <= warn_days:
        return [
            {
                "severity": "SEV3",
                "title": f"TLS certificate of {host} expires in {_span(days)}",
                "detail": f"not valid after {when} UTC ({whose}); from then on {refused}",
                "next_step": f"renew it before {when[:10]} (cert-manager: check the Certificate's "
                "renewBefore and its last renewal)",
            }
        ]
    return []
