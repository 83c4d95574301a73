"""The public surface of the evidence archive is pinned: the post-mortem and the CLI code against it."""

from __future__ import annotations

from incidentlib import cli, demo, evidence, evidence_cli, redact


def test_evidence_public_api_is_pinned():
    assert sorted(evidence.__all__) == sorted([
        "MANIFEST", "Param", "RunResult", "VerifyReport", "coerce_parameters", "describe_kind", "export_html",
        "inspect_parameters", "load_manifest", "new_incident_id", "read_scraps", "run_notebook", "scenarios",
        "strip_external", "validate_incident_id", "verify",
    ])
    for name in evidence.__all__:
        assert hasattr(evidence, name), name


def test_the_cli_commands_exist_where_cli_looks_for_them():
    for command in ("run", "list", "verify", "demo"):
        module, func, _ = cli.COMMANDS[command]
        target = {"incidentlib.evidence_cli": evidence_cli, "incidentlib.demo": demo}[module]
        assert callable(getattr(target, func)), command


def test_redact_keeps_its_foundation_functions():
    for name in ("redact_text", "redact_sql", "redact_dsn", "redact_value", "register_secret", "dsn_password",
                 "scrub_notebook", "mask_known", "redact_html", "known_secrets"):
        assert name in redact.__all__ and callable(getattr(redact, name))
