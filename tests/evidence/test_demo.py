"""`runbook demo`: one command, every scenario under one incident, evidence printed, nothing left
running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from incidentlib.evidence.manifest import load_manifest, verify
from incidentlib.sandbox.postgres import find_install

from .conftest import SCENARIO_NOTEBOOKS
from .helpers import (
    archived_files,
    fetching_references,
    find_canaries,
    loaded_images,
    outside_references,
    text_urls_of_notebook,
)

pytestmark = [pytest.mark.sim, pytest.mark.pg, pytest.mark.notebook, pytest.mark.slow]

RUNBOOK = str(Path(sys.executable).with_name("runbook"))
SIM_CANARIES = ["sim-canary-token-7f3a9c2e1b4d", "sim-canary-pass-5d8e2a", "sandbox-superuser-pw"]


def _leftovers(marker: str, out: str = "") -> list[str]:
    """Processes this demo started that are still alive: kernels carry its marker variable; its
    postgres serves the port it printed (other demos may run on this machine at the same time: not
    theirs)."""
    m = re.search(r"database  127\.0\.0\.1:(\d+)/app", out)
    port_arg = f"-p {m.group(1)} " if m else None
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            ours_pg = port_arg is not None and "runbook-demo-" in cmd and port_arg in cmd
            if ours_pg or (p.pid != os.getpid() and p.environ().get("RUNBOOK_TEST_MARK") == marker):
                found.append(f"{p.pid} {cmd[:120]}")
        except psutil.Error:
            continue
    return found


def _cmdlines(proc: psutil.Process) -> list[str]:
    out = []
    for child in proc.children(recursive=True):
        try:
            out.append(" ".join(child.cmdline()))
        except psutil.Error:  # exited meanwhile
            continue
    return out


def test_demo_runs_every_scenario_and_prints_the_evidence(demo_run):
    assert demo_run["code"] == 0, demo_run["out"][-3000:] + demo_run["err"][-3000:]
    out = demo_run["out"]
    incident = re.search(r"^incident: (\S+)$", out, re.M).group(1)
    incident_dir = demo_run["outputs"] / incident
    manifest = load_manifest(incident_dir)
    scenarios = sorted(p.stem for p in SCENARIO_NOTEBOOKS.glob("*.ipynb") if p.stem != "postmortem")
    assert sorted(r["scenario"] for r in manifest["runs"]) == scenarios
    assert manifest["runs"][0]["scenario"] == "triage"  # the first five minutes come first
    assert all(r["status"] == "ok" for r in manifest["runs"])
    assert all(
        r["kubernetes"] == {"context": "sim", "server_version": r["kubernetes"]["server_version"]}
        and r["kubernetes"]["server_version"].startswith("v1.")
        for r in manifest["runs"]
    )
    majors = {r["postgres"]["server_version"].split(".")[0] for r in manifest["runs"]}
    assert majors == {find_install().major}  # the system's when installed, else the wheel's
    for r in manifest["runs"]:
        assert f"html: {incident_dir / r['files'][1]['path']}" in out
    assert f"evidence: {incident_dir}" in out and "verify OK" in out
    assert verify(incident_dir).ok
    files = archived_files(incident_dir)
    assert find_canaries(files, SIM_CANARIES) == []
    size = sum(f.stat().st_size for f in files)
    print(
        f"runbook demo: {demo_run['seconds']:.1f} s, evidence {size / 1e6:.2f} MB in {len(files)} "
        "files",
        file=sys.stderr,
    )


def test_demo_leaves_no_process_behind(demo_run):
    assert demo_run["code"] == 0
    assert re.search(r"database  127\.0\.0\.1:\d+/app", demo_run["out"])
    assert _leftovers(demo_run["marker"], demo_run["out"]) == []


def test_demo_html_loads_offline_with_its_charts(demo_run, chromium, tmp_path):
    incident = re.search(r"^incident: (\S+)$", demo_run["out"], re.M).group(1)
    charted = 0
    for run in load_manifest(demo_run["outputs"] / incident)["runs"]:
        html = demo_run["outputs"] / incident / run["files"][1]["path"]
        page = html.read_text()
        assert fetching_references(page) == [], run[
            "scenario"
        ]  # nothing the browser would load or follow
        # any other URL is text the notebook itself carries (an example in a comment) or a
        # parameter's value
        allowed = (
            "http://127.0.0.1:",
            # a log line of the demo scenario (sim/scenarios/demo.yaml), shown as escaped text when
            # it falls inside the window the outage notebook reads
            "http://backend:8080/api/v1/orders",
            *text_urls_of_notebook(html.with_suffix(".ipynb"), run["parameters"]),
        )
        assert outside_references(page, allowed) == [], run["scenario"]
        charts = html.with_suffix(".ipynb").read_text().count('"image/png"')
        total, decoded = loaded_images(chromium, html, tmp_path)
        assert (total, decoded) == (charts, charts), (
            f"{run['scenario']}: {decoded} of {total} images decoded, {charts} charts"
        )
        charted += charts
    assert charted >= 3  # the scenario notebooks draw charts, and every one of them shows


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_shuts_the_demo_down_cleanly(tmp_path, signum, start_demo):
    marker = uuid.uuid4().hex
    proc = start_demo("--outputs", str(tmp_path), marker=marker)
    me = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until a notebook's kernel is running
        if any("ipykernel" in cmd for cmd in _cmdlines(me)):
            break
        time.sleep(0.2)
    else:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
        pytest.fail("the demo never started a kernel")
    assert _leftovers(marker), "nothing to stop?"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: the demo environment is shut down; what ran is archived in" in err
    assert re.search(r"database  127\.0\.0\.1:\d+/app", out)
    deadline = time.monotonic() + 10
    while _leftovers(marker, out) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _leftovers(marker, out) == []


def test_keep_leaves_the_environment_usable_until_ctrl_c(tmp_path):
    """--keep with the `ok` fixture notebook only (fast): the printed exports reach the cluster and
    the database."""
    import shutil

    import psycopg

    from .conftest import FIXTURES

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(FIXTURES / "ok.ipynb", notebooks)
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [
            RUNBOOK,
            "demo",
            "--keep",
            "--notebooks",
            str(notebooks),
            "--outputs",
            str(tmp_path / "out"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUNBOOK_TEST_MARK": marker, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("  make lab"):
                break
        text = "".join(lines)
        assert "The demo environment stays up until Ctrl-C" in text, text
        exports = dict(re.findall(r"^  export (\w+)=(\S+)$", text, re.M))
        assert set(exports) >= {
            "KUBECONFIG",
            "PGHOST",
            "PGPORT",
            "PGDATABASE",
            "PGUSER",
            "PGPASSWORD",
        }
        pods = subprocess.run(
            ["kubectl", "get", "pods", "-n", "production", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "KUBECONFIG": exports["KUBECONFIG"]},
        )
        assert pods.returncode == 0 and "pod/backend-" in pods.stdout, pods.stderr
        env_dsn = " ".join(
            f"{k}={exports['PG' + k.upper()]}" for k in ("host", "port", "user", "password")
        )
        with psycopg.connect(f"{env_dsn} dbname={exports['PGDATABASE']}", connect_timeout=5) as c:
            waiting = c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()[0]
        assert waiting == 2  # the staged lock chain A <- B <- C is still there
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 130
    deadline = time.monotonic() + 10
    while _leftovers(marker, "".join(lines)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _leftovers(marker, "".join(lines)) == []
