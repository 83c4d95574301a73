"""`runbook serve --outputs s3://bucket/prefix --state-dir DIR` against moto's S3 server on
loopback: killed with SIGKILL mid-run, it comes back, archives the cut-short run with what it had
done (its partial notebook kept in the state folder) and runs it again; a resolution runs the
recovery against the first triage fetched from the bucket; `runbook verify s3://...` passes; the
index lists the incidents (those of the journal, and the archive's others) and the evidence pages
are read from the bucket, nothing outside the prefix. Without --state-dir it is refused before
listening; a cut-short run whose scratch folder is gone is archived saying its work was lost."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from incidentlib import cli
from incidentlib.evidence import load_manifest, verify
from incidentlib.evidence.run import archive_interrupted
from incidentlib.evidence.storage import open_archive

from .helpers import RUNBOOK, alert, get, make_notebooks, payload, post, sleeping, start, wait_for

pytestmark = [pytest.mark.notebook, pytest.mark.slow]
NAME = "KubePodCrashLooping"  # routes to outage (not here): triage alone
OLD = "INC-20261201-0000-old0"  # an incident only the archive knows


def test_serve_archives_into_s3_survives_kill_9_and_serves_the_bucket(s3_store, tmp_path) -> None:
    bucket = s3_store.bucket()
    url = f"s3://{bucket}/cluster-a"
    state = tmp_path / "state"
    notebooks = make_notebooks(tmp_path / "notebooks", ("triage", "performance"))
    env = {**os.environ, **s3_store.env}
    env.pop("AWS_ENDPOINT_URL_S3")  # the flag says where the store is
    flags = ("--state-dir", str(state), "--s3-endpoint-url", s3_store.endpoint)
    proc, base = start(notebooks, url, *flags, "-p", "pause", "30", env=env)
    try:
        status, reply, _ = post(base, payload(alert(NAME, namespace="shop"), group=NAME))
        assert status == 200 and reply["runs"] == ["triage"]
        incident = reply["incident"]
        scratch = state / "scratch" / incident
        wait_for(
            lambda: sleeping(scratch.glob("*/*.running.ipynb")),
            timeout=120,
            what="the run in its sleeping cell, its notebook in the state folder",
        )
    finally:
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.wait(timeout=30)
    assert s3_store.keys(bucket, f"cluster-a/{incident}/") == []  # nothing archived yet
    (reserved,) = s3_store.keys(bucket, "cluster-a/.partial/")
    assert reserved.startswith(f"cluster-a/.partial/{incident}/") and reserved.endswith(
        "-triage.reserved"
    )

    proc, base = start(notebooks, url, *flags, "-p", "pause", "0", env=env)
    try:

        def runs(n: int) -> list[dict]:
            got = load_manifest(f"{url}/{incident}").get("runs", [])
            return got if len(got) == n else []

        done = wait_for(lambda: runs(2), what="the cut-short run and its new run")
        assert [(r["scenario"], r["status"]) for r in done] == [
            ("triage", "failed"),
            ("triage", "ok"),
        ]
        assert "runbook serve stopped mid-run" in done[0]["error"]
        assert "lost" not in done[0]["error"]  # its partial notebook was in the state folder
        raw = s3_store.client().get_object(
            Bucket=bucket, Key=f"cluster-a/{incident}/{done[0]['files'][0]['path']}"
        )["Body"]
        banner = "".join(json.loads(raw.read())["cells"][1]["source"])
        assert "This run FAILED" in banner and "time.sleep(pause)" in banner
        # the resolution: the recovery compares with the triage that ran, fetched from the bucket
        status, reply, _ = post(
            base, payload(alert(NAME, namespace="shop", status="resolved"), group=NAME)
        )
        assert status == 200 and reply["runs"] == ["performance"], reply
        done = wait_for(lambda: runs(3), what="the recovery run")
        baseline = Path(done[2]["parameters"]["baseline"])
        assert baseline == state / "baselines" / incident / done[1]["files"][0]["path"]
        assert done[2]["status"] == "ok"
        # fetched for it, then removed once the run is archived (the manifest entry comes first)
        wait_for(lambda: not baseline.exists(), timeout=30, what="the fetched baseline removed")

        check = subprocess.run(
            [str(RUNBOOK), "verify", f"{url}/{incident}", "--s3-endpoint-url", s3_store.endpoint],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert check.returncode == 0, check.stderr
        assert f"OK: 6 file(s) match, 0 changed, 0 missing, 0 added in {url}/{incident}" in (
            check.stdout
        )
        journal = [json.loads(line) for line in (state / "journal.jsonl").read_text().splitlines()]
        (requeued,) = [r for r in journal if r["type"] == "requeued"]
        assert requeued["archived"] == f"{incident}/{done[0]['files'][0]['path']}"
        assert "lost" not in requeued
        assert list(scratch.iterdir()) == []  # every run's scratch folder removed once archived
        assert not (tmp_path / "cluster-a").exists()  # no folder named after the URL

        # an incident only the archive holds (an earlier pod's), and an object beside the prefix
        c = s3_store.client()
        for key in s3_store.keys(bucket, f"cluster-a/{incident}/"):
            new = key.replace(incident, OLD)
            c.copy_object(Bucket=bucket, Key=new, CopySource={"Bucket": bucket, "Key": key})
        html_name = done[1]["files"][1]["path"]
        c.put_object(Bucket=bucket, Key=f"elsewhere/{incident}/{html_name}", Body=b"<p>x</p>")
        c.put_object(Bucket=bucket, Key=f"cluster-a/{incident}/x.html", Body=b"<p>x</p>")

        status, page, headers = get(base + "/")
        text = page.decode()
        assert status == 200 and "script-src" not in headers["Content-Security-Policy"]
        links = re.findall(r'href="(/evidence/[^"]+)"', text)
        assert f"/evidence/{incident}/{html_name}" in links  # the journal's runs
        assert f"/evidence/{OLD}/{html_name}" in links  # the archive's incident
        assert text.index(incident) < text.index("In the archive") < text.index(OLD)
        assert text.count(f"<h2>{OLD}</h2>") == 1 and text.count(OLD) == 1 + 2 * 3
        for link in links:
            status, body, headers = get(base + link)
            assert status == 200 and headers["Content-Security-Policy"].startswith(
                "default-src 'none'"
            )
        status, body, headers = get(f"{base}/evidence/{incident}/{html_name}")
        assert headers["Content-Type"] == "text/html; charset=utf-8" and b"shop" in body
        status, body, headers = get(f"{base}/evidence/{incident}/manifest.json")
        assert status == 200 and json.loads(body)["runs"][0]["run_id"] == done[0]["run_id"]
        assert headers["Content-Disposition"] == 'attachment; filename="manifest.json"'
        assert get(f"{base}/evidence/{incident}/x.html")[0] == 200  # an object under the prefix
        for tail in (
            f"..%2Felsewhere%2F{incident}/{html_name}",  # beside the prefix
            f"{incident}/..%2F..%2Felsewhere%2F{incident}%2F{html_name}",
            f".partial/{incident}",
            f"{incident}/missing.html",
            f"{incident}/run.sh",  # not an evidence file name
        ):
            assert get(f"{base}/evidence/{tail}")[0] == 404, tail
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "runbook serve: stopped" in out


def test_s3_outputs_without_state_dir_are_refused_before_listening(capsys, tmp_path) -> None:
    notebooks = make_notebooks(tmp_path / "notebooks", ("triage",))
    argv = ["serve", "--port", "0", "--notebooks", str(notebooks), "--outputs", "s3://evidence/p"]
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert "listening" not in out
    assert "give --state-dir DIR, a folder that outlives the process" in err


def test_a_cut_short_s3_run_without_its_scratch_is_archived_saying_so(s3_store, tmp_path) -> None:
    """The state folder was lost with the pod (an emptyDir): the run is archived as failed from
    the notebook as written, the error says its work was lost, and the incident verifies."""
    url = f"s3://{s3_store.bucket()}/p"
    notebooks = make_notebooks(tmp_path / "notebooks", ("triage",))
    store = open_archive(url, scratch=tmp_path / "gone").incident(OLD)
    rid = store.reserve("20261201T000000Z", "triage")
    kwargs = {"outputs": url, "incident": OLD, "run_id": rid, "html": False}
    result = archive_interrupted(notebooks / "triage.ipynb", scratch=tmp_path / "new", **kwargs)
    assert result is not None and result.status == "failed"
    assert "what it had produced was lost (its scratch folder is gone)" in (result.error or "")
    assert not store.reserved(rid) and verify(f"{url}/{OLD}").ok
    assert archive_interrupted(notebooks / "triage.ipynb", **kwargs) is None  # archived once
