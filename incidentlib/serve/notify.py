"""The messages an incident opened by an alert sends: the triage notebook's filled initial alert
with a link to its evidence, and at the end the resolution, written from the incident's evidence
(what its runs found, the recovery verification's verdict), with a link too.

Read back from the archived notebooks' scraps (`notifications`, `severity`, `findings`,
`figures`, `comparison`), never from what the alert said: the message tells what was measured."""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..evidence.manifest import read_scraps
from ..evidence.storage import is_s3, join
from ..notebook.comms import post_webhook, resolution
from ..notebook.run import Run
from ..severity import LEVELS, Severity, worst
from .incidents import Incident, Job


def evidence_link(outputs: Path | str, job: Job, base_url: str | None) -> str:
    """Where a person reads a run's evidence: its HTML under `base_url`, else its path here (its
    s3:// URL in a bucket)."""
    rel = job.html or job.notebook or ""
    if base_url:
        return base_url.rstrip("/") + "/" + urllib.parse.quote(rel)
    if not rel:
        return "(not archived)"
    return str(join(outputs, rel)) if is_s3(outputs) else str((Path(outputs) / rel).resolve())


def _scraps(outputs: Path | str, job: Job, names: Sequence[str]) -> dict[str, Any]:
    if not job.notebook:
        return {}
    try:
        return read_scraps(join(outputs, job.notebook), names=names)
    except Exception:  # noqa: BLE001 - a run that died early may hold no scraps
        return {}


def _severity(value: Any) -> Severity | None:
    if isinstance(value, dict) and value.get("level") in LEVELS:
        return Severity(str(value["level"]), str(value.get("rule", "")), str(value.get("reason")))
    return None


def initial_message(
    incident: Incident, triage: Job, outputs: Path | str, base_url: str | None
) -> str:
    """The triage notebook's initial alert (its `notifications` scrap) and where its evidence
    is."""
    scraps = _scraps(outputs, triage, ("notifications", "severity"))
    text = _notification(scraps.get("notifications"), "initial")
    if not text:
        sev = _severity(scraps.get("severity"))
        labels = ", ".join(f"{k}={v}" for k, v in sorted(incident.group_labels.items()))
        assessed = str(sev) if sev else f"not assessed (the triage run {triage.status})"
        text = f"🚨 INCIDENT [{incident.id}]: {labels or 'an alert group'}\nSeverity: {assessed}"
    return f"{text}\nEvidence: {evidence_link(outputs, triage, base_url)}"


def _notification(scrap: Any, kind: str) -> str | None:
    """One message of a `notifications` scrap: rows of kind and text (`comms.notifications_frame`),
    or a mapping of kind to text."""
    if isinstance(scrap, dict):
        text = scrap.get(kind)
        return text if isinstance(text, str) and text else None
    try:
        rows = scrap[scrap["kind"] == kind]["text"]
        text = rows.iloc[0] if len(rows) else None
    except (KeyError, TypeError, IndexError, AttributeError):
        return None
    return text if isinstance(text, str) and text else None


def resolution_message(
    incident: Incident,
    runs: Sequence[Job],
    recovery: Job | None,
    outputs: Path | str,
    base_url: str | None,
) -> str:
    """The runbook's resolution template filled from the incident's evidence (findings and the
    worst severity of its runs, the alerts' start and end), the recovery verdict, the links."""
    findings: list[dict[str, Any]] = []
    severities: list[Severity | None] = []
    for job in runs:
        scraps = _scraps(outputs, job, ("findings", "severity"))
        found = scraps.get("findings")
        findings += [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []
        severities.append(_severity(scraps.get("severity")))
    first = runs[0].scenario if runs else "incident"
    run = Run(first, findings=findings, started_at=incident.started_at, quiet=True)
    text = resolution(
        run,
        worst(*severities),
        incident_id=incident.id,
        started=incident.started_at,
        resolved_at=incident.resolved_at,
    )
    lines = [text, f"Recovery verification: {recovery_verdict(recovery, outputs)}"]
    for job in [*runs, *([recovery] if recovery else [])]:
        what = f"{job.scenario}{', recovery' if job.kind == 'recovery' else ''}"
        lines.append(f"Evidence ({what}): {evidence_link(outputs, job, base_url)}")
    return "\n".join(lines)


def recovery_verdict(recovery: Job | None, outputs: Path | str) -> str:
    """The recovery run's verdict against the first run (recovered, improved, unchanged, worse),
    with the error rate before and after."""
    if recovery is None:
        return "not run (no recovery scenario among the notebooks)"
    if recovery.status not in ("ok", "incomplete"):
        return f"the recovery run {recovery.status}: {recovery.error or 'see its evidence'}"
    scraps = _scraps(outputs, recovery, ("figures", "comparison"))
    figures = scraps.get("figures")
    verdict = figures.get("recovery_verdict") if isinstance(figures, dict) else None
    if not verdict:
        return "not measured (the recovery run could not compare with the first run)"
    text = str(verdict).upper()
    comparison = scraps.get("comparison")
    try:
        row = comparison[comparison["figure"] == "error_rate"].iloc[0]  # type: ignore[index]
        before, after = float(row["before"]), float(row["after"])
        if not (math.isnan(before) or math.isnan(after)):
            text += f" (error rate {before * 100:.1f}% -> {after * 100:.1f}%)"
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        pass
    return text


def post(webhook: str | None, text: str) -> str | None:
    """Post a message to the incoming webhook, if there is one: the result line (never raises)."""
    return post_webhook(webhook, text) if webhook else None
