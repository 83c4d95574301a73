"""`runbook serve` killed with SIGKILL in the middle of a run: at the next start the journal
replays, the half-run is archived as failed (what it had done, the failure first, as `runbook run`
archives a failed run) and the run is made again; the incident verifies; SIGTERM stops it
cleanly."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psutil
import pytest

from incidentlib.evidence import load_manifest, verify

from .helpers import alert, get, make_notebooks, payload, post, sleeping, start, wait_for

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def test_kill_9_mid_run_then_the_journal_replays(tmp_path: Path) -> None:
    notebooks = make_notebooks(tmp_path / "notebooks", ("triage",))
    outputs = tmp_path / "outputs"
    proc, url = start(notebooks, outputs, "-p", "pause", "30")
    try:
        status, reply, _ = post(url, payload(alert(namespace="shop")))
        assert status == 200 and reply["runs"] == ["triage"]
        incident = reply["incident"]
        partial = outputs / ".partial" / incident

        wait_for(
            lambda: sleeping(partial.glob("*.running.ipynb")),
            timeout=120,
            what="the run in its sleeping cell",
        )
        kernels = psutil.Process(proc.pid).children(recursive=True)
        assert kernels  # the running kernel and the warm one (and their chart helpers)
    finally:
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.wait(timeout=30)
    # no kernel outlives the server it served (ipykernel watches its parent)
    gone, alive = psutil.wait_procs(kernels, timeout=60)
    assert not alive, [p.cmdline() for p in alive]
    assert not (outputs / incident / "manifest.json").exists()  # nothing archived yet

    proc, url = start(notebooks, outputs, "-p", "pause", "0")
    try:

        def archived() -> list[dict]:
            if not (outputs / incident / "manifest.json").exists():
                return []
            runs = load_manifest(outputs / incident).get("runs", [])
            return runs if len(runs) == 2 else []

        runs = wait_for(archived, timeout=120, what="the cut-short run and its new run")
        assert [(r["scenario"], r["status"]) for r in runs] == [
            ("triage", "failed"),
            ("triage", "ok"),
        ]
        assert "runbook serve stopped mid-run" in runs[0]["error"]
        failed_nb = json.loads((outputs / incident / runs[0]["files"][0]["path"]).read_text())
        banner = "".join(failed_nb["cells"][1]["source"])  # after the summary, the failure
        assert "This run FAILED" in banner and "time.sleep(pause)" in banner
        report = verify(outputs / incident)
        assert report.ok and len(report.matching) == 4, (report.lines(), runs[0]["error"])
        partial = outputs / ".partial" / incident
        # the new run's reservation goes just after its manifest entry lands
        wait_for(lambda: not partial.exists(), timeout=30, what="the staging area emptied")
        status, page, _ = get(url + "/")
        assert status == 200 and incident in page.decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "runbook serve: stopped" in out
