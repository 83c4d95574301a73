"""incidentlib: the shared library behind the incident-runbook notebooks."""
__version__ = "0.1.0"
