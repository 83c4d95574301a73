"""Shared pytest fixtures. Nothing here is autouse: a pure test starts nothing.

- `pg_server`: one throwaway PostgreSQL 15 for the session (pg_stat_statements preloaded), started
  on first use.
- `pg_dsn`: its superuser DSN to the `app` database (carries a password, on purpose).
- `stager`: stages real incidents on it; every staged session ends at teardown.
- `sim_cluster`: (from incidentlib.sim.testing) a factory of simulated clusters, stopped at
  teardown.
- `s3_store`: moto's standalone S3 server on loopback for the session (started on first use), the
  AWS environment pointing at it; `s3_store.bucket()` makes a fresh bucket."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from incidentlib.sandbox.postgres import Stager, ThrowawayPostgres

pytest_plugins = ["incidentlib.sim.testing"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
    except Exception as e:  # a missing server is a setup problem: say so plainly
        server.cleanup()
        pytest.fail(f"cannot start the throwaway PostgreSQL: {e}", pytrace=False)
    yield server
    server.cleanup()


@pytest.fixture
def pg_dsn(pg_server: ThrowawayPostgres) -> str:
    if not pg_server.running:
        pg_server.restart()
    return pg_server.dsn


@pytest.fixture
def stager(pg_dsn: str) -> Iterator[Stager]:
    s = Stager(pg_dsn)
    yield s
    s.close()


@dataclass
class S3Store:
    """A real S3 API (moto_server) on 127.0.0.1; `env` is what a runbook process needs to reach
    it. A test that ends every child of this process (`runbook demo` in-process does) stops it:
    `bucket()` and `client()` start it again on the same port (with no bucket in it)."""

    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ensure(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        moto = Path(sys.executable).with_name("moto_server")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(moto), "-H", "127.0.0.1", "-p", str(self.port)], stdout=out, stderr=out
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start: {self.log.read_text()[-2000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> Any:
        import boto3

        self.ensure()
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def bucket(self) -> str:
        name = f"evidence-{os.getpid()}-{next(self._names)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents") or [])


@pytest.fixture(scope="session")
def s3_store() -> Iterator[S3Store]:
    if not Path(sys.executable).with_name("moto_server").exists():
        pytest.fail("moto_server is not installed: make dev (moto[server] is a dev dependency)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logs = Path(tempfile.mkdtemp(prefix="runbook-moto-"))  # not under basetemp: other pytest
    store = S3Store(port, logs / "moto.log")  # sessions on the machine prune those
    store.env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": store.endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    try:
        store.ensure()
        with pytest.MonkeyPatch.context() as mp:
            for k, v in store.env.items():
                mp.setenv(k, v)
            mp.delenv("AWS_PROFILE", raising=False)
            yield store
    finally:
        store.stop()
        shutil.rmtree(logs, ignore_errors=True)
