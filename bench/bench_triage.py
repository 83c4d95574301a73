"""Benchmark of the triage notebook against the demo environment (not a test). Target: under 5 s end
to end.

Brings up the simulated cluster (`demo` scenario), the demo HTTP service at 8% errors and a
throwaway PostgreSQL with a lock chain, then measures in the same run:
- the notebook's end-to-end `papermill` time (the CLI: interpreter and kernel start included);
- the library part alone, in this process (`triage.read_all`: every read at once), to show where
  time goes;
- a baseline: the runbook's own quick health checks back to back (curl the health URL 20 times,
  `kubectl get pods -A`, `kubectl get nodes -o wide`, `kubectl top nodes`, `kubectl rollout
  history`, `kubectl get events`, `psql` counting connections and lock waits).

    .venv/bin/python bench/bench_triage.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from incidentlib.notebook.run import Run
from incidentlib.sandbox.demoapp import DemoApp
from incidentlib.sandbox.postgres import Stager, ThrowawayPostgres, find_pg_bin
from incidentlib.scenarios import triage
from incidentlib.sim import start

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "triage.ipynb"
PAPERMILL = Path(sys.executable).parent / "papermill"
TARGET_S = 5.0


def baseline(sim, *, health_url: str, dsn: str) -> float:
    """The runbook's own commands, back to back; seconds."""
    curl = shutil.which("curl")
    psql = str(find_pg_bin() / "psql")
    t0 = time.perf_counter()
    if curl:
        per_url = [a for _ in range(20) for a in (health_url, "-o", "/dev/null")]
        subprocess.run([curl, "-s", *per_url], check=False, timeout=60)
    for args in (
        ["get", "pods", "-A"],
        ["get", "nodes", "-o", "wide"],
        ["top", "nodes"],
        ["rollout", "history", "deployment/backend", "-n", "production"],
        ["get", "events", "-n", "production", "--sort-by=.lastTimestamp"],
    ):
        out = sim.kubectl(*args, timeout=60)
        if out.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
    subprocess.run(
        [
            psql,
            dsn,
            "-Atc",
            "SELECT count(*) FROM pg_stat_activity; "
            "SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return time.perf_counter() - t0


def notebook(sim, out: Path, *, health_url: str, dsn: str) -> float:
    cmd = [
        str(PAPERMILL),
        str(NOTEBOOK),
        str(out),
        "-p",
        "kubeconfig",
        str(sim.kubeconfig),
        "-p",
        "dsn",
        dsn,
        "-p",
        "health_url",
        health_url,
        "--no-progress-bar",
        "--log-level",
        "ERROR",
    ]
    t0 = time.perf_counter()
    subprocess.run(
        cmd,
        env={**os.environ, **sim.env},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=out.parent,
        timeout=120,
    )
    return time.perf_counter() - t0


def compile_library() -> None:
    """The library's bytecode, as pip writes it for an installed package and as the first run writes
    it on a machine that may: the timed runs then measure a run, not a first compile (under
    PYTHONDONTWRITEBYTECODE=1 an editable checkout would otherwise compile every module of
    incidentlib in every process, about 60 ms in the kernel alone)."""
    import compileall

    compileall.compile_dir(ROOT / "incidentlib", quiet=1)


def floor(work: Path) -> float:
    """papermill CLI on a one-cell notebook importing pandas: the fixed cost (interpreter, kernel
    start)."""
    import nbformat

    empty = work / "floor.ipynb"
    if not empty.exists():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import pandas")])
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, empty)
    t0 = time.perf_counter()
    subprocess.run(
        [
            str(PAPERMILL),
            str(empty),
            str(work / "floor-out.ipynb"),
            "--no-progress-bar",
            "--log-level",
            "ERROR",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=work,
        timeout=120,
    )
    return time.perf_counter() - t0


def library(sim, *, health_url: str, dsn: str) -> float:
    t0 = time.perf_counter()
    cfg = triage.Params.check(
        {"kubeconfig": str(sim.kubeconfig), "health_url": health_url, "dsn": dsn}
    )
    run = Run("triage", quiet=True)
    got = triage.read_all(run, cfg)
    elapsed = time.perf_counter() - t0
    failed = [s.source for s in run.sources if s.status == "failed"]
    if failed or got.database is None:
        raise SystemExit(f"a triage source failed: {failed}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    compile_library()
    work = Path(tempfile.mkdtemp(prefix="bench-triage-"))
    pg = ThrowawayPostgres().start()
    stager = Stager(pg.dsn)
    app = DemoApp(latency_ms=0, error_rate=0.08).start()
    sim = start("demo", workdir=work / "sim")
    try:
        stager.lock_chain(3)
        url = app.url + "/health"
        base, nb, lib, fl = [], [], [], []
        for i in range(args.repeat):
            base.append(baseline(sim, health_url=url, dsn=pg.dsn))
            lib.append(library(sim, health_url=url, dsn=pg.dsn))
            nb.append(notebook(sim, work / f"triage-{i}.ipynb", health_url=url, dsn=pg.dsn))
            fl.append(floor(work))
        size = (work / "triage-0.ipynb").stat().st_size
        b, n, lb, f = (
            statistics.median(base),
            statistics.median(nb),
            statistics.median(lib),
            statistics.median(fl),
        )
        load = os.getloadavg()[0]
        print(
            f"triage against the demo environment, median of {args.repeat} "
            f"(machine: {os.cpu_count()} cores, load average {load:.1f})"
        )
        print(
            f"  notebook end to end (papermill CLI):   {n:6.2f} s   target < {TARGET_S:.0f} s: "
            f"{'met' if n < TARGET_S else 'MISSED'}"
        )
        print(
            f"  library reads alone (read_all):        {lb:6.2f} s   ({lb / n:.0%} of the notebook)"
        )
        print(
            f"  papermill floor (1-cell notebook):     {f:6.2f} s   (the notebook adds "
            f"{n - f:.2f} s to it)"
        )
        print(
            f"  baseline (curl x20, 5 kubectl, psql):  {b:6.2f} s   notebook / baseline = "
            f"{n / b:.2f}"
        )
        print(f"  executed notebook size:                {size / 1024:6.0f} KiB")
    finally:
        sim.stop()
        app.stop()
        stager.close()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
