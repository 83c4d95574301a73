"""The public surface of comms, triage and postmortem, and the columns of the scraps they glue, pinned."""

from __future__ import annotations

from incidentlib import comms, postmortem, triage


def test_comms_api() -> None:
    assert sorted(comms.__all__) == sorted([
        "NOTEBOOK_PARAMETERS", "NOTEBOOK_CELL", "UPDATE_EVERY", "impact_text", "incident_title", "initial_alert",
        "status_update", "resolution", "notifications", "check_webhook", "post_webhook", "show_notifications"])


def test_triage_api_and_columns() -> None:
    assert sorted(triage.__all__) == sorted([
        "DEPLOYMENT_COLUMNS", "ROLLOUT_COLUMNS", "NEXT_COLUMNS", "fetch_deployments", "fetch_replicasets",
        "deployments_frame", "recent_rollouts_frame", "health_check", "health_figures", "check_database",
        "triage_figures", "suggest_severity", "next_notebooks", "wants_database", "read_all", "run_command",
        "record_findings"])
    assert triage.ROLLOUT_COLUMNS == ["namespace", "deployment", "revision", "images", "change_cause", "created",
                                      "replicas", "ready", "current"]
    assert triage.NEXT_COLUMNS == ["notebook", "reason"]


def test_postmortem_api_and_columns() -> None:
    assert sorted(postmortem.__all__) == sorted([
        "EvidenceAltered", "EvidenceRun", "Incident", "TIMELINE_COLUMNS", "SEVERITY_COLUMNS", "load_incident",
        "timeline_frame", "severity_frame", "impact_frame", "findings_frame", "evidence_frame", "hypotheses",
        "incident_window", "timeline_chart", "severity_chart", "png", "merged_run", "resolved_at", "readable"])
    assert postmortem.TIMELINE_COLUMNS == ["time", "kind", "what", "detail", "scenario", "run_id", "approximate"]
    assert postmortem.SEVERITY_COLUMNS == ["time", "level", "rank", "scenario", "run_id", "reason"]
