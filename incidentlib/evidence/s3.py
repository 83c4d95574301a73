"""The S3 archive (`s3://bucket/prefix`): one object per file, the incidents under the prefix, with
the guarantees `storage.py` lists (staged whole under `<prefix>/.partial/`, run ids reserved with
`If-None-Match: *`, the manifest changed by compare-and-swap on its ETag, a commit in flight seen
by verify). `storage.open_archive` and `open_incident` return these for an s3:// location; this
module is imported only then (boto3 is the `s3` extra)."""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, RunbookError
from .layout import LOCK, MANIFEST, PARTIAL, parse_manifest, plain_path

CAS_ATTEMPTS = 60  # reads and conditional PUTs of the manifest before a commit gives up
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


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
        return plain_path(rel)

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
