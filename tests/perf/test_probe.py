"""Probes: curl-style timings against real local servers, timeouts, summaries on small fixtures."""

from __future__ import annotations

import math
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from incidentlib.errors import InvalidParameter, SourceUnavailable
from incidentlib.sandbox.demoapp import DemoApp
from incidentlib.service import probe
from incidentlib.service.probe import ProbeResult


def _row(status, total, error=None) -> ProbeResult:
    return ProbeResult(status, 0.1, 0.2, 0.0, total - 1, total, error)


def test_latency_frame_schema_and_summary_on_fixture() -> None:
    results = [_row(200, float(t)) for t in range(1, 101)]
    results[10] = _row(500, 11.0)
    results[20] = _row(None, 5000.0, "timeout after 5 s (during reply)")
    df = probe.latency_frame(results)
    assert list(df.columns) == probe.LATENCY_COLUMNS
    assert str(df["status"].dtype) == "Int64" and df["total_ms"].dtype == "float64"
    assert df.loc[20, "error"] == "timeout after 5 s (during reply)" and pd.isna(
        df.loc[20, "status"]
    )
    summary = probe.latency_summary(df)
    assert list(summary.columns) == probe.SUMMARY_COLUMNS
    s = summary.iloc[0]
    assert s["count"] == 100
    assert s["error_rate"] == pytest.approx(0.02)  # one 500, one timeout
    # percentiles over the 99 replies (1..100 without 21): the 50th of them is 51 ms
    assert s["p50_ms"] == 51.0
    assert s["p99_ms"] == pytest.approx(99.02)


def test_summary_without_any_reply_is_nan_with_full_error_rate() -> None:
    df = probe.latency_frame([_row(None, 1.0, "connection refused")] * 3)
    s = probe.latency_summary(df).iloc[0]
    assert math.isnan(s["p95_ms"]) and s["error_rate"] == 1.0
    assert (
        probe.slo_verdict(probe.latency_summary(df), slo_ms=500)
        == "no reply to measure against the 500 ms SLO"
    )
    with pytest.raises(
        SourceUnavailable, match="none of 3 requests got a reply \\(connection refused\\)"
    ):
        probe.require_reachable(df, what="health probe")


def test_slo_verdict_names_p95_and_slo() -> None:
    df = probe.latency_frame([_row(200, 600.0), _row(200, 610.0)])
    assert (
        probe.slo_verdict(probe.latency_summary(df), slo_ms=500)
        == "SLO breached: p95 610 ms > 500 ms"
    )
    df = probe.latency_frame([_row(200, 100.0)])
    assert (
        probe.slo_verdict(probe.latency_summary(df), slo_ms=500)
        == "within SLO: p95 100 ms <= 500 ms"
    )


@pytest.mark.server
def test_probes_measure_added_latency_and_ordered_breakdown(demo_app: DemoApp) -> None:
    demo_app.set(latency_ms=100)
    df = probe.latency_frame(probe.health_check(demo_app.url + "/health", count=3, timeout=5))
    assert df["status"].tolist() == [200, 200, 200]
    assert df["error"].isna().all()
    assert (
        (df["dns_ms"] <= df["connect_ms"])
        & (df["connect_ms"] <= df["ttfb_ms"])
        & (df["ttfb_ms"] <= df["total_ms"])
    ).all()
    assert (df["tls_ms"] == 0).all()
    assert df["total_ms"].between(100, 150).all(), df["total_ms"].tolist()


@pytest.mark.server
def test_probe_error_share_matches_service(demo_app: DemoApp) -> None:
    demo_app.set(error_rate=0.08)
    s = probe.latency_summary(
        probe.latency_frame(probe.health_check(demo_app.url + "/health", count=50))
    ).iloc[0]
    assert s["error_rate"] == pytest.approx(0.08)  # 4 of 50 exactly


@pytest.mark.server
def test_login_check_posts_json_body(demo_app: DemoApp) -> None:
    r = probe.check_login(demo_app.url + "/login", body='{"user": "probe"}', timeout=5)
    assert r.ok and r.status == 200
    with pytest.raises(InvalidParameter, match="login_body is not valid JSON"):
        probe.check_login(demo_app.url + "/login", body="{user}")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield srv.getsockname()[1]
    srv.close()


@pytest.mark.server
def test_probe_honours_timeout_on_a_server_that_never_answers(silent_server: int) -> None:
    start = time.perf_counter()
    r = probe.probe(f"http://127.0.0.1:{silent_server}/health", timeout=0.5)
    elapsed = time.perf_counter() - start
    assert r.status is None and r.error == "timeout after 0.5 s (during reply)"
    assert elapsed > 0.45  # it waited its timeout (load can only make that longer)
    assert r.connect_ms > 0


def test_refused_and_bad_urls() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = probe.probe(f"http://127.0.0.1:{port}/health", timeout=1)
    assert (r.status, r.error) == (None, "connection refused")
    with pytest.raises(InvalidParameter, match="is not an http\\(s\\) URL"):
        probe.probe("ftp://example.com/")
    with pytest.raises(InvalidParameter, match="whole number from 1 to 10000"):
        probe.health_check("http://127.0.0.1/", count=0)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory) -> Iterator[int]:
    d: Path = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(d / "k.pem"),
            "-out",
            str(d / "c.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "c.pem", d / "k.pem")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.mark.server
def test_tls_handshake_time_and_verification(tls_server: int) -> None:
    url = f"https://127.0.0.1:{tls_server}/health"
    r = probe.probe(url, timeout=5, verify_tls=False)
    assert r.status == 204 and r.error is None
    assert r.connect_ms < r.tls_ms <= r.ttfb_ms <= r.total_ms
    assert r.tls_days_left is not None and r.tls_error is None  # seen, not verified
    r = probe.probe(url, timeout=5)
    assert r.status is None
    assert r.error == "TLS error: certificate verify failed: self-signed certificate"
    assert r.tls_error == "self-signed certificate" and r.tls_subject == r.tls_issuer


def test_credentials_in_the_url_become_basic_auth_and_never_reach_text() -> None:
    seen: list[str | None] = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://probe:s3cret%21@127.0.0.1:{srv.server_address[1]}/health"
        df = probe.latency_frame(probe.health_check(url, count=2, timeout=5))
    finally:
        srv.shutdown()
        srv.server_close()
    assert seen == ["Basic cHJvYmU6czNjcmV0IQ=="] * 2  # probe:s3cret!
    summary = probe.latency_summary(df)
    texts = [
        str(probe.severity_inputs(summary, url=url, slo_ms=500)),
        str(probe.findings(summary, url=url, slo_ms=500)),
    ]
    assert "all 2 probes of GET http://probe:***@127.0.0.1" in texts[0]
    assert not any("s3cret" in t for t in texts)


@pytest.mark.server
def test_hostname_is_resolved_with_a_bounded_lookup_and_every_address_tried(
    demo_app: DemoApp,
) -> None:
    r = probe.probe(
        f"http://localhost:{demo_app.port}/health", timeout=5
    )  # ::1 may refuse; 127.0.0.1 answers
    assert r.status == 200 and r.error is None
    assert 0 < r.dns_ms <= r.connect_ms <= r.total_ms


@pytest.mark.server
def test_a_few_reply_headers_are_kept_never_cookies(demo_app: DemoApp) -> None:
    r = probe.probe(demo_app.url + "/health", timeout=5)
    assert r.headers["content-type"].startswith("application/json")
    assert int(r.headers["content-length"]) > 0
    assert "server" in r.headers and "set-cookie" not in r.headers
