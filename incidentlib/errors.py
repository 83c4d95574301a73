"""The project's errors: one base class, a few subclasses, messages that say what to do.

RunbookError          base: anything the user can fix; the CLI prints it without a traceback
 +-- InvalidParameter a bad value (namespace, duration, replicas...): names the value and the rule
 +-- KubeConfigError  no usable kubeconfig, unknown context: names what exists
 +-- KubeAPIError     the API server answered an error or could not be reached (keeps its message)
 +-- DatabaseError    the database could not be reached, refused the login, or a diagnostic failed
 +-- SourceUnavailable an optional source (metrics API, pg_stat_statements, Prometheus) is missing
"""

from __future__ import annotations


class RunbookError(Exception):
    """Base of every error this project raises on purpose; its message is for a person."""


class InvalidParameter(RunbookError, ValueError):
    """A parameter value breaks a rule; the message quotes the value and the rule."""


class KubeConfigError(RunbookError):
    """The cluster cannot be configured: unreadable kubeconfig, unknown context."""


class KubeAPIError(RunbookError):
    """The Kubernetes API answered an error or could not be reached."""

    def __init__(
        self, message: str, *, status: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class DatabaseError(RunbookError):
    """PostgreSQL could not be reached, refused us, or a diagnostic query failed.

    `refused` tells the two failures to connect apart: True when the server was reached and refused
    our login (wrong password, no pg_hba.conf entry, no such role or database, no CONNECT
    privilege): a problem of the runbook's configuration that says nothing about the database's
    health. False for everything else, among them a server that cannot be reached (no server,
    connection refused, timeout, DNS): the outage candidate."""

    def __init__(self, message: str, *, sqlstate: str | None = None, refused: bool = False) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.refused = refused


class SourceUnavailable(RunbookError):
    """An optional data source is missing; the notebook says so and goes on."""
