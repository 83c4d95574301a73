"""The first cell of every archived notebook: what whoever opens the evidence months later (an
auditor, the post-mortem's author) needs before anything else, written after the run from its own
scraps.

The scenario and incident, the severity and why, whether the run completed, the top findings with
their next steps, what changed (the rollout and image the findings blame, or the latest rollout),
the mitigation shown or applied, and which sources could not be read. It is one HTML block inside a
markdown cell (no blank line, so no Markdown is read inside it), and every value in it is escaped:
the values come from the cluster, the database and logs."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from ..notebook.run import cell_color
from ..redact import redact_text

SUMMARY_TAG = "evidence-summary"
TOP_FINDINGS = 5
_LEVELS = ("SEV1", "SEV2", "SEV3", "SEV4")


def _e(value: Any) -> str:
    """Redacted, then escaped; `code` spans (the runbook's own way of quoting a command) set as
    code."""
    text = html.escape(redact_text(str(value)), quote=True)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _short(text: Any, width: int = 220) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


def _badge(level: str) -> str:
    color = cell_color(level)
    style = f' style="background-color: {color}; padding: 0 0.4em"' if color else ""
    return f"<strong{style}>{_e(level)}</strong>"


def _row(label: str, value: str) -> str:
    return (
        f'<tr><th style="text-align: left">{_e(label)}</th><td style="text-align: '
        f'left">{value}</td></tr>'
    )


def _findings(findings: list[Mapping[str, Any]]) -> str:
    ranked = sorted(
        findings, key=lambda f: _LEVELS.index(f["severity"]) if f.get("severity") in _LEVELS else 9
    )
    rows = "".join(
        f'<tr><td>{_badge(str(f.get("severity", "")))}</td><td style="text-align: left">'
        f"<strong>{_e(_short(f.get('title'), 120))}</strong><br>{_e(_short(f.get('detail')))}</td>"
        f'<td style="text-align: left">{_e(_short(f.get("next_step")))}</td></tr>'
        for f in ranked[:TOP_FINDINGS]
    )
    more = len(ranked) - TOP_FINDINGS
    tail = f"<p>… and {more} more findings in the section at the end.</p>" if more > 0 else ""
    return (
        '<table><thead><tr><th>severity</th><th style="text-align: left">finding</th>'
        '<th style="text-align: left">next '
        f"step</th></tr></thead><tbody>{rows}</tbody></table>{tail}"
    )


def _changed(scraps: Mapping[str, Any]) -> str | None:
    """The rollout the findings blame (their sentence), else the deployment's current revision."""
    blamed = [
        f for f in scraps.get("findings") or [] if isinstance(f, Mapping) and f.get("revision")
    ]
    if blamed:
        return _short(blamed[0].get("detail"), 400)
    rollouts = scraps.get("rollouts")
    if rollouts is None or not hasattr(rollouts, "empty") or rollouts.empty:
        return None
    current = (
        rollouts[rollouts["current"].fillna(False).astype(bool)]
        if "current" in rollouts
        else rollouts
    )
    row = (current if len(current) else rollouts).iloc[0]
    who = f"deployment/{row['deployment']} " if "deployment" in row else ""
    cause = row.get("change_cause")
    return (
        f"{who}revision {row['revision']} (image {row['images']}), rolled out {row['created']}"
        + (f": {cause}" if cause and cause != "<none>" else "")
    )


def _mitigations(actions: list[Mapping[str, Any]]) -> list[str]:
    out = []
    for a in actions:
        what = a.get("summary") or a.get("action") or "mitigation"
        if a.get("applied"):
            out.append(
                f"applied: {what} ({a.get('status') or 'done'}: {_short(a.get('detail'), 160)})"
            )
        else:
            out.append(f"shown, not applied: {what}")
    return out


def summary_html(
    scraps: Mapping[str, Any],
    *,
    scenario: str,
    incident: str,
    status: str,
    error: str | None,
    started: str,
    finished: str,
) -> str:
    """The summary block (escaped HTML) from a run's scraps and its outcome."""
    severity = scraps.get("severity") if isinstance(scraps.get("severity"), Mapping) else None
    level = str(severity.get("level")) if severity else ""
    if status == "ok":
        run_line = f"completed, {_e(started)} to {_e(finished)} UTC"
    elif status == "incomplete":
        run_line = (
            f'<strong style="background-color: {cell_color("timeout")}">INCOMPLETE</strong>: '
            f"ran to the end, {_e(started)} to {_e(finished)} UTC, but some sources could not "
            "be read (below): what they would have shown is missing"
        )
    else:
        run_line = (
            f'<strong style="background-color: {cell_color("failed")}">FAILED</strong>: '
            f"{_e(_short(error, 300))} (what ran before the failure is below)"
        )
    facts = [
        _row("scenario", _e(scenario)),
        _row("incident", _e(incident)),
        _row(
            "severity",
            f"{_badge(level)} {_e(_short(severity.get('reason'), 400))}"
            if severity
            else "not assessed (the run ended before its severity section)",
        ),
        _row("this run", run_line),
    ]
    changed = _changed(scraps)
    if changed:
        facts.append(_row("what changed", _e(changed)))
    actions = [a for a in scraps.get("actions") or [] if isinstance(a, Mapping)]
    if actions:
        facts.append(_row("mitigation", "<br>".join(_e(m) for m in _mitigations(actions))))
    unread = [
        s
        for s in scraps.get("sources") or []
        if isinstance(s, Mapping) and s.get("status") == "failed"
    ]
    if unread:
        facts.append(
            _row(
                "could not be read",
                "<br>".join(
                    f"{_e(s.get('source'))}: {_e(_short(s.get('error'), 200))}" for s in unread
                ),
            )
        )
    findings = [f for f in scraps.get("findings") or [] if isinstance(f, Mapping)]
    body = (
        "<p>No finding: nothing this runbook checks was wrong, or nothing could be read (see the "
        "sources above).</p>"
        if not findings
        else _findings(findings)
    )
    return (
        '<div class="evidence-summary">'
        f"<h2>Summary: the {_e(scenario)} runbook, incident {_e(incident)}</h2>"
        f'<table style="margin-left: 0">{"".join(facts)}</table>'
        f"<h3>Top findings, most severe first</h3>{body}"
        "<p><em>Written after the run from its own scraps; the sections below are the "
        "evidence.</em></p>"
        "</div>"
    )


def add_summary(nb: Any, scraps: Mapping[str, Any], **outcome: Any) -> None:
    """Put the summary first in the notebook (a markdown cell tagged `evidence-summary`)."""
    import nbformat

    text = summary_html(scraps, **outcome)
    cell = nbformat.v4.new_markdown_cell(text.replace("\n", " "))
    cell.metadata["tags"] = [SUMMARY_TAG]
    nb.cells.insert(0, cell)
