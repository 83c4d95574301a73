"""An incident's manifest: every run's files with their sha256, appended under a lock, written
atomically; `verify` recomputes every hash, and `read_scraps` reads an archived notebook's findings
back.

The runs form a hash chain: each entry carries the hash of the entry before it (`prev`; the first
one a hash of the incident id) and its own hash (`entry_sha256`, over everything in it but the hash
and the signature), so no run can be removed, reordered or rewritten without breaking every later
link. With a signing key (`signing.py`) each entry's hash is signed too: then even a consistent
rewrite of a file, its sha256 and every hash after it fails `verify --public-key`. Without a key the
chain shows that the manifest is the one runbook wrote only to whoever kept its last hash."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import RunbookError
from ..scraps import read
from .storage import (
    IN_FLIGHT_WAIT_S,
    LOCK,
    MANIFEST,
    PARTIAL,
    Incident,
    atomic_write,
    is_s3,
    locked,
    open_incident,
    parse_manifest,
    read_manifest,
    sha256_file,
    write_temp,
)

__all__ = [
    "LOCK",
    "MANIFEST",
    "PARTIAL",
    "VerifyReport",
    "append_run_locked",
    "atomic_write",
    "chain_start",
    "entry_digest",
    "load_manifest",
    "locked",
    "next_manifest",
    "read_manifest",
    "read_scraps",
    "sha256_file",
    "verify",
    "write_temp",
]
FORMAT = 2  # 1: no chain (written before 2026-12); 2: every entry chained, signed when a key is set
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MISMATCH = "its signature does not match its content"  # signing.check's word for a bad signature


def _digest(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def _serialize(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def chain_start(incident: str) -> str:
    """The `prev` of an incident's first run: a hash of its id (a run cannot move to another
    incident)."""
    return hashlib.sha256(f"incident-runbook manifest {incident}".encode()).hexdigest()


def entry_digest(entry: dict[str, Any]) -> str:
    """A run entry's own hash: everything in it but its hash and its signature, canonical JSON."""
    body = {k: v for k, v in entry.items() if k not in ("entry_sha256", "signature")}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def _link(previous: dict[str, Any] | None, incident: str) -> str:
    if previous is None:
        return chain_start(incident)
    return str(previous.get("entry_sha256") or entry_digest(previous))  # a format-1 entry: its hash


def next_manifest(
    current: dict[str, Any], incident: str, entry: dict[str, Any], *, signing_key: Any = None
) -> bytes:
    """The manifest with `entry` appended to `current` (the manifest as it is now, {} for none):
    chained to the run before it, signed when a key is given, serialized as runbook writes it."""
    from .signing import file_message, sign

    doc = dict(current) or {
        "incident": incident,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": [],
    }
    doc.pop("sha256", None)
    doc["format"] = FORMAT
    runs = doc["runs"] = list(doc.get("runs") or [])
    entry = {**entry, "prev": _link(runs[-1] if runs else None, incident)}
    if signing_key is not None:  # each file signed too: verify names the file that was rewritten
        entry["files"] = [
            {
                **f,
                "signature": sign(
                    signing_key, file_message(str(entry["run_id"]), f["path"], f["sha256"])
                ),
            }
            for f in entry["files"]
        ]
    entry["entry_sha256"] = entry_digest(entry)
    if signing_key is not None:
        entry["signature"] = sign(signing_key, entry["entry_sha256"])
    runs.append(entry)
    doc["sha256"] = _digest(doc)
    return _serialize(doc)


def append_run_locked(
    incident_dir: Path, incident: str, entry: dict[str, Any], *, signing_key: Any = None
) -> None:
    """Append a run to a folder's manifest (the caller holds the incident's lock), and replace the
    manifest atomically."""
    data = next_manifest(read_manifest(incident_dir), incident, entry, signing_key=signing_key)
    partial = incident_dir.parent / PARTIAL
    partial.mkdir(parents=True, exist_ok=True)  # pragma: no mutate (its parent is the archive)
    atomic_write(incident_dir / MANIFEST, data, partial)


def load_manifest(incident_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an incident (a folder or an s3:// URL): {"incident", "created_at",
    "runs": [...], "sha256"}."""
    store = open_incident(incident_dir)
    raw = store.read(MANIFEST)
    if raw is None:
        raise RunbookError(
            f"no manifest at {store.location}/{MANIFEST}: is {os.fspath(incident_dir)!r} an "
            "incident (outputs/<incident>, or s3://bucket/prefix/<incident>)?"
        )
    return parse_manifest(raw, f"{store.location}/{MANIFEST}")


@dataclass
class VerifyReport:
    """What `verify` found: files that match, changed, missing or added, problems with the manifest
    itself (its shape, its own hash, the chain of runs, their signatures), and notes."""

    incident_dir: Path | str
    matching: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added or self.manifest_problems)

    def lines(self) -> list[str]:
        out = [f"✗ manifest: {p}" for p in self.manifest_problems]
        out += [f"✗ changed: {p} (its sha256 differs from the manifest)" for p in self.changed]
        out += [f"✗ missing: {p}" for p in self.missing]
        out += [f"✗ added: {p} (not in the manifest)" for p in self.added]
        out += [f"  {n}" for n in self.notes]
        verdict = "OK" if self.ok else "FAILED"
        out.append(
            f"{verdict}: {len(self.matching)} file(s) match, {len(self.changed)} changed, "
            f"{len(self.missing)} missing, {len(self.added)} added in {self.incident_dir}"
        )
        return out


def _shape_problem(doc: Any) -> str | None:
    """Why a manifest does not have the shape runbook writes, in one line; None when it does."""
    if not isinstance(doc, dict):
        return f"it is a JSON {type(doc).__name__}, not an object with runs"
    runs = doc.get("runs")
    if not isinstance(runs, list):
        return "it has no list of runs"
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or not isinstance(run.get("files"), list):
            return f"run {i + 1} is not an object with a list of files"
        for f in run["files"]:
            if (
                not isinstance(f, dict)
                or not isinstance(f.get("path"), str)
                or not (isinstance(f.get("sha256"), str) and _HEX64.fullmatch(f["sha256"]))
            ):
                return f"run {i + 1} ({run.get('run_id')}) lists a file without a path and a sha256"
    return None


def verify(incident_dir: str | os.PathLike[str], *, public_key: Any = None) -> VerifyReport:
    """Recompute every hash in the manifest, its chain of runs and (with `public_key`) their
    signatures; report files changed, missing or added, and any edit of the manifest. The incident
    is a folder or an s3:// URL. A folder's lock is held (shared) while it reads, so a run being
    committed is never half seen; on S3 a file whose commit is on its way is waited for."""
    store = open_incident(incident_dir)
    deadline = time.monotonic() + IN_FLIGHT_WAIT_S
    while True:
        report = VerifyReport(store.location)
        with store.reading():
            _verify(store, report, public_key)
        pending = [rel for rel in report.added if store.in_flight(rel)]
        if not pending:
            return report
        if time.monotonic() > deadline:
            report.notes.append(
                f"{len(pending)} added file(s) have a staged copy under {PARTIAL}/: a run was "
                "being committed, or a writer stopped while committing (its files, not its "
                "manifest entry, landed)"
            )
            return report
        time.sleep(0.25)


def _verify(store: Incident, report: VerifyReport, public_key: Any) -> None:
    where = f"{store.location}/{MANIFEST}"
    raw = store.read(MANIFEST)
    if raw is None:
        report.manifest_problems.append(f"{where} is missing")
        doc: Any = {"runs": []}
    else:
        try:
            doc = json.loads(raw)
        except ValueError as e:
            report.manifest_problems.append(f"{where} is not valid JSON ({e})")
            doc = {"runs": []}
        else:
            problem = _shape_problem(doc)
            if problem:
                report.manifest_problems.append(
                    f"{where} is not a manifest runbook wrote: {problem}"
                )
                return
            if doc.get("sha256") != _digest(doc):
                report.manifest_problems.append(
                    "its content does not match its own sha256 (an entry was edited)"
                )
            elif _serialize(doc) != raw:
                report.manifest_problems.append(
                    "its bytes differ from what runbook wrote (the file was edited)"
                )
            _verify_chain(doc, report, public_key)
    expected: dict[str, str] = {}
    for run in doc.get("runs", []):
        for f in run.get("files", []):
            if store.inside(f["path"]):
                expected[f["path"]] = f["sha256"]
            else:
                report.manifest_problems.append(
                    f"run {run.get('run_id')} names {f['path']!r}, outside the incident folder: "
                    "not read"
                )
    for rel, digest in sorted(expected.items()):
        found = store.sha256(rel)
        if found is None:
            report.missing.append(rel)
        elif found != digest:
            report.changed.append(rel)
        else:
            report.matching.append(rel)
    report.added += [rel for rel in store.files() if rel not in expected]


def _verify_chain(doc: dict[str, Any], report: VerifyReport, public_key: Any) -> None:
    """Each run's own hash, its link to the run before it, and its signature."""
    from .signing import check, file_message, key_id

    incident = str(doc.get("incident") or "")
    previous: dict[str, Any] | None = None
    chained, signed = False, 0
    for run in doc.get("runs", []):
        rid = run.get("run_id")
        if "entry_sha256" not in run:  # format 1: written before the chain existed
            if chained:
                report.manifest_problems.append(
                    f"run {rid} has no hash of its own after chained runs"
                )
            elif public_key is not None:
                report.manifest_problems.append(
                    f"run {rid}: it is not signed (written before signing)"
                )
            previous = run
            continue
        chained = True
        if run["entry_sha256"] != entry_digest(run):
            report.manifest_problems.append(
                f"run {rid}: its entry was edited (its hash does not match it)"
            )
        if run.get("prev") != _link(previous, incident):
            report.manifest_problems.append(
                f"run {rid}: the chain is broken before it (a run was removed, reordered or "
                "rewritten)"
            )
        if "signature" in run:
            signed += 1
        if public_key is not None:
            # a file signed by another key is not a rewritten file: the entry's line says whose
            rewritten = [
                f["path"]
                for f in run["files"]
                if "signature" in f
                and check(
                    public_key, file_message(str(rid), f["path"], f["sha256"]), f["signature"]
                )
                == _MISMATCH
            ]
            for path in rewritten:
                report.manifest_problems.append(
                    f"run {rid}: file {path}: its sha256 is not the one signed (the file and its "
                    "hash were rewritten after the run)"
                )
            why = check(public_key, run["entry_sha256"], run.get("signature"))
            if why and not rewritten and why == _MISMATCH:
                why += " (its status, parameters, files or link to the run before it changed)"
            if why:
                report.manifest_problems.append(f"run {rid}: {why}")
        previous = run
    runs = len(doc.get("runs", []))
    if public_key is not None and not report.manifest_problems:
        report.notes.append(f"signatures: all {runs} run(s) signed by key {key_id(public_key)}")
    elif public_key is None and signed:
        report.notes.append(f"{signed} of {runs} run(s) signed: give --public-key to check them")
    elif public_key is None and runs:
        report.notes.append(
            "not signed: the chain shows an edit only if it is not rewritten whole; sign runs with "
            "--signing-key (runbook keygen) to make that detectable"
        )


def read_scraps(path: str | os.PathLike[str], names: Iterable[str] | None = None) -> dict[str, Any]:
    """The scraps an archived evidence notebook glued: name -> value (see `scraps.read`); `path` is
    a file, or an s3:// URL of one."""
    if is_s3(path):
        root, _, name = str(path).rpartition("/")
        raw = open_incident(root).read(name)
        if raw is None:
            raise RunbookError(f"{path} does not exist")
    else:
        raw = Path(path).read_bytes()  # JSON's own encoding (UTF-8), whatever the locale's
    return read(json.loads(raw), names)
