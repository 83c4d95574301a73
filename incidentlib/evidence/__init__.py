"""The evidence archive: a scenario notebook run with papermill and kept safely.

parameters  a notebook's parameters read from its `parameters` cell; given values coerced
run         run_notebook: execute, scrub secrets, archive (a failed run too), record the
            environment the run pointed at
html        the self-contained HTML of an executed notebook
manifest    the incident's manifest: sha256 of every file, appended under a lock; verify;
            read_scraps"""

from .html import export_html, strip_external
from .manifest import MANIFEST, VerifyReport, load_manifest, read_scraps, verify
from .parameters import Param, coerce_parameters, describe_kind, inspect_parameters, scenarios
from .run import RunResult, new_incident_id, run_notebook, validate_incident_id

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
