"""`python -m incidentlib.cli`: the `runbook` command."""

from . import entry

entry()
