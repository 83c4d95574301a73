"""A tamper-evident archive: the runs are a hash chain, signed with an Ed25519 key when one is set;
`verify` stays inside the incident folder, names a malformed manifest in one line, takes the lock.

Each attack rewrites the archive as consistently as someone without the key can: the file, its
sha256 in the manifest, every entry hash after it, and the manifest's own sha256."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest

from incidentlib import cli
from incidentlib.evidence import manifest, signing
from incidentlib.evidence.manifest import MANIFEST, chain_start, entry_digest, verify

from .conftest import FIXTURES

pytestmark = [pytest.mark.notebook]

INCIDENT = "INC-20261202-0600-sign"


def runbook(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key, pub = signing.generate(tmp_path_factory.mktemp("keys"))
    return key, pub


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> Path:
    """An incident with two signed runs of the `ok` fixture notebook (about 6 s)."""
    outputs = tmp_path_factory.mktemp("outputs")
    for _ in range(2):
        code, _, err = runbook(
            "run",
            "ok",
            "--notebooks",
            str(FIXTURES),
            "--outputs",
            str(outputs),
            "--incident",
            INCIDENT,
            "--signing-key",
            str(keys[0]),
            "--no-html",
        )
        assert code == 0, err
    return outputs / INCIDENT


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _rewrite(incident: Path, edit) -> None:
    """Apply `edit(doc)` to the manifest, then recompute what needs no key: every entry hash and
    link, and the manifest's own sha256, exactly as runbook writes them."""
    doc = json.loads((incident / MANIFEST).read_text())
    edit(doc)
    prev = chain_start(doc["incident"])
    for run in doc["runs"]:
        run["prev"] = prev
        run["entry_sha256"] = prev = entry_digest(run)
    doc.pop("sha256")
    doc["sha256"] = manifest._digest(doc)
    (incident / MANIFEST).write_bytes(manifest._serialize(doc))


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(
    tmp_path: Path,
) -> None:
    code, out, _ = runbook("keygen", str(tmp_path / "k"))
    assert code == 0 and "export RUNBOOK_SIGNING_KEY=" in out
    key = tmp_path / "k" / "signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "k" / "signing.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    code, _, err = runbook("keygen", str(tmp_path / "k"))
    assert code == 1 and "exists already: keygen never overwrites a key" in err


def test_a_signed_archive_verifies_with_its_public_key(signed: Path, keys) -> None:
    code, out, _ = runbook("verify", str(signed), "--public-key", str(keys[1]))
    assert code == 0, out
    doc = json.loads((signed / MANIFEST).read_text())
    assert doc["format"] == 2 and [r["prev"] for r in doc["runs"]] == [
        chain_start(INCIDENT),
        doc["runs"][0]["entry_sha256"],
    ]
    assert "signatures: all 2 run(s) signed by key" in out
    code, out, _ = runbook(
        "verify", str(signed)
    )  # without the key: checked chain, signatures noted
    assert code == 0 and "2 of 2 run(s) signed: give --public-key to check them" in out


def test_a_consistent_rewrite_of_a_signed_run_is_detected(
    signed: Path, keys, tmp_path: Path
) -> None:
    incident = _copy(signed, tmp_path / INCIDENT)
    doc = json.loads((incident / MANIFEST).read_text())
    victim = incident / doc["runs"][0]["files"][0]["path"]
    text = victim.read_text()
    assert "error rate 0.0%" in text  # the fixture's verdict, reworded after the fact
    victim.write_text(text.replace("error rate 0.0%", "error rate 0.01%"))
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()

    def edit(d: dict) -> None:
        d["runs"][0]["files"][0]["sha256"] = digest

    _rewrite(incident, edit)
    assert verify(incident).ok  # without the key a whole rewrite is consistent: documented
    code, out, _ = runbook("verify", str(incident), "--public-key", str(keys[1]))
    run_id = doc["runs"][0]["run_id"]
    assert code == 1
    name = doc["runs"][0]["files"][0]["path"]
    assert (
        f"✗ manifest: run {run_id}: file {name}: its sha256 is not the one signed (the file and "
        "its hash were rewritten after the run)"
    ) in out
    assert f"✗ manifest: run {run_id}: its signature does not match its content\n" in out
    second = doc["runs"][1]["run_id"]
    assert (  # only its link changed
        f"run {second}: its signature does not match its content (its status, parameters, files "
        "or link to the run before it changed)"
    ) in out
    assert f"run {second}: file" not in out


def test_a_removed_or_reordered_run_breaks_the_chain_even_unsigned(
    signed: Path, tmp_path: Path
) -> None:
    incident = _copy(signed, tmp_path / "removed")
    doc = json.loads((incident / MANIFEST).read_text())
    first, second = doc["runs"]
    for f in first["files"]:
        (incident / f["path"]).unlink()
    doc["runs"] = [second]
    doc.pop("sha256")
    doc["sha256"] = manifest._digest(doc)
    (incident / MANIFEST).write_bytes(manifest._serialize(doc))
    report = verify(incident)
    assert not report.ok and report.manifest_problems == [
        f"run {second['run_id']}: the chain is broken before it (a run was removed, reordered or "
        "rewritten)"
    ]

    incident = _copy(signed, tmp_path / "reordered")
    doc = json.loads((incident / MANIFEST).read_text())
    doc["runs"].reverse()
    doc.pop("sha256")
    doc["sha256"] = manifest._digest(doc)
    (incident / MANIFEST).write_bytes(manifest._serialize(doc))
    assert sum("the chain is broken" in p for p in verify(incident).manifest_problems) == 2


def test_verify_never_reads_outside_the_incident_folder(signed: Path, tmp_path: Path) -> None:
    incident = _copy(signed, tmp_path / INCIDENT)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text("{}")

    def edit(d: dict) -> None:
        d["runs"][0]["files"] += [
            {"path": "/etc/hostname", "sha256": "0" * 64},
            {"path": "../other/manifest.json", "sha256": "1" * 64},
        ]

    _rewrite(incident, edit)
    code, out, _ = runbook("verify", str(incident))
    assert code == 1
    assert "names '/etc/hostname', outside the incident folder: not read" in out
    assert "names '../other/manifest.json', outside the incident folder: not read" in out
    assert "missing: /etc/hostname" not in out and "changed: ../other" not in out


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"runs": "none"}', "it has no list of runs"),
        ("[1, 2]", "it is a JSON list, not an object with runs"),
        (
            '{"runs": [{"files": [{"path": "x.ipynb"}]}]}',
            "run 1 (None) lists a file without a path and a sha256",
        ),
        ("{not json", "is not valid JSON"),
    ],
)
def test_a_malformed_manifest_is_one_line_not_a_traceback(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / MANIFEST).write_text(content)
    code, out, err = runbook("verify", str(tmp_path))
    assert code == 1 and err == ""
    assert [ln for ln in out.splitlines() if ln.startswith("✗")] == [
        ln for ln in out.splitlines() if problem in ln
    ]


def test_a_bad_signing_key_stops_the_run_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "bad.key").write_text("not a key")
    code, _, err = runbook(
        "run",
        "ok",
        "--notebooks",
        str(FIXTURES),
        "--outputs",
        str(tmp_path / "o"),
        "--signing-key",
        str(tmp_path / "bad.key"),
    )
    assert code == 1 and "signing key" in err and "is not a PEM private key" in err
    assert not (tmp_path / "o").exists()


def test_the_signing_key_comes_from_the_environment_too(keys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(keys[0]))
    code, _, err = runbook(
        "run",
        "ok",
        "--notebooks",
        str(FIXTURES),
        "--outputs",
        str(tmp_path),
        "--incident",
        INCIDENT,
        "--no-html",
    )
    assert code == 0, err
    [run] = json.loads((tmp_path / INCIDENT / MANIFEST).read_text())["runs"]
    assert run["signature"]["key_id"] == signing.key_id(signing.load_public(keys[1]))
    assert os.environ["RUNBOOK_SIGNING_KEY"] == str(keys[0])
