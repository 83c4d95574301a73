"""The manifest and `verify` on archives built in place (no notebook runs): each way the evidence
can be damaged gives its exact line, the chain and signatures are checked link by link, and the
lock really excludes (pure; `make mutate` runs these against every mutant of manifest.py and
signing.py)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
from pathlib import Path

import pytest

from incidentlib.errors import InvalidParameter, RunbookError
from incidentlib.evidence import manifest, signing
from incidentlib.evidence.manifest import (
    LOCK,
    MANIFEST,
    append_run_locked,
    atomic_write,
    chain_start,
    entry_digest,
    load_manifest,
    locked,
    read_manifest,
    read_scraps,
    sha256_file,
    verify,
    write_temp,
)

from .helpers import notebook_with_scraps, try_lock

INCIDENT = "INC-20261202-0800-pure"


def _archive(root: Path, runs: int = 2, key=None) -> Path:
    """An incident folder with `runs` runs of one file each, appended as runbook appends them."""
    incident = root / INCIDENT
    incident.mkdir(parents=True)
    for i in range(runs):
        f = incident / f"run{i}.ipynb"
        f.write_text(f"evidence {i}\n")
        entry = {
            "run_id": f"r{i}",
            "status": "ok",
            "note": "ré-run ✓",  # non-ASCII: hashed as UTF-8 text, not as \u escapes
            "files": [{"path": f.name, "sha256": sha256_file(f)}],
        }
        with locked(incident):
            append_run_locked(incident, INCIDENT, entry, signing_key=key)
    return incident


def _doc(incident: Path) -> dict:
    return json.loads((incident / MANIFEST).read_text())


def _save(incident: Path, doc: dict, *, rehash: bool = True) -> None:
    """Write the manifest back as runbook would, recomputing what needs no key."""
    if rehash:
        prev = chain_start(doc["incident"])
        for run in doc["runs"]:
            run["prev"] = prev
            run["entry_sha256"] = prev = entry_digest(run)
        doc.pop("sha256", None)
        doc["sha256"] = manifest._digest(doc)
    (incident / MANIFEST).write_bytes(manifest._serialize(doc))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return signing.generate(tmp_path_factory.mktemp("keys"))


# -- what runbook writes ---------------------------------------------------------------------------


def test_the_manifest_is_a_chain_of_runs_with_its_own_hash(tmp_path: Path) -> None:
    incident = _archive(tmp_path)
    raw = (incident / MANIFEST).read_bytes()
    doc = json.loads(raw)
    assert raw == (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
    assert list(doc) == ["incident", "created_at", "runs", "format", "sha256"]
    assert doc["created_at"].endswith("+00:00") and len(doc["created_at"]) == 25  # UTC, seconds
    assert doc["incident"] == INCIDENT and doc["format"] == 2
    first, second = doc["runs"]
    assert (
        first["prev"]
        == hashlib.sha256(f"incident-runbook manifest {INCIDENT}".encode()).hexdigest()
    )
    assert second["prev"] == first["entry_sha256"]
    for run in doc["runs"]:
        body = {k: v for k, v in run.items() if k not in ("entry_sha256", "signature")}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert run["entry_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
        assert "signature" not in run
    body = {k: v for k, v in doc.items() if k != "sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert doc["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert sorted(p.name for p in incident.iterdir()) == [
        LOCK,
        MANIFEST,
        "run0.ipynb",
        "run1.ipynb",
    ]
    assert list((tmp_path / ".partial").iterdir()) == []  # no temp file left behind


def test_a_clean_archive_verifies_and_says_it_is_not_signed(tmp_path: Path) -> None:
    assert load_manifest(_archive(tmp_path / "load")) == _doc(tmp_path / "load" / INCIDENT)
    report = verify(_archive(tmp_path))
    assert report.ok
    assert report.matching == ["run0.ipynb", "run1.ipynb"]
    assert report.lines() == [
        "  not signed: the chain shows an edit only if it is not rewritten whole; sign runs with "
        "--signing-key (runbook keygen) to make that detectable",
        f"OK: 2 file(s) match, 0 changed, 0 missing, 0 added in {tmp_path / INCIDENT}",
    ]


def test_an_empty_manifest_has_no_note(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_bytes(
        manifest._serialize(
            {"incident": "x", "runs": [], "sha256": manifest._digest({"incident": "x", "runs": []})}
        )
    )
    report = verify(tmp_path)
    assert report.ok and report.notes == [] and report.manifest_problems == []


def test_unicode_stays_readable_in_the_manifest(tmp_path: Path) -> None:
    incident = tmp_path / INCIDENT
    incident.mkdir()
    f = incident / "é.ipynb"
    f.write_text("x")
    with locked(incident):
        append_run_locked(
            incident,
            INCIDENT,
            {"run_id": "r0", "note": "café", "files": [{"path": f.name, "sha256": sha256_file(f)}]},
        )
    assert '"note": "café"' in (incident / MANIFEST).read_text(encoding="utf-8")
    assert verify(incident).ok


# -- each damage, its exact line -------------------------------------------------------------------


def test_a_missing_manifest_is_a_problem_and_every_file_is_added(tmp_path: Path) -> None:
    incident = _archive(tmp_path)
    (incident / MANIFEST).unlink()
    report = verify(incident)
    assert report.manifest_problems == [f"{incident / MANIFEST} is missing"]
    assert report.added == ["run0.ipynb", "run1.ipynb"] and not report.ok
    with pytest.raises(RunbookError) as e:
        load_manifest(incident)
    assert str(e.value) == (
        f"no manifest at {incident / MANIFEST}: is {str(incident)!r} an incident "
        "(outputs/<incident>, or s3://bucket/prefix/<incident>)?"
    )
    assert read_manifest(incident) == {}


def test_invalid_json_is_one_problem_and_every_file_is_added(tmp_path: Path) -> None:
    incident = _archive(tmp_path)
    (incident / MANIFEST).write_text('{"runs": [')
    report = verify(incident)
    [problem] = report.manifest_problems
    assert problem.startswith(f"{incident / MANIFEST} is not valid JSON (")
    assert report.added == ["run0.ipynb", "run1.ipynb"] and report.matching == []
    with pytest.raises(RunbookError, match="is not readable JSON .* restore it from a copy"):
        read_manifest(incident)
    with pytest.raises(RunbookError) as e:
        load_manifest(incident)
    assert str(e.value).startswith(f"{incident / MANIFEST} is not readable JSON (")


def test_a_formatting_only_edit_is_seen(tmp_path: Path) -> None:
    incident = _archive(tmp_path)
    doc = _doc(incident)
    (incident / MANIFEST).write_text(json.dumps(doc))  # same content, other bytes
    report = verify(incident)
    assert report.manifest_problems == [
        "its bytes differ from what runbook wrote (the file was edited)"
    ]
    assert report.matching == ["run0.ipynb", "run1.ipynb"]


def test_an_edited_entry_breaks_the_manifest_hash_then_the_entry_hash_then_the_chain(
    tmp_path: Path,
) -> None:
    incident = _archive(tmp_path)
    doc = _doc(incident)
    doc["runs"][0]["status"] = "failed"
    _save(incident, doc, rehash=False)
    assert verify(incident).manifest_problems == [
        "its content does not match its own sha256 (an entry was edited)",
        "run r0: its entry was edited (its hash does not match it)",
    ]
    # with the manifest's own hash recomputed: still the entry's own hash
    doc.pop("sha256")
    doc["sha256"] = manifest._digest(doc)
    _save(incident, doc, rehash=False)
    assert verify(incident).manifest_problems == [
        "run r0: its entry was edited (its hash does not match it)"
    ]
    # with the entry's hash recomputed: the next link breaks
    doc["runs"][0]["entry_sha256"] = entry_digest(doc["runs"][0])
    doc.pop("sha256")
    doc["sha256"] = manifest._digest(doc)
    _save(incident, doc, rehash=False)
    assert verify(incident).manifest_problems == [
        "run r1: the chain is broken before it (a run was removed, reordered or rewritten)"
    ]
    # moved to another incident: the first link breaks
    doc = _doc(_archive(tmp_path / "moved"))
    doc["incident"] = "INC-other"
    doc.pop("sha256")
    doc["sha256"] = manifest._digest(doc)
    _save(tmp_path / "moved" / INCIDENT, doc, rehash=False)
    assert verify(tmp_path / "moved" / INCIDENT).manifest_problems == [
        "run r0: the chain is broken before it (a run was removed, reordered or rewritten)"
    ]


def test_changed_missing_and_added_files(tmp_path: Path) -> None:
    incident = _archive(tmp_path)
    (incident / "run0.ipynb").write_text("edited\n")
    (incident / "run1.ipynb").unlink()
    (incident / "extra.html").write_text("x")
    (incident / "sub").mkdir()
    (incident / "sub" / "deep.txt").write_text("y")
    report = verify(incident)
    assert (report.changed, report.missing, report.added) == (
        ["run0.ipynb"],
        ["run1.ipynb"],
        ["extra.html", "sub/deep.txt"],
    )
    assert report.lines()[:3] == [
        "✗ changed: run0.ipynb (its sha256 differs from the manifest)",
        "✗ missing: run1.ipynb",
        "✗ added: extra.html (not in the manifest)",
    ]
    assert report.lines()[-1] == (
        f"FAILED: 0 file(s) match, 1 changed, 1 missing, 2 added in {incident}"
    )
    report.manifest_problems.append("its bytes differ")
    assert report.lines()[:2] == [
        "✗ manifest: its bytes differ",
        "✗ changed: run0.ipynb (its sha256 differs from the manifest)",
    ]


def test_symlinks_are_added_files_even_when_they_point_nowhere_or_outside(tmp_path: Path) -> None:
    incident = _archive(tmp_path)
    (tmp_path / "outside.txt").write_text("o")
    os.symlink(tmp_path / "outside.txt", incident / "link-out")
    os.symlink(incident / "gone", incident / "link-dangling")
    os.symlink("run0.ipynb", incident / "link-in")
    report = verify(incident)
    assert report.added == ["link-dangling", "link-in", "link-out"] and not report.ok
    assert report.matching == ["run0.ipynb", "run1.ipynb"]


def test_a_listed_file_that_is_a_folder_or_a_link_out_is_not_a_match(tmp_path: Path) -> None:
    incident = _archive(tmp_path, runs=1)
    (incident / "run0.ipynb").unlink()
    (incident / "run0.ipynb").mkdir()
    assert verify(incident).missing == ["run0.ipynb"]
    doc = _doc(incident)
    (tmp_path / "secret").write_text("evidence 0\n")
    os.symlink(tmp_path / "secret", incident / "via-link")
    doc["runs"][0]["files"] = [{"path": "via-link", "sha256": sha256_file(tmp_path / "secret")}]
    _save(incident, doc)
    report = verify(incident)
    assert report.manifest_problems == [
        "run r0 names 'via-link', outside the incident folder: not read"
    ]
    assert report.matching == [] and "via-link" in report.added


@pytest.mark.parametrize(
    "path", ["/etc/hostname", "../x", "a/../../x", "a\\b", "\\x", "", "a/../run0.ipynb"]
)
def test_paths_outside_the_folder_are_never_read(tmp_path: Path, path: str) -> None:
    incident = _archive(tmp_path, runs=1)
    doc = _doc(incident)
    doc["runs"][0]["files"].append({"path": path, "sha256": "0" * 64})
    _save(incident, doc)
    report = verify(incident)
    assert report.manifest_problems == [
        f"run r0 names {path!r}, outside the incident folder: not read"
    ]
    assert report.matching == ["run0.ipynb"] and report.missing == []


def test_a_nested_path_inside_the_folder_is_read(tmp_path: Path) -> None:
    incident = _archive(tmp_path, runs=1)
    (incident / "html").mkdir()
    (incident / "html" / "r0.html").write_text("<p>x</p>")
    doc = _doc(incident)
    doc["runs"][0]["files"].append(
        {"path": "html/r0.html", "sha256": sha256_file(incident / "html" / "r0.html")}
    )
    _save(incident, doc)
    assert verify(incident).matching == ["html/r0.html", "run0.ipynb"]


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ([], "it is a JSON list, not an object with runs"),
        ("x", "it is a JSON str, not an object with runs"),
        ({}, "it has no list of runs"),
        ({"runs": {}}, "it has no list of runs"),
        ({"runs": [1]}, "run 1 is not an object with a list of files"),
        ({"runs": [{"files": {}}]}, "run 1 is not an object with a list of files"),
        (
            {"runs": [{"run_id": "a", "files": []}, {}]},
            "run 2 is not an object with a list of files",
        ),
        (
            {"runs": [{"run_id": "a", "files": ["x"]}]},
            "run 1 (a) lists a file without a path and a sha256",
        ),
        (
            {"runs": [{"run_id": "a", "files": [{"path": 1, "sha256": "0" * 64}]}]},
            "run 1 (a) lists a file without a path and a sha256",
        ),
        (
            {"runs": [{"run_id": "a", "files": [{"path": "x", "sha256": "0" * 63}]}]},
            "run 1 (a) lists a file without a path and a sha256",
        ),
        (
            {"runs": [{"run_id": "a", "files": [{"path": "x", "sha256": "0" * 63 + "G"}]}]},
            "run 1 (a) lists a file without a path and a sha256",
        ),
        (
            {"runs": [{"run_id": "a", "files": [{"path": "x", "sha256": 5}]}]},
            "run 1 (a) lists a file without a path and a sha256",
        ),
    ],
)
def test_a_manifest_of_another_shape_is_one_line(tmp_path: Path, doc, problem: str) -> None:
    (tmp_path / MANIFEST).write_text(json.dumps(doc))
    report = verify(tmp_path)
    assert report.manifest_problems == [
        f"{tmp_path / MANIFEST} is not a manifest runbook wrote: {problem}"
    ]
    assert report.added == [] and report.notes == []


def test_a_format_1_manifest_verifies_and_a_chain_cannot_fall_back_to_it(tmp_path: Path) -> None:
    incident = tmp_path / INCIDENT
    incident.mkdir()
    f = incident / "old.ipynb"
    f.write_text("old\n")
    old = {"run_id": "old", "files": [{"path": "old.ipynb", "sha256": sha256_file(f)}]}
    doc = {"incident": INCIDENT, "runs": [old]}
    doc["sha256"] = manifest._digest(doc)
    _save(incident, doc, rehash=False)
    assert verify(incident).ok
    # a chained run after it links to the old entry's own hash
    g = incident / "new.ipynb"
    g.write_text("new\n")
    with locked(incident):
        append_run_locked(
            incident,
            INCIDENT,
            {"run_id": "new", "files": [{"path": "new.ipynb", "sha256": sha256_file(g)}]},
        )
    doc = _doc(incident)
    assert list(doc) == ["incident", "runs", "format", "sha256"]  # its own hash stays last
    assert doc["runs"][1]["prev"] == entry_digest(old)
    assert verify(incident).ok
    # an unchained run after a chained one is a removed hash
    doc["runs"].append(dict(old, run_id="late"))
    doc.pop("sha256")
    doc["sha256"] = manifest._digest(doc)
    _save(incident, doc, rehash=False)
    assert verify(incident).manifest_problems == [
        "run late has no hash of its own after chained runs"
    ]


# -- signatures ------------------------------------------------------------------------------------


def test_a_signed_archive_names_its_key_and_each_file_is_signed(tmp_path: Path, keys) -> None:
    key = signing.load_private(keys[0])
    public = signing.load_public(keys[1])
    incident = _archive(tmp_path, key=key)
    doc = _doc(incident)
    for run in doc["runs"]:
        assert signing.check(public, run["entry_sha256"], run["signature"]) is None
        [f] = run["files"]
        message = f"{run['run_id']}\n{f['path']}\n{f['sha256']}"
        assert signing.check(public, message, f["signature"]) is None
    report = verify(incident, public_key=public)
    assert report.ok
    assert report.notes == [f"signatures: all 2 run(s) signed by key {signing.key_id(public)}"]
    assert verify(incident).notes == ["2 of 2 run(s) signed: give --public-key to check them"]


def test_an_unsigned_run_fails_a_check_with_a_key(tmp_path: Path, keys) -> None:
    public = signing.load_public(keys[1])
    incident = _archive(tmp_path)
    assert verify(incident, public_key=public).manifest_problems == [
        "run r0: it is not signed",
        "run r1: it is not signed",
    ]
    # a format-1 entry: written before signing
    doc = _doc(incident)
    for run in doc["runs"]:
        del run["entry_sha256"], run["prev"]
    doc.pop("sha256")
    doc["sha256"] = manifest._digest(doc)
    _save(incident, doc, rehash=False)
    assert verify(incident, public_key=public).manifest_problems == [
        "run r0: it is not signed (written before signing)",
        "run r1: it is not signed (written before signing)",
    ]


def test_a_rewritten_signed_file_is_named_and_a_relinked_run_is_told_apart(
    tmp_path: Path, keys
) -> None:
    key, public = signing.load_private(keys[0]), signing.load_public(keys[1])
    incident = _archive(tmp_path, key=key)
    (incident / "run0.ipynb").write_text("rewritten\n")
    doc = _doc(incident)
    doc["runs"][0]["files"][0]["sha256"] = sha256_file(incident / "run0.ipynb")
    _save(incident, doc)
    assert verify(incident).ok  # unsigned check: a consistent rewrite
    assert verify(incident, public_key=public).manifest_problems == [
        "run r0: file run0.ipynb: its sha256 is not the one signed (the file and its hash were "
        "rewritten after the run)",
        "run r0: its signature does not match its content",
        "run r1: its signature does not match its content (its status, parameters, files or link "
        "to the run before it changed)",
    ]


def test_a_signature_by_another_key_or_algorithm(tmp_path: Path, keys) -> None:
    other_key, other_pub = signing.generate(tmp_path / "other")
    incident = _archive(tmp_path, runs=1, key=signing.load_private(other_key))
    public = signing.load_public(keys[1])
    [problem] = verify(incident, public_key=public).manifest_problems
    assert problem == (
        f"run r0: it is signed by key {signing.key_id(signing.load_public(other_pub))}, not by the "
        f"public key given ({signing.key_id(public)})"
    )
    sig = {"alg": "rsa", "key_id": signing.key_id(public), "value": "AA=="}
    assert signing.check(public, "x", sig) == "its signature's algorithm is 'rsa', not ed25519"
    assert signing.check(public, "x", {"alg": "ed25519", "value": 1}) == "it is not signed"
    assert signing.check(public, "x", None) == "it is not signed"
    bad = {"alg": "ed25519", "key_id": signing.key_id(public), "value": "not base64!"}
    assert signing.check(public, "x", bad) == "its signature does not match its content"


def test_sign_and_check_round_trip(keys) -> None:
    key, public = signing.load_private(keys[0]), signing.load_public(keys[1])
    sig = signing.sign(key, "abc")
    assert set(sig) == {"alg", "key_id", "value"} and sig["alg"] == "ed25519"
    assert sig["key_id"] == signing.key_id(public) and len(sig["key_id"]) == 16
    assert signing.check(public, "abc", sig) is None
    assert signing.check(public, "abd", sig) == "its signature does not match its content"
    # a valid signature with anything but base64 appended is not a signature
    padded = {**sig, "value": sig["value"] + "!*"}
    assert signing.check(public, "abc", padded) == "its signature does not match its content"
    assert signing.file_message("r", "p", "s") == "r\np\ns"


def test_keys_load_from_a_file_pem_text_or_the_environment(
    keys, tmp_path: Path, monkeypatch
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = keys[0].read_text()
    monkeypatch.delenv(signing.ENV, raising=False)
    assert signing.load_private() is None
    assert isinstance(signing.load_private(pem), Ed25519PrivateKey)
    assert isinstance(signing.load_private("  \n" + pem), Ed25519PrivateKey)
    monkeypatch.setenv(signing.ENV, str(keys[0]))
    assert isinstance(signing.load_private(), Ed25519PrivateKey)
    monkeypatch.setenv(signing.ENV, "")
    assert signing.load_private() is None
    with pytest.raises(InvalidParameter) as e:
        signing.load_private(tmp_path / "nope")
    assert str(e.value) == (
        f"signing key {str(tmp_path / 'nope')!r} cannot be read (No such file or directory); "
        "give the signing.key that `runbook keygen DIR` wrote"
    )
    with pytest.raises(InvalidParameter, match="signing key the PEM text given is not a PEM"):
        signing.load_private("\n  -----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InvalidParameter, match="signing key the PEM text given is not a PEM"):
        signing.load_private("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InvalidParameter, match=r"public key '.*nope' cannot be read"):
        signing.load_public(tmp_path / "nope")
    (tmp_path / "junk.pub").write_text("junk")
    with pytest.raises(InvalidParameter, match=r"public key '.*junk.pub' is not a PEM public key"):
        signing.load_public(tmp_path / "junk.pub")


def test_a_key_of_another_type_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    priv = tmp_path / "ec.key"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub = tmp_path / "ec.pub"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(InvalidParameter, match=r"is not an Ed25519 key; make one with `runbook"):
        signing.load_private(priv)
    with pytest.raises(InvalidParameter, match=r"public key '.*ec.pub' is not an Ed25519 key"):
        signing.load_public(pub)


def test_keygen_never_overwrites_either_half(tmp_path: Path) -> None:
    key, pub = signing.generate(tmp_path / "new" / "deep")
    assert (key.name, pub.name) == ("signing.key", "signing.pub")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    only_pub = tmp_path / "pub-only"
    only_pub.mkdir()
    (only_pub / "signing.pub").write_text("keep")
    with pytest.raises(InvalidParameter) as e:
        signing.generate(only_pub)
    assert str(e.value) == (
        f"{only_pub / 'signing.pub'} exists already: keygen never overwrites a key; choose "
        "another directory or remove the old pair on purpose"
    )
    assert (only_pub / "signing.pub").read_text() == "keep"
    assert not (only_pub / "signing.key").exists()


# -- writing and locking ---------------------------------------------------------------------------


def test_a_failed_temp_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_temp("not bytes", tmp_path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
    tmp = write_temp(b"data", tmp_path, suffix=".part")
    assert tmp.parent == tmp_path and re.fullmatch(
        rf"\.{os.getpid()}\.[0-9a-f]{{12}}\.part", tmp.name
    )
    assert tmp.read_bytes() == b"data"
    default = write_temp(b"", tmp_path)
    assert re.fullmatch(rf"\.{os.getpid()}\.[0-9a-f]{{12}}\.tmp", default.name)
    default.unlink()
    atomic_write(tmp_path / "final", b"new", tmp_path)
    assert (tmp_path / "final").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["final", tmp.name])


def test_sha256_of_a_file_larger_than_one_read(tmp_path: Path) -> None:
    data = os.urandom((1 << 20) + 17)
    (tmp_path / "big").write_bytes(data)
    assert sha256_file(tmp_path / "big") == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_the_lock_is_exclusive_for_writers_and_shared_for_readers(tmp_path: Path) -> None:
    with locked(tmp_path):
        assert not try_lock(tmp_path, fcntl.LOCK_SH)
        assert not try_lock(tmp_path, fcntl.LOCK_EX)
    assert try_lock(tmp_path, fcntl.LOCK_EX)  # released
    with locked(tmp_path, shared=True):
        assert try_lock(tmp_path, fcntl.LOCK_SH)
        assert not try_lock(tmp_path, fcntl.LOCK_EX)
    assert try_lock(tmp_path, fcntl.LOCK_EX)
    with pytest.raises(ValueError), locked(tmp_path):  # released on an error too
        raise ValueError
    assert try_lock(tmp_path, fcntl.LOCK_EX)


def test_two_verifies_read_at_once(tmp_path: Path) -> None:
    incident = _archive(tmp_path, runs=1)
    reports: list = []
    with open(incident / LOCK, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)  # another verify reading
        reader = threading.Thread(target=lambda: reports.append(verify(incident)))
        reader.start()
        reader.join(20)
        assert not reader.is_alive() and [r.ok for r in reports] == [True]
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def test_read_scraps_reads_an_archived_notebook(tmp_path: Path) -> None:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [
                    {
                        "output_type": "display_data",
                        "data": {
                            "application/scrapbook.scrap.json+json": {
                                "name": n,
                                "data": v,
                                "encoder": "json",
                                "version": 1,
                            }
                        },
                    }
                    for n, v in (("severity", {"level": "SEV2"}), ("scenario", "café"))
                ],
            }
        ]
    }
    path = tmp_path / "run.ipynb"
    path.write_bytes(json.dumps(nb, ensure_ascii=False).encode("utf-8"))
    assert manifest.read_scraps(path) == {"severity": {"level": "SEV2"}, "scenario": "café"}
    assert manifest.read_scraps(path, ["scenario"]) == {"scenario": "café"}


def test_verify_waits_while_a_run_is_being_committed(tmp_path: Path) -> None:
    incident = _archive(tmp_path, runs=1)
    reports: list = []
    with open(incident / LOCK, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # a run being committed
        reader = threading.Thread(target=lambda: reports.append(verify(incident)))
        reader.start()
        reader.join(0.5)
        # however slow the machine, a verify that takes the lock cannot have finished
        assert reader.is_alive() and reports == []
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    reader.join(30)
    assert [r.ok for r in reports] == [True]


def test_scraps_are_read_from_an_archived_notebook_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "run.ipynb"
    path.write_bytes(notebook_with_scraps(severity="SEV2", owner="équipe-β"))
    assert read_scraps(path) == {"severity": "SEV2", "owner": "équipe-β"}
    assert read_scraps(str(path), names=["owner"]) == {"owner": "équipe-β"}
