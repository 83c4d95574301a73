"""`runbook serve` killed with SIGKILL in the middle of a run: at the next start the journal
replays, the half-run is archived as failed (what it had done, the failure first, as `runbook run`
archives a failed run) and the run is made again; the incident verifies; SIGTERM stops it
cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from incidentlib.evidence import load_manifest, verify

from .helpers import alert, get, make_notebooks, payload, post, wait_for

pytestmark = [pytest.mark.notebook, pytest.mark.slow]
RUNBOOK = Path(sys.executable).parent / "runbook"


def start(notebooks: Path, outputs: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            str(RUNBOOK),
            "serve",
            "--port",
            "0",
            "--notebooks",
            str(notebooks),
            "--outputs",
            str(outputs),
            "--workers",
            "1",
            "--warm-kernels",
            "1",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "listening on http://" in first, first + proc.stdout.read()
    url = first.split("listening on ", 1)[1].split()[0]
    wait_for(lambda: get(url + "/readyz")[0] == 200, timeout=60, what="readyz")
    return proc, url


def test_kill_9_mid_run_then_the_journal_replays(tmp_path: Path) -> None:
    notebooks = make_notebooks(tmp_path / "notebooks", ("triage",))
    outputs = tmp_path / "outputs"
    proc, url = start(notebooks, outputs, "-p", "pause", "30")
    try:
        status, reply, _ = post(url, payload(alert(namespace="shop")))
        assert status == 200 and reply["runs"] == ["triage"]
        incident = reply["incident"]
        partial = outputs / ".partial" / incident

        def sleeping() -> bool:  # papermill saved the notebook with the sleep cell started
            for nb in partial.glob("*.running.ipynb"):
                cells = json.loads(nb.read_text())["cells"]
                if any(
                    "time.sleep" in "".join(c["source"])
                    and c["metadata"].get("papermill", {}).get("start_time")
                    for c in cells
                ):
                    return True
            return False

        wait_for(sleeping, timeout=120, what="the run in its sleeping cell")
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
        assert not partial.exists(), list(partial.iterdir())
        status, page, _ = get(url + "/")
        assert status == 200 and incident in page.decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "runbook serve: stopped" in out
