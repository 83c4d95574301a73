"""The server's pages: the index of incidents at `/` and the evidence files it links to, read-only.

Everything shown comes from alerts and from the evidence, so everything is escaped; the pages allow
no script (Content-Security-Policy). An evidence file is served only by its incident id and file
name, each checked against its rule, never by a path: no `..`, no symlink, nothing outside the
outputs folder (with s3:// outputs: the object `<prefix>/<incident>/<name>`, nothing outside the
prefix). With s3:// outputs the index also lists the incidents the archive holds that the journal
does not (an earlier pod's, `runbook run`'s), from their manifests."""

from __future__ import annotations

import html
import os
import re
import stat
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, RunbookError
from ..evidence.manifest import MANIFEST
from ..evidence.run import validate_incident_id
from ..evidence.storage import Archive, parse_manifest
from .incidents import Incident, Job

INDEX_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
EVIDENCE_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'"
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.(html|ipynb)")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".ipynb": "application/x-ipynb+json",
    ".json": "application/json",
}


def evidence_name(tail: str) -> tuple[str, str] | None:
    """(incident, file name) that `/evidence/<incident>/<name>` names (the URL's tail after
    /evidence/), each within its rule, or None."""
    parts = urllib.parse.unquote(tail).split("/")
    if len(parts) != 2:
        return None
    incident, name = parts
    try:
        validate_incident_id(incident)
    except InvalidParameter:
        return None
    if name != MANIFEST and not _FILE.fullmatch(name):
        return None
    return incident, name


def evidence_file(outputs: Path, tail: str) -> Path | None:
    """The file `/evidence/<incident>/<name>` names (the URL's tail after /evidence/), or None: a
    name breaking its rule, a symlink, anything but a regular file inside the outputs folder."""
    named = evidence_name(tail)
    if named is None:
        return None
    incident, name = named
    path = outputs / incident / name
    try:
        info = os.lstat(path)
        folder = os.lstat(outputs / incident)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or not stat.S_ISDIR(folder.st_mode):
        return None
    root = os.path.realpath(outputs)
    if os.path.commonpath([root, os.path.realpath(path)]) != root:
        return None
    return path


def evidence_object(archive: Archive, tail: str) -> tuple[str, bytes] | None:
    """(file name, bytes) of the object `/evidence/<incident>/<name>` names in an s3:// archive
    (`<prefix>/<incident>/<name>`, the names checked as for a folder), or None."""
    named = evidence_name(tail)
    if named is None:
        return None
    incident, name = named
    data = archive.incident(incident).read(name)
    return None if data is None else (name, data)


@dataclass
class Archived:
    """An incident in the archive the journal does not hold: its manifest's runs."""

    id: str
    runs: list[dict[str, Any]]


def archived_incidents(archive: Archive, known: set[str], *, newest: int = 50) -> list[Archived]:
    """The archive's newest incidents (ids sort by time) that are not in `known`, with their
    manifests' runs; an unreadable manifest shows as an incident without runs."""
    found = []
    for name in sorted(set(archive.incidents()) - known, reverse=True)[:newest]:
        store = archive.incident(name)
        try:
            doc = parse_manifest(store.read(MANIFEST), store.where(MANIFEST))
        except RunbookError:
            doc = {}
        runs = [r for r in doc.get("runs", []) if isinstance(r, dict)]
        found.append(Archived(name, runs))
    return found


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(iso: str | None) -> str:
    """An ISO time as people read it: 2026-12-02 06:58:59 UTC."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return iso


def _link(job: Job) -> str:
    return _links((("HTML", job.html), ("notebook", job.notebook)))


def _links(named: Sequence[tuple[str, str | None]]) -> str:
    links = []
    for label, rel in named:
        if rel:
            href = "/evidence/" + "/".join(urllib.parse.quote(p, safe="") for p in rel.split("/"))
            links.append(f'<a href="{_e(href)}">{label}</a>')
    return " · ".join(links) or "—"


def _labels(labels: Mapping[str, str]) -> str:
    return " ".join(
        f'<span class="label">{_e(k)}=<b>{_e(v)}</b></span>' for k, v in sorted(labels.items())
    )


def _runs(jobs: Sequence[Job]) -> str:
    rows = []
    for job in jobs:
        seconds = f"{job.seconds:.1f} s" if job.seconds is not None else ""
        status = job.status or job.state
        kernel = "" if job.warm is None else ("warm" if job.warm else "cold")
        rows.append(
            f"<tr><td>{_e(job.scenario)}{' (recovery)' if job.kind == 'recovery' else ''}</td>"
            f'<td class="st-{_e(status)}">{_e(status)}</td><td>{_e(seconds)}</td>'
            f"<td>{_e(kernel)}</td><td>{_e(job.error or '')}</td><td>{_link(job)}</td></tr>"
        )
    return (
        "<table><tr><th>scenario</th><th>status</th><th>receipt to evidence</th><th>kernel</th>"
        "<th>error</th><th>evidence</th></tr>" + "".join(rows) + "</table>"
    )


def _archived(found: Sequence[Archived]) -> str:
    if not found:
        return ""
    parts = []
    for inc in found:
        rows = []
        for r in inc.runs:
            files = [str(f.get("path", "")) for f in r.get("files") or [] if isinstance(f, dict)]
            html_file = next((f for f in files if f.endswith(".html")), None)
            nb_file = next((f for f in files if f.endswith(".ipynb")), None)
            named = [
                (label, f"{inc.id}/{f}")
                for label, f in (("HTML", html_file), ("notebook", nb_file))
                if f and "/" not in f
            ]
            status = str(r.get("status") or "")
            rows.append(
                f"<tr><td>{_e(r.get('scenario') or '')}</td>"
                f'<td class="st-{_e(status)}">{_e(status)}</td>'
                f"<td>{_e(_when(r.get('started_at')))}</td><td>{_e(r.get('error') or '')}</td>"
                f"<td>{_links(named)}</td></tr>"
            )
        table = (
            "<table><tr><th>scenario</th><th>status</th><th>started</th><th>error</th>"
            "<th>evidence</th></tr>" + "".join(rows) + "</table>"
            if rows
            else "<p>Its manifest lists no run (or cannot be read).</p>"
        )
        parts.append(f'<section class="incident archived"><h2>{_e(inc.id)}</h2>{table}</section>')
    return (
        "<h1>In the archive</h1><p>Incidents whose evidence is in the archive but not in this "
        "server's journal (an earlier server's, or <code>runbook run</code>'s), newest first.</p>"
        + "".join(parts)
    )


def index_page(
    incidents: Sequence[Incident],
    jobs: Mapping[str, Job],
    *,
    queued: int,
    running: int,
    archived: Sequence[Archived] = (),
) -> str:
    """The index: every incident, newest first, with its alerts' labels, its runs and messages;
    then the `archived` incidents the journal does not hold (s3:// outputs)."""
    parts = []
    for inc in sorted(incidents, key=lambda i: i.opened_at, reverse=True):
        messages = "".join(
            f"<h3>{_e(m.get('kind'))} message</h3><pre>{_e(m.get('text') or '')}</pre>"
            + (f'<p class="posted">{_e(m["posted"])}</p>' if m.get("posted") else "")
            for m in inc.messages
        )
        parts.append(
            f'<section class="incident {_e(inc.status)}"><h2>{_e(inc.id)} '
            f'<span class="badge">{_e(inc.status)}</span></h2>'
            f"<p>{_labels(inc.group_labels)}</p>"
            f"<p>opened {_e(_when(inc.opened_at))}; alerts started {_e(_when(inc.started_at))}"
            + (f"; resolved {_e(_when(inc.resolved_at))}" if inc.resolved_at else "")
            + f"; {inc.notifications} notification(s), {len(inc.alerts)} alert(s), "
            f"{inc.deduplicated} deduplicated</p>"
            + _runs([jobs[j] for j in inc.jobs if j in jobs])
            + messages
            + "</section>"
        )
    body = "".join(parts) or "<p>No incident yet: nothing has been received from Alertmanager.</p>"
    body += _archived(archived)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{INDEX_CSP}">'
        "<title>runbook serve: incidents</title><style>"
        "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left;vertical-align:top}th{background:#f3f3f3}"
        ".incident{border-top:2px solid #999;padding:.5em 0 1em}"
        ".firing .badge{background:#c0392b}.resolved .badge{background:#27ae60}"
        ".badge{color:#fff;border-radius:4px;padding:1px 6px;font-size:12px}"
        ".label{background:#eef;border-radius:3px;padding:1px 4px;margin-right:4px}"
        ".st-ok{color:#27ae60}.st-failed,.st-error{color:#c0392b}.st-incomplete{color:#d68910}"
        "pre{background:#f7f7f7;padding:8px;white-space:pre-wrap}.posted{color:#555}"
        "</style></head><body><h1>Incidents opened by alerts</h1>"
        f"<p>{queued} run(s) queued, {running} running. Evidence is served read-only.</p>"
        f"{body}</body></html>"
    )
