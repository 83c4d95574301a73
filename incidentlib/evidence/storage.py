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

S3 goes through boto3 (the `s3` extra): credentials the AWS way (environment, profile, IRSA's web
identity, instance role), `AWS_ENDPOINT_URL_S3` (or `--s3-endpoint-url`) for an S3-compatible store,
and every call with a connect and a read timeout. boto3 rather than fsspec/s3fs: the manifest's
compare-and-swap needs an object's bytes and its ETag from one GetObject and a PutObject with
If-Match, which boto3 exposes as they are, while s3fs reads without the ETag and caches listings
that a second writer makes stale."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidParameter, RunbookError

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"
PARTIAL = ".partial"
ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"
CAS_ATTEMPTS = 60
IN_FLIGHT_WAIT_S = 10.0
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


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
        return S3Archive(root).incident(name)
    path = Path(location)
    return FolderArchive(path.parent).incident(path.name)


def parse_manifest(raw: bytes | None, where: str | Path) -> dict[str, Any]:
    """A manifest's bytes as a dict ({} for none), or a clear error when it is not JSON."""
    if raw is None:
        return {}
    try:
        return dict(json.loads(raw))
    except ValueError as e:
        raise RunbookError(
            f"{where} is not readable JSON ({e}); it may have been edited: restore it from a copy "
            "(on S3, an earlier object version)"
        ) from None


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
        if not _plain(rel):
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


def _plain(rel: str) -> bool:
    return (
        bool(rel)
        and not rel.startswith(("/", "\\"))
        and "\\" not in rel
        and (".." not in Path(rel).parts)
    )


# ------------------------------------------------------------------------------------------- S3
def _client() -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise InvalidParameter(
            "s3:// evidence needs boto3: pip install 'incidentlib[s3]' (the image has it)"
        ) from None
    return boto3.client(
        "s3",
        config=Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 4, "mode": "standard"},
        ),
    )


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


class S3Archive:
    """`s3://bucket/prefix`: one object per file, the incidents under the prefix."""

    def __init__(self, url: str, *, scratch: Path | None = None) -> None:
        self.scratch_root = scratch
        rest = url[len("s3://") :].strip("/")
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET.match(bucket):
            raise InvalidParameter(
                f"{url!r} is not an s3://bucket/prefix URL (bucket {bucket!r} is not a valid S3 "
                "bucket name: 3-63 lower-case letters, digits, '.' or '-')"
            )
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.location: str | Path = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._s3: Any = None

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = _client()
        return self._s3

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def incident(self, name: str) -> S3Incident:
        return S3Incident(self, name)

    def incidents(self) -> list[str]:
        found = []
        base = self.key("")
        pages = self.call(
            "list incidents",
            lambda: list(
                self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=base + "/" if base else "", Delimiter="/"
                )
            ),
        )
        for page in pages:
            for p in page.get("CommonPrefixes") or []:
                name = p["Prefix"][len(base) + 1 if base else 0 :].rstrip("/")
                if name != PARTIAL and self.exists(self.key(name, MANIFEST)):
                    found.append(name)
        return sorted(found)

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except Exception as e:
            if _code(e) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self.error(f"HEAD {key}", e) from None
        return True

    def get(self, key: str) -> tuple[bytes, str] | None:
        """(bytes, ETag) of one object from one GetObject, or None when there is none."""
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key)
            return answer["Body"].read(), answer["ETag"]
        except Exception as e:
            if _code(e) in ("NoSuchKey", "404"):
                return None
            raise self.error(f"GET {key}", e) from None

    def put(self, key: str, data: bytes, **condition: str) -> bool:
        """PUT an object; False when its condition (If-Match / If-None-Match) did not hold."""
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **condition)
        except Exception as e:
            if _code(e) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return False
            raise self.error(f"PUT {key}", e) from None
        return True

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except RunbookError:
            raise
        except Exception as e:
            raise self.error(what, e) from None

    def error(self, what: str, e: Exception) -> RunbookError:
        code = _code(e)
        hint = {
            "AccessDenied": "the credentials may not do that: check the bucket policy and the "
            "role (IRSA) or keys the pod has",
            "NoSuchBucket": "create the bucket, or fix the URL",
            "InvalidAccessKeyId": "the access key is unknown to this endpoint",
        }.get(code, "")
        text = f"S3 {what} in s3://{self.bucket}: {type(e).__name__}: {e}"
        return RunbookError(text + (f"; {hint}" if hint else ""))


class S3Incident:
    """`<prefix>/<incident>/` objects, staged under `<prefix>/.partial/<incident>/`."""

    def __init__(self, archive: S3Archive, name: str) -> None:
        self.archive, self.name = archive, name
        self.location: str | Path = f"{archive.location}/{name}"
        self._scratch: Path | None = None

    def _key(self, rel: str) -> str:
        return self.archive.key(self.name, rel)

    def _staged(self, rel: str) -> str:
        return self.archive.key(PARTIAL, self.name, rel)

    def exists(self) -> bool:
        return self.archive.exists(self._key(MANIFEST))

    def read(self, rel: str) -> bytes | None:
        got = self.archive.get(self._key(rel))
        return None if got is None else got[0]

    def files(self) -> list[str]:
        base = self._key("") + "/"
        a = self.archive
        pages = a.call(
            f"list {base}",
            lambda: list(
                a.s3.get_paginator("list_objects_v2").paginate(Bucket=a.bucket, Prefix=base)
            ),
        )
        names = [o["Key"][len(base) :] for page in pages for o in page.get("Contents") or []]
        return sorted(n for n in names if n and n not in (MANIFEST, LOCK))

    def sha256(self, rel: str) -> str | None:
        a = self.archive
        try:
            answer = a.s3.get_object(Bucket=a.bucket, Key=self._key(rel))
        except Exception as e:
            if _code(e) in ("NoSuchKey", "404"):
                return None
            raise a.error(f"GET {self._key(rel)}", e) from None
        h = hashlib.sha256()
        for chunk in iter(lambda: answer["Body"].read(1 << 20), b""):
            h.update(chunk)
        return h.hexdigest()

    def inside(self, rel: str) -> bool:
        return _plain(rel)

    def in_flight(self, rel: str) -> bool:
        """A file that is not in the manifest yet but whose staged copy is still there: a commit
        on its way (or one a killed writer left half done)."""
        return self.archive.exists(self._staged(rel))

    def reading(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def scratch(self) -> Path:
        """A local folder for the run's files before they are staged (papermill writes to disk):
        under the archive's scratch root when it has one (`<root>/<incident>/<run folder>/`), else
        a temporary one."""
        import tempfile

        if self._scratch is None:
            root = self.archive.scratch_root
            if root is not None:
                (root / self.name).mkdir(parents=True, exist_ok=True)
                self._scratch = Path(tempfile.mkdtemp(prefix="run-", dir=root / self.name))
            else:
                self._scratch = Path(tempfile.mkdtemp(prefix=f"runbook-{self.name}-"))
        return self._scratch

    def reserved(self, run_id: str) -> bool:
        """The run id is reserved and its run neither committed nor released (a dead run)."""
        return self.archive.exists(self._staged(f"{run_id}.reserved"))

    def running(self, run_id: str) -> Path | None:
        """The notebook as papermill last saved it while the run was going, when the archive has a
        scratch root that kept it; its folder becomes this incident's scratch (archiving the dead
        run through it removes it)."""
        root = self.archive.scratch_root
        found = sorted((root / self.name).glob(f"*/{run_id}.running.ipynb")) if root else []
        if not found:
            return None
        self._scratch = found[0].parent
        return found[0]

    def reserve(self, stamp: str, scenario: str) -> str:
        """A run id reserved by an object created with If-None-Match: * (one writer wins it)."""
        current = parse_manifest(self.read(MANIFEST), f"{self.location}/{MANIFEST}")
        taken = {r.get("run_id") for r in current.get("runs", [])}
        n = 1
        while True:
            rid = f"{stamp}-{scenario}" + ("" if n == 1 else f"-{n}")
            n += 1
            if rid in taken or self.archive.exists(self._key(f"{rid}.ipynb")):
                continue
            reserved = self._staged(f"{rid}.reserved")
            if not self.archive.put(reserved, b"", IfNoneMatch="*"):
                continue
            # a run that held this id may have committed and released it between our look and
            # our reservation: its notebook is then in place (copied before its release)
            if not self.archive.exists(self._key(f"{rid}.ipynb")):
                return rid
            with contextlib.suppress(Exception):
                self.archive.s3.delete_object(Bucket=self.archive.bucket, Key=reserved)

    def commit(
        self, ready: list[tuple[Path, str]], update: Callable[[dict[str, Any]], bytes]
    ) -> None:
        """Stage each file whole, copy it into place, then append to the manifest by
        compare-and-swap (its ETag), reading it again after every 412."""
        a = self.archive
        for tmp, name in ready:
            a.put(self._staged(name), tmp.read_bytes())
        for _, name in ready:
            source = {"Bucket": a.bucket, "Key": self._staged(name)}
            a.call(
                f"copy {name}",
                lambda s=source, n=name: a.s3.copy_object(  # type: ignore[misc]
                    Bucket=a.bucket, Key=self._key(n), CopySource=s, IfNoneMatch="*"
                ),
            )
        key = self._key(MANIFEST)
        for attempt in range(CAS_ATTEMPTS):
            got = a.get(key)
            data = update(parse_manifest(got[0] if got else None, f"{self.location}/{MANIFEST}"))
            condition = {"IfMatch": got[1]} if got else {"IfNoneMatch": "*"}
            if a.put(key, data, **condition):
                break
            time.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.0))
        else:
            raise RunbookError(
                f"the manifest of {self.location} changed {CAS_ATTEMPTS} times while this run "
                "was being added: too many writers at once; its files are staged under .partial/"
            )
        for _, name in ready:
            with contextlib.suppress(Exception):
                a.s3.delete_object(Bucket=a.bucket, Key=self._staged(name))
        for tmp, _ in ready:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def release(self, run_id: str) -> None:
        import shutil

        with contextlib.suppress(Exception):
            self.archive.s3.delete_object(
                Bucket=self.archive.bucket, Key=self._staged(f"{run_id}.reserved")
            )
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def where(self, rel: str) -> str | Path:
        return f"{self.location}/{rel}"
