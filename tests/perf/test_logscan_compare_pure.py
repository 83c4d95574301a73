"""Log scanning and recovery comparison on small fixtures."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from incidentlib.kube import logs as logscan
from incidentlib.kube import owners
from incidentlib.kube.logs import PodLog
from incidentlib.scenarios import performance as compare

LOG_A = """2026-11-27T09:00:01.000000001Z INFO GET /healthz 200 1ms
2026-11-27T09:00:02.5Z ERROR db timeout after 5000ms conn=10.0.0.3:5432
2026-11-27T09:00:40Z ERROR db timeout after 4980ms conn=10.0.0.4:5432
2026-11-27T09:01:05Z ERROR order 3fa85f64-5717-4562-b3fc-2c963f66afa6 failed: password=hunter2
"""
LOG_B = (
    "2026-11-27T09:01:10Z ERROR db timeout after 5001ms "
    "conn=10.0.0.3:5432\n2026-11-27T09:01:11Z INFO ok\n"
)


def test_error_counts_rate_and_sorting() -> None:
    logs = [PodLog("backend-b", "app", LOG_B, 2.0), PodLog("backend-a", "app", LOG_A, 2.0)]
    df = logscan.error_counts(logs)
    assert list(df.columns) == logscan.ERROR_COLUMNS
    assert df[["pod", "lines", "error_lines", "errors_per_min"]].values.tolist() == [
        ["backend-a", 4, 3, 1.5],
        ["backend-b", 2, 1, 0.5],
    ]


def test_errors_per_minute_buckets() -> None:
    df = logscan.errors_per_minute([PodLog("a", "app", LOG_A, 2.0), PodLog("b", "app", LOG_B, 2.0)])
    assert [(str(m), p, n) for m, p, n in df.itertuples(index=False)] == [
        ("2026-11-27 09:00:00+00:00", "a", 2),
        ("2026-11-27 09:01:00+00:00", "a", 1),
        ("2026-11-27 09:01:00+00:00", "b", 1),
    ]


def test_top_messages_grouped_and_redacted() -> None:
    df = logscan.top_messages([PodLog("a", "app", LOG_A, 2.0), PodLog("b", "app", LOG_B, 2.0)])
    assert df.iloc[0].tolist() == [
        "ERROR db timeout after <n>ms conn=<ip>",
        3,
        2,
        "ERROR db timeout after 5000ms conn=10.0.0.3:5432",
    ]
    assert df.iloc[1]["message"].startswith("ERROR order <uuid> failed: password=")
    assert "hunter2" not in df.to_csv()


def test_selector_and_timestamp_parsing() -> None:
    dep = {"spec": {"selector": {"matchLabels": {"tier": "web", "app": "backend"}}}}
    assert owners.deployment_selector(dep) == "app=backend,tier=web"
    ts, msg = logscan.split_timestamp("no timestamp here")
    assert ts is None and msg == "no timestamp here"


BAD = {"p50_ms": 300.0, "p95_ms": 320.0, "p99_ms": 330.0, "error_rate": 0.08, "restarts": 3.0}
GOOD = {"p50_ms": 5.0, "p95_ms": 8.0, "p99_ms": 9.0, "error_rate": 0.0, "restarts": 3.0}


def test_comparison_rows_and_verdicts() -> None:
    table = compare.compare(BAD, GOOD)
    assert list(table.columns) == compare.COMPARISON_COLUMNS
    by = table.set_index("figure")
    assert (
        by.loc["error_rate", "direction"] == "better" and by.loc["restarts", "direction"] == "same"
    )
    assert by.loc["oom_kills", "direction"] == "unknown"
    assert compare.verdict(table, before=BAD, after=GOOD, slo_ms=500) == (
        "recovered",
        "healthy again: error rate 8.0% -> 0.0%, p95 within 500 ms",
    )
    assert compare.verdict(compare.compare(GOOD, BAD), before=GOOD, after=BAD)[0] == "worse"
    assert compare.verdict(compare.compare(BAD, BAD), before=BAD, after=BAD)[0] == "unchanged"
    half = dict(BAD, error_rate=0.03)
    assert compare.verdict(compare.compare(BAD, half), before=BAD, after=half)[0] == "improved"


def test_figures_from_scraps_prefers_figures_then_summary() -> None:
    summary = pd.DataFrame(
        [{"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "error_rate": 0.5, "count": 10}]
    )
    figs = compare.figures_from_scraps(
        {"latency_summary": summary, "figures": {"restarts": 4, "error_rate": 0.25}}
    )
    assert figs["p95_ms"] == 2.0 and figs["error_rate"] == 0.25 and figs["restarts"] == 4.0
    assert math.isnan(figs["oom_kills"])


def test_baseline_errors_are_clear(tmp_path) -> None:
    from incidentlib.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="does not exist"):
        compare.read_baseline(tmp_path / "nope.ipynb")


def test_assess_run_takes_the_worse_of_probes_and_prometheus() -> None:
    summary = pd.DataFrame(
        [{"p50_ms": 5.0, "p95_ms": 8.0, "p99_ms": 9.0, "error_rate": 0.0, "count": 10}]
    )
    sev = compare.assess_run(
        summary=summary, url="http://x/health", slo_ms=500, prom_error_rate=0.03, since="30m"
    )
    assert sev.level == "SEV3"
    assert sev.reason.startswith("error rate 3.0% (Prometheus, 5xx over all requests, last 30m)")
    sev = compare.assess_run(
        summary=summary,
        url="http://x/health",
        slo_ms=500,
        prom_error_rate=None,
        since="30m",
        login_failed="the login check POST http://x/login failed (500)",
    )
    assert sev.level == "SEV2" and "login check" in sev.reason
    nothing = compare.assess_run(
        summary=summary.iloc[0:0], url=None, slo_ms=500, prom_error_rate=None, since="5m"
    )
    assert nothing.level == "SEV4" and nothing.rule == "no-impact"
