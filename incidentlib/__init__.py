"""incidentlib: the shared library behind the incident-runbook notebooks.

One room per data source, then the steps each notebook calls (see docs/architecture.md):

    kube/ pg/ service/  reading (and, in `actions`, changing) the cluster, the database, the service
    scenarios/          the steps of each notebook: triage, outage, database, performance,
    postmortem notebook/           the run's evidence contract, tables, charts, notifications
    evidence/           running a notebook with papermill and archiving what it found cli/
    the `runbook` command sandbox/ sim/       throwaway PostgreSQL, the demo service, the simulated
    cluster (demo, tests) the leaves          errors, params, severity, redact, quantity, scraps,
    plan: what all stand on

The package itself exports the evidence contract's few names."""

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
