"""Benchmark: what archiving costs on top of executing, per scenario, against the demo environment.

For each scenario notebook: the baseline is plain `papermill.execute_notebook` into a temp file
(what an engineer would run by hand); the measured run is `runbook run`'s path (papermill, scrub,
HTML export, hashes, manifest). Prints both times, the overhead in seconds and as a ratio, and the
evidence size.

    .venv/bin/python bench/bench_demo.py [--rounds N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import papermill

from incidentlib.cli.demo import NOT_SCENARIOS, demo_environment
from incidentlib.evidence.parameters import coerce_parameters, inspect_parameters, scenarios
from incidentlib.evidence.run import run_notebook

REPO = Path(__file__).resolve().parents[1]


def demo_params(path: Path, env, incident: str) -> dict:
    declared = inspect_parameters(path)
    wanted = {
        "kubeconfig": str(env.kubeconfig),
        "context": env.context,
        "namespace": "production",
        "dsn": env.dsn,
        "health_url": env.service_url + "/health",
        "login_url": env.service_url + "/login",
        "incident_id": incident,
    }
    given = {k: v for k, v in wanted.items() if k in declared}
    return coerce_parameters(declared, given, from_text=set(given))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rounds", type=int, default=2, help="runs of each variant per scenario (median reported)"
    )
    args = ap.parse_args()
    logging.getLogger("papermill").setLevel(logging.ERROR)
    found = {n: p for n, p in scenarios(REPO / "notebooks").items() if n not in NOT_SCENARIOS}
    if not found:
        print("no scenario notebooks in notebooks/")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        tmpdir = Path(tmp)
        t0 = time.perf_counter()
        with demo_environment(workdir=tmpdir / "env", echo=False) as env:
            up = time.perf_counter() - t0
            print(f"demo environment up in {up:.2f} s")
            print(
                f"{'scenario':<12} {'papermill s':>11} {'runbook run s':>13} {'overhead s':>10} "
                f"{'ratio':>6} "
                f"{'ipynb KB':>8} {'html KB':>8}"
            )
            total_base = total_run = 0.0
            for name, path in found.items():
                base, runs, sizes = [], [], (0, 0)
                for i in range(args.rounds):
                    params = demo_params(path, env, "INC-bench")
                    t = time.perf_counter()
                    try:
                        papermill.execute_notebook(
                            str(path),
                            str(tmpdir / f"plain-{name}-{i}.ipynb"),
                            parameters=params,
                            progress_bar=False,
                            cwd=str(path.parent),
                        )
                    except papermill.PapermillExecutionError as e:
                        print(f"  (baseline {name} failed: {e.ename})")
                    base.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    result = run_notebook(
                        path,
                        outputs=tmpdir / "outputs",
                        incident="INC-bench",
                        parameters=params,
                        scenario=name,
                    )
                    runs.append(time.perf_counter() - t)
                    sizes = (
                        result.notebook.stat().st_size,
                        result.html.stat().st_size if result.html else 0,
                    )
                b, r = statistics.median(base), statistics.median(runs)
                total_base += b
                total_run += r
                print(
                    f"{name:<12} {b:11.2f} {r:13.2f} {r - b:10.2f} {r / b:6.2f} "
                    f"{sizes[0] / 1024:8.0f} "
                    f"{sizes[1] / 1024:8.0f}"
                )
            print(
                f"{'all':<12} {total_base:11.2f} {total_run:13.2f} {total_run - total_base:10.2f} "
                f"{total_run / total_base:6.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
