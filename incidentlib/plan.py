"""One shape for every mitigation: a `Plan` says exactly what would change and why, before anything
does.

    plan = actions.plan_undo(deployment, replicasets)  # pure: what, target, exact diff, why, cost
    outcome = actions.execute(cluster, plan, apply=cfg.apply, record=run.record_action)

A plan is built by a pure function from what was read: Kubernetes changes (`kube.actions`: scale,
rollout undo and restart, resource and ConfigMap patches) carry the exact API requests kubectl would
send, and the diff of the object; PostgreSQL session mitigations (`pg.actions`: terminate, cancel)
carry the backends to signal and the statement. Each executor shows the plan and changes nothing
unless `apply=True`; either way its outcome is one record of the same shape (`Plan.outcome`), which
the run keeps in the `actions` scrap: action, target, summary, command, change, why, safety,
applied, status, detail, at, finished_at."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

OUTAGE_MITIGATIONS = ("auto", "undo", "scale", "restart", "memory", "none")
"""The outage runbook's `mitigation` parameter (`kube.actions` carries them out)."""

# What a mitigation costs if it is the wrong one: a person reads this before passing apply=True.
REVERSIBLE = "reversible: the old value can be set back the same way"
REPLACES_PODS = (
    "replaces every pod of the workload (a new rollout): requests in flight on old pods may fail"
)
DROPS_SESSIONS = (
    "ends database sessions: their open transactions roll back, their clients see an error"
)
CANCELS_STATEMENTS = "cancels running statements: their clients see an error, the sessions stay"


def now_iso() -> str:
    """Now in UTC, to the second, as the records carry it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ApiRequest:
    """One change to the Kubernetes API, exactly as kubectl sends it."""

    method: str
    path: str
    body: Any
    content_type: str
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Signal:
    """One PostgreSQL backend to signal, pinned to the backend that was read (a reused pid is left
    alone)."""

    function: str  # pg_terminate_backend or pg_cancel_backend
    pid: int
    backend_start: Any  # datetime from pg_stat_activity
    query_start: Any
    user: str | None
    application: str | None
    state: str | None
    backend_type: str | None
    query_s: float | None
    query: str | None
    why: str


@dataclass
class Plan:
    """A mitigation, planned: what it is, what it touches, the exact change, why, and what it
    costs."""

    action: str  # the mitigation as its parameter names it: undo, scale, restart, cache, cancel...
    target: str  # what it touches: "deployment/backend in production", "2 sessions on host=db ..."
    summary: str  # one sentence a person acts on
    command: str  # what a person would type instead (kubectl, SQL)
    change: str = (
        ""  # the exact change: a unified diff of the object, or the statements with their pids
    )
    why: str = ""  # why this one: the finding or the parameter that asked for it
    safety: str = REVERSIBLE
    skipped: str | None = None  # set when there is nothing to do (already so), and why
    requests: list[ApiRequest] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    left_alone: list[dict[str, Any]] = field(default_factory=list)  # sessions not touched, and why
    rollout: str | None = None  # API path of the Deployment whose rollout follows the change

    def describe(self) -> str:
        """The plan as a person reads it before deciding: summary, why, cost, the command and the
        change."""
        lines = [f"mitigation {self.action}: {self.summary}"]
        if self.why:
            lines.append(f"  why: {self.why}")
        if self.skipped:
            lines.append(f"  nothing to do: {self.skipped}")
            return "\n".join(lines)
        lines.append(f"  cost: {self.safety}")
        lines.append(f"  equivalent: {self.command}")
        lines += [f"  request: {r.method} {r.path} ({r.content_type})" for r in self.requests]
        if self.change:
            lines.append(self.change)
        lines += [f"  left alone: pid {s['pid']}: {s['why']}" for s in self.left_alone]
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        """The plan as the evidence keeps it (JSON-ready)."""
        return {
            "action": self.action,
            "target": self.target,
            "summary": self.summary,
            "command": self.command,
            "change": self.change,
            "why": self.why,
            "safety": self.safety,
            "requests": [
                {
                    "method": r.method,
                    "path": r.path,
                    "content_type": r.content_type,
                    "body": json.dumps(r.body, sort_keys=True),
                    "query": dict(r.query),
                }
                for r in self.requests
            ],
            "sessions": [
                {
                    "pid": s.pid,
                    "function": s.function,
                    "user": s.user,
                    "application": s.application,
                    "state": s.state,
                    "query": s.query,
                    "why": s.why,
                }
                for s in self.signals
            ],
            "left_alone": list(self.left_alone),
        }

    def outcome(
        self, *, applied: bool, status: str, detail: str, at: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """The record of what was done with this plan: the plan, and applied, status, detail,
        times."""
        return {
            **self.record(),
            "applied": applied,
            "status": status,
            "detail": detail,
            "at": at or now_iso(),
            "finished_at": now_iso(),
            **extra,
        }

    def shown(self) -> dict[str, Any]:
        """The outcome when nothing is sent: skipped (nothing to do) or shown (apply=False)."""
        if self.skipped:
            return self.outcome(applied=False, status="skipped", detail=self.skipped)
        return self.outcome(
            applied=False,
            status="shown",
            detail="not applied: run with apply=True to make this change",
        )
