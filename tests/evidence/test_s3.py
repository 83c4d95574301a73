"""Evidence in object storage, against moto's standalone S3 server on loopback: `runbook run
--outputs s3://bucket/prefix` from two processes at once (both land, chained and signed), `runbook
verify s3://...`, an edited object caught, a writer killed mid-run and one killed mid-commit, and
many writers committing one incident at once (compare-and-swap on the manifest's ETag)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from incidentlib.evidence.manifest import PARTIAL, load_manifest, verify
from incidentlib.evidence.signing import generate, load_public
from incidentlib.evidence.storage import open_archive

from .conftest import FIXTURES
from .helpers import kernels_of

pytestmark = [pytest.mark.notebook]

RUNBOOK = str(Path(sys.executable).with_name("runbook"))
INCIDENT = "INC-20261202-0800-s3aa"


def _start(s3_store, *argv: str, signing_key: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, **s3_store.env, "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL_S3")  # the flag says where the store is
    if signing_key is not None:
        env["RUNBOOK_SIGNING_KEY"] = str(signing_key)
    return subprocess.Popen(
        [RUNBOOK, *argv, "--s3-endpoint-url", s3_store.endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@dataclass
class Landed:
    bucket: str
    url: str  # s3://bucket/team-a
    keys: Path  # signing.key, signing.pub
    outputs: list[str]

    @property
    def incident(self) -> str:
        return f"{self.url}/{INCIDENT}"


@pytest.fixture(scope="module")
def landed(s3_store, tmp_path_factory: pytest.TempPathFactory) -> Landed:
    """Two `runbook run` processes writing one incident in one bucket at the same time, signed."""
    bucket = s3_store.bucket()
    keys = tmp_path_factory.mktemp("keys")
    key, _ = generate(keys)
    url = f"s3://{bucket}/team-a"
    common = ["--notebooks", str(FIXTURES), "--outputs", url, "--incident", INCIDENT]
    procs = [
        _start(s3_store, "run", "ok", *common, "-p", "count", str(n), signing_key=key)
        for n in (2, 5)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _, err in results]
    return Landed(bucket, url, keys, [out for out, _ in results])


def test_two_writers_both_land_chained_signed_and_verified(landed, s3_store):
    doc = load_manifest(landed.incident)
    runs = doc["runs"]
    assert sorted(r["parameters"]["count"] for r in runs) == [2, 5]
    assert len({r["run_id"] for r in runs}) == 2
    assert runs[1]["prev"] == runs[0]["entry_sha256"]  # the second chained to the first
    assert all(r["status"] == "ok" and len(r["files"]) == 2 and r["signature"] for r in runs)
    report = verify(landed.incident, public_key=load_public(landed.keys / "signing.pub"))
    assert report.ok, report.lines()
    assert len(report.matching) == 4 and report.changed == report.missing == report.added == []
    keys = s3_store.keys(landed.bucket)
    files = sorted(f"team-a/{INCIDENT}/{f['path']}" for r in runs for f in r["files"])
    assert keys == sorted([*files, f"team-a/{INCIDENT}/manifest.json"])  # nothing staged is left
    for out in landed.outputs:  # what `runbook run` printed names the objects, not a local path
        assert f"manifest: {landed.incident}/manifest.json" in out
    for r in runs:  # each notebook is complete: it holds the table its own parameter asked for
        raw = (
            s3_store.client()
            .get_object(Bucket=landed.bucket, Key=f"team-a/{INCIDENT}/{r['files'][0]['path']}")[
                "Body"
            ]
            .read()
        )
        nb = json.loads(raw)
        assert nb["metadata"]["evidence"]["status"] == "ok"
        assert f"pod-{r['parameters']['count'] - 1}" in raw.decode()
    assert open_archive(landed.url).incidents() == [INCIDENT]


def test_runbook_verify_s3_and_an_edited_object_is_caught(landed, s3_store, tmp_path):
    pub = str(landed.keys / "signing.pub")
    ok = _start(s3_store, "verify", landed.incident, "--public-key", pub)
    out, err = ok.communicate(timeout=60)
    assert ok.returncode == 0, err
    assert f"OK: 4 file(s) match, 0 changed, 0 missing, 0 added in {landed.incident}" in out, out
    # an auditor's copy of the incident, one object of it edited
    other = s3_store.bucket()
    c = s3_store.client()
    for key in s3_store.keys(landed.bucket, f"team-a/{INCIDENT}/"):
        c.copy_object(Bucket=other, Key=key, CopySource={"Bucket": landed.bucket, "Key": key})
    runs = load_manifest(landed.incident)["runs"]
    html = f"team-a/{INCIDENT}/{runs[0]['files'][1]['path']}"
    body = c.get_object(Bucket=other, Key=html)["Body"].read()
    c.put_object(Bucket=other, Key=html, Body=body.replace(b"pod-0", b"pod-9"))
    edited = f"s3://{other}/team-a/{INCIDENT}"
    report = verify(edited)
    assert report.changed == [runs[0]["files"][1]["path"]] and not report.ok
    bad = _start(s3_store, "verify", edited, "--public-key", pub)
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 1, (out, err)
    assert f"✗ changed: {runs[0]['files'][1]['path']} (its sha256 differs" in out
    assert f"FAILED: 3 file(s) match, 1 changed, 0 missing, 0 added in {edited}" in out


def test_a_writer_killed_mid_run_leaves_nothing_in_the_incident(landed, s3_store):
    before = s3_store.keys(landed.bucket, f"team-a/{INCIDENT}/")
    common = ["--notebooks", str(FIXTURES), "--outputs", landed.url, "--incident", INCIDENT]
    proc = _start(s3_store, "run", "sleeps", *common)
    kernels = kernels_of(proc.pid)
    assert kernels, "the kernel never started"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)  # no cleanup code runs at all
    proc.wait(timeout=30)
    assert s3_store.keys(landed.bucket, f"team-a/{INCIDENT}/") == before
    assert verify(landed.incident).ok
    # only its run-id reservation is left, in the staging area
    staged = s3_store.keys(landed.bucket, f"team-a/{PARTIAL}/")
    assert len(staged) == 1 and staged[0].endswith("-sleeps.reserved"), staged
    _, alive = psutil.wait_procs(kernels, timeout=15)
    for p in alive:
        p.kill()
    assert alive == [], "the kernel outlived its killed parent"
