"""What is firing: the runbook's Detection starts from the monitoring alerts.

Triage reads the firing and pending alerts of Prometheus (`/api/v1/alerts`) and, when given,
Alertmanager's (`/api/v2/alerts`, silenced ones marked), lists them first, maps each firing alert to
the scenario notebook to run next (by its namespace and deployment/service labels, and what its name
and summary are about), and turns a firing critical or page alert into a severity candidate with
the alert quoted. A silenced or pending alert is listed, never acted on."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from ..service.prometheus import ALERT_COLUMNS

PAGING = ("critical", "page")  # severity labels that page someone: a SEV1/SEV2 candidate
ALERT_NEXT_COLUMNS = ["notebook", "reason", "namespace", "deployment", "alerts"]

# What an alert is about, read from its name and summary (the first that matches decides).
_ABOUT = (
    (
        "database",
        re.compile(
            r"postgres|pg_|\bpg\b|database|\bdb\b|mysql|replication|deadlock|\bsql", re.IGNORECASE
        ),
    ),
    (
        "performance",
        re.compile(
            r"latency|slow|error.?rate|errors|5xx|memory|\bcpu|oom|leak|throttl|saturat|disk|"
            r"filesystem|apdex|burn",
            re.IGNORECASE,
        ),
    ),
)


def empty() -> pd.DataFrame:
    """An alerts table with no alert (ALERT_COLUMNS)."""
    return pd.DataFrame(columns=ALERT_COLUMNS).astype({"silenced": "bool"})


def firing(alerts: pd.DataFrame | None) -> pd.DataFrame:
    """The alerts that are firing and not silenced or inhibited: the ones to act on."""
    if alerts is None or alerts.empty:
        return empty()
    return alerts[(alerts["state"] == "firing") & ~alerts["silenced"]].reset_index(drop=True)


def paging(alerts: pd.DataFrame | None) -> pd.DataFrame:
    """The firing alerts labelled severity critical or page."""
    live = firing(alerts)
    return live[live["severity"].str.lower().isin(PAGING)].reset_index(drop=True)


def notebook_for(alert: dict[str, Any]) -> str:
    """The scenario notebook an alert points at: database, performance, or else outage."""
    text = f"{alert.get('alertname', '')} {alert.get('summary', '')} {alert.get('service', '')}"
    return next((nb for nb, about in _ABOUT if about.search(text)), "outage")


def _since(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    return f" since {pd.Timestamp(value).tz_convert('UTC'):%H:%M} UTC"


def sentence(alert: dict[str, Any]) -> str:
    """One alert as a person reads it: name, state, severity, since when, from where, summary."""
    sev = f", severity={alert['severity']}" if alert.get("severity") else ""
    summary = f': "{alert["summary"]}"' if alert.get("summary") else ""
    return (
        f"alert {alert['alertname']} is {alert['state']}{sev}{_since(alert.get('active_at'))} "
        f"({alert['source']}){summary}"
    )


def alert_notebooks(
    alerts: pd.DataFrame | None, *, namespace: str, deployment: str
) -> pd.DataFrame:
    """One row per (notebook, namespace, deployment) the firing alerts point at, with the alerts
    quoted as the reason (ALERT_NEXT_COLUMNS). An alert without a namespace label is taken to be
    about `namespace`; without a deployment/service label, about `deployment` (for the database
    notebook: no deployment, the notebook's own default)."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for alert in firing(alerts).to_dict("records"):
        nb = notebook_for(alert)
        ns = alert.get("namespace") or namespace
        dep = alert.get("service") or ("" if nb == "database" else deployment)
        row = rows.setdefault(
            (nb, ns, dep),
            {"notebook": nb, "reason": [], "namespace": ns, "deployment": dep, "alerts": []},
        )
        row["reason"].append(sentence(alert))
        row["alerts"].append(alert["alertname"])
    out = [
        {**r, "reason": "; ".join(r["reason"]), "alerts": ",".join(dict.fromkeys(r["alerts"]))}
        for r in rows.values()
    ]
    return pd.DataFrame(out, columns=ALERT_NEXT_COLUMNS)


def severity_figures(alerts: pd.DataFrame | None) -> dict[str, Any]:
    """The figures the severity and the notifications use: alerts_firing, alerts_pending,
    alerts_silenced, critical_alerts and, when one pages, `critical_alert` (the first quoted)."""
    if alerts is None:
        return {}
    live, pages = firing(alerts), paging(alerts)
    out: dict[str, Any] = {
        "alerts_firing": len(live),
        "alerts_pending": int((alerts["state"] == "pending").sum()),
        "alerts_silenced": int(alerts["silenced"].sum()),
        "critical_alerts": len(pages),
    }
    if len(pages):
        first = sentence(pages.iloc[0].to_dict())
        more = f" (and {len(pages) - 1} more critical/page alerts)" if len(pages) > 1 else ""
        out["critical_alert"] = first + more
    return out


def findings(
    rows: pd.DataFrame,
    alerts: pd.DataFrame | None,
    *,
    command: Callable[[dict[str, Any]], str] | None = None,
) -> list[dict[str, Any]]:
    """One finding per target the firing alerts point at (SEV2 when one of them pages, else SEV3),
    with the notebook to run as the next step (`command(row)` gives its command line)."""
    pages = set(paging(alerts)["alertname"]) if alerts is not None else set()
    out = []
    for r in rows.to_dict("records"):
        names = r["alerts"].split(",")
        target = f"{r['deployment'] + ' in ' if r['deployment'] else ''}{r['namespace']}"
        out.append(
            {
                "severity": "SEV2" if pages & set(names) else "SEV3",
                "title": f"alert {', '.join(names)} firing for {target}",
                "detail": r["reason"],
                "next_step": f"run the {r['notebook']} notebook"
                + (f": {command(r)}" if command else ""),
            }
        )
    return out


def summary_line(alerts: pd.DataFrame) -> str:
    """How many alerts fire, page, wait (pending) and are silenced."""
    figures = severity_figures(alerts)
    sources = ", ".join(sorted(set(alerts["source"]))) or "no source"
    return (
        f"{figures['alerts_firing']} alert(s) firing ({figures['critical_alerts']} critical or "
        f"page), {figures['alerts_pending']} pending, {figures['alerts_silenced']} silenced "
        f"(from {sources})"
    )
