"""incidentlib: the shared library behind the incident-runbook notebooks.

One room per data source, then the steps each notebook calls (see docs/architecture.md):

    kube/ pg/ service/  reading (and, in `actions`, changing) the cluster, the database, the service
    scenarios/          each notebook's steps: triage, outage, database, performance, postmortem
    notebook/           the run's evidence contract, tables, charts, notifications
    evidence/           running a notebook with papermill and archiving what it found
    cli/                the `runbook` command
    sandbox/ sim/       throwaway PostgreSQL, the demo service, the simulated cluster (demo, tests)
    the leaves          errors, params, severity, redact, quantity, scraps, plan: what all stand on

The package itself exports the evidence contract's few names, imported when first asked for:
papermill imports this package in every run, plain ones too, to load the `runbook` engine's entry
point (`evidence.engine`), and needs none of them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import (
        DatabaseError,
        InvalidParameter,
        KubeAPIError,
        KubeConfigError,
        RunbookError,
        SourceUnavailable,
    )
    from .notebook.run import Run
    from .severity import Severity, assess

__version__ = "0.1.0"

_LAZY = {
    "DatabaseError": "errors",
    "InvalidParameter": "errors",
    "KubeAPIError": "errors",
    "KubeConfigError": "errors",
    "RunbookError": "errors",
    "SourceUnavailable": "errors",
    "Run": "notebook.run",
    "Severity": "severity",
    "assess": "severity",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DatabaseError",
    "InvalidParameter",
    "KubeAPIError",
    "KubeConfigError",
    "Run",
    "RunbookError",
    "Severity",
    "SourceUnavailable",
    "__version__",
    "assess",
]
