"""The runbook's notification templates, filled from what a notebook measured, and a webhook post.

Templates (the runbook's "Communication Templates"; plain text that pastes into Slack as it is):

    🚨 INCIDENT: <title>            📊 UPDATE: <title>            ✅ RESOLVED: <title>
    Severity / Status / Impact /    Status / Progress /           Duration / Impact / Root Cause /
    Started / Response / Next       Next Steps / ETA              Resolution / Post-mortem
    Update / Paged / Commander

and, for SEV1 and SEV2, a customer-facing message (no internal name in it: no pod, deployment, node,
database or query; its impact in customers' words, from the same figures).

Every figure comes from `run.figures` (pods_down, pods_total, error_rate, p95_ms, probes,
blocked_sessions...), `run.findings`, `run.actions` and the Severity; who is paged comes from the
`escalation` parameter, what the commander declared (data loss, a security breach, failing payments)
and the monitoring links (`grafana_url`, `logs_url`, `status_page_url`: linked, never fetched) from
the run's parameters. What nobody measured or gave is left as a visible `[fill in: ...]`.

The status moves as the incident does (`status_of`): Investigating (no finding explains it),
Identified (a root-cause finding), Mitigating (a mitigation applied, recovery not yet verified),
Resolved (a recovery verification passed). The `notifications` scrap keeps one row per message
(NOTIFICATION_COLUMNS)."""

from __future__ import annotations

import contextlib
import html
import http.client
import json
import math
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import InvalidParameter
from ..params import parse_escalation, parse_time, url_origin, webhook
from ..redact import redact_text
from ..severity import DECLARED, LEVELS, Severity
from .run import Run

# What a scenario notebook adds to its parameters cell, and as its last code cell (after severity
# and mitigations).
NOTEBOOK_PARAMETERS = (
    "commander = None  # incident commander named in the notifications\n"
    "notify_webhook = None  # Slack-compatible incoming-webhook URL: post the status update there "
    "(never by default)"
)
NOTEBOOK_CELL = (
    "from incidentlib.notebook.comms import show_notifications\n"
    "\n"
    "show_notifications(run, severity, incident_id=incident_id, commander=commander, "
    "notify_webhook=notify_webhook,\n"
    '                   post="update");'
)

# How soon the next update is due, by severity (the runbook: SEV1 every 15 min, SEV2 every 30
# min...).
UPDATE_EVERY: dict[str, timedelta] = {
    "SEV1": timedelta(minutes=15),
    "SEV2": timedelta(minutes=30),
    "SEV3": timedelta(hours=1),
    "SEV4": timedelta(hours=4),
}

# The runbook's response targets: how soon someone must be on it, by severity.
RESPOND_WITHIN: dict[str, str] = {
    "SEV1": "15 minutes",
    "SEV2": "1 hour",
    "SEV3": "4 hours",
    "SEV4": "the next business day",
}
CUSTOMER_LEVELS = ("SEV1", "SEV2")  # severities that get a customer-facing message
STATUSES = ("Investigating", "Identified", "Mitigating", "Resolved")
NOTIFICATION_COLUMNS = ["kind", "text", "posted", "post_result"]
"""The `notifications` scrap: one row per message; kind initial, update, resolution or customer;
`posted` True for the one a webhook accepted, `post_result` the webhook's one-line result."""
LINKS = (("grafana_url", "Grafana"), ("logs_url", "Logs"), ("status_page_url", "Status page"))

# What a customer reads about each declared condition (never an internal name).
_DECLARED_FOR_CUSTOMERS = {
    "data_loss": "Some recently saved data may be affected; we will contact affected customers "
    "directly.",
    "security_incident": "We are investigating a security issue and will share what we learn.",
    "payment_failure": "Payments may fail or be delayed.",
}

# Figure names the notebooks use, and the aliases accepted for each.
_FIGURES: dict[str, tuple[str, ...]] = {
    "pods_down": ("pods_down", "unhealthy_pods", "pods_not_ready"),
    "pods_total": ("pods_total", "pods_wanted", "desired_pods"),
    "error_rate": ("error_rate",),
    "p95_ms": ("p95_ms", "latency_p95_ms", "p95_latency_ms"),
    "blocked_sessions": ("blocked_sessions", "blocked", "lock_waits"),
    "connections_used": ("connections_used", "connections"),
    "max_connections": ("max_connections",),
}

FILL = "[fill in: {}]"


def _figure(figures: Mapping[str, Any], name: str) -> Any:
    for key in _FIGURES.get(name, (name,)):
        value = figures.get(key)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        return value
    return None


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def impact_text(figures: Mapping[str, Any]) -> str:
    """The impact in numbers, from the measured figures: pods down, error rate, p95 latency, blocked
    sessions."""
    parts: list[str] = []
    down, total = _figure(figures, "pods_down"), _figure(figures, "pods_total")
    if down is not None:
        of = f" of {int(total)}" if total is not None else ""
        parts.append(f"{int(down)}{of} pods down")
    rate = _figure(figures, "error_rate")
    if rate is not None:
        parts.append(f"error rate {float(rate) * 100:.1f}%")
    p95 = _figure(figures, "p95_ms")
    if p95 is not None:
        parts.append(f"p95 latency {float(p95):.0f} ms")
    probes, failed_probes = figures.get("probes"), figures.get("probe_failures")
    if probes and failed_probes:
        parts.append(f"{int(failed_probes)} of {int(probes)} health probes failed")
    blocked = _figure(figures, "blocked_sessions")
    if blocked is not None:
        parts.append(f"{_plural(int(blocked), 'blocked session')}")
    used, limit = _figure(figures, "connections_used"), _figure(figures, "max_connections")
    if used is not None:
        parts.append(
            f"{int(used)}{f'/{int(limit)}' if limit is not None else ''} database connections"
        )
    if figures.get("health_ok") is False:
        parts.insert(0, "health check failing")
    if figures.get("database_reachable") is False:
        parts.insert(0, "database unreachable")
    return ", ".join(parts) if parts else FILL.format("impact on users")


def _declared(run: Run) -> list[str]:
    """The keys of severity.DECLARED the run's parameters set True (data_loss...)."""
    return [k for k in DECLARED if run.params.get(k) is True]


def _declared_line(run: Run) -> list[str]:
    named = [DECLARED[k] for k in _declared(run)]
    return [f"Declared: {', '.join(named)} (SEV1, whatever the figures say)"] if named else []


def links(values: Any) -> list[tuple[str, str]]:
    """(label, URL) of the monitoring links given (`grafana_url`, `logs_url`,
    `status_page_url`), from a run's parameters (a dict) or a checked Params; query values
    redacted, as everywhere in the evidence."""
    get = values.get if isinstance(values, Mapping) else (lambda k: getattr(values, k, None))
    return [(label, redact_text(str(get(key)))) for key, label in LINKS if get(key)]


def _links_line(run: Run) -> list[str]:
    given = links(run.params)
    return ["Links: " + " · ".join(f"{label} {url}" for label, url in given)] if given else []


def status_of(run: Run) -> str:
    """Where the incident stands: Resolved (a recovery verification passed: the performance
    runbook's verdict `recovered`, or the outage runbook's health check after a mitigation),
    Mitigating (a mitigation applied, not yet verified), Identified (a root-cause finding), else
    Investigating."""
    if run.figures.get("recovery_verdict") == "recovered" or run.figures.get("recovered") is True:
        return "Resolved"
    if any(_applied(a) for a in run.actions):
        return "Mitigating"
    if any(f.get("root_cause") for f in run.findings):
        return "Identified"
    return "Investigating"


def paged(escalation: str | None, level: str) -> str:
    """Who is paged at this severity, as the `escalation` parameter says; never invented."""
    if not escalation:
        return FILL.format(f"who is paged for {level} (give the escalation parameter)")
    who = parse_escalation(escalation).get(level)
    return who or f"nobody: escalation names no one for {level}"


def _ordered(findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rank = {lvl: i for i, lvl in enumerate(LEVELS)}
    return sorted(findings, key=lambda f: rank.get(str(f.get("severity")), len(LEVELS)))


def incident_title(run: Run, severity: Severity) -> str:
    """The title: the most severe finding's title, else the scenario and the severity's reason."""
    findings = _ordered(run.findings)
    if findings and findings[0].get("title"):
        return str(findings[0]["title"])
    return f"{run.scenario}: {severity.reason.split(' (rule:')[0]}"


def _utc(value: str | datetime | None) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_time(str(value)) if value else None


def _clock(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if dt else FILL.format("time")


def _duration(seconds: float) -> str:
    minutes = max(int(seconds // 60), 0)
    h, m = divmod(minutes, 60)
    if h and m:
        return f"{h} h {m} min"
    return f"{h} h" if h else f"{m} min"


def _header(incident_id: str | None) -> str:
    return f" [{incident_id}]" if incident_id else ""


def _every(level: str) -> str:
    minutes = int(UPDATE_EVERY[level].total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


def _start(run: Run, started: str | datetime | None) -> datetime | None:
    return _utc(started) or _utc(run.figures.get("incident_started")) or _utc(run.started_at)


def initial_alert(
    run: Run,
    severity: Severity,
    *,
    incident_id: str | None = None,
    commander: str | None = None,
    started: str | datetime | None = None,
    now: datetime | None = None,
    escalation: str | None = None,
) -> str:
    """The runbook's initial alert: title, severity with its reason (and what was declared),
    status, impact, started, the response target and update cadence, who is paged (`escalation`,
    default the run's parameter), IC, the monitoring links."""
    now = now or datetime.now(UTC)
    level = severity.level
    escalation = escalation if escalation is not None else run.params.get("escalation")
    lines = [
        f"🚨 INCIDENT{_header(incident_id)}: {incident_title(run, severity)}",
        f"Severity: {level} — {severity.reason}",
        *_declared_line(run),
        f"Status: {status_of(run)}",
        f"Impact: {impact_text(run.figures)}",
        f"Started: {_clock(_start(run, started))}",
        f"Response: within {RESPOND_WITHIN[level]} ({level}); updates every {_every(level)}",
        f"Next Update: {_clock(now + UPDATE_EVERY[level])}",
        f"Paged: {paged(escalation, level)}",
        f"Incident Commander: {commander or FILL.format('name')}",
        *_links_line(run),
    ]
    return redact_text("\n".join(lines))


def _action_text(action: Mapping[str, Any]) -> str:
    """One line per mitigation record (kube_actions, pg_actions, perf_actions or hand-made ones)."""
    what = (
        action.get("description")
        or action.get("summary")
        or action.get("action")
        or action.get("kind")
        or "mitigation"
    )
    target = action.get("target") or action.get("deployment")
    text = f"{what} ({target})" if target and str(target) not in str(what) else str(what)
    outcome = action.get("outcome") or action.get("result")
    if not outcome and action.get("status") not in (None, "", "shown"):
        outcome = action["status"]
    results = action.get("results")
    if not outcome and isinstance(results, list) and results:
        outcome = ", ".join(
            f"pid {r.get('pid')}: {r.get('outcome')}" for r in results if isinstance(r, Mapping)
        )
    if outcome:
        text += f": {outcome}"
    return text


def _applied(action: Mapping[str, Any]) -> bool:
    return bool(action.get("applied"))


def status_update(
    run: Run,
    severity: Severity,
    *,
    incident_id: str | None = None,
    now: datetime | None = None,
    eta: str | None = None,
) -> str:
    """The runbook's status update: status, progress (mitigations applied or shown), next steps,
    ETA."""
    now = now or datetime.now(UTC)
    applied = [a for a in run.actions if _applied(a)]
    shown = [a for a in run.actions if not _applied(a)]
    progress: list[str] = []
    if run.findings:
        progress.append(
            f"{run.scenario} runbook found {_plural(len(run.findings), 'problem')} "
            f"({severity.level}: "
            f"{severity.reason.split(' (rule:')[0]})"
        )
    else:
        progress.append(f"{run.scenario} runbook ran: nothing wrong found")
    progress += [f"applied: {_action_text(a)}" for a in applied]
    progress += [f"prepared, not applied: {_action_text(a)}" for a in shown]
    steps = [str(f["next_step"]) for f in _ordered(run.findings) if f.get("next_step")]
    steps = list(dict.fromkeys(steps))
    if not steps:
        steps = [FILL.format("next step")]
    lines = [
        f"📊 UPDATE{_header(incident_id)}: {incident_title(run, severity)}",
        f"Status: {status_of(run)}",
        f"Severity: {severity.level}",
        *_declared_line(run),
        f"Impact: {impact_text(run.figures)}",
        "Progress:",
        *[f"• {p}" for p in progress],
        "Next Steps:",
        *[f"• {s}" for s in steps],
        f"ETA: {eta or FILL.format('expected resolution time')}",
        f"Next Update: {_clock(now + UPDATE_EVERY[severity.level])}",
        *_links_line(run),
    ]
    return redact_text("\n".join(lines))


def resolution(
    run: Run,
    severity: Severity,
    *,
    incident_id: str | None = None,
    started: str | datetime | None = None,
    resolved_at: str | datetime | None = None,
    postmortem: str | None = None,
) -> str:
    """The runbook's resolution: duration (start to resolution), the impact (who and what, from the
    measured figures), root cause and fix from findings and actions."""
    start = _start(run, started)
    end = _utc(resolved_at) or datetime.now(UTC)
    findings = _ordered(run.findings)
    if findings:
        top = findings[0]
        cause = str(top.get("title", ""))
        if top.get("detail"):
            cause += f": {top['detail']}"
    else:
        cause = FILL.format("root cause")
    applied = [a for a in run.actions if _applied(a)]
    fix = "; ".join(_action_text(a) for a in applied) if applied else FILL.format("what fixed it")
    duration = _duration((end - start).total_seconds()) if start else FILL.format("duration")
    pm = postmortem or (
        f"runbook postmortem --incident {incident_id}"
        if incident_id
        else FILL.format("link or date")
    )
    lines = [
        f"✅ RESOLVED{_header(incident_id)}: {incident_title(run, severity)}",
        f"Duration: {duration} ({_clock(start)} to {_clock(end)})",
        *_declared_line(run),
        f"Impact: {duration}; {affected(run.figures, severity)}: {impact_text(run.figures)}",
        f"Root Cause: {cause}",
        f"Resolution: {fix}",
        f"Post-mortem: {pm}",
        *_links_line(run),
    ]
    return redact_text("\n".join(lines))


def _everyone_down(figures: Mapping[str, Any]) -> bool:
    down, total = _figure(figures, "pods_down"), _figure(figures, "pods_total")
    tls_left = figures.get("tls_days_left")
    return (
        figures.get("health_ok") is False
        or figures.get("database_reachable") is False
        or (down is not None and total is not None and 0 < int(total) <= int(down))
        or (isinstance(tls_left, int | float) and tls_left < 0)
    )


OUTAGE_RULES = ("outage", "certificate-expired")  # severity rules that mean a complete outage


def affected(figures: Mapping[str, Any], severity: Severity | None = None) -> str:
    """Who was affected, from the figures: every user (the service was down: a failing health
    check, no ready pod, an unreachable database, an expired certificate, or a severity that says
    complete outage), or the share of requests that failed; else a visible `[fill in: ...]`."""
    if _everyone_down(figures) or (severity is not None and severity.rule in OUTAGE_RULES):
        return "every user"
    rate = _figure(figures, "error_rate")
    if rate is not None and float(rate) >= 0.01:
        return f"about {float(rate) * 100:.0f}% of requests"
    return FILL.format("who was affected")


def customer_message(
    run: Run,
    severity: Severity,
    *,
    now: datetime | None = None,
    started: str | datetime | None = None,
) -> str:
    """The customer-facing message (SEV1 and SEV2): where things stand, the impact in customers'
    words, what was declared, when the next update comes and where (`status_page_url`). It names
    nothing internal: no title, finding, pod, deployment, node, database or query goes into it,
    only the figures turned into sentences."""
    now = now or datetime.now(UTC)
    status = status_of(run)
    service = FILL.format("the service, as customers know it")
    figures = run.figures
    lead = {
        "Investigating": f"We are investigating an issue affecting {service}.",
        "Identified": f"We have identified the cause of an issue affecting {service} and are "
        "working on a fix.",
        "Mitigating": f"We have applied a fix for an issue affecting {service} and are watching "
        "the results.",
        "Resolved": f"The issue affecting {service} has been resolved.",
    }[status]
    rate = _figure(figures, "error_rate")
    if affected(figures, severity) == "every user":
        impact = "The service is unavailable."
        if status == "Resolved":
            start = _start(run, started)
            impact = f"The service was unavailable from {_clock(start)} to {_clock(now)}."
    elif rate is not None and float(rate) >= 0.01:
        impact = f"About {float(rate) * 100:.0f}% of requests are failing."
        if status == "Resolved":
            impact = f"About {float(rate) * 100:.0f}% of requests failed."
    else:
        impact = "Some customers may be affected."
    said = [_DECLARED_FOR_CUSTOMERS[k] for k in _declared(run)]
    page = next((url for label, url in links(run.params) if label == "Status page"), None)
    follow = f" Follow it at {page}" if page else ""
    nxt = (
        f"Next update by {_clock(now + UPDATE_EVERY[severity.level])}.{follow}"
        if status != "Resolved"
        else f"Thank you for your patience.{follow}"
    )
    lines = [f"{status}: {lead}", impact, *said, nxt.rstrip()]
    return redact_text("\n".join(lines))


def notifications(
    run: Run,
    severity: Severity,
    *,
    incident_id: str | None = None,
    commander: str | None = None,
    started: str | datetime | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The filled templates: {"initial", "update", "resolution"} and, for SEV1 and SEV2,
    "customer"."""
    now = now or datetime.now(UTC)
    out = {
        "initial": initial_alert(
            run, severity, incident_id=incident_id, commander=commander, started=started, now=now
        ),
        "update": status_update(run, severity, incident_id=incident_id, now=now),
        "resolution": resolution(
            run, severity, incident_id=incident_id, started=started, resolved_at=now
        ),
    }
    if severity.level in CUSTOMER_LEVELS:
        out["customer"] = customer_message(run, severity, now=now, started=started)
    return out


WEBHOOK_DEADLINE_S = 10.0  # one deadline for the whole post: DNS, connect, TLS, send, the reply


def post_webhook(url: str, text: str, *, timeout: float = WEBHOOK_DEADLINE_S) -> str:
    """POST {"text": text} once to a Slack-compatible incoming webhook; return one result line.

    `timeout` is one overall deadline in seconds for everything: the DNS lookup, connecting, TLS,
    sending and reading the reply (a server that trickles its headers is cut off at the deadline,
    as is one that never answers). Never raises: a bad URL or timeout, an unreachable host, an
    error status, a reply that is not HTTP and the deadline each become the line returned. A
    redirect is not followed (the message would arrive as a GET, without its text). The URL's
    path is a secret: a line shows scheme://host:port only."""
    try:
        webhook(url)
    except InvalidParameter as e:
        return f"✗ notification NOT posted: {e}"
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
        return (
            f"✗ notification NOT posted: timeout {timeout!r} must be a positive number of seconds"
        )
    post = _Post(url, json.dumps({"text": text}).encode("utf-8"), float(timeout))
    worker = threading.Thread(target=post.run, name="webhook post", daemon=True)
    worker.start()
    if post.done.wait(timeout):
        return post.line
    return post.abort()


class _Post:
    """One webhook POST in a thread of its own, so the caller waits for one deadline in all and
    can cut the connection at that deadline (a DNS lookup cannot be cut: its thread is left to
    end by itself, as a daemon)."""

    def __init__(self, url: str, body: bytes, deadline: float) -> None:
        self.url, self.body, self.deadline = url, body, deadline
        self.where = url_origin(url)
        self.connections: list[http.client.HTTPConnection] = []
        self.done = threading.Event()
        self.line = ""

    def run(self) -> None:
        try:
            self.line = self._post()
        except Exception as e:  # noqa: BLE001 - every failure is a line, never an exception
            self.line = (
                f"✗ notification NOT confirmed: {self.where}: {type(e).__name__}: "
                f"{self._scrub(str(e))}; check the channel, post by hand if missing"
            )
        finally:
            self.done.set()

    def abort(self) -> str:
        """The deadline passed: close the connection (the thread ends) and say how far it got."""
        connected = False
        for conn in list(self.connections):
            sock = conn.sock
            if sock is not None:
                connected = True
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if not connected:
            return (
                f"✗ notification NOT posted: cannot reach {self.where} within {self.deadline:g} s "
                "(DNS or connect); post the text above by hand"
            )
        return (
            f"✗ notification NOT confirmed: {self.where} did not answer within "
            f"{self.deadline:g} s; check the channel, post by hand if missing"
        )

    def _scrub(self, text: str) -> str:
        """An error's text without the URL's secret path, redacted, on one short line."""
        path = urllib.parse.urlsplit(self.url).path
        text = text.replace(self.url, self.where + "/***")
        if len(path) > 1:
            text = text.replace(path, "/***")
        return redact_text(" ".join(text.split()))[:160]

    def _post(self) -> str:
        where = self.where
        track = self.connections.append
        opener = urllib.request.build_opener(
            _TrackedHTTP(track), _TrackedHTTPS(track), _NoRedirect()
        )
        req = urllib.request.Request(
            self.url,
            data=self.body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "incident-runbook/1"},
        )
        try:
            with opener.open(req, timeout=self.deadline) as resp:
                answer = resp.read(200).decode("utf-8", "replace").strip()
                return f"✓ notification posted to {where}: {resp.status} {answer[:60]}".rstrip()
        except urllib.error.HTTPError as e:
            answer = e.read(200).decode("utf-8", "replace").strip() if e.fp else ""
            answer = self._scrub(answer)[:80]
            return (
                f"✗ notification NOT posted: {where} answered {e.code} {e.reason}"
                f"{f' ({answer})' if answer else ''}; post the text above by hand"
            )
        except urllib.error.URLError as e:  # connecting or sending failed: nothing was posted
            reason = e.reason
            if isinstance(reason, TimeoutError):
                return self.abort()
            if isinstance(reason, ssl.SSLError):
                return (
                    f"✗ notification NOT posted: TLS with {where} failed "
                    f"({self._scrub(str(reason))}); post the text above by hand"
                )
            return (
                f"✗ notification NOT posted: cannot reach {where} ({self._scrub(str(reason))}); "
                "post the text above by hand"
            )
        except http.client.RemoteDisconnected:
            return (
                f"✗ notification NOT confirmed: {where} closed the connection without an answer; "
                "check the channel, post by hand if missing"
            )
        except http.client.BadStatusLine as e:
            first = self._scrub(str(e.args[0] if e.args else e))[:40]
            return (
                f"✗ notification NOT confirmed: {where} answered something that is not HTTP "
                f"({first!r}); check the channel, post by hand if missing"
            )
        except http.client.HTTPException as e:
            return (
                f"✗ notification NOT confirmed: {where} answered something that is not valid "
                f"HTTP ({type(e).__name__}: {self._scrub(str(e))}); check the channel, post by "
                "hand if missing"
            )
        except TimeoutError:
            return self.abort()
        except OSError as e:  # the connection broke while we waited for the reply
            return (
                f"✗ notification NOT confirmed: {where}: {type(e).__name__}: "
                f"{self._scrub(str(e))}; check the channel, post by hand if missing"
            )


def _tracked(
    cls: type[http.client.HTTPConnection], track: Callable[[http.client.HTTPConnection], None]
) -> Callable[..., http.client.HTTPConnection]:
    def make(host: str, **kw: Any) -> http.client.HTTPConnection:
        conn = cls(host, **kw)
        track(conn)
        return conn

    return make


class _TrackedHTTP(urllib.request.HTTPHandler):
    """urllib's HTTP handler, keeping each connection it opens (to cut it at the deadline)."""

    def __init__(self, track: Callable[[http.client.HTTPConnection], None]) -> None:
        super().__init__()
        self._track = track

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_tracked(http.client.HTTPConnection, self._track), req)


class _TrackedHTTPS(urllib.request.HTTPSHandler):
    """urllib's HTTPS handler (the default TLS checks), keeping each connection it opens."""

    def __init__(self, track: Callable[[http.client.HTTPConnection], None]) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(context=self._tls)
        self._track = track

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            _tracked(http.client.HTTPSConnection, self._track), req, context=self._tls
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (HTTPError 3xx), not followed: urllib would resend the POST as a GET
    without its body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


TITLES = {
    "initial": "Initial alert",
    "update": "Status update",
    "resolution": "Resolution (when it is over)",
    "customer": "Customer-facing message (status page; no internal names)",
}


def notifications_frame(
    texts: Mapping[str, str], *, posted: str | None = None, result: str | None = None
) -> Any:
    """The `notifications` scrap: one row per message (NOTIFICATION_COLUMNS); the message `posted`
    carries the webhook's result line, and `posted` True when it was accepted."""
    import pandas as pd

    kinds = list(texts)
    return pd.DataFrame(
        {
            "kind": kinds,
            "text": [texts[k] for k in kinds],
            "posted": pd.Series(
                [bool(k == posted and result and result.startswith("✓")) for k in kinds],
                dtype="bool",
            ),
            "post_result": pd.Series(
                [result if k == posted else None for k in kinds], dtype="object"
            ),
        },
        columns=NOTIFICATION_COLUMNS,
    )


def show_notifications(
    run: Run,
    severity: Severity,
    *,
    incident_id: str | None = None,
    commander: str | None = None,
    notify_webhook: str | None = None,
    post: str = "initial",
    started: str | datetime | None = None,
    timeout: float = WEBHOOK_DEADLINE_S,
    now: datetime | None = None,
    glue: bool = True,
    templates: Sequence[str] = ("initial", "update", "resolution"),
) -> dict[str, str]:
    """A notebook's last cell: print the filled templates (and, for SEV1 and SEV2, the customer
    message); post one of them (`post`) only if a webhook is given, within `timeout` seconds in all
    (`post_webhook`); its result is one line. Glues the `notifications` scrap."""
    every = notifications(
        run, severity, incident_id=incident_id, commander=commander, started=started, now=now
    )
    known = [*every, *(k for k in TITLES if k not in every)]
    unknown = [t for t in [*templates, post] if t not in TITLES]
    if unknown:
        raise InvalidParameter(f"unknown template {unknown[0]!r}: choose from {', '.join(known)}")
    if post not in every:
        raise InvalidParameter(
            f"template {post!r} is not written at {severity.level}: post one of {', '.join(every)}"
        )
    texts = {k: every[k] for k in templates if k in every}
    texts.setdefault(post, every[post])
    if "customer" in every:
        texts.setdefault("customer", every["customer"])
    for key, text in texts.items():
        print(f"── {TITLES[key]} " + "─" * 40)
        print(text)
        print()
    result: dict[str, str] = dict(texts)
    line = None
    if notify_webhook:
        # the evidence is already complete: any failure is one line, never the last cell failing
        line = post_webhook(notify_webhook, texts[post], timeout=timeout)
        print(line)
        result["webhook"] = line
    else:
        print(
            f"(not posted: give notify_webhook to post the {TITLES[post].split(' (')[0].lower()} "
            "to a Slack-compatible webhook)"
        )
    if glue:
        run.glue("notifications", notifications_frame(texts, posted=post, result=line))
    return result


def show_links(cfg: Any) -> None:
    """The notebook's header links: Grafana, logs and the status page as given (`grafana_url`,
    `logs_url`, `status_page_url`), never fetched; query values redacted as in all evidence."""
    from IPython.display import display

    given = links(cfg)
    if not given:
        print(
            "(no monitoring links: give grafana_url, logs_url, status_page_url to list them here)"
        )
        return
    anchors = " · ".join(
        f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">'
        f"{html.escape(label)}</a>"
        for label, url in given
    )
    plain = " · ".join(f"{label}: {url}" for label, url in given)
    display({"text/html": f"<p>Monitoring: {anchors}</p>", "text/plain": plain}, raw=True)
