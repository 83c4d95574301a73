"""Benchmark of the outage notebook at scale (not a test).

Against the simulated cluster's `scale` scenario (5,000 pods, 50 nodes, 20,000 events) it measures,
in the same run: the notebook's end-to-end `papermill` time (the CLI, interpreter start included)
against a baseline script running the runbook's own kubectl commands back to back; the kernel's peak
memory (VmHWM) and its chart helper's, and their largest combined PSS, polled from /proc in one
extra untimed run; and the size of the executed notebook. Targets: no slower than kubectl (the ratio
of the medians of 7 interleaved runs of each, after one untimed run of each), < 400 MB, < 2 MB. The
same notebook through `papermill --engine runbook` (the README's command for a real cluster: IPC
kernels, cheaper saves) is timed in the same interleaving and reported beside it.

    .venv/bin/python bench/bench_outage.py [--repeat N] [--scenario scale]
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from incidentlib.sim import start

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_triage import compile_library  # noqa: E402 - the library's bytecode, as installed

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "outage.ipynb"
PAPERMILL = Path(sys.executable).parent / "papermill"


def kubectl_baseline(
    sim, *, namespace: str, deployment: str, frontend: str, pod: str
) -> tuple[float, float]:
    """The runbook's outage commands with the real kubectl, back to back: seconds in all, and for
    the first (`get pods -A -o wide`, kubectl's first table)."""
    commands = [
        ["get", "pods", "-A", "-o", "wide"],
        ["get", "nodes", "-o", "wide"],
        ["get", "events", "-A", "--sort-by=.lastTimestamp"],
        ["top", "pods", "-A"],
        ["top", "nodes"],
        ["rollout", "history", f"deployment/{deployment}", "-n", namespace],
        ["logs", f"deployment/{deployment}", "-n", namespace, "--tail=100"],
        ["logs", f"deployment/{frontend}", "-n", namespace, "--tail=100"],
        ["describe", "pod", pod, "-n", namespace],
    ]
    t0 = time.perf_counter()
    first = 0.0
    for args in commands:
        out = sim.kubectl(*args, timeout=120)
        if out.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
        first = first or time.perf_counter() - t0
    return time.perf_counter() - t0, first


def _children(pid: int) -> list[int]:
    """Child pids from /proc/<pid>/task/*/children (cheap: the poller must not slow the sim it
    shares a process with)."""
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return kids


def _proc_kb(pid: int, file: str, key: str) -> int:
    """A kB figure from /proc/<pid>/<file> (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/{file}") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _hwm_kb(pid: int) -> int:
    """Peak resident set size."""
    return _proc_kb(pid, "status", "VmHWM:")


def _pss_kb(pid: int) -> int:
    """Proportional set size: shared library pages split between the processes that map them."""
    return _proc_kb(pid, "smaps_rollup", "Pss:")


def run_notebook(
    sim,
    out: Path,
    *,
    namespace: str,
    deployment: str,
    frontend: str,
    measure_memory: bool = False,
    engine: str | None = None,
) -> dict[str, float]:
    """papermill CLI end to end (with `engine`, `--engine ENGINE`): seconds; with `measure_memory`,
    also the kernel's and the chart helper's peak RSS (VmHWM) and the largest PSS of the two
    together at one instant, in kB (polled every 20 ms, so only in a run that is not timed)."""
    env = {**os.environ, **sim.env}
    cmd = [
        str(PAPERMILL),
        *(["--engine", engine] if engine else []),
        str(NOTEBOOK),
        str(out),
        "-k",
        "python3",
        "--no-progress-bar",
        "-p",
        "namespace",
        namespace,
        "-p",
        "app_deployment",
        deployment,
        "-p",
        "frontend_deployment",  # the same two deployments' logs as the kubectl sequence
        frontend,
        "-p",
        "kubeconfig",
        str(sim.kubeconfig),
    ]
    mem = {"kernel": 0, "helper": 0, "together_pss": 0}
    wall0 = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )

    def poll() -> None:
        while proc.poll() is None:
            for kid in _children(proc.pid):
                mem["kernel"] = max(mem["kernel"], _hwm_kb(kid))
                pss = _pss_kb(kid)
                for grandchild in _children(
                    kid
                ):  # the chart helper (incidentlib.notebook.chartworker)
                    mem["helper"] = max(mem["helper"], _hwm_kb(grandchild))
                    pss += _pss_kb(grandchild)
                mem["together_pss"] = max(mem["together_pss"], pss)
            time.sleep(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    if measure_memory:
        watcher.start()
    _, err = proc.communicate(timeout=600)
    elapsed = time.perf_counter() - t0
    if measure_memory:
        watcher.join(timeout=1)
    if proc.returncode != 0:
        raise SystemExit(f"papermill failed:\n{err[-2000:]}")
    return {"seconds": elapsed, "first_table": first_table(out, wall0), **mem}


def first_table(executed: Path, wall0: float) -> float:
    """Seconds from launching papermill to the end of the cell that shows the namespace's pods
    (papermill records each cell's end time in the notebook): when the engineer has the first useful
    table."""
    from datetime import datetime

    nb = json.loads(executed.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "display_pods(facts.pods" in "".join(cell["source"]):
            end = cell["metadata"]["papermill"]["end_time"]
            return datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp() - wall0
    raise SystemExit(
        "the outage notebook has no pods cell any more: update bench_outage.first_table"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--repeat",
        type=int,
        default=7,
        help="timed runs of each side, interleaved (medians reported; one run swings by a second)",
    )
    ap.add_argument("--scenario", default="scale", help="sim scenario (default: scale)")
    args = ap.parse_args()
    compile_library()
    work = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    t0 = time.perf_counter()
    sim = start(args.scenario, workdir=work / "sim")
    load = time.perf_counter() - t0
    # the seeded cluster lives as long as this process: no collection of the simulated API
    # server's heap (0.14 s at 5,000 pods) stalls an answer, to either side, in the middle of a run
    gc.freeze()
    try:
        store = sim.cluster.store
        print(
            f"{args.scenario}: {store.count('/pods')} pods, {store.count('/nodes')} nodes, "
            f"{store.count('/events')} events (loaded in {load:.1f} s)"
        )
        namespace, deployment, frontend = (
            ("production", "svc-0000", "svc-0010")
            if args.scenario == "scale"
            else ("production", "backend", "frontend")
        )
        pod = next(
            e
            for e in store.entries("/pods")
            if f'"name":"{deployment}-' in e.raw.decode()
            or f'"name": "{deployment}-' in e.raw.decode()
        )

        pod_name = json.loads(pod.raw)["metadata"]["name"]
        # one untimed run of each side first: both then start from a warm page cache and a warm
        # API server (kubectl's discovery cache, the notebook's bytecode and shared libraries)
        kubectl = functools.partial(
            kubectl_baseline,
            sim,
            namespace=namespace,
            deployment=deployment,
            frontend=frontend,
            pod=pod_name,
        )
        notebook = functools.partial(
            run_notebook, sim, namespace=namespace, deployment=deployment, frontend=frontend
        )
        kubectl()
        notebook(work / "out-warm.ipynb")
        notebook(work / "out-warm-engine.ipynb", engine="runbook")
        base, base_first, nb, first, eng = [], [], [], [], []
        for i in range(args.repeat):
            total, first_cmd = kubectl()
            base.append(total)
            base_first.append(first_cmd)
            timed = notebook(work / f"out-{i}.ipynb")
            nb.append(timed["seconds"])
            first.append(timed["first_table"])
            eng.append(notebook(work / f"out-engine-{i}.ipynb", engine="runbook")["seconds"])
        mem = notebook(work / "out-memory.ipynb", measure_memory=True)
        size = (work / "out-memory.ipynb").stat().st_size
        b, n = statistics.median(base), statistics.median(nb)
        print(
            f"kubectl baseline (9 commands): {b:.2f} s   runs: "
            f"{', '.join(f'{x:.2f}' for x in base)}"
        )
        print(
            f"notebook (papermill CLI):      {n:.2f} s   runs: {', '.join(f'{x:.2f}' for x in nb)}"
        )
        print(
            "first table: the notebook's pods of the namespace after "
            f"{statistics.median(first):.2f} s; "
            f"kubectl get pods -A -o wide alone {statistics.median(base_first):.2f} s (medians)"
        )
        paired = statistics.median(x / y for x, y in zip(nb, base, strict=True))
        print(
            f"ratio notebook/kubectl: {n / b:.2f} of medians, {min(nb) / min(base):.2f} of best "
            f"runs, {paired:.2f} median of each run against the kubectl run just before it  "
            "(target <= 1.00)"
        )
        e = statistics.median(eng)
        paired_engine = statistics.median(x / y for x, y in zip(eng, base, strict=True))
        print(
            f"with --engine runbook (the README's command for a real cluster): {e:.2f} s   runs: "
            f"{', '.join(f'{x:.2f}' for x in eng)}; ratio {e / b:.2f} of medians, "
            f"{paired_engine:.2f} paired (figures, not the target's)"
        )
        print(
            f"kernel peak RSS: {mem['kernel'] / 1024:.0f} MB  (target < 400 MB); chart helper "
            "process peak RSS: "
            f"{mem['helper'] / 1024:.0f} MB; kernel + helper at their largest together: "
            f"{mem['together_pss'] / 1024:.0f} MB PSS (shared library pages counted once)"
        )
        print(f"executed notebook: {size / 1024:.0f} KB  (target < 2048 KB)")
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
