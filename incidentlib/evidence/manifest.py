"""An incident's manifest: every run's files with their sha256, appended under a lock, written
atomically; `verify` recomputes every hash, and `read_scraps` reads an archived notebook's findings
back."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
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
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def locked(incident_dir: Path) -> Iterator[None]:
    """An exclusive flock on the incident's lock file (serialises manifest updates across
    processes)."""
    with open(incident_dir / LOCK, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
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


def append_run_locked(incident_dir: Path, incident: str, entry: dict[str, Any]) -> None:
    """Append a run to the manifest (the caller holds the incident's lock) and replace it
    atomically."""
    doc = read_manifest(incident_dir) or {
        "incident": incident,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": [],
    }
    doc.pop("sha256", None)
    doc.setdefault("runs", []).append(entry)
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
    """What `verify` found: files that match, changed, missing or added, and problems with the
    manifest itself."""

    incident_dir: Path
    matching: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added or self.manifest_problems)

    def lines(self) -> list[str]:
        out = [f"✗ manifest: {p}" for p in self.manifest_problems]
        out += [f"✗ changed: {p} (its sha256 differs from the manifest)" for p in self.changed]
        out += [f"✗ missing: {p}" for p in self.missing]
        out += [f"✗ added: {p} (not in the manifest)" for p in self.added]
        verdict = "OK" if self.ok else "FAILED"
        out.append(
            f"{verdict}: {len(self.matching)} file(s) match, {len(self.changed)} changed, "
            f"{len(self.missing)} missing, {len(self.added)} added in {self.incident_dir}"
        )
        return out


def verify(incident_dir: str | os.PathLike[str]) -> VerifyReport:
    """Recompute every hash in the manifest; report files changed, missing or added, and any edit of
    the manifest."""
    root = Path(incident_dir)
    report = VerifyReport(root)
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
        if doc.get("sha256") != _digest(doc):
            report.manifest_problems.append(
                "its content does not match its own sha256 (an entry was edited)"
            )
        elif _serialize(doc) != raw:
            report.manifest_problems.append(
                "its bytes differ from what runbook wrote (the file was edited)"
            )
    expected: dict[str, str] = {}
    for run in doc.get("runs", []):
        for f in run.get("files", []):
            expected[f["path"]] = f["sha256"]
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
    return report


def read_scraps(path: str | os.PathLike[str], names: Iterable[str] | None = None) -> dict[str, Any]:
    """The scraps an archived evidence notebook glued: name -> value (see `scraps.read`)."""
    with open(path, encoding="utf-8") as f:
        return read(json.load(f), names)
