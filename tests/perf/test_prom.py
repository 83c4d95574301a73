"""Prometheus client: frames from fixture payloads; a real Prometheus scraping the demo service."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import math

import pytest

from incidentlib.errors import InvalidParameter, SourceUnavailable
from incidentlib.service import probe
from incidentlib.service import prometheus as prom

VECTOR = {
    "resultType": "vector",
    "result": [
        {"metric": {"pod": "backend-1"}, "value": [1764235200.0, "123.5"]},
        {
            "metric": {"__name__": "up", "pod": "backend-2", "job": "k"},
            "value": [1764235200.0, "NaN"],
        },
    ],
}
MATRIX = {
    "resultType": "matrix",
    "result": [
        {"metric": {"pod": "a"}, "values": [[1764235200, "1"], [1764235260, "2.5"]]},
        {"metric": {}, "values": [[1764235200, "+Inf"]]},
    ],
}


def test_instant_frame_from_fixture() -> None:
    df = prom.instant_frame(VECTOR)
    assert df["series"].tolist() == ["pod=backend-1", "job=k,pod=backend-2"]
    assert df["value"].iloc[0] == 123.5 and math.isnan(df["value"].iloc[1])
    assert df["pod"].tolist() == ["backend-1", "backend-2"]
    assert str(df["time"].iloc[0]) == "2025-11-27 09:20:00+00:00"
    scalar = prom.instant_frame({"resultType": "scalar", "result": [1764235200, "0.5"]})
    assert scalar["value"].tolist() == [0.5]
    empty = prom.instant_frame({"resultType": "vector", "result": []})
    assert list(empty.columns) == ["series", "time", "value"] and len(empty) == 0


def test_range_frame_from_fixture() -> None:
    df = prom.range_frame(MATRIX)
    assert list(df.columns) == ["series", "time", "value"]
    assert df["series"].tolist() == ["pod=a", "pod=a", "value"]
    assert df["value"].tolist()[:2] == [1.0, 2.5] and math.isinf(df["value"].iloc[2])
    assert str(df["time"].dtype) == "datetime64[us, UTC]"


def test_render_fills_placeholders_and_refuses_unknown() -> None:
    q = prom.rendered(
        {"m": prom.DEFAULT_QUERIES["memory"], "w": prom.DEFAULT_QUERIES["window_error_rate"]},
        since=dt.timedelta(minutes=30),
        namespace="production",
        deployment="backend",
    )
    assert 'namespace="production"' in q["m"] and "[1800s]" in q["w"]
    with pytest.raises(InvalidParameter, match="unknown or malformed placeholder"):
        prom.render("rate(x[$windw])", window="1s")
    with pytest.raises(InvalidParameter, match="not an http"):
        prom.Prometheus("prometheus:9090")


@pytest.mark.server
def test_http_500_and_timeout_and_refused_are_clear(broken_prometheus: str) -> None:
    with pytest.raises(SourceUnavailable, match="answered HTTP 500: query engine crashed"):
        prom.Prometheus(broken_prometheus + "/fail", timeout=2).instant("up")
    # /hang answers (HTTP 500) after 3 s: a timeout that did not fire would say so instead
    with pytest.raises(SourceUnavailable, match="did not answer within 0.3 s"):
        prom.Prometheus(broken_prometheus + "/hang", timeout=0.3).instant("up")
    with pytest.raises(SourceUnavailable, match="is unreachable: .*Connection refused"):
        prom.Prometheus("http://127.0.0.1:1", timeout=1).instant("up")


@pytest.mark.slow
@pytest.mark.server
def test_real_prometheus_error_rate_and_p95_match_the_service(prom_stack) -> None:
    app, server = prom_stack
    app.set(latency_ms=300, error_rate=0.08)
    server.wait_scraped(samples=2)  # zeros recorded before the traffic
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: probe.probe(app.url + "/health", timeout=5), range(100)))
    summary = probe.latency_summary(probe.latency_frame(results)).iloc[0]
    assert summary["error_rate"] == pytest.approx(0.08)
    server.wait_scraped(samples=3)

    client = prom.Prometheus(server.url, timeout=5)
    rate = prom.window_error_rate(client, since=dt.timedelta(minutes=5))
    assert abs(rate - 0.08) <= 0.02, rate
    p95 = client.scalar(
        prom.render(
            "histogram_quantile(0.95, sum by (le) "
            "(increase(http_request_duration_seconds_bucket[$window])))",
            window="300s",
        )
    )
    assert 0.3 <= p95 <= 0.35 and abs(p95 * 1000 - summary["p95_ms"]) / summary["p95_ms"] < 0.15, (
        p95,
        summary["p95_ms"],
    )
    series = client.range(
        prom.render(prom.DEFAULT_QUERIES["latency_p95"], rate="30s"),
        since=dt.timedelta(minutes=2),
        step=dt.timedelta(seconds=1),
    )
    assert list(series.columns) == ["series", "time", "value"]
    assert series["value"].dropna().between(0.3, 0.35).any()
    app.set(latency_ms=0, error_rate=0)
