"""incidentlib: the shared library behind the incident-runbook notebooks.

Notebooks import the modules they need (`from incidentlib import cluster, pg`); the package itself exports
the evidence contract's few names."""

from .errors import (
    DatabaseError,
    InvalidParameter,
    KubeAPIError,
    KubeConfigError,
    RunbookError,
    SourceUnavailable,
)
from .runbook import Run
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
