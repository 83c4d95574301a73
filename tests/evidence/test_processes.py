"""`runbook run` as separate processes: two at once for one incident, and Ctrl-C in the middle of a
run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from incidentlib.evidence.manifest import PARTIAL, load_manifest, verify
from incidentlib.evidence.run import FAILURE_TAG

from .conftest import FIXTURES
from .helpers import kernels_of

pytestmark = [pytest.mark.notebook]

RUNBOOK = str(Path(sys.executable).with_name("runbook"))


def _start(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [RUNBOOK, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_two_parallel_runs_for_one_incident_both_land_in_the_manifest(tmp_path):
    common = [
        "--notebooks",
        str(FIXTURES),
        "--outputs",
        str(tmp_path),
        "--incident",
        "INC-parallel",
    ]
    procs = [_start("run", "ok", *common, "-p", "count", str(n)) for n in (2, 5)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    manifest = load_manifest(tmp_path / "INC-parallel")
    runs = manifest["runs"]
    assert len(runs) == 2
    assert sorted(r["parameters"]["count"] for r in runs) == [2, 5]
    assert len({r["run_id"] for r in runs}) == 2
    assert all(r["status"] == "ok" and len(r["files"]) == 2 for r in runs)
    report = verify(tmp_path / "INC-parallel")
    assert report.ok and len(report.matching) == 4
    for r in runs:  # each notebook is complete: it holds the table its own parameter asked for
        nb = nbformat.read(tmp_path / "INC-parallel" / r["files"][0]["path"], as_version=4)
        assert nb.metadata["evidence"]["status"] == "ok"
        assert f"pod-{r['parameters']['count'] - 1}" in json.dumps(nb)


def test_ctrl_c_archives_what_ran_and_leaves_no_process(tmp_path):
    proc = _start(
        "run",
        "sleeps",
        "--notebooks",
        str(FIXTURES),
        "--outputs",
        str(tmp_path),
        "--incident",
        "INC-int",
    )
    kernels = kernels_of(proc.pid)
    assert kernels, "the kernel never started"
    running = tmp_path / PARTIAL / "INC-int"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(running.glob("*.running.ipynb")):
        time.sleep(0.2)
    time.sleep(1.5)  # inside the sleeping cell
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: what ran is archived in" in err
    gone, alive = psutil.wait_procs(kernels, timeout=10)
    assert alive == [], f"kernel processes left behind: {[p.pid for p in alive]}"
    entry = load_manifest(tmp_path / "INC-int")["runs"][0]
    assert entry["status"] == "failed" and "interrupted (Ctrl-C)" in entry["error"]
    nb = nbformat.read(tmp_path / "INC-int" / entry["files"][0]["path"], as_version=4)
    assert FAILURE_TAG in nb.cells[1].metadata["tags"] and "interrupted" in nb.cells[1].source
    assert "FAILED</strong>: " in nb.cells[0].source and "interrupted" in nb.cells[0].source
    assert verify(tmp_path / "INC-int").ok
    assert not list((tmp_path / PARTIAL).rglob("*.ipynb"))


def test_a_run_killed_mid_way_leaves_no_half_written_evidence(tmp_path):
    common = ["--notebooks", str(FIXTURES), "--outputs", str(tmp_path), "--incident", "INC-kill"]
    first = _start("run", "ok", *common)
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err[-2000:]
    proc = _start("run", "sleeps", *common)
    kernels = kernels_of(proc.pid)
    assert kernels, "the kernel never started"
    time.sleep(1.5)
    proc.kill()  # SIGKILL: no cleanup code runs at all
    proc.wait(timeout=30)
    incident_dir = tmp_path / "INC-kill"
    report = verify(
        incident_dir
    )  # the earlier run is intact, nothing half-written appeared beside it
    assert report.ok and len(report.matching) == 2, report.lines()
    assert sorted(p.name for p in incident_dir.iterdir()) == sorted(  # nothing of the killed run
        [
            ".manifest.lock",
            "manifest.json",
            *(f["path"] for f in load_manifest(incident_dir)["runs"][0]["files"]),
        ]
    )
    # the orphaned kernel notices its parent is gone and exits by itself (ipykernel's parent poller)
    gone, alive = psutil.wait_procs(kernels, timeout=15)
    for p in alive:  # do not leave it to the rest of the suite
        p.kill()
    assert alive == [], "the kernel outlived its killed parent"
