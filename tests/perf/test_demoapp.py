"""The demo service: deterministic error share, latency, runtime control, metrics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.sandbox.demoapp import DemoApp

pytestmark = pytest.mark.server


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_error_share_is_exact_over_100_requests(demo_app: DemoApp) -> None:
    demo_app.set(error_rate=0.08)
    statuses = [_get(demo_app.url + "/health") for _ in range(100)]
    assert statuses.count(500) == 8
    assert statuses.count(200) == 92


def test_control_endpoint_changes_error_share_without_restart(demo_app: DemoApp) -> None:
    demo_app.set(error_rate=1.0)
    assert _get(demo_app.url + "/health") == 500
    status, state = _post(demo_app.url + "/_control", b'{"error_rate": 0}')
    assert (status, state["error_rate"]) == (200, 0.0)
    assert [_get(demo_app.url + "/healthz") for _ in range(20)] == [200] * 20
    status, state = _post(demo_app.url + "/_control", b'{"error_rate": 7}')
    assert status == 400 and "outside 0..1" in state["error"]


def test_login_answers_token_for_json_and_400_otherwise(demo_app: DemoApp) -> None:
    assert _post(demo_app.url + "/login", b'{"user": "probe"}') == (200, {"token": "demo-session"})
    assert _post(demo_app.url + "/login", b"not json")[0] == 400
    assert _get(demo_app.url + "/nope") == 404


def test_metrics_count_requests_by_status_and_skip_scrapes(demo_app: DemoApp) -> None:
    demo_app.set(error_rate=0.5)
    for _ in range(4):
        _get(demo_app.url + "/health")
    _get(demo_app.url + "/metrics")
    with urllib.request.urlopen(demo_app.url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'http_requests_total{method="GET",path="/health",status="200"} 2.0' in text
    assert 'http_requests_total{method="GET",path="/health",status="500"} 2.0' in text
    assert 'http_requests_total{method="POST",path="/login",status="500"} 0.0' in text
    assert (
        "/metrics"
        not in text.split("# TYPE http_request_duration_seconds")[0].split("http_requests_created")[
            0
        ]
    )
    assert 'http_request_duration_seconds_count{method="GET",path="/health"} 4.0' in text


def test_bad_settings_are_refused_with_the_rule() -> None:
    with pytest.raises(InvalidParameter, match="error_rate 1.5 is outside 0..1"):
        DemoApp(error_rate=1.5)
    with pytest.raises(InvalidParameter, match="latency_ms 'slow' is not a number"):
        DemoApp(latency_ms="slow")  # type: ignore[arg-type]


def test_main_serves_until_sigterm() -> None:
    import signal
    import subprocess
    import sys

    from incidentlib.service.probe import probe

    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from incidentlib.cli import main; sys.exit(main(sys.argv[1:]))",
            "demo-app",
            "--port",
            str(port),
            "--error-rate",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = proc.stdout.readline()
        assert f"demo app on http://127.0.0.1:{port}" in banner
        assert probe(f"http://127.0.0.1:{port}/health", timeout=5).status == 500
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
