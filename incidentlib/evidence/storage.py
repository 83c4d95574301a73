"""Where the evidence archive lives: a folder, or an S3 bucket (`s3://bucket/prefix`), behind one
small interface that keeps the archive's guarantees on both.

    open_archive("outputs" | "s3://bucket/prefix") -> Archive    the archive root
    open_incident("outputs/INC-1" | "s3://bucket/prefix/INC-1") -> Incident
    join(location, name)                                          a path or URL one level down

What an Incident keeps, on a folder and on S3 alike:

    complete or not at all   a run's files are written whole to a staging area first (the folder's
                             `.partial/`, fsynced; `<prefix>/.partial/` on S3), then put in place
                             when the run is committed: a reader never meets half a file
    nothing overwritten      a run id is reserved before the run (an O_EXCL file; an object created
                             with `If-None-Match: *`), and files only ever get new names
    no lost update           the manifest changes under the incident's lock (flock) on a folder,
                             and by compare-and-swap on S3 (PUT `If-Match: <its ETag>`, or
                             `If-None-Match: *` for the first run; on 412 read it again and retry):
                             two runs committing at once both land, chained one after the other
    verify sees no half      `verify` holds the lock (shared) on a folder; on S3 a file not yet in
    commit                   the manifest whose staged copy is still there is a commit in flight,
                             and verify reads the manifest again until it lands (or says so)

The folder archive is here; the S3 one is `s3.py`, imported only for an s3:// location. S3 goes
through boto3 (the `s3` extra): credentials the AWS way (environment, profile, IRSA's web
identity, instance role), `AWS_ENDPOINT_URL_S3` (or `--s3-endpoint-url`) for an S3-compatible store,
and every call with a connect and a read timeout. boto3 rather than fsspec/s3fs: the manifest's
compare-and-swap needs an object's bytes and its ETag from one GetObject and a PutObject with
If-Match, which boto3 exposes as they are, while s3fs reads without the ETag and caches listings
that a second writer makes stale."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidParameter
from .layout import LOCK as LOCK
from .layout import MANIFEST as MANIFEST
from .layout import PARTIAL as PARTIAL
from .layout import parse_manifest as parse_manifest
from .layout import plain_path

ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"
IN_FLIGHT_WAIT_S = 10.0


def is_s3(location: str | os.PathLike[str]) -> bool:
    return isinstance(location, str) and location.startswith("s3://")


def join(location: str | os.PathLike[str], name: str) -> str | Path:
    """`location/name`: a Path for a folder, a URL for S3 (where Path would eat a slash)."""
    if is_s3(location):
        return f"{str(location).rstrip('/')}/{name}"
    return Path(location) / name


class Incident(Protocol):
    """One incident of an archive: its files and its manifest."""

    name: str
    location: str | Path  # for people: the folder, or the s3:// URL

    def exists(self) -> bool: ...
    def read(self, rel: str) -> bytes | None: ...
    def files(self) -> list[str]: ...
    def sha256(self, rel: str) -> str | None: ...
    def inside(self, rel: str) -> bool: ...
    def in_flight(self, rel: str) -> bool: ...
    def reading(self) -> AbstractContextManager[None]: ...
    def scratch(self) -> Path: ...
    def reserve(self, stamp: str, scenario: str) -> str: ...
    def reserved(self, run_id: str) -> bool: ...
    def running(self, run_id: str) -> Path | None: ...
    def commit(
        self, ready: list[tuple[Path, str]], update: Callable[[dict[str, Any]], bytes]
    ) -> None: ...
    def release(self, run_id: str) -> None: ...
    def where(self, rel: str) -> str | Path: ...


class Archive(Protocol):
    """An archive root: the incidents in it."""

    location: str | Path

    def incident(self, name: str) -> Incident: ...
    def incidents(self) -> list[str]: ...


def open_archive(outputs: str | os.PathLike[str], *, scratch: Path | None = None) -> Archive:
    """The archive at `outputs`: a folder, or `s3://bucket/prefix`. `scratch`: where an S3 run
    writes its files before they are staged (a folder that outlives the process, so that a run cut
    short can be archived by the next one); default a fresh temporary folder per run. A folder
    archive stages beside its incidents (`outputs/.partial/`) and ignores it."""
    if is_s3(outputs):
        from .s3 import S3Archive

        return S3Archive(str(outputs), scratch=scratch)
    return FolderArchive(Path(outputs))


def open_incident(location: str | os.PathLike[str]) -> Incident:
    """The incident at `location` (`outputs/INC-1`, `s3://bucket/prefix/INC-1`)."""
    if is_s3(location):
        root, _, name = str(location).rstrip("/").rpartition("/")
        if root == "s3:/" or not name:
            raise InvalidParameter(
                f"{location!r} names a bucket, not an incident: give s3://bucket/prefix/INC-..."
            )
        from .s3 import S3Archive

        return S3Archive(root).incident(name)
    path = Path(location)
    return FolderArchive(path.parent).incident(path.name)


# ------------------------------------------------------------------------------------- a folder
def read_manifest(incident_dir: Path) -> dict[str, Any]:
    """A folder's manifest, {} when there is none yet."""
    path = Path(incident_dir) / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    return parse_manifest(raw, path)


def write_temp(data: bytes, tmp_dir: Path, suffix: str = ".tmp") -> Path:
    """A complete, fsynced file in `tmp_dir` (same filesystem as the archive), ready for
    os.replace."""
    import secrets

    tmp = tmp_dir / f".{os.getpid()}.{secrets.token_hex(6)}{suffix}"
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
    import fcntl

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


class FolderArchive:
    """`outputs/` on a local (or mounted) filesystem."""

    def __init__(self, root: Path) -> None:
        self.location: str | Path = root
        self.root = root

    def incident(self, name: str) -> FolderIncident:
        return FolderIncident(self.root, name)

    def incidents(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST).exists())


class FolderIncident:
    """`outputs/<incident>/`, its lock and its staging area `outputs/.partial/<incident>/`."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.dir = root / name
        self.location: str | Path = self.dir
        self.partial = root / PARTIAL / name

    def exists(self) -> bool:
        return (self.dir / MANIFEST).exists()

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.dir / rel).read_bytes()
        except FileNotFoundError:
            return None

    def files(self) -> list[str]:
        rels = [
            p.relative_to(self.dir).as_posix()
            for p in sorted(self.dir.rglob("*"))
            if p.is_file() or p.is_symlink()
        ]
        return [rel for rel in rels if rel not in (MANIFEST, LOCK)]

    def sha256(self, rel: str) -> str | None:
        p = self.dir / rel
        return sha256_file(p) if p.is_file() else None

    def inside(self, rel: str) -> bool:
        """A manifest path names a file inside the incident folder: relative, no '..', and (links
        followed) still inside it."""
        if not plain_path(rel):
            return False
        try:
            (self.dir / rel).resolve().relative_to(self.dir.resolve())
        except ValueError:
            return False
        return True

    def in_flight(self, rel: str) -> bool:
        return False  # a commit holds the lock, and verify waits for it

    def reading(self) -> AbstractContextManager[None]:
        return locked(self.dir, shared=True)

    def scratch(self) -> Path:
        """Where a run writes its files first: on the archive's filesystem, for os.replace."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.partial.mkdir(parents=True, exist_ok=True)
        return self.partial

    def reserved(self, run_id: str) -> bool:
        """The run id is reserved and its run neither committed nor released (a dead run)."""
        return (self.partial / f"{run_id}.reserved").exists()

    def running(self, run_id: str) -> Path | None:
        """The notebook as papermill last saved it while the run was going, if it did."""
        path = self.partial / f"{run_id}.running.ipynb"
        return path if path.exists() else None

    def reserve(self, stamp: str, scenario: str) -> str:
        """A run id no other run of this incident has or is about to take (same-second runs get
        -2, -3...), reserved by an O_EXCL file in the staging area."""
        with locked(self.dir):
            taken = {r.get("run_id") for r in read_manifest(self.dir).get("runs", [])}
            n = 1
            while True:
                rid = f"{stamp}-{scenario}" + ("" if n == 1 else f"-{n}")
                n += 1
                if rid in taken or (self.dir / f"{rid}.ipynb").exists():
                    continue
                try:
                    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
                    fd = os.open(self.partial / f"{rid}.reserved", flags, 0o644)
                except FileExistsError:
                    continue
                os.close(fd)
                return rid

    def commit(
        self, ready: list[tuple[Path, str]], update: Callable[[dict[str, Any]], bytes]
    ) -> None:
        """Under the incident's lock: rename the finished files into place and replace the
        manifest with `update(current manifest)`."""
        with locked(self.dir):
            for tmp, name in ready:
                os.replace(tmp, self.dir / name)
            data = update(read_manifest(self.dir))
            atomic_write(self.dir / MANIFEST, data, self.partial)

    def release(self, run_id: str) -> None:
        for leftover in (
            self.partial / f"{run_id}.running.ipynb",
            self.partial / f"{run_id}.reserved",
            # a save of the running notebook cut short (its process killed mid-write)
            *self.partial.glob(f"{run_id}.running.ipynb.*.tmp"),
        ):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        with contextlib.suppress(OSError):
            self.partial.rmdir()

    def where(self, rel: str) -> str | Path:
        return self.dir / rel
