"""The folder archive of evidence/storage.py on a real temporary filesystem: where things go, what
is read, what a run may name, how run ids are reserved, how a commit lands and what a release
leaves. (The S3 archive is tested against moto's server in test_s3.py.)"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

import pytest

from incidentlib.errors import InvalidParameter, RunbookError
from incidentlib.evidence import storage

from .helpers import try_lock


def test_locations_folder_and_s3():
    assert storage.is_s3("s3://b/p") and not storage.is_s3("outputs/s3://x")
    assert not storage.is_s3(Path("s3:/b"))  # a Path is always a folder
    assert storage.join("outputs", "INC-1") == Path("outputs/INC-1")
    assert storage.join("s3://bucket/pre/", "INC-1") == "s3://bucket/pre/INC-1"
    archive = storage.open_archive("outputs")
    assert isinstance(archive, storage.FolderArchive) and archive.root == Path("outputs")
    assert archive.location == Path("outputs")
    inc = storage.open_incident("outputs/INC-1")
    assert isinstance(inc, storage.FolderIncident)
    assert (inc.name, inc.dir, inc.location) == ("INC-1", Path("outputs/INC-1"), inc.dir)
    assert inc.partial == Path("outputs/.partial/INC-1")
    for url in ("s3://bucket", "s3://bucket/"):
        with pytest.raises(InvalidParameter) as e:
            storage.open_incident(url)
        assert str(e.value) == (
            f"{url!r} names a bucket, not an incident: give s3://bucket/prefix/INC-..."
        )
    s3 = storage.open_incident("s3://bucket/pre/INC-2")
    assert (s3.name, s3.archive.location) == ("INC-2", "s3://bucket/pre")
    assert storage.open_archive("s3://bucket/pre").location == "s3://bucket/pre"


def test_a_manifest_is_read_or_refused_in_one_line(tmp_path):
    assert storage.parse_manifest(None, "x") == {}
    assert storage.parse_manifest(b'{"runs": []}', "x") == {"runs": []}
    with pytest.raises(RunbookError) as e:
        storage.parse_manifest(b"{nope", tmp_path / "manifest.json")
    assert str(e.value).startswith(f"{tmp_path / 'manifest.json'} is not readable JSON (")
    assert str(e.value).endswith(
        "; it may have been edited: restore it from a copy (on S3, an earlier object version)"
    )
    assert storage.read_manifest(tmp_path) == {}
    (tmp_path / "manifest.json").write_text('{"runs": [{"run_id": "a"}]}')
    assert storage.read_manifest(tmp_path) == {"runs": [{"run_id": "a"}]}


def test_writes_are_whole_and_leave_no_temp_file(tmp_path):
    tmp = storage.write_temp(b"data", tmp_path, ".x")
    assert tmp.parent == tmp_path and tmp.read_bytes() == b"data"
    assert tmp.name.startswith(f".{os.getpid()}.") and tmp.name.endswith(".x")
    assert len(tmp.name) == len(f".{os.getpid()}.") + 12 + 2
    assert storage.write_temp(b"", tmp_path).name.endswith(".tmp")
    with pytest.raises(FileNotFoundError):
        storage.write_temp(b"data", tmp_path / "missing")
    target = tmp_path / "out" / "f.json"
    target.parent.mkdir()
    (tmp_path / "scratch").mkdir()
    target.write_text("old")
    storage.atomic_write(target, b"new", tmp_path / "scratch")
    assert target.read_bytes() == b"new" and list((tmp_path / "scratch").iterdir()) == []
    big = tmp_path / "big"
    big.write_bytes(b"x" * (3 << 20))
    assert storage.sha256_file(big) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_the_lock_is_exclusive_to_write_and_shared_to_read(tmp_path):
    lock = tmp_path / ".manifest.lock"
    with storage.locked(tmp_path):
        assert lock.exists()
        assert not try_lock(tmp_path, fcntl.LOCK_SH)
    with storage.locked(tmp_path, shared=True):
        assert try_lock(tmp_path, fcntl.LOCK_SH) and not try_lock(tmp_path, fcntl.LOCK_EX)
    assert try_lock(tmp_path, fcntl.LOCK_EX)
    inc = storage.FolderArchive(tmp_path).incident("INC-1")
    inc.dir.mkdir()
    with inc.reading():
        assert not try_lock(inc.dir, fcntl.LOCK_EX)
    with pytest.raises(FileNotFoundError):  # no folder, no lock: never a silent write
        with storage.locked(tmp_path / "missing"):
            pass


def test_an_incident_lists_reads_and_hashes_only_its_own_files(tmp_path):
    archive = storage.FolderArchive(tmp_path / "outputs")
    assert archive.incidents() == []
    inc = archive.incident("INC-2")
    assert not inc.exists()
    assert inc.scratch() == tmp_path / "outputs" / ".partial" / "INC-2"
    assert inc.dir.is_dir() and inc.partial.is_dir()
    (inc.dir / "manifest.json").write_text("{}")
    (inc.dir / ".manifest.lock").write_text("")
    (inc.dir / "b.ipynb").write_bytes(b"nb")
    (inc.dir / "html").mkdir()
    (inc.dir / "html" / "a.html").write_bytes(b"page")
    (inc.dir / "link").symlink_to(tmp_path / "nowhere")
    archive.incident("INC-1").scratch()
    (tmp_path / "outputs" / "INC-1" / "manifest.json").write_text("{}")
    archive.incident("not-yet").scratch()
    assert archive.incidents() == ["INC-1", "INC-2"]
    assert inc.exists() and inc.files() == ["b.ipynb", "html/a.html", "link"]
    assert (inc.read("b.ipynb"), inc.read("missing")) == (b"nb", None)
    assert inc.sha256("b.ipynb") == hashlib.sha256(b"nb").hexdigest()
    assert (inc.sha256("missing"), inc.sha256("html")) == (None, None)
    assert inc.where("b.ipynb") == inc.dir / "b.ipynb" and not inc.in_flight("b.ipynb")


def test_only_a_plain_relative_path_inside_the_folder_is_inside(tmp_path):
    inc = storage.FolderArchive(tmp_path).incident("INC-1")
    inc.scratch()
    (inc.dir / "out").symlink_to(tmp_path)
    (inc.dir / "in").symlink_to(inc.dir / "sub")
    inside = {rel: inc.inside(rel) for rel in ("a.html", "sub/b", "in/c", "./a")}
    assert inside == {"a.html": True, "sub/b": True, "in/c": True, "./a": True}
    for rel in ("", "/etc/passwd", "\\x", "a\\b", "../INC-2/a", "sub/../../x", "out/x", "out"):
        assert not inc.inside(rel), rel


def test_run_ids_are_reserved_once_and_skip_what_is_taken(tmp_path):
    inc = storage.FolderArchive(tmp_path).incident("INC-1")
    inc.scratch()
    (inc.dir / "manifest.json").write_text(json.dumps({"runs": [{"run_id": "T-outage-2"}]}))
    (inc.dir / "T-outage-3.ipynb").write_text("")
    ids = [inc.reserve("T", "outage") for _ in range(3)]
    assert ids == ["T-outage", "T-outage-4", "T-outage-5"]
    assert sorted(p.name for p in inc.partial.iterdir()) == sorted(f"{r}.reserved" for r in ids)
    assert inc.reserve("T", "database") == "T-database"


def test_a_commit_puts_the_files_in_place_and_updates_the_manifest(tmp_path):
    inc = storage.FolderArchive(tmp_path).incident("INC-1")
    scratch = inc.scratch()
    (inc.dir / "manifest.json").write_text('{"runs": [1]}')
    ready = []
    for name in ("r.ipynb", "r.html"):
        (scratch / f"{name}.tmp").write_text(name)
        ready.append((scratch / f"{name}.tmp", name))
    seen = []

    def update(current):
        seen.append(current)
        return json.dumps({"runs": [*current["runs"], 2]}).encode()

    inc.commit(ready, update)
    assert seen == [{"runs": [1]}] and storage.read_manifest(inc.dir) == {"runs": [1, 2]}
    assert (inc.dir / "r.ipynb").read_text() == "r.ipynb" and (inc.dir / "r.html").exists()
    assert list(scratch.iterdir()) == []


def test_a_release_removes_the_runs_leftovers_and_then_the_empty_staging_area(tmp_path):
    inc = storage.FolderArchive(tmp_path).incident("INC-1")
    inc.scratch()
    rid = inc.reserve("T", "outage")
    other = inc.reserve("T", "database")
    for name in (f"{rid}.running.ipynb", f"{rid}.running.ipynb.123.abc.tmp"):
        (inc.partial / name).write_text("")
    inc.release(rid)
    assert sorted(p.name for p in inc.partial.iterdir()) == [f"{other}.reserved"]
    inc.release(other)
    inc.release(other)  # nothing left: no error
    assert not inc.partial.exists() and inc.dir.is_dir()


def test_locations_keep_their_last_letter_and_an_s3_archive_its_scratch(tmp_path):
    assert storage.join("s3://bucket/preX/", "INC-1") == "s3://bucket/preX/INC-1"
    inc = storage.open_incident("s3://bucket/team/INC-X/")
    assert (inc.name, inc.location) == ("INC-X", "s3://bucket/team/INC-X")
    assert storage.open_archive("s3://bucket/team", scratch=tmp_path).scratch_root == tmp_path
    assert storage.open_archive("s3://bucket/team").scratch_root is None
    # on S3 nothing resolves a path: the plain-path rule alone keeps verify inside the incident
    for rel in ("/etc/passwd", "\\x", "a\\b", "../INC-2/a", ""):
        assert not inc.inside(rel), rel
    assert inc.inside("a.ipynb") and inc.inside("sub/b.html")
    (tmp_path / "manifest.json").write_text("{nope")
    with pytest.raises(RunbookError) as e:
        storage.read_manifest(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'manifest.json'} is not readable JSON (")


def test_a_dead_run_is_seen_by_its_reservation_and_its_running_copy(tmp_path):
    """What `runbook run` looks for when it archives a run cut short: the reservation left behind,
    and the notebook papermill saved while the run was going."""
    inc = storage.FolderArchive(tmp_path).incident("INC-1")
    assert inc.scratch() == inc.partial and inc.scratch() == inc.partial  # again: no error
    old = os.umask(0o022)
    try:
        rid = inc.reserve("T", "outage")
    finally:
        os.umask(old)
    assert inc.reserved(rid) and not inc.reserved("T-other")
    assert (inc.partial / f"{rid}.reserved").stat().st_mode & 0o777 == 0o644
    assert inc.running(rid) is None
    (inc.partial / f"{rid}.running.ipynb").write_text("{}")
    assert inc.running(rid) == inc.partial / f"{rid}.running.ipynb"
    assert inc.running("T-other") is None
