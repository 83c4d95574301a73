"""Recovery verification: the figures of an earlier evidence notebook beside today's, and a verdict.

Figures (lower is better): latency p50/p95/p99 (ms), error rate (share), restarts, OOM kills, ERROR lines
per minute. The verdict is `recovered` (now healthy: error rate under 1% and p95 within the SLO, and it was
not before), `improved`, `unchanged` or `worse`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .errors import InvalidParameter, SourceUnavailable
from .probe import severity_inputs
from .redact import redact_text
from .severity import Severity, assess, worst

__all__ = [
    "FIGURES", "COMPARISON_COLUMNS", "read_baseline", "figures_from_scraps", "compare", "verdict",
    "current_figures", "error_rates_frame", "assess_run",
]

# figure -> (smallest change that counts, relative change that counts)
FIGURES: dict[str, tuple[float, float]] = {
    "p50_ms": (5.0, 0.10),
    "p95_ms": (5.0, 0.10),
    "p99_ms": (5.0, 0.10),
    "error_rate": (0.005, 0.10),
    "restarts": (1.0, 0.0),
    "oom_kills": (1.0, 0.0),
    "error_lines_per_min": (0.5, 0.10),
}
COMPARISON_COLUMNS = ["figure", "before", "after", "change", "change_pct", "direction"]
HEALTHY_ERROR_RATE = 0.01


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def figures_from_scraps(scraps: Mapping[str, Any]) -> dict[str, float]:
    """The compared figures from a performance notebook's scraps (`latency_summary`, `figures`)."""
    out = {k: math.nan for k in FIGURES}
    figures = scraps.get("figures") or {}
    for key in FIGURES:
        if key in figures:
            out[key] = _num(figures[key])
    summary = scraps.get("latency_summary")
    if isinstance(summary, pd.DataFrame) and len(summary):
        for key in ("p50_ms", "p95_ms", "p99_ms", "error_rate"):
            if key in summary.columns and math.isnan(out[key]):
                out[key] = _num(summary[key].iloc[0])
    return out


def read_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The scraps of an earlier evidence notebook (scrapbook), as plain values keyed by name."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InvalidParameter(f"baseline {path!r} does not exist; give the path of an earlier evidence notebook (.ipynb)")
    import scrapbook as sb

    try:
        nb = sb.read_notebook(path)
        scraps = {name: scrap.data for name, scrap in nb.scraps.items()}
    except Exception as e:  # nbformat/json/parquet errors: say which file and why
        raise SourceUnavailable(f"baseline {path!r} cannot be read as an evidence notebook: {type(e).__name__}: {e}") from None
    if not scraps:
        raise SourceUnavailable(f"baseline {path!r} has no scraps: was it executed (papermill), not just saved?")
    return scraps


def compare(before: Mapping[str, float], after: Mapping[str, float]) -> pd.DataFrame:
    """Side by side: one row per figure with the change and its direction (better/worse/same/unknown)."""
    rows = []
    for key, (abs_min, rel_min) in FIGURES.items():
        b, a = _num(before.get(key)), _num(after.get(key))
        if math.isnan(b) or math.isnan(a):
            direction, change, pct = "unknown", math.nan, math.nan
        else:
            change = a - b
            pct = change / b * 100 if b else (math.inf if change > 0 else (-math.inf if change < 0 else 0.0))
            big = abs(change) >= abs_min and (b == 0 or abs(change) / abs(b) >= rel_min)
            direction = "same" if not big else ("better" if change < 0 else "worse")
        rows.append({"figure": key, "before": b, "after": a, "change": change, "change_pct": pct,
                     "direction": direction})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _healthy(figures: Mapping[str, float], slo_ms: float | None) -> bool:
    err = _num(figures.get("error_rate"))
    p95 = _num(figures.get("p95_ms"))
    if math.isnan(err) or err >= HEALTHY_ERROR_RATE:
        return False
    return slo_ms is None or math.isnan(p95) or p95 <= slo_ms


def verdict(comparison: pd.DataFrame, *, before: Mapping[str, float], after: Mapping[str, float],
            slo_ms: float | None = None) -> tuple[str, str]:
    """(verdict, why): recovered / improved / unchanged / worse, and the figures that decided."""
    better = comparison.loc[comparison["direction"] == "better", "figure"].tolist()
    worse = comparison.loc[comparison["direction"] == "worse", "figure"].tolist()
    healthy_after, healthy_before = _healthy(after, slo_ms), _healthy(before, slo_ms)
    err_b, err_a = _num(before.get("error_rate")), _num(after.get("error_rate"))
    err_text = f"error rate {err_b * 100:.1f}% -> {err_a * 100:.1f}%"
    if healthy_after and not healthy_before:
        return "recovered", f"healthy again: {err_text}" + (f", p95 within {slo_ms:g} ms" if slo_ms else "")
    if worse and not better:
        return "worse", f"worse: {', '.join(worse)} ({err_text})"
    if better and not worse:
        return "improved", f"better: {', '.join(better)} ({err_text})"
    if better and worse:
        if "error_rate" in worse:
            return "worse", f"mixed, error rate up: better {', '.join(better)}; worse {', '.join(worse)}"
        return "improved", f"mixed: better {', '.join(better)}; worse {', '.join(worse)} ({err_text})"
    return "unchanged", f"no figure moved beyond its noise threshold ({err_text})"


def current_figures(*, summary: pd.DataFrame, restarts: int | None = None, oom_kills: int | None = None,
                    log_errors: pd.DataFrame | None = None, prom_error_rate: float | None = None) -> dict[str, float]:
    """This run's figures in the shape `compare` reads back from a baseline's `figures` scrap (None: not measured)."""
    s = summary.iloc[0] if len(summary) else {}
    figs = {k: _num(s.get(k)) if len(summary) else math.nan for k in ("p50_ms", "p95_ms", "p99_ms", "error_rate")}
    figs["restarts"] = math.nan if restarts is None else float(restarts)
    figs["oom_kills"] = math.nan if oom_kills is None else float(oom_kills)
    figs["error_lines_per_min"] = (float(log_errors["errors_per_min"].sum())
                                   if log_errors is not None and len(log_errors) else math.nan)
    figs["prom_error_rate"] = math.nan if prom_error_rate is None else float(prom_error_rate)
    if math.isnan(figs["error_rate"]) and not math.isnan(figs["prom_error_rate"]):
        figs["error_rate"] = figs["prom_error_rate"]
    return figs


def error_rates_frame(*, summary: pd.DataFrame, url: str | None, prom_error_rate: float | None,
                      since: str, log_errors: pd.DataFrame | None = None) -> pd.DataFrame:
    """The error rate as each source measured it: probes, Prometheus over the window, ERROR lines per minute."""
    rows = []
    if len(summary) and int(summary["count"].iloc[0]):
        rows.append({"source": "probes", "value": float(summary["error_rate"].iloc[0]), "unit": "share",
                     "detail": f"{int(summary['count'].iloc[0])} probes of GET {redact_text(url or '')}"})
    if prom_error_rate is not None:
        rows.append({"source": "prometheus", "value": float(prom_error_rate), "unit": "share",
                     "detail": f"5xx over all requests, last {since}"})
    if log_errors is not None and len(log_errors):
        rows.append({"source": "logs", "value": float(log_errors["errors_per_min"].sum()), "unit": "lines/min",
                     "detail": f"ERROR lines of {len(log_errors)} container(s), last {since}"})
    return pd.DataFrame(rows, columns=["source", "value", "unit", "detail"])


def assess_run(*, summary: pd.DataFrame, url: str | None, slo_ms: float, prom_error_rate: float | None,
               since: str, login_failed: str | None = None) -> Severity:
    """The runbook's matrix on this run's figures: the probes (health, error share, p95 against the SLO, the
    login check) and Prometheus' 5xx share over the window; the worse of the two, its reason naming the figure."""
    assessed = []
    inputs = severity_inputs(summary, url=url or "", slo_ms=slo_ms) if len(summary) and url else {}
    details = inputs.pop("details", {})
    if login_failed:
        inputs["core_blocked"] = True
        details["core_blocked"] = login_failed
    if inputs:
        assessed.append(assess(**inputs, details=details))
    if prom_error_rate is not None and not math.isnan(prom_error_rate):
        assessed.append(assess(error_rate=prom_error_rate, details={
            "error_rate": f"error rate {prom_error_rate * 100:.1f}% (Prometheus, 5xx over all requests, last {since})"}))
    return worst(*assessed)
