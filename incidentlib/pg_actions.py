"""Database mitigations: terminate long-running queries, terminate a root blocker, cancel instead of
terminate, restart the database deployment as a last resort.

Each mitigation is first a plan (`plan_sessions`, `plan_restart`) that names exactly which pids and
queries, or which deployment, it would touch; nothing happens unless `apply=True`. Chosen automatically,
it never touches our own sessions, replication, autovacuum or any other non-client backend: those only
when asked by pid. Applying uses its own session that is not read-only, checks that each pid still belongs
to the same backend (a reused pid is left alone), waits for the result and records it with
`run.record_action`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import DatabaseError, InvalidParameter, KubeAPIError
from .pg import connect, query

__all__ = [
    "MITIGATIONS",
    "SIGNAL_SQL",
    "STILL_RUNNING_SQL",
    "TARGET_COLUMNS",
    "ActionPlan",
    "parse_pids",
    "choose",
    "plan_sessions",
    "apply_plan",
    "plan_restart",
    "apply_restart",
]

MITIGATIONS = ("auto", "terminate_long", "terminate_blocker", "cancel", "restart", "none")
MITIGATION_APP = "incident-runbook-mitigation"
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"

# Signal one backend, only if the pid still belongs to the backend we planned for (same start time) and is
# not this session. {function} is pg_terminate_backend or pg_cancel_backend. Source: PostgreSQL 15 docs,
# 9.27.2 "Server Signaling Functions"; pghero `kill.rb`.
SIGNAL_SQL = """/* incident-runbook: mitigation */
SELECT {function}(pid) AS signalled
FROM pg_stat_activity
WHERE pid = %(pid)s AND backend_start = %(backend_start)s AND pid <> pg_backend_pid()"""

# Is the planned backend still there, and is it still running the statement we signalled?
STILL_RUNNING_SQL = """/* incident-runbook: mitigation check */
SELECT state, query_start = %(query_start)s AS same_query
FROM pg_stat_activity
WHERE pid = %(pid)s AND backend_start = %(backend_start)s"""

TARGET_COLUMNS = ["pid", "user", "application", "client", "state", "backend_type", "query_s", "xact_s",
                  "backend_start", "query_start", "query", "why"]
_FUNCTIONS = {"terminate": "pg_terminate_backend", "cancel": "pg_cancel_backend"}


@dataclass
class ActionPlan:
    """What a mitigation would do: the function, the sessions it touches and those it leaves alone, and why."""

    action: str
    function: str | None
    targets: Any  # DataFrame of TARGET_COLUMNS
    skipped: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""

    @property
    def pids(self) -> list[int]:
        return [int(p) for p in self.targets["pid"]] if self.targets is not None else []

    def describe(self) -> str:
        """One paragraph: what would be done to whom, and what is left alone."""
        if self.action == "none" or not self.pids:
            text = f"mitigation {self.action}: nothing to do" + (f" ({self.reason})" if self.reason else "")
        else:
            verb = "terminate" if self.function == "pg_terminate_backend" else "cancel the statement of"
            who = "; ".join(f"pid {int(r.pid)} ({r.state}, user {r.user}, app {r.application or '-'}): {r.query}"
                            for r in self.targets.itertuples())
            text = f"mitigation {self.action}: would {verb} {len(self.pids)} session(s) with {self.function}: {who}"
        for s in self.skipped:
            text += f"\n  left alone: pid {s['pid']}: {s['why']}"
        return text

    def as_record(self) -> dict[str, Any]:
        return {"action": self.action, "function": self.function, "reason": self.reason,
                "targets": [{"pid": int(r.pid), "user": r.user, "application": r.application, "state": r.state,
                             "query": r.query, "why": r.why} for r in self.targets.itertuples()],
                "skipped": list(self.skipped)}


def parse_pids(value: Any) -> list[int] | None:
    """The `pids` parameter: None, one pid, a list of pids, or text like '4711, 4712'."""
    if value is None or value == "" or value == []:
        return None
    items = value if isinstance(value, list | tuple) else str(value).replace(",", " ").split()
    out = []
    for item in items:
        if isinstance(item, bool):
            raise InvalidParameter(f"pids {value!r}: {item!r} is not a process id; expected whole numbers like [4711, 4712]")
        try:
            pid = int(item)
        except (TypeError, ValueError):
            raise InvalidParameter(f"pids {value!r}: {item!r} is not a process id; expected whole numbers like [4711, 4712]") from None
        if pid <= 0:
            raise InvalidParameter(f"pids {value!r}: {pid} is not a process id (must be positive)")
        out.append(pid)
    return out


def choose(mitigation: str, *, long_running: Any, blocking: Any) -> str:
    """`auto` picks terminate_blocker when a lock chain exists, else terminate_long, else none."""
    if mitigation not in MITIGATIONS:
        raise InvalidParameter(f"mitigation {mitigation!r} is not one of {', '.join(MITIGATIONS)}")
    if mitigation != "auto":
        return mitigation
    if blocking is not None and len(blocking):
        return "terminate_blocker"
    if long_running is not None and len(long_running):
        return "terminate_long"
    return "none"


def _row(r: Any, why: str) -> dict[str, Any]:
    d = {c: r.get(c) for c in TARGET_COLUMNS if c != "why"}
    for c in ("backend_start", "query_start"):  # pandas Timestamps -> datetimes for psycopg
        d[c] = d[c].to_pydatetime() if hasattr(d[c], "to_pydatetime") and d[c] == d[c] else d[c]
    d["why"] = why
    return d


def plan_sessions(mitigation: str, *, sessions: Any, blocking: Any, threshold_s: float,
                  pids: list[int] | None = None, own_pids: set[int] | frozenset[int] = frozenset()) -> ActionPlan:
    """Plan a session mitigation (auto, terminate_long, terminate_blocker, cancel, none) on one snapshot.

    With `pids`, exactly those pids are targeted (any backend type, as asked), never our own sessions."""
    import pandas as pd

    long_running = _long_running(sessions, threshold_s)
    roots = sorted({int(p) for p in blocking["root_blocking_pid"]}) if blocking is not None and len(blocking) else []
    action = choose(mitigation, long_running=long_running, blocking=roots)
    if action == "restart":
        raise InvalidParameter("restart is not a session mitigation: use plan_restart")
    kind = "cancel" if action == "cancel" else "terminate"
    by_pid = {int(r["pid"]): r for r in sessions.to_dict("records")} if sessions is not None and len(sessions) else {}
    own = {int(p) for p in own_pids} | {p for p, r in by_pid.items() if r.get("self")}
    wanted: list[tuple[int, str]] = []
    if pids:
        wanted = [(p, "asked for by pid") for p in pids]
    elif action in ("terminate_blocker", "cancel"):
        for root in roots:
            n = int(blocking[blocking["root_blocking_pid"] == root]["blocked_pid"].nunique())
            wanted.append((root, f"root blocker of {n} waiting session(s)"))
    if not pids and action in ("terminate_long", "cancel"):
        for r in long_running.to_dict("records"):
            if int(r["pid"]) not in {p for p, _ in wanted}:
                wanted.append((int(r["pid"]), f"active for {r['query_s']:.0f}s, over the {threshold_s:g}s threshold"))
    targets, skipped = [], []
    for pid, why in wanted:
        r = by_pid.get(pid)
        if pid in own:
            skipped.append({"pid": pid, "why": "this runbook's own session"})
        elif r is None:
            skipped.append({"pid": pid, "why": "no such backend (it ended, or the pid is wrong)"})
        elif r.get("hidden"):
            skipped.append({"pid": pid, "why": "hidden from this role (<insufficient privilege>): cannot check what it runs"})
        elif not pids and r.get("backend_type") != "client backend":
            skipped.append({"pid": pid, "why": f"{r.get('backend_type')}: only touched when asked for by pid"})
        elif kind == "cancel" and r.get("state") != "active":
            skipped.append({"pid": pid, "why": f"{r.get('state')}: no statement to cancel; terminate it instead"})
        else:
            targets.append(_row(r, why))
    reason = {"none": "no lock chain and no query over the threshold" if mitigation == "auto" else "mitigation=none"}.get(action, "")
    return ActionPlan(action=action, function=None if action == "none" else _FUNCTIONS[kind],
                      targets=pd.DataFrame(targets, columns=TARGET_COLUMNS), skipped=skipped, reason=reason)


def _long_running(sessions: Any, threshold_s: float) -> Any:
    import pandas as pd

    if sessions is None or len(sessions) == 0:
        return pd.DataFrame(columns=["pid", "query_s"])
    mask = (sessions["state"] == "active") & (sessions["query_s"] >= threshold_s) & ~sessions["self"]
    return sessions[mask].sort_values("query_s", ascending=False)


def apply_plan(plan: ActionPlan, *, dsn: str | None, apply: bool, run: Any = None, wait_s: float = 5.0,
               statement_timeout_ms: int = 5000, lock_timeout_ms: int = 1000) -> Any:
    """Do the plan when `apply` is True (else only say it was not done); the outcome per pid, recorded."""
    import pandas as pd

    cols = ["pid", "function", "outcome"]
    outcomes: list[dict[str, Any]] = []
    if plan.function and plan.pids and apply:
        conn = connect(dsn, read_only=False, application_name=MITIGATION_APP,
                       statement_timeout_ms=statement_timeout_ms, lock_timeout_ms=lock_timeout_ms)
        try:
            for t in plan.targets.to_dict("records"):
                outcomes.append({"pid": int(t["pid"]), "function": plan.function,
                                 "outcome": _signal(conn, plan.function, t, wait_s=wait_s)})
        finally:
            conn.close()
    elif plan.function and plan.pids:
        outcomes = [{"pid": p, "function": plan.function, "outcome": "not done (apply=False)"} for p in plan.pids]
    result = pd.DataFrame(outcomes, columns=cols)
    if run is not None:
        record = plan.as_record()
        record.update(applied=bool(apply and plan.pids and plan.function), at=datetime.now(UTC).isoformat(timespec="seconds"),
                      results=outcomes)
        run.record_action(record)
    return result


def _signal(conn: Any, function: str, target: dict[str, Any], *, wait_s: float) -> str:
    from psycopg import sql

    params = {"pid": int(target["pid"]), "backend_start": target["backend_start"]}
    try:
        rows = query(conn, sql.SQL(SIGNAL_SQL).format(function=sql.Identifier(function)), params, what=function)
    except DatabaseError as e:
        if e.sqlstate == "42501":
            return f"refused: {e}; grant pg_signal_backend to this role, or connect as the session's owner"
        return f"failed: {e}"
    if not rows:
        return "gone already (the backend ended or its pid was reused): nothing done"
    if not rows[0]["signalled"]:
        return f"{function} returned false: the backend could not be signalled"
    deadline = time.monotonic() + wait_s
    check = {**params, "query_start": target.get("query_start")}
    while True:
        left = query(conn, STILL_RUNNING_SQL, check, what="mitigation check")
        if not left:
            return "terminated" if function == "pg_terminate_backend" else "cancelled (the session ended)"
        if function == "pg_cancel_backend" and (left[0]["state"] != "active" or not left[0]["same_query"]):
            return f"cancelled: the session is now {left[0]['state']}"
        if time.monotonic() >= deadline:
            return f"signalled, but still there after {wait_s:g}s ({left[0]['state']})"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------- restart (last resort)
def _workload_paths(namespace: str, name: str) -> list[tuple[str, str]]:
    base = f"/apis/apps/v1/namespaces/{namespace}"
    return [("Deployment", f"{base}/deployments/{name}"), ("StatefulSet", f"{base}/statefulsets/{name}")]


def plan_restart(cluster: Any, *, namespace: str, name: str, timeout: float = 10) -> dict[str, Any]:
    """What `kubectl rollout restart` would restart: the Deployment (or StatefulSet) `name` and its replicas."""
    last: KubeAPIError | None = None
    for kind, path in _workload_paths(namespace, name):
        try:
            obj = cluster.get_json(path, timeout=timeout)
        except KubeAPIError as e:
            if e.status != 404:
                raise
            last = e
            continue
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return {"action": "restart", "kind": kind, "namespace": namespace, "name": name, "path": path,
                "replicas": spec.get("replicas"), "ready_replicas": status.get("readyReplicas", 0),
                "describe": (f"mitigation restart: would restart {kind.lower()} {namespace}/{name} "
                             f"({spec.get('replicas')} replica(s), {status.get('readyReplicas', 0)} ready) like "
                             f"`kubectl rollout restart {kind.lower()}/{name} -n {namespace}`: every database pod "
                             "is replaced and every connection drops")}
    raise KubeAPIError(f"no Deployment or StatefulSet {name!r} in namespace {namespace!r} ({last}); "
                       "set the `deployment` parameter to the database workload's name", status=404)


def apply_restart(cluster: Any, plan: dict[str, Any], *, apply: bool, run: Any = None,
                  timeout: float = 10) -> dict[str, Any]:
    """Patch the pod template's restartedAt annotation (what kubectl rollout restart sends), when `apply`."""
    at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    outcome = "not done (apply=False)"
    if apply:
        body = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: at}}}}}
        obj = cluster.write_json("PATCH", plan["path"], body, content_type="application/strategic-merge-patch+json",
                                 query={"fieldManager": "kubectl-rollout"}, timeout=timeout)
        generation = (obj.get("metadata") or {}).get("generation")
        outcome = f"restarted: {plan['kind'].lower()} {plan['namespace']}/{plan['name']} patched (generation {generation})"
    record = {k: plan[k] for k in ("action", "kind", "namespace", "name", "replicas")}
    record.update(applied=bool(apply), at=at, outcome=outcome)
    if run is not None:
        run.record_action(record)
    return record


def mitigate(run: Any, *, mitigation: str, apply: bool, dsn: str | None, sessions: Any, blocking: Any,
             threshold_s: float, pids: list[int] | None, own_pids: set[int], cluster: Any, namespace: str,
             deployment: str, statement_timeout_ms: int = 5000, lock_timeout_ms: int = 1000) -> dict[str, Any]:
    """The notebook's mitigation step: plan, show, do it only when `apply`, record; returns what happened."""
    from .runbook import show_table

    chosen = choose(mitigation, long_running=_long_running(sessions, threshold_s), blocking=blocking)
    if chosen == "restart":
        if cluster is None:
            run.skip("kubernetes: restart", "no cluster configured: the restart cannot even be planned")
            return {"action": "restart", "applied": False}
        out: dict[str, Any] = {"action": "restart", "applied": False}
        with run.source("kubernetes: restart"):
            restart = plan_restart(cluster, namespace=namespace, name=deployment)
            print(restart["describe"])
            out = apply_restart(cluster, restart, apply=apply, run=run)
            print(out["outcome"])
        return out
    if sessions is None or len(sessions) == 0:
        run.skip("postgres: mitigation", "no session snapshot (the database could not be read)")
        return {"action": chosen, "applied": False}
    plan = plan_sessions(mitigation, sessions=sessions, blocking=blocking, threshold_s=threshold_s, pids=pids,
                         own_pids=own_pids)
    print(plan.describe())
    show_table(plan.targets[["pid", "user", "application", "state", "backend_type", "query_s", "why", "query"]],
               empty="no session to touch")
    result = None
    with run.source("postgres: mitigation"):
        result = apply_plan(plan, dsn=dsn, apply=apply, run=run, statement_timeout_ms=statement_timeout_ms,
                            lock_timeout_ms=lock_timeout_ms)
        if len(result):
            show_table(result, caption="outcome:")
        if not apply and plan.pids:
            print("nothing was done: run again with apply=True to do it")
    return {"action": plan.action, "applied": bool(apply and plan.pids), "plan": plan, "result": result}
