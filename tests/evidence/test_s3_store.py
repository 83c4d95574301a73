"""The S3 archive through the library, against moto's standalone S3 server on loopback (no kernel,
no `runbook` process): many writers committing one incident at once, a commit verify waits for and
one a killed writer left half done, verify's findings on objects, scraps read from an s3:// URL,
and bad locations refused. `make mutate` runs these against one moto_server for every mutant
(tools/with_servers.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from incidentlib.errors import RunbookError
from incidentlib.evidence import manifest
from incidentlib.evidence.manifest import (
    MANIFEST,
    PARTIAL,
    load_manifest,
    next_manifest,
    read_scraps,
    verify,
)
from incidentlib.evidence.storage import open_archive, open_incident

from .conftest import FIXTURES
from .helpers import notebook_with_scraps

pytestmark = [pytest.mark.server]


def _files(tmp: Path, rid: str) -> list[tuple[Path, str]]:
    nb = tmp / f"{rid}.ipynb"
    nb.write_text(json.dumps({"run": rid}))
    return [(nb, f"{rid}.ipynb")]


def _entry(rid: str, ready: list[tuple[Path, str]]) -> dict:
    return {
        "run_id": rid,
        "scenario": "ok",
        "status": "ok",
        "files": [{"path": name, "sha256": manifest.sha256_file(tmp)} for tmp, name in ready],
    }


def _landed(url: str, tmp_path: Path, incident: str, runs: int = 1) -> list[str]:
    """`runs` runs committed one after the other; their run ids."""
    store = open_incident(f"{url}/{incident}")
    ids = []
    for n in range(runs):
        rid = store.reserve(f"20261202T08000{n}Z", "ok")
        work = tmp_path / f"{incident}-{n}"
        work.mkdir()
        ready = _files(work, rid)
        entry = _entry(rid, ready)
        store.commit(ready, lambda now, e=entry: next_manifest(now, incident, e))
        store.release(rid)
        ids.append(rid)
    return ids


def test_a_writer_killed_mid_commit_is_named_by_verify(s3_store, tmp_path, monkeypatch):
    """Files copied into place but the manifest never updated (the writer died in between): verify
    waits for the commit, then names the files and says a writer stopped while committing."""
    url = f"s3://{s3_store.bucket()}/x"
    store = open_incident(f"{url}/INC-cut")
    rid = store.reserve("20261202T080000Z", "ok")
    ready = _files(tmp_path, rid)

    def dies(now: dict) -> bytes:
        raise KeyboardInterrupt  # the process is gone before the manifest is written

    with pytest.raises(KeyboardInterrupt):
        store.commit(ready, dies)
    monkeypatch.setattr(manifest, "IN_FLIGHT_WAIT_S", 0.3)
    started = time.monotonic()
    report = verify(f"{url}/INC-cut")
    assert time.monotonic() - started >= 0.3  # it waited for the commit before naming it
    assert report.added == [f"{rid}.ipynb"] and not report.ok
    assert report.manifest_problems == [f"{url}/INC-cut/{MANIFEST} is missing"]
    assert report.notes == [
        f"1 added file(s) have a staged copy under {PARTIAL}/: a run was being committed, or a "
        "writer stopped while committing (its files, not its manifest entry, landed)"
    ]


def test_verify_waits_for_a_commit_on_its_way_and_then_finds_it_whole(s3_store, tmp_path):
    """A writer has copied its notebook into place and is about to append to the manifest when
    verify looks: verify waits (up to IN_FLIGHT_WAIT_S) and reports the run landed, not an added
    file."""
    url = f"s3://{s3_store.bucket()}/x"
    (first,) = _landed(url, tmp_path, "INC-flight")
    store = open_incident(f"{url}/INC-flight")
    rid = store.reserve("20261202T090000Z", "ok")
    work = tmp_path / "second"
    work.mkdir()
    ready = _files(work, rid)
    copied, release = threading.Event(), threading.Event()

    def slow(now: dict) -> bytes:
        copied.set()  # staged and copied into place; the manifest is next
        release.wait(timeout=30)
        return next_manifest(now, "INC-flight", _entry(rid, ready))

    writer = threading.Thread(target=store.commit, args=(ready, slow))
    writer.start()
    assert copied.wait(timeout=30)
    threading.Timer(0.5, release.set).start()
    report = verify(f"{url}/INC-flight")
    writer.join(timeout=30)
    assert report.ok, report.lines()
    assert report.matching == sorted([f"{first}.ipynb", f"{rid}.ipynb"])
    assert report.added == [] and report.notes[0].startswith("not signed")
    assert [r["run_id"] for r in load_manifest(f"{url}/INC-flight")["runs"]] == [first, rid]


def test_an_added_object_without_a_staged_copy_is_not_waited_for(s3_store, tmp_path, monkeypatch):
    """An object nobody is committing (no staged copy under .partial/) is an added file, and not a
    commit in flight: no note about staged copies."""
    monkeypatch.setattr(manifest, "IN_FLIGHT_WAIT_S", 0.2)
    bucket = s3_store.bucket()
    url = f"s3://{bucket}/x"
    (rid,) = _landed(url, tmp_path, "INC-added")
    s3_store.client().put_object(Bucket=bucket, Key="x/INC-added/planted.txt", Body=b"later")
    report = verify(f"{url}/INC-added")
    assert report.added == ["planted.txt"] and report.matching == [f"{rid}.ipynb"]
    assert not report.ok and report.manifest_problems == []
    assert len(report.notes) == 1 and report.notes[0].startswith("not signed"), report.notes


def test_verify_on_objects_changed_missing_edited_and_bad_manifests(s3_store, tmp_path):
    """What verify finds in a folder it finds in a bucket: a changed object, a missing one, an
    edited manifest, a manifest that is not JSON, none at all."""
    bucket = s3_store.bucket()
    s3 = s3_store.client()
    url = f"s3://{bucket}/x"
    a, b = _landed(url, tmp_path, "INC-obj", runs=2)
    s3.put_object(Bucket=bucket, Key=f"x/INC-obj/{a}.ipynb", Body=b'{"run": "edited"}')
    s3.delete_object(Bucket=bucket, Key=f"x/INC-obj/{b}.ipynb")
    report = verify(f"{url}/INC-obj")
    assert (report.changed, report.missing, report.matching) == ([f"{a}.ipynb"], [f"{b}.ipynb"], [])
    assert report.manifest_problems == []

    raw = s3.get_object(Bucket=bucket, Key=f"x/INC-obj/{MANIFEST}")["Body"].read()
    s3.put_object(Bucket=bucket, Key=f"x/INC-obj/{MANIFEST}", Body=raw + b"\n")
    assert verify(f"{url}/INC-obj").manifest_problems == [
        "its bytes differ from what runbook wrote (the file was edited)"
    ]
    s3.put_object(Bucket=bucket, Key=f"x/INC-obj/{MANIFEST}", Body=b"{not json")
    report = verify(f"{url}/INC-obj")
    assert len(report.manifest_problems) == 1
    assert report.manifest_problems[0].startswith(f"{url}/INC-obj/{MANIFEST} is not valid JSON (")
    assert report.added == [f"{a}.ipynb"]
    s3.delete_object(Bucket=bucket, Key=f"x/INC-obj/{MANIFEST}")
    assert verify(f"{url}/INC-obj").manifest_problems == [f"{url}/INC-obj/{MANIFEST} is missing"]


def test_scraps_are_read_from_an_s3_url_and_a_missing_one_is_named(s3_store):
    bucket = s3_store.bucket()
    body = notebook_with_scraps(severity="SEV2", figures={"error_rate": 0.1})
    s3_store.client().put_object(Bucket=bucket, Key="team/INC-1/run.ipynb", Body=body)
    url = f"s3://{bucket}/team/INC-1/run.ipynb"
    assert read_scraps(url) == {"severity": "SEV2", "figures": {"error_rate": 0.1}}
    assert read_scraps(url, names=("figures",)) == {"figures": {"error_rate": 0.1}}
    missing = f"s3://{bucket}/team/INC-1/other.ipynb"
    with pytest.raises(RunbookError) as e:
        read_scraps(missing)
    assert str(e.value) == f"{missing} does not exist"


def test_bad_s3_locations_are_refused_before_anything_runs(capsys):
    from incidentlib import cli
    from incidentlib.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="not a valid S3 bucket name"):
        open_archive("s3://Not_A_Bucket/prefix")
    with pytest.raises(InvalidParameter, match="names a bucket, not an incident"):
        open_incident("s3://evidence-bucket")
    argv = ["run", "ok", "--notebooks", str(FIXTURES), "--outputs", "s3://x/prefix"]
    assert cli.main(argv) == 1
    assert "is not an s3://bucket/prefix URL" in capsys.readouterr().err
    assert cli.main([*argv[:-1], "s3://evidence/p", "--s3-endpoint-url", "localhost:9000"]) == 1
    assert "must be an http(s):// URL" in capsys.readouterr().err


def test_many_writers_committing_at_once_lose_no_run(s3_store, tmp_path):
    """Eight writers commit one incident at the same moment: each read-modify-write of the
    manifest that met a newer one (412) is retried, so all eight runs are in it, chained."""
    url = f"s3://{s3_store.bucket()}/x"
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            store = open_archive(url).incident("INC-many")
            rid = store.reserve("20261202T080000Z", "ok")
            work = tmp_path / str(n)
            work.mkdir()
            ready = _files(work, rid)
            entry = _entry(rid, ready)
            barrier.wait(timeout=30)
            store.commit(ready, lambda now: next_manifest(now, "INC-many", entry))
            store.release(rid)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    runs = load_manifest(f"{url}/INC-many")["runs"]
    ids = [r["run_id"] for r in runs]
    assert sorted(ids) == ["20261202T080000Z-ok"] + [
        f"20261202T080000Z-ok-{n}" for n in range(2, 9)
    ]
    assert all(b["prev"] == a["entry_sha256"] for a, b in zip(runs, runs[1:], strict=False))
    report = verify(f"{url}/INC-many")
    assert report.ok and report.matching == sorted(f"{rid}.ipynb" for rid in ids), report.lines()
    assert report.notes == [
        "not signed: the chain shows an edit only if it is not rewritten whole; sign runs with "
        "--signing-key (runbook keygen) to make that detectable"
    ]
    assert s3_store.keys(url.split("/")[2], f"x/{PARTIAL}/") == []
