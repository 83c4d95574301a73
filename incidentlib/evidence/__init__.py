"""The evidence archive: a scenario notebook run with papermill and kept safely.

parameters  a notebook's parameters read from its `parameters` cell; given values coerced
run         run_notebook: execute, scrub secrets, archive (a failed run too), record the
            environment the run pointed at
html        the self-contained HTML of an executed notebook
manifest    the incident's manifest: sha256 of every file, appended under a lock; verify;
            read_scraps

Its names are imported when first asked for: papermill imports this package in every run, plain ones
too, to load the `runbook` engine's entry point (`engine`), which needs none of them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .html import export_html, strip_external
    from .manifest import MANIFEST, VerifyReport, load_manifest, read_scraps, verify
    from .parameters import Param, coerce_parameters, describe_kind, inspect_parameters, scenarios
    from .run import RunResult, new_incident_id, run_notebook, validate_incident_id

_LAZY = {
    **dict.fromkeys(["export_html", "strip_external"], "html"),
    **dict.fromkeys(
        ["MANIFEST", "VerifyReport", "load_manifest", "read_scraps", "verify"], "manifest"
    ),
    **dict.fromkeys(
        ["Param", "coerce_parameters", "describe_kind", "inspect_parameters", "scenarios"],
        "parameters",
    ),
    **dict.fromkeys(
        ["RunResult", "new_incident_id", "run_notebook", "validate_incident_id"], "run"
    ),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MANIFEST",
    "Param",
    "RunResult",
    "VerifyReport",
    "coerce_parameters",
    "describe_kind",
    "export_html",
    "html",
    "inspect_parameters",
    "load_manifest",
    "manifest",
    "new_incident_id",
    "parameters",
    "read_scraps",
    "run",
    "run_notebook",
    "scenarios",
    "strip_external",
    "validate_incident_id",
    "verify",
]
