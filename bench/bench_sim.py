"""Benchmark of the simulated cluster at scale (not a test): load time of the `scale` scenario
(5,000 pods, 50 nodes, 20,000 events) and the time to serve full lists, against baselines measured
in the same run (the small bad-rollout scenario; serializing the list per request, as a naive server
would).

    .venv/bin/python bench/bench_sim.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from incidentlib.sim import start


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def fetch(url: str, accept: str = "application/json") -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    try:
        small_load, small = timed(lambda: start("bad-rollout", workdir=work / "small"), 1)
        t_small_list, _ = timed(lambda: fetch(small.url + "/api/v1/pods"), args.repeat)
        small.stop()

        cpu0 = time.process_time()
        big_load, big = timed(lambda: start("scale", workdir=work / "big"), 1)
        big_cpu = time.process_time() - cpu0
        store = big.cluster.store
        print(
            f"scale scenario: {store.count('/pods')} pods, {store.count('/nodes')} nodes, "
            f"{store.count('/events')} events, {store.count('apps/replicasets')} ReplicaSets"
        )
        print(
            f"load: {big_load:.2f} s wall, {big_cpu:.2f} s CPU (limit 5 s; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)   bad-rollout load: "
            f"{small_load:.3f} s   "
            f"ratio {big_load / small_load:.0f}x"
        )

        t_list, body = timed(lambda: fetch(big.url + "/api/v1/pods"), args.repeat)
        size_mb = len(body) / 1e6  # type: ignore[arg-type]
        pods = [json.loads(e.raw) for e in store.entries("/pods")]
        t_naive, _ = timed(
            lambda: json.dumps({"kind": "PodList", "items": pods}).encode(), args.repeat
        )
        print(
            f"full pod list (JSON, {size_mb:.1f} MB): {t_list:.3f} s   "
            f"baseline: serializing per request {t_naive:.3f} s (ratio {t_naive / t_list:.1f}x)   "
            f"small cluster: {t_small_list * 1000:.1f} ms"
        )

        table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

        def paged() -> int:
            url, n = big.url + "/api/v1/pods?limit=500", 0
            while True:
                page = json.loads(fetch(url, table))
                n += 1
                token = page["metadata"].get("continue")
                if not token:
                    return n
                url = big.url + "/api/v1/pods?limit=500&continue=" + token

        t_pages, n_pages = timed(paged, args.repeat)
        print(
            f"pod Table in pages of 500 (as kubectl): {n_pages} pages, {t_pages:.3f} s "
            f"({t_pages / n_pages * 1000:.0f} ms a page)"
        )
        t_events, ev = timed(lambda: fetch(big.url + "/api/v1/events"), args.repeat)
        print(f"full event list ({len(ev) / 1e6:.1f} MB): {t_events:.3f} s")  # type: ignore[arg-type]
        t_version, _ = timed(lambda: fetch(big.url + "/version"), 20)
        print(f"GET /version: {t_version * 1000:.2f} ms")

        if shutil.which("kubectl"):
            env = {**os.environ, **big.env}

            def kubectl(*a: str) -> None:
                subprocess.run(
                    ["kubectl", *a], env=env, capture_output=True, timeout=120, check=True
                )

            kubectl("get", "ns")  # warm the discovery cache
            t_get, _ = timed(lambda: kubectl("get", "pods", "-A", "-o", "wide"), args.repeat)
            t_ev, _ = timed(
                lambda: kubectl("get", "events", "-A", "--sort-by=.lastTimestamp"), args.repeat
            )
            t_top, _ = timed(lambda: kubectl("top", "pods", "-A"), args.repeat)
            print(
                f"kubectl get pods -A -o wide: {t_get:.2f} s   get events -A sorted: {t_ev:.2f} s "
                "  "
                f"top pods -A: {t_top:.2f} s"
            )
        big.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
