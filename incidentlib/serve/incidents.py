"""Incidents opened by alerts, the runs each one asks for, and the journal that keeps them.

One incident per Alertmanager group (`groupKey`): the first firing notification of a group opens
one (triage, then the scenarios its alerts route to); a repeat within the dedupe window starts no
new run but is recorded, and an alert new to the group runs only the scenarios not yet run for the
incident; after the window the same incident gets a new round of evidence; `status: resolved` runs
the recovery verification after every run before it, and closes the incident.

`plan` decides (pure: the state, the notification, the routing and the time in, a journal record
out); `State.apply` carries a record out; the `Journal` keeps every record (a JSON line, synced to
disk before the webhook is answered) and gives them back at start, so an accepted alert survives a
restart of the server: its runs that had not finished run again."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..evidence.run import new_incident_id
from .alerts import Notification
from .routes import Catalog, Routing, Spec

RECENT = 50  # notifications kept per incident for the index (all of them are in the journal)


@dataclass
class Job:
    """One run the server owes: a scenario for an incident, with what the alerts gave it."""

    id: str
    incident: str
    scenario: str
    given: dict[str, Any]
    text: list[str]
    kind: str  # evidence | recovery
    received_at: str
    alert_started_at: str
    after: list[str] = field(default_factory=list)
    state: str = "queued"  # queued | running | done
    run_id: str | None = None
    status: str | None = None  # the run's: ok | incomplete | failed; error: it could not run
    error: str | None = None
    notebook: str | None = None  # the archived notebook, relative to the outputs folder
    html: str | None = None
    seconds: float | None = None
    warm: bool | None = None
    attempts: int = 0

    @property
    def spec(self) -> Spec:
        return Spec(self.scenario, dict(self.given), frozenset(self.text))


@dataclass
class Incident:
    """What the server knows of one incident."""

    id: str
    group_key: str
    group_labels: dict[str, str]
    receiver: str
    opened_at: str
    started_at: str  # the earliest startsAt of its alerts
    status: str = "firing"  # firing | resolved
    round_at: str = ""  # when the current round of evidence began
    resolved_at: str | None = None
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint -> record
    ran: list[str] = field(default_factory=list)  # spec keys run in the current round
    jobs: list[str] = field(default_factory=list)
    notifications: int = 0
    deduplicated: int = 0  # alerts recorded without a run
    messages: list[dict[str, Any]] = field(default_factory=list)  # initial / resolution texts
    recent: list[dict[str, Any]] = field(default_factory=list)


class State:
    """Every incident and job, as the journal's records left them."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self.by_group: dict[str, str] = {}  # groupKey -> its latest incident
        self.jobs: dict[str, Job] = {}

    def current(self, group_key: str) -> Incident | None:
        inc_id = self.by_group.get(group_key)
        return self.incidents.get(inc_id) if inc_id else None

    def pending(self) -> list[Job]:
        """Jobs not finished, in the order they were accepted."""
        return [j for j in self.jobs.values() if j.state != "done"]

    def apply(self, record: dict[str, Any]) -> None:
        """Carry out one journal record (the same at receipt and at replay)."""
        kind = record.get("type")
        if kind == "notification":
            self._notification(record)
        elif kind == "started":
            job = self.jobs[record["job"]]
            job.state, job.run_id, job.attempts = "running", record["run_id"], job.attempts + 1
        elif kind == "finished":
            job = self.jobs[record["job"]]
            job.state = "done"
            for key in ("run_id", "status", "error", "notebook", "html", "seconds", "warm"):
                setattr(job, key, record.get(key))
        elif kind == "requeued":  # its run was cut short (the server stopped): it runs again
            job = self.jobs[record["job"]]
            job.state, job.run_id = "queued", None
        elif kind == "message":
            self.incidents[record["incident"]].messages.append(
                {k: record.get(k) for k in ("kind", "text", "posted", "at")}
            )

    def _notification(self, rec: dict[str, Any]) -> None:
        inc_id = rec["incident"]
        if inc_id is None:  # nothing to attach it to (a resolved group we never saw)
            return
        inc = self.incidents.get(inc_id)
        if inc is None:
            inc = Incident(
                id=inc_id,
                group_key=rec["group_key"],
                group_labels=dict(rec["group_labels"]),
                receiver=rec["receiver"],
                opened_at=rec["received_at"],
                started_at=rec["started_at"],
                round_at=rec["received_at"],
            )
            self.incidents[inc_id] = inc
            self.by_group[inc.group_key] = inc_id
        if rec.get("new_round"):
            inc.round_at, inc.ran = rec["received_at"], []
        inc.started_at = min(inc.started_at, rec["started_at"])
        inc.notifications += 1
        for alert in rec["alerts"]:
            known = inc.alerts.setdefault(alert["fingerprint"], {"first_seen": rec["received_at"]})
            known.update(alert)
        outcomes = rec["outcomes"]
        inc.deduplicated += sum(1 for o in outcomes.values() if o.startswith("deduplicated"))
        for raw in rec["jobs"]:
            job = Job(**raw)
            self.jobs[job.id] = job
            inc.jobs.append(job.id)
            if job.kind == "evidence":
                inc.ran.append(job.spec.key)
        if rec["status"] == "resolved" and rec.get("resolves"):
            inc.status, inc.resolved_at = "resolved", rec["resolved_at"]
        inc.recent = [
            *inc.recent[-(RECENT - 1) :],
            {
                "at": rec["received_at"],
                "status": rec["status"],
                "alerts": len(rec["alerts"]),
                "jobs": [j["scenario"] for j in rec["jobs"]],
                "outcomes": sorted(set(outcomes.values())),
            },
        ]


def plan(
    state: State,
    note: Notification,
    routing: Routing,
    catalog: Catalog,
    *,
    now: datetime,
    dedupe_window: timedelta,
) -> dict[str, Any]:
    """What to do with a notification, as a journal record: the incident it belongs to (new or
    not), the runs it starts, and an outcome for every alert (ran, deduplicated, resolved).

    Raises InvalidParameter when a parameter taken from an alert breaks its rule: then nothing runs
    and nothing is recorded."""
    received = now.astimezone(UTC).isoformat(timespec="milliseconds")
    inc = state.current(note.group_key)
    if inc is not None and inc.status != "firing":
        inc = None  # a resolved incident stays closed: a new firing opens another
    record: dict[str, Any] = {
        "type": "notification",
        "received_at": received,
        "group_key": note.group_key,
        "group_labels": note.group_labels,
        "receiver": note.receiver,
        "status": note.status,
        "started_at": note.started.isoformat(),
        "alerts": [a.as_record() for a in note.alerts],
        "new_round": False,
        "jobs": [],
        "outcomes": {},
    }
    jobs: list[dict[str, Any]] = []
    outcomes: dict[str, str] = {}
    if note.status == "resolved":
        if inc is None:
            record["incident"] = None
            record["outcomes"] = {a.fingerprint: "recorded: no open incident" for a in note.alerts}
            return record
        record["incident"], record["resolves"] = inc.id, True
        record["resolved_at"] = (note.ended or now).astimezone(UTC).isoformat()
        spec = _recovery_spec(state, inc, routing, catalog)
        if spec is not None:
            jobs.append(
                _job(inc.id, len(inc.jobs), spec, "recovery", received, note, after=inc.jobs)
            )
        outcomes = {a.fingerprint: "resolved" for a in note.alerts}
        record["jobs"], record["outcomes"] = jobs, outcomes
        return record

    new_round = inc is None or now - _time(inc.round_at) > dedupe_window
    inc_id = inc.id if inc is not None else _fresh_id(state, now)
    record["incident"], record["new_round"] = inc_id, new_round
    ran = set() if new_round or inc is None else set(inc.ran)
    known = set() if new_round or inc is None else set(inc.alerts)
    count = len(inc.jobs) if inc is not None else 0
    if new_round:
        triage = routing.triage_spec(note.common_labels, note.common_annotations, catalog)
        if triage is not None:
            jobs.append(_job(inc_id, count, triage, "evidence", received, note))
            ran.add(triage.key)
    for alert in note.alerts:
        if alert.status != "firing":
            outcomes[alert.fingerprint] = "resolved (its group still fires)"
            continue
        if alert.fingerprint in known:
            outcomes[alert.fingerprint] = "deduplicated: a repeat within the dedupe window"
            continue
        fresh = [s for s in routing.specs(alert, catalog) if s.key not in ran]
        for spec in fresh:
            ran.add(spec.key)
            jobs.append(_job(inc_id, count + len(jobs), spec, "evidence", received, note))
        if fresh or new_round:
            outcomes[alert.fingerprint] = "ran"
        else:
            outcomes[alert.fingerprint] = "deduplicated: its scenarios already ran"
    record["jobs"], record["outcomes"] = jobs, outcomes
    return record


def _recovery_spec(state: State, inc: Incident, routing: Routing, catalog: Catalog) -> Spec | None:
    """The recovery run: the recovery scenario with the parameters of the incident's first run of
    it (else of its triage, where the scenario declares them)."""
    if routing.recovery not in catalog.paths:
        return None
    jobs = [state.jobs[j] for j in inc.jobs if j in state.jobs]
    same = next((j for j in jobs if j.scenario == routing.recovery), None)
    if same is not None:
        return Spec(routing.recovery, dict(same.given), frozenset(same.text))
    first = jobs[0] if jobs else None
    declared = catalog.declared[routing.recovery]
    given = {k: v for k, v in (first.given if first else {}).items() if k in declared}
    text = frozenset(k for k in (first.text if first else []) if k in given)
    return Spec(routing.recovery, given, text)


def _job(
    incident: str,
    index: int,
    spec: Spec,
    kind: str,
    received: str,
    note: Notification,
    *,
    after: list[str] | None = None,
) -> dict[str, Any]:
    return asdict(
        Job(
            id=f"{incident}/{index + 1}",
            incident=incident,
            scenario=spec.scenario,
            given=dict(spec.given),
            text=sorted(spec.text),
            kind=kind,
            received_at=received,
            alert_started_at=note.started.isoformat(),
            after=list(after or []),
        )
    )


def _fresh_id(state: State, now: datetime) -> str:
    while True:
        candidate = new_incident_id(now)
        if candidate not in state.incidents:
            return candidate


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Journal:
    """The server's journal: one JSON record a line, appended and synced to disk, read back at
    start. In a folder only this user may enter (parameters from the routes may name hosts)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):  # a mount point (--state-dir) not ours
            os.chmod(path.parent, 0o700)
        self._lock = threading.Lock()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")  # a line cut short by a crash stays alone (and is skipped)
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and sync it: after this, a crash cannot lose it."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            os.fdatasync(self._file.fileno())

    def records(self) -> Iterator[dict[str, Any]]:
        """Every complete record, oldest first (a last line cut short by a crash is skipped)."""
        with contextlib.suppress(FileNotFoundError), open(self.path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    return
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict):
                        yield record

    def close(self) -> None:
        with self._lock:
            self._file.close()
