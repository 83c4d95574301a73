"""Benchmark of the alert path, `runbook serve` (not a test): evidence seconds after the webhook.

In one run, against the demo environment (simulated cluster, throwaway PostgreSQL with its staged
incident, the demo service at 8% errors) and the `scale` cluster (5,000 pods):

1. webhook receipt to the archived triage notebook (ipynb, HTML, manifest entry) on a warm kernel,
   against the same notebook through cold papermill (the CLI, as a person runs it; target <= 0.4x)
   and through `runbook run` (the CLI, archive included);
2. webhook receipt to the archived outage notebook at 5,000 pods on a warm kernel, against the
   runbook's kubectl sequence (bench_outage's nine commands; target <= 0.6x);
3. a burst of 50 alerts in 10 groups (10 incidents: triage and performance each, 2 workers): every
   incident archived, the time from each group's post to its last run, median, p95 and max.

The server runs in this process, as `runbook serve` runs it; a warm kernel is ready before each
timed alert (the steady state: the pool refills between alerts).

    .venv/bin/python bench/bench_serve.py [--repeat N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from incidentlib.cli.demo import demo_environment
from incidentlib.serve import AlertServer, Catalog, Options, Routing
from incidentlib.sim import start

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BIN = Path(sys.executable).parent


def _bench_outage() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_outage", ROOT / "bench" / "bench_outage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alert(alertname: str, group: str, n: int = 0, **labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": alertname, **labels},
        "annotations": {},
        "startsAt": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": f"{abs(hash((group, n))) & 0xFFFFFFFFFFFF:012x}",
    }


def notification(group: str, alerts: list[dict[str, Any]]) -> bytes:
    common = dict(alerts[0]["labels"])
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{group="{group}"}}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "runbook",
            "groupLabels": {"group": group},
            "commonLabels": common,
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        }
    ).encode()


def post(url: str, body: bytes) -> dict[str, Any]:
    req = urllib.request.Request(url + "/alerts", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def done(server: AlertServer, incident: str, runs: int) -> bool:
    inc = server.state.incidents.get(incident)
    jobs = [server.state.jobs[j] for j in inc.jobs] if inc else []
    return len(jobs) >= runs and all(j.state == "done" for j in jobs)


def timed_alert(server: AlertServer, body: bytes, runs: int, timeout: float = 300) -> float:
    """Seconds from sending the webhook to its incident's runs archived (polled every 5 ms)."""
    t0 = time.perf_counter()
    incident = post(server.url, body)["incident"]
    deadline = time.monotonic() + timeout
    while not done(server, incident, runs):
        if time.monotonic() > deadline:
            raise SystemExit(f"incident {incident} not archived within {timeout} s")
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    bad = [
        (j.scenario, j.status, j.error)
        for j in (server.state.jobs[x] for x in server.state.incidents[incident].jobs)
        if j.status not in ("ok", "incomplete") or not j.warm
    ]
    if bad:
        print(f"  note: {incident}: {bad}")
    return elapsed


def wait_warm(server: AlertServer, n: int = 1, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while server.pool.ready < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"no warm kernel after {timeout} s: {server.pool.last_error}")
        time.sleep(0.05)
    time.sleep(0.5)  # let the machine settle after the kernel's start


def server_for(
    outputs: Path, notebooks: Path, defaults: dict[str, Any], *, workers: int = 1
) -> AlertServer:
    catalog = Catalog(notebooks, defaults, text=set(defaults))
    return AlertServer(
        Options(
            outputs=outputs,
            catalog=catalog,
            routing=Routing(),
            port=0,
            workers=workers,
            warm_kernels=workers,
            queue_size=200,
        )
    ).start()


def cli_seconds(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if proc.returncode not in (0, 3):  # runbook run: 3 = incomplete
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def triage_figures(work: Path, env: Any, repeat: int) -> tuple[float, float, float]:
    defaults = {
        "kubeconfig": str(env.kubeconfig),
        "dsn": env.dsn,
        "health_url": env.service_url + "/health",
    }
    server = server_for(work / "out-triage", NOTEBOOKS, defaults)
    pm_args = [a for k, v in defaults.items() for a in ("-p", k, v)]
    warm, papermill, runbook = [], [], []
    try:
        wait_warm(server)
        timed_alert(server, notification("warmup", [alert("BenchTriage", "warmup")]), 1)
        for i in range(repeat):
            wait_warm(server)
            body = notification(f"triage-{i}", [alert("BenchTriage", f"triage-{i}")])
            warm.append(timed_alert(server, body, 1))
            papermill.append(
                cli_seconds(
                    [
                        str(BIN / "papermill"),
                        str(NOTEBOOKS / "triage.ipynb"),
                        str(work / f"pm-{i}.ipynb"),
                        "--no-progress-bar",
                        "--log-level",
                        "ERROR",
                        *pm_args,
                    ],
                    {},
                    work,
                )
            )
            runbook.append(
                cli_seconds(
                    [
                        str(BIN / "runbook"),
                        "run",
                        "triage",
                        "--notebooks",
                        str(NOTEBOOKS),
                        "--outputs",
                        str(work / "out-cli"),
                        "--incident",
                        f"INC-cli-{i}",
                        *pm_args,
                    ],
                    {},
                    work,
                )
            )
    finally:
        server.stop(wait=60)
    return statistics.median(warm), statistics.median(papermill), statistics.median(runbook)


def outage_figures(work: Path, repeat: int) -> tuple[float, float, int]:
    bo = _bench_outage()
    sim = start("scale", workdir=work / "scale-sim")
    only = work / "outage-only"
    only.mkdir()
    (only / "outage.ipynb").symlink_to(NOTEBOOKS / "outage.ipynb")
    try:
        pods = sim.cluster.store.count("/pods")
        pod = next(e for e in sim.cluster.store.entries("/pods") if b"svc-0000-" in e.raw)
        pod_name = json.loads(pod.raw)["metadata"]["name"]
        server = server_for(
            work / "out-outage",
            only,
            # the same two deployments' logs as the kubectl sequence reads
            {
                "kubeconfig": str(sim.kubeconfig),
                "namespace": "production",
                "frontend_deployment": "svc-0010",
            },
        )
        warm, kubectl = [], []

        def sequence() -> float:
            return float(
                bo.kubectl_baseline(
                    sim,
                    namespace="production",
                    deployment="svc-0000",
                    frontend="svc-0010",
                    pod=pod_name,
                )[0]
            )

        try:
            sequence()  # warm the cluster's caches, as bench_outage does
            for i in range(repeat):
                wait_warm(server)
                labels = {"namespace": "production", "deployment": "svc-0000"}
                body = notification(
                    f"outage-{i}",
                    [alert("KubeDeploymentReplicasMismatch", f"outage-{i}", **labels)],
                )
                warm.append(timed_alert(server, body, 1))
                kubectl.append(sequence())
        finally:
            server.stop(wait=60)
    finally:
        sim.stop()
    return statistics.median(warm), statistics.median(kubectl), pods


def burst_figures(work: Path, env: Any) -> tuple[list[float], float, int]:
    defaults = {
        "kubeconfig": str(env.kubeconfig),
        "dsn": env.dsn,
        "health_url": env.service_url + "/health",
        "samples": "1",
        "sample_interval_s": "0",
    }
    server = server_for(work / "out-burst", NOTEBOOKS, defaults, workers=2)
    try:
        wait_warm(server, 2)
        bodies = []
        for g in range(10):
            labels = {"namespace": "production", "deployment": "backend"}
            alerts = [
                alert(f"ServiceErrorRate{g}", f"burst-{g}", n, pod=f"backend-{n}", **labels)
                for n in range(5)
            ]
            bodies.append(notification(f"burst-{g}", alerts))
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            posted = list(pool.map(lambda b: (time.perf_counter(), post(server.url, b)), bodies))
        per: dict[str, float] = {}
        deadline = time.monotonic() + 900
        while len(per) < len(posted):
            if time.monotonic() > deadline:
                raise SystemExit("the burst was not archived within 15 minutes")
            for sent, reply in posted:
                inc = reply["incident"]
                if inc not in per and done(server, inc, 2):
                    per[inc] = time.perf_counter() - sent
            time.sleep(0.02)
        total = time.perf_counter() - t0
        archived = sum(
            1
            for i in server.state.incidents.values()
            if all(server.state.jobs[j].status in ("ok", "incomplete") for j in i.jobs)
        )
    finally:
        server.stop(wait=120)
    return sorted(per.values()), total, archived


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed alerts per figure (median)")
    ap.add_argument("--skip", default="", help="comma-separated: triage, outage, burst")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    logging.getLogger("papermill").setLevel(logging.ERROR)
    load = os.getloadavg()[0]
    print(f"runbook serve on {os.cpu_count()} cores, load average {load:.2f} at the start")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        with demo_environment(workdir=work / "env", echo=False) as env:
            if "triage" not in skip:
                warm, pm, rr = triage_figures(work, env, args.repeat)
                print(f"1. triage, webhook receipt to archived evidence (median of {args.repeat})")
                print(f"   warm kernel (runbook serve):       {warm:6.2f} s")
                print(
                    f"   cold papermill CLI (no archive):   {pm:6.2f} s   warm / cold = "
                    f"{warm / pm:.2f}  (target <= 0.40: {'met' if warm / pm <= 0.4 else 'MISSED'})"
                )
                print(
                    f"   cold `runbook run` (archive too):  {rr:6.2f} s   warm / cold = "
                    f"{warm / rr:.2f}"
                )
            if "burst" not in skip:
                per, total, archived = burst_figures(work, env)
                print(
                    "3. burst: 50 alerts in 10 groups (10 incidents x triage + performance, "
                    "2 workers, 2 warm kernels)"
                )
                print(
                    f"   incidents archived: {archived}/10 in {total:.1f} s; per incident "
                    f"median {statistics.median(per):.1f} s, p95 {p95(per):.1f} s, "
                    f"max {max(per):.1f} s"
                )
        if "outage" not in skip:
            warm, kubectl, pods = outage_figures(work, args.repeat)
            print(
                f"2. outage at {pods} pods, webhook receipt to archived evidence "
                f"(median of {args.repeat})"
            )
            print(f"   warm kernel (runbook serve):       {warm:6.2f} s")
            print(
                f"   kubectl sequence (9 commands):     {kubectl:6.2f} s   warm / kubectl = "
                f"{warm / kubectl:.2f}  (target <= 0.60: "
                f"{'met' if warm / kubectl <= 0.6 else 'MISSED'})"
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
