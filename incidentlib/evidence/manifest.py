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

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets as _secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import RunbookError
from ..scraps import read

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"
PARTIAL = ".partial"
FORMAT = 2  # 1: no chain (written before 2026-12); 2: every entry chained, signed when a key is set
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MISMATCH = "its signature does not match its content"  # signing.check's word for a bad signature


def write_temp(data: bytes, tmp_dir: Path, suffix: str = ".tmp") -> Path:
    """A complete, fsynced file in `tmp_dir` (same filesystem as the archive), ready for
    os.replace."""
    tmp = tmp_dir / f".{os.getpid()}.{_secrets.token_hex(6)}{suffix}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def atomic_write(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Write through a temp file on the same filesystem, fsync, then os.replace: never a
    half-written file."""
    tmp = write_temp(data, tmp_dir)
    try:
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):  # pragma: no mutate (chunk size: no hash)
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def locked(incident_dir: Path, *, shared: bool = False) -> Iterator[None]:
    """An flock on the incident's lock file: exclusive to update the manifest, shared to read it
    (`verify` never sees a run half committed). A folder we may not write (a read-only copy handed
    to an auditor) is read without the lock: nobody can be committing to it."""
    try:
        f = open(incident_dir / LOCK, "a+")  # noqa: SIM115 - closed below
    except PermissionError:
        if not shared:
            raise
        yield
        return
    with f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_manifest(incident_dir: Path) -> dict[str, Any]:
    path = Path(incident_dir) / MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RunbookError(
            f"{path} is not readable JSON ({e}); it may have been edited: restore it from a copy"
        ) from None


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


def append_run_locked(
    incident_dir: Path, incident: str, entry: dict[str, Any], *, signing_key: Any = None
) -> None:
    """Append a run to the manifest, chained to the run before it and signed when a key is given
    (the caller holds the incident's lock), and replace the manifest atomically."""
    from .signing import file_message, sign

    doc = read_manifest(incident_dir) or {
        "incident": incident,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": [],
    }
    doc.pop("sha256", None)
    doc["format"] = FORMAT
    runs = doc.setdefault("runs", [])
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
    partial = incident_dir.parent / PARTIAL
    partial.mkdir(parents=True, exist_ok=True)
    atomic_write(incident_dir / MANIFEST, _serialize(doc), partial)


def load_manifest(incident_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an incident: {"incident", "created_at", "runs": [...], "sha256"}."""
    path = Path(incident_dir) / MANIFEST
    if not path.exists():
        raise RunbookError(
            f"no manifest at {path}: is {os.fspath(incident_dir)!r} an incident directory "
            "(outputs/<incident>)?"
        )
    return read_manifest(Path(incident_dir))


@dataclass
class VerifyReport:
    """What `verify` found: files that match, changed, missing or added, problems with the manifest
    itself (its shape, its own hash, the chain of runs, their signatures), and notes."""

    incident_dir: Path
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


def _inside(root: Path, rel: str) -> bool:
    """A manifest path names a file inside the incident folder: relative, no '..', and (links
    followed) still inside it."""
    if not rel or rel.startswith(("/", "\\")) or "\\" in rel or ".." in Path(rel).parts:
        return False
    try:
        (root / rel).resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def verify(incident_dir: str | os.PathLike[str], *, public_key: Any = None) -> VerifyReport:
    """Recompute every hash in the manifest, its chain of runs and (with `public_key`) their
    signatures; report files changed, missing or added, and any edit of the manifest. Holds the
    incident's lock (shared) while it reads, so a run being committed is never half seen."""
    root = Path(incident_dir)
    report = VerifyReport(root)
    with locked(root, shared=True):
        _verify(root, report, public_key)
    return report


def _verify(root: Path, report: VerifyReport, public_key: Any) -> None:
    path = root / MANIFEST
    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
    except FileNotFoundError:
        report.manifest_problems.append(f"{path} is missing")
        doc = {"runs": []}
    except ValueError as e:
        report.manifest_problems.append(f"{path} is not valid JSON ({e})")
        doc = {"runs": []}
    else:
        problem = _shape_problem(doc)
        if problem:
            report.manifest_problems.append(f"{path} is not a manifest runbook wrote: {problem}")
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
            if _inside(root, f["path"]):
                expected[f["path"]] = f["sha256"]
            else:
                report.manifest_problems.append(
                    f"run {run.get('run_id')} names {f['path']!r}, outside the incident folder: "
                    "not read"
                )
    for rel, digest in sorted(expected.items()):
        p = root / rel
        if not p.is_file():
            report.missing.append(rel)
        elif sha256_file(p) != digest:
            report.changed.append(rel)
        else:
            report.matching.append(rel)
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if (p.is_file() or p.is_symlink()) and rel not in expected and rel not in (MANIFEST, LOCK):
            report.added.append(rel)


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
    """The scraps an archived evidence notebook glued: name -> value (see `scraps.read`)."""
    with open(path, encoding="utf-8") as f:
        return read(json.load(f), names)
