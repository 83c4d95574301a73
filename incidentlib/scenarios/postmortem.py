"""The post-mortem of an incident, built from its evidence archive (never from HTML, never from
memory).

`load_incident` verifies every hash of `outputs/<incident>/` first (an altered file stops
everything), then reads each evidence notebook's scraps. Pure builders turn those into the merged
timeline (rollouts, first failures, restarts, warning events, health checks, long queries, blockers
and lock waits, severity changes, mitigations, recovery), the severity over time, the impact in
numbers, the findings with the file they came from, root-cause hypotheses from the strongest
correlations, and the list of evidence files with sha256."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InvalidParameter, RunbookError
from ..notebook import charts
from ..notebook.comms import resolution
from ..notebook.run import Run, show_list, show_table
from ..params import Parameters, duration, free_text, param, parse_duration
from ..severity import LEVELS, Severity

TIMELINE_COLUMNS = ["time", "kind", "what", "detail", "scenario", "run_id", "approximate"]
SEVERITY_COLUMNS = ["time", "level", "rank", "scenario", "run_id", "reason"]
KINDS = [
    "rollout",
    "first failure",
    "restart",
    "warning event",
    "health check",
    "idle in transaction",
    "blocker",
    "lock wait",
    "long query",
    "severity",
    "mitigation",
    "recovery",
]
FAILING = {
    "CrashLoopBackOff",
    "Error",
    "OOMKilled",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "RunContainerError",
    "Init:CrashLoopBackOff",
    "Init:Error",
}
CORRELATION_WINDOW = timedelta(hours=2)
_PLAIN_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.(?:ipynb|html)")


class EvidenceAltered(RunbookError):
    """An evidence file changed, went missing or appeared after it was archived: the post-mortem
    refuses to use it."""


@dataclass
class EvidenceRun:
    """One archived run: its manifest entry and the scraps its notebook glued."""

    entry: dict[str, Any]
    scraps: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.entry.get("run_id", ""))

    @property
    def scenario(self) -> str:
        return str(self.entry.get("scenario", ""))

    def scrap(self, name: str) -> Any:
        return self.scraps.get(name)

    def frame(self, name: str) -> pd.DataFrame | None:
        value = self.scraps.get(name)
        if isinstance(value, pd.DataFrame):
            return value
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return pd.DataFrame(value)
        return None

    def time(self, which: str = "started_at") -> pd.Timestamp | None:
        return _ts(self.scraps.get(which) or self.entry.get(which))


@dataclass
class Incident:
    """An incident's manifest and its evidence runs (post-mortem runs aside), oldest first."""

    incident: str
    directory: Path | str  # a folder, or the incident's s3:// URL
    manifest: dict[str, Any]
    runs: list[EvidenceRun]
    verified: list[str] = field(default_factory=list)


def _ts(value: Any) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def load_incident(
    incident_dir: str | os.PathLike[str], *, skip_scenarios: Iterable[str] = ("postmortem",)
) -> Incident:
    """Verify every hash of the incident's archive, then read the scraps of each evidence notebook.

    Raises EvidenceAltered (listing what changed, went missing or appeared) before reading
    anything."""
    from ..evidence.manifest import load_manifest, read_scraps, verify
    from ..evidence.storage import is_s3, join

    root: Path | str = str(incident_dir) if is_s3(incident_dir) else Path(incident_dir)
    name = str(root).rstrip("/").rpartition("/")[2]
    report = verify(root)
    if not report.ok:
        raise EvidenceAltered(
            f"the evidence of {name} does not match its manifest; the post-mortem will not "
            "use it:\n  "
            + "\n  ".join(report.lines())
            + "\nrestore the original files (or find out who changed them) before writing the "
            "post-mortem"
        )
    manifest = load_manifest(root)
    skip = set(skip_scenarios)
    runs = []
    for entry in manifest.get("runs", []):
        if entry.get("scenario") in skip:
            continue
        nb = next(
            (
                f["path"]
                for f in entry.get("files", [])
                if str(f.get("path", "")).endswith(".ipynb")
            ),
            None,
        )
        scraps: dict[str, Any] = {}
        if nb is not None:
            try:
                scraps = read_scraps(join(root, nb))
            except (
                Exception
            ) as e:  # a run that died early may carry no readable scraps: still listed
                scraps = {"_error": f"scraps unreadable: {type(e).__name__}: {e}"}
        runs.append(EvidenceRun(entry=entry, scraps=scraps))
    runs.sort(key=lambda r: (r.time() or pd.Timestamp.max.tz_localize("UTC"), r.run_id))
    return Incident(
        incident=str(manifest.get("incident", name)),
        directory=root,
        manifest=manifest,
        runs=runs,
        verified=list(report.matching),
    )


# ----------------------------------------------------------------------------------------- timeline
def _event(
    time: Any,
    kind: str,
    what: str,
    run: EvidenceRun,
    detail: str = "",
    *,
    approximate: bool = False,
) -> dict[str, Any] | None:
    ts = _ts(time)
    if ts is None:
        return None
    return {
        "time": ts,
        "kind": kind,
        "what": what,
        "detail": detail,
        "scenario": run.scenario,
        "run_id": run.run_id,
        "approximate": approximate,
    }


def _short(text: Any, width: int = 100) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


def _rollout_events(run: EvidenceRun) -> list[dict[str, Any] | None]:
    df = run.frame("rollouts")
    if df is None or df.empty or "created" not in df:
        return []
    given = run.entry.get("parameters") or {}
    default = given.get("app_deployment") or given.get("deployment") or "deployment"
    out = []
    for _, r in df.iterrows():
        dep = (
            r.get("deployment")
            if "deployment" in df and isinstance(r.get("deployment"), str)
            else None
        )
        if dep is None and isinstance(r.get("replicaset"), str) and "-" in r["replicaset"]:
            dep = r["replicaset"].rsplit("-", 1)[0]  # <deployment>-<pod-template-hash>
        dep = dep or default
        out.append(
            _event(
                r["created"],
                "rollout",
                f"{dep} revision {int(r['revision'])} rolled out ({r.get('images', '')})",
                run,
                str(r.get("change_cause") or ""),
            )
        )
    return out


def _pods(run: EvidenceRun) -> pd.DataFrame | None:
    frames = [
        f for f in (run.frame("pods"), run.frame("unhealthy_pods")) if f is not None and not f.empty
    ]
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    return df.drop_duplicates(subset=[c for c in ("namespace", "name") if c in df], keep="first")


def _failure_events(run: EvidenceRun) -> list[dict[str, Any] | None]:
    pods = _pods(run)
    if pods is None or "status" not in pods:
        return []
    events = run.frame("events")
    out: list[dict[str, Any] | None] = []
    restarts = pods["restarts"] if "restarts" in pods else pd.Series(0, index=pods.index)
    failing = pods[pods["status"].isin(FAILING) | (restarts > 0)]
    owners = (
        failing["owner"].fillna("").astype(str)
        if "owner" in failing
        else pd.Series("", index=failing.index)
    )
    for owner, grp in failing.groupby(owners, sort=False):
        names = set(grp["name"])
        first = None
        if (
            events is not None
            and not events.empty
            and {"type", "object", "first_seen"} <= set(events.columns)
        ):
            warn = events[
                (events["type"] == "Warning") & events["object"].isin({f"pod/{n}" for n in names})
            ]
            if len(warn):
                first = pd.to_datetime(warn["first_seen"], utc=True).min()
        approximate = first is None or pd.isna(first)
        if approximate and "created" in grp:
            first = pd.to_datetime(grp["created"], utc=True).min()
        statuses = ", ".join(sorted(set(grp["status"])))
        codes = sorted({int(c) for c in grp["exit_code"].dropna()}) if "exit_code" in grp else []
        label = owner or "(no owner)"
        code_txt = f", exit code {', '.join(map(str, codes))}" if codes else ""
        pods_txt = "1 pod" if len(grp) == 1 else f"{len(grp)} pods"
        out.append(
            _event(
                first,
                "first failure",
                f"{label}: first failure ({pods_txt} {statuses}{code_txt})",
                run,
                "time of the first warning event of its pods"
                if not approximate
                else "no event seen: the failing pods' creation time",
                approximate=approximate,
            )
        )
        if "last_restart" in grp and grp["last_restart"].notna().any():
            total = int(grp["restarts"].sum()) if "restarts" in grp else 0
            out.append(
                _event(
                    pd.to_datetime(grp["last_restart"], utc=True).max(),
                    "restart",
                    f"{label}: {total} restarts so far (latest)",
                    run,
                )
            )
    return out


def _warning_events(run: EvidenceRun, *, limit: int = 30) -> list[dict[str, Any] | None]:
    events = run.frame("events")
    if events is None or events.empty or "type" not in events:
        return []
    warn = (
        events[events["type"] == "Warning"]
        .sort_values("count", ascending=False, kind="stable")
        .head(limit)
    )
    return [
        _event(
            e["first_seen"],
            "warning event",
            f"{e['reason']} {e['object']} (x{int(e['count'])})",
            run,
            _short(e.get("message")),
        )
        for _, e in warn.iterrows()
    ]


def _health_events(run: EvidenceRun) -> list[dict[str, Any] | None]:
    at = run.time()
    summary = run.frame("latency_summary")
    out: list[dict[str, Any] | None] = []
    if summary is not None and not summary.empty and "error_rate" in summary:
        s = summary.iloc[0]
        if pd.notna(s["error_rate"]):
            out.append(
                _event(
                    at,
                    "health check",
                    f"{run.scenario}: error rate {float(s['error_rate']) * 100:.1f}% over "
                    f"{int(s.get('count', 0))} probes, p95 "
                    f"{float(s.get('p95_ms', float('nan'))):.0f} ms",
                    run,
                )
            )
        return out
    health = run.frame("health")
    if health is not None and not health.empty and "status" in health:
        status = pd.to_numeric(health["status"], errors="coerce")
        failed = (
            int((health["error"].notna() | status.isna() | (status >= 400)).sum())
            if "error" in health
            else int((status >= 400).sum())
        )
        out.append(
            _event(
                at,
                "health check",
                f"{run.scenario}: {failed} of {len(health)} health probes failed",
                run,
            )
        )
    return out


def _snapshot_time(blocking: pd.DataFrame) -> pd.Timestamp | None:
    """When the blocking snapshot was taken: a blocker's transaction start plus its age at that
    instant."""
    if not {"blocking_xact_start", "blocking_xact_s"} <= set(blocking.columns):
        return None
    known = blocking.dropna(subset=["blocking_xact_start", "blocking_xact_s"])
    if known.empty:
        return None
    r = known.iloc[0]
    start = _ts(r["blocking_xact_start"])
    return start + pd.Timedelta(seconds=float(r["blocking_xact_s"])) if start is not None else None


def _database_events(run: EvidenceRun) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    at = run.time()
    blocking = run.frame("blocking")
    if blocking is not None and not blocking.empty and "root_blocking_pid" in blocking:
        for root, grp in blocking.groupby("root_blocking_pid", sort=False):
            own = blocking[blocking["blocking_pid"] == root]
            info = own.iloc[0] if len(own) else grp.iloc[0]
            n = int(grp["blocked_pid"].nunique())
            start = info.get("blocking_xact_start") if len(own) else None
            app = info.get("blocking_application") or "?"
            state = info.get("blocking_state") or "?"
            out.append(
                _event(
                    start,
                    "blocker",
                    f"pid {int(root)} (app {app}, {state}) began the transaction that blocks {n} "
                    "sessions "
                    f"(root blocker)",
                    run,
                    _short(info.get("blocking_query")),
                )
            )
        snapshot = _snapshot_time(blocking) or at
        for _, r in blocking.iterrows():
            wait_start = (
                snapshot - pd.Timedelta(seconds=float(r["wait_s"]))
                if snapshot is not None and pd.notna(r["wait_s"])
                else None
            )
            out.append(
                _event(
                    wait_start,
                    "lock wait",
                    f"pid {int(r['blocked_pid'])} waits for pid {int(r['blocking_pid'])} "
                    f"({r.get('mode')} on "
                    f"{r.get('relation') or r.get('locktype')})",
                    run,
                    _short(r.get("blocked_query")),
                    approximate=True,
                )
            )
    for scrap, col, kind, text, secs in _SESSION_EVENTS:
        df = run.frame(scrap)
        if df is None or df.empty or col not in df:
            continue
        for _, r in df.iterrows():
            out.append(
                _event(
                    r[col],
                    kind,
                    f"pid {int(r['pid'])} (app {r.get('application') or '?'}) "
                    + text.format(float(r.get(secs) or 0)),
                    run,
                    _short(r.get("query")),
                )
            )
    return out


_SESSION_EVENTS = (  # scrap, time column, kind, what happened, the seconds column
    (
        "long_running",
        "query_start",
        "long query",
        "started a query still running after {:.0f} s",
        "query_s",
    ),
    (
        "idle_in_transaction",
        "xact_start",
        "idle in transaction",
        "opened a transaction, idle {:.0f} s when seen",
        "idle_s",
    ),
)


def _severity_events(run: EvidenceRun) -> list[dict[str, Any] | None]:
    sev = run.scrap("severity")
    if not isinstance(sev, Mapping) or not sev.get("level"):
        return []
    return [
        _event(
            run.time("finished_at") or run.time(),
            "severity",
            f"{run.scenario}: {sev['level']}",
            run,
            _short(sev.get("reason"), 160),
        )
    ]


def _mitigation_events(run: EvidenceRun) -> list[dict[str, Any] | None]:
    actions = run.scrap("actions")
    if not isinstance(actions, list):
        return []
    out = []
    for a in actions:
        if not isinstance(a, Mapping) or not a.get("applied"):
            continue
        what = a.get("summary") or a.get("description") or a.get("action") or "mitigation"
        status = a.get("status") or a.get("outcome") or ""
        out.append(
            _event(
                a.get("finished_at") or a.get("at") or run.scrap("finished_at"),
                "mitigation",
                f"{run.scenario}: {what}" + (f" ({status})" if status else ""),
                run,
                _short(a.get("detail")),
            )
        )
    return out


def _recovery_events(runs: list[EvidenceRun]) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    worst_so_far = len(LEVELS) + 1
    for run in runs:
        sev = run.scrap("severity")
        figures = run.scrap("figures") if isinstance(run.scrap("figures"), Mapping) else {}
        if figures.get("recovery_verdict") == "recovered":
            out.append(
                _event(
                    run.time("finished_at"),
                    "recovery",
                    f"{run.scenario}: recovered against its baseline",
                    run,
                )
            )
        if isinstance(sev, Mapping) and sev.get("level") in LEVELS:
            rank = LEVELS.index(sev["level"]) + 1
            if rank == len(LEVELS) and worst_so_far < len(LEVELS):
                out.append(
                    _event(
                        run.time("finished_at"),
                        "recovery",
                        f"{run.scenario}: back to SEV4 after {LEVELS[worst_so_far - 1]}",
                        run,
                    )
                )
            worst_so_far = min(worst_so_far, rank)
    return out


def timeline_frame(runs: list[EvidenceRun]) -> pd.DataFrame:
    """Every moment of the incident from every run, merged and de-duplicated, oldest first."""
    rows: list[dict[str, Any] | None] = []
    for run in runs:
        for part in (
            _rollout_events,
            _failure_events,
            _warning_events,
            _health_events,
            _database_events,
            _severity_events,
            _mitigation_events,
        ):
            rows.extend(part(run))
    rows.extend(_recovery_events(runs))
    df = pd.DataFrame([r for r in rows if r is not None], columns=TIMELINE_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df["approximate"] = df["approximate"].astype(bool)
    # the same fact seen by several runs (triage and outage both read the rollouts) appears once:
    # the first
    key = df["kind"] + "|" + df["what"]
    dedupe = df["kind"].isin(
        [
            "rollout",
            "first failure",
            "restart",
            "warning event",
            "blocker",
            "lock wait",
            "long query",
            "idle in transaction",
        ]
    )
    df = df[~(dedupe & key.duplicated(keep="first"))]
    df["_order"] = df["kind"].map({k: i for i, k in enumerate(KINDS)})
    df = (
        df.sort_values(["time", "_order"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    previous = None
    for i in df.index[df["kind"] == "severity"]:  # a severity change says what it changed from
        level = str(df.at[i, "what"]).rsplit(": ", 1)[-1]
        if previous is not None and level != previous:
            df.at[i, "what"] = f"{df.at[i, 'what']} (from {previous})"
        previous = level
    return df


def incident_window(
    timeline: pd.DataFrame, *, before: timedelta = timedelta(minutes=10)
) -> pd.DataFrame:
    """The timeline from shortly before the first failure (keeping the last rollout before it), to
    the end."""
    if timeline.empty:
        return timeline
    trouble = timeline[~timeline["kind"].isin(["rollout", "severity", "mitigation", "recovery"])]
    if trouble.empty:
        return timeline
    start = trouble["time"].min() - pd.Timedelta(before)
    keep = timeline["time"] >= start
    rollouts = timeline[(timeline["kind"] == "rollout") & ~keep]
    if len(rollouts) and not (keep & (timeline["kind"] == "rollout")).any():
        keep |= timeline.index == rollouts["time"].idxmax()
    return timeline[keep].reset_index(drop=True)


def severity_frame(runs: list[EvidenceRun]) -> pd.DataFrame:
    """The severity each run assessed, in time order (the severity over time)."""
    rows = []
    for run in runs:
        sev = run.scrap("severity")
        if isinstance(sev, Mapping) and sev.get("level") in LEVELS:
            rows.append(
                {
                    "time": run.time("finished_at") or run.time(),
                    "level": sev["level"],
                    "rank": LEVELS.index(sev["level"]) + 1,
                    "scenario": run.scenario,
                    "run_id": run.run_id,
                    "reason": str(sev.get("reason", "")),
                }
            )
    df = pd.DataFrame(rows, columns=SEVERITY_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df["rank"] = df["rank"].astype("int64")
    return df.sort_values("time", kind="stable").reset_index(drop=True)


_IMPACT = [  # figure, label, how to combine, format
    ("pods_down", "pods down (at worst)", "max", "{:.0f}"),
    ("error_rate", "error rate (at worst)", "max", "{:.1%}"),
    ("p95_ms", "p95 latency, ms (at worst)", "max", "{:.0f}"),
    ("blocked_sessions", "database sessions blocked (at worst)", "max", "{:.0f}"),
    ("longest_lock_wait_s", "longest lock wait, s", "max", "{:.0f}"),
    ("connections_used", "database connections used (at worst)", "max", "{:.0f}"),
    ("long_running_queries", "long-running queries", "max", "{:.0f}"),
    ("oom_kills", "OOM kills", "max", "{:.0f}"),
    ("restarts", "container restarts", "max", "{:.0f}"),
]


def impact_frame(runs: list[EvidenceRun], timeline: pd.DataFrame | None = None) -> pd.DataFrame:
    """The impact in numbers: the worst value of each figure over the runs, the run that measured
    it, and the duration."""
    rows = []
    for key, label, _, fmt in _IMPACT:
        best: tuple[float, EvidenceRun] | None = None
        for run in runs:
            figures = run.scrap("figures")
            if not isinstance(figures, Mapping):
                continue
            v = figures.get(key)
            if v is None or isinstance(v, bool) or not isinstance(v, int | float) or pd.isna(v):
                continue
            if best is None or float(v) > best[0]:
                best = (float(v), run)
        if best is not None:
            rows.append(
                {"figure": label, "value": fmt.format(best[0]), "measured_by": best[1].run_id}
            )
    if timeline is not None and not timeline.empty:
        trouble = timeline[
            ~timeline["kind"].isin(["rollout", "severity", "mitigation", "recovery"])
        ]
        if len(trouble):
            start = trouble["time"].min()
            rec = timeline[(timeline["kind"] == "recovery") & (timeline["time"] >= start)]
            end = rec["time"].min() if len(rec) else timeline["time"].max()
            minutes = int((end - start).total_seconds() // 60)
            rows.append(
                {
                    "figure": "duration, min (first failure to "
                    + ("recovery" if len(rec) else "last evidence")
                    + ")",
                    "value": str(minutes),
                    "measured_by": "timeline",
                }
            )
    return pd.DataFrame(rows, columns=["figure", "value", "measured_by"])


def _files(entry: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for f in entry.get("files", []):
        path = str(f.get("path", ""))
        out[path.rsplit(".", 1)[-1]] = path
    return out


def findings_frame(runs: list[EvidenceRun]) -> pd.DataFrame:
    """Every run's findings, most severe first, each with the evidence notebook (and HTML) it came
    from."""
    rows = []
    for run in runs:
        files = _files(run.entry)
        for f in run.scrap("findings") or []:
            if not isinstance(f, Mapping):
                continue
            rows.append(
                {
                    "severity": f.get("severity"),
                    "title": f.get("title"),
                    "detail": f.get("detail"),
                    "next_step": f.get("next_step"),
                    "scenario": run.scenario,
                    "run_id": run.run_id,
                    "evidence": files.get("html") or files.get("ipynb", ""),
                }
            )
    cols = ["severity", "title", "detail", "next_step", "scenario", "run_id", "evidence"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["severity", "run_id"], kind="stable").reset_index(drop=True)


def evidence_frame(manifest: Mapping[str, Any]) -> pd.DataFrame:
    """Each archived file with its run, status and sha256 (the links of the post-mortem)."""
    rows = []
    for entry in manifest.get("runs", []):
        for f in entry.get("files", []):
            rows.append(
                {
                    "run_id": entry.get("run_id"),
                    "scenario": entry.get("scenario"),
                    "status": entry.get("status"),
                    "started_at": entry.get("started_at"),
                    "path": f.get("path"),
                    "sha256": f.get("sha256"),
                }
            )
    return pd.DataFrame(
        rows, columns=["run_id", "scenario", "status", "started_at", "path", "sha256"]
    )


# --------------------------------------------------------------------------------------- hypotheses
def _hhmm(ts: pd.Timestamp) -> str:
    return ts.strftime("%H:%M:%S")


def _gap(seconds: float) -> str:
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def hypotheses(
    timeline: pd.DataFrame, *, window: timedelta = CORRELATION_WINDOW
) -> list[dict[str, Any]]:
    """Root-cause hypotheses from the strongest correlations, strongest (shortest gap) first.

    A rollout followed by the first failure of the same deployment's pods; a root blocker whose
    transaction began before the lock waits piled up behind it. Hypotheses, for people to confirm or
    reject."""
    out: list[dict[str, Any]] = []
    rollouts = timeline[timeline["kind"] == "rollout"]
    failures = timeline[timeline["kind"] == "first failure"]
    for _, f in failures.iterrows():
        owner = str(f["what"]).split(":", 1)[0]
        mine = rollouts[
            rollouts["what"].str.startswith(owner + " revision ") & (rollouts["time"] <= f["time"])
        ]
        if mine.empty:
            continue
        r = mine.loc[mine["time"].idxmax()]
        gap = (f["time"] - r["time"]).total_seconds()
        if gap > window.total_seconds() or str(r["what"]).startswith(owner + " revision 1 "):
            continue  # too long before, or the first revision: a creation, not a change
        rev = str(r["what"]).split(" rolled out")[0]
        out.append(
            {
                "kind": "rollout followed by failures",
                "gap_s": gap,
                "cause_time": r["time"],
                "effect_time": f["time"],
                "hypothesis": f"{rev} (rolled out at {_hhmm(r['time'])}) caused the failures of "
                f"{owner}: its pods first failed "
                f"{_gap(gap)} later, at {_hhmm(f['time'])} ({str(f['what']).split(': ', 1)[-1]}). "
                f"To confirm: roll back to the previous revision and watch the pods recover.",
            }
        )
    blockers = timeline[timeline["kind"] == "blocker"]
    waits = timeline[timeline["kind"] == "lock wait"]
    for _, b in blockers.iterrows():
        pid = str(b["what"]).split(" ")[1]
        behind = waits[waits["what"].str.contains(f"waits for pid {pid} ", regex=False)]
        n_text = str(b["what"]).split("blocks ")[-1].split(" sessions")[0]
        first_wait = behind["time"].min() if len(behind) else None
        gap = (first_wait - b["time"]).total_seconds() if first_wait is not None else 0.0
        when = "within a second" if 0 <= gap < 1 else f"≈{_gap(gap)} later"
        piled = (
            f"the first lock wait behind it began {when} (≈{_hhmm(first_wait)})"
            if first_wait is not None
            else "sessions queued behind it"
        )
        out.append(
            {
                "kind": "blocker followed by a pile-up",
                "gap_s": gap,
                "cause_time": b["time"],
                "effect_time": first_wait,
                "hypothesis": f"pid {pid} held a transaction open from {_hhmm(b['time'])} "
                f"({str(b['what']).split('(', 1)[1].split(')')[0]}) "
                f"and blocked {n_text} sessions: {piled}. To confirm: what did pid {pid} do, and "
                "did the "
                f"queue drain when it ended?",
            }
        )
    return sorted(out, key=lambda h: h["gap_s"])


def merged_run(incident: Incident, timeline: pd.DataFrame) -> Run:
    """One Run holding the whole incident: every finding and mitigation, the worst figures, and when
    it started.

    For the resolution message (`comms.resolution`): its duration runs from the first failure."""
    run = Run("incident", params={"incident_id": incident.incident}, quiet=True)
    for r in incident.runs:
        run.findings.extend(dict(f) for f in r.scrap("findings") or [] if isinstance(f, Mapping))
        run.actions.extend(dict(a) for a in r.scrap("actions") or [] if isinstance(a, Mapping))
        figures = r.scrap("figures")
        for k, v in figures.items() if isinstance(figures, Mapping) else ():
            if isinstance(v, int | float) and not isinstance(v, bool) and not pd.isna(v):
                run.figures[k] = max(v, run.figures.get(k, v))
    trouble = (
        timeline[~timeline["kind"].isin(["rollout", "severity", "mitigation", "recovery"])]
        if len(timeline)
        else timeline
    )
    if len(trouble):
        run.figures["incident_started"] = trouble["time"].min().isoformat()
    return run


def resolved_at(timeline: pd.DataFrame) -> pd.Timestamp | None:
    """The first recovery after the trouble began, else None (the incident is not known to be
    over)."""
    rec = timeline[timeline["kind"] == "recovery"] if len(timeline) else timeline
    return rec["time"].min() if len(rec) else None


def readable(timeline: pd.DataFrame) -> pd.DataFrame:
    """The timeline for people: UTC times to the second (≈ marks a derived one), the run id left to
    the scrap."""
    out = timeline.copy()
    out["time"] = [
        ("≈" if a else "") + t.strftime("%Y-%m-%d %H:%M:%S")
        for t, a in zip(out["time"], out["approximate"], strict=True)
    ]
    return out.drop(columns=["approximate", "run_id"])


# ------------------------------------------------------------------------------------- the notebook
def _required(value: Any, name: str) -> str:
    if not value or not isinstance(value, str):
        raise InvalidParameter(f"{name} is required: runbook postmortem --incident INC-...")
    return value


@dataclass(frozen=True)
class Params(Parameters):
    """The post-mortem notebook's parameters, checked."""

    incident_id: str = param(None, check=_required)
    outputs: str = param("outputs", check=free_text)
    correlation_window: str = param("2h", check=duration)

    @property
    def incident_dir(self) -> Path | str:
        from ..evidence.storage import join

        return join(self.outputs, self.incident_id)  # a folder, or s3://bucket/prefix/<incident>

    @property
    def window(self) -> timedelta:
        return parse_duration(self.correlation_window, what="correlation_window")


def show_runs(incident: Incident) -> None:
    """What was verified, and the runs of the incident."""
    print(
        f"incident {incident.incident}: {len(incident.runs)} evidence runs, "
        f"{len(incident.verified)} files "
        "verified (sha256)"
    )
    show_table(
        evidence_frame(incident.manifest).drop_duplicates("run_id")[
            ["run_id", "scenario", "status", "started_at"]
        ]
    )


def show_timeline(timeline: pd.DataFrame) -> None:
    """The incident's window of the timeline, as a table and a chart."""
    shown = incident_window(timeline)
    show_table(readable(shown), max_rows=60, empty="no evidence with a time")
    charts.show(charts.incident_timeline(shown))


def show_severity(severity: pd.DataFrame) -> Severity:
    """Each run's severity as a table and a chart; returns the worst of the incident."""
    show_table(severity, empty="no run assessed a severity")
    charts.show(charts.severity_over_time(severity))
    if severity.empty:
        return Severity("SEV4", "no-impact", "no run assessed a severity")
    worst = severity.sort_values("rank", kind="stable").iloc[0]
    return Severity(
        worst["level"], "worst-of-incident", f"the worst severity assessed: {worst['reason']}"
    )


def show_hypotheses(found: list[dict[str, Any]]) -> None:
    """The root-cause hypotheses as a numbered list, marked as such (escaped: they quote images,
    apps and queries from the evidence)."""
    if not found:
        print(
            "No correlation was strong enough to suggest a cause: write it from the findings above."
        )
    show_list([str(h["hypothesis"]) for h in found], label="Hypothesis:")


def show_resolution(incident: Incident, timeline: pd.DataFrame, severity: Severity) -> None:
    """The runbook's resolution message from the whole incident; its duration runs to the recovery
    (or to the last evidence while none is recorded)."""
    over = resolved_at(timeline)
    end = over if over is not None else (timeline["time"].max() if len(timeline) else None)
    print(
        resolution(
            merged_run(incident, timeline), severity, incident_id=incident.incident, resolved_at=end
        )
    )
    if over is None:
        print(
            "(no recovery is recorded in the evidence yet: the duration runs to the last evidence)"
        )


def show_evidence_files(files: pd.DataFrame) -> None:
    """Each archived file with its sha256, linked (relative links to files beside this one; the
    names come from the manifest, so they are escaped and only plain file names are linked)."""
    import html

    from IPython.display import display

    if files.empty:
        print("(no files)")
        return
    rows = []
    for r in files.itertuples():
        name = html.escape(str(r.path))
        link = f'<a href="{name}">{name}</a>' if _PLAIN_FILE.fullmatch(str(r.path)) else name
        rows.append(
            f"<li>{link} ({html.escape(str(r.scenario))}, {html.escape(str(r.status))}) "
            f"sha256 <code>{html.escape(str(r.sha256))}</code></li>"
        )
    plain = "\n".join(
        f"- {r.path} ({r.scenario}, {r.status}) sha256 {r.sha256}" for r in files.itertuples()
    )
    display({"text/html": f"<ul>{''.join(rows)}</ul>", "text/plain": plain}, raw=True)
