"""Benchmark of detection (not a test): what the certificate check and the leak fit cost, as ratios
against a baseline measured in the same run.

1. HTTPS probes: `probe()` against a valid certificate (one verified handshake, the certificate
   parsed) and against an expired one (the verified handshake refused, then a second, unverified one
   to read the certificate), against `curl -w '%{time_total}' --cacert` on the valid one.
2. Leaks: Prometheus (Debian's) on 3 hours of backfilled history for N containers (a few leak);
   the range query of the incident window (`container_memory`, the read every leak check needs) is
   the baseline, against the fit of every container (`leak_suspects`).

    .venv/bin/python bench/bench_detection.py [--containers N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from incidentlib.kube import metrics
from incidentlib.sandbox.certs import https_servers
from incidentlib.sandbox.monitoring import HistoryPrometheus, openmetrics
from incidentlib.service import prometheus
from incidentlib.service.probe import probe

N_PROBES = 100
MiB = 2**20


def probes(folder: Path) -> None:
    curl = shutil.which("curl")
    with https_servers(folder) as (ca, urls):
        times: dict[str, list[float]] = {"valid": [], "expired": [], "curl": []}
        for _ in range(3):
            for name in ("valid", "expired"):
                t0 = time.perf_counter()
                for _ in range(N_PROBES):
                    probe(urls[name], timeout=5, ca_file=str(ca))
                times[name].append((time.perf_counter() - t0) / N_PROBES * 1000)
            if curl:
                out = subprocess.run(
                    [curl, "-s", "--cacert", str(ca), "-w", "%{time_total}\n"]
                    + ["-o", "/dev/null", urls["valid"]] * N_PROBES,
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=120,
                )
                per = [float(x) * 1000 for x in out.stdout.split()]
                times["curl"].append(statistics.mean(per))
    med = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"HTTPS probe, valid certificate:   {med['valid']:.2f} ms per request")
    print(
        f"HTTPS probe, expired certificate: {med['expired']:.2f} ms per request "
        f"({med['expired'] / med['valid']:.2f}x the valid one: the second handshake)"
    )
    if "curl" in med:
        print(
            f"curl --cacert, valid certificate: {med['curl']:.2f} ms per transfer "
            f"(probe/curl {med['valid'] / med['curl']:.2f}x)"
        )


def leaks(folder: Path, containers: int) -> None:
    end = time.time() - 20
    times = [end - 3 * 3600 + 30 * i for i in range(361)]
    series = []
    for i in range(containers):
        labels = {"namespace": "production", "pod": f"pod-{i:05d}", "container": "app"}
        rise = 60 * MiB / 3600 if i % 100 == 0 else 0.0
        points = [
            (t, 300 * MiB + rise * (t - times[0]) + ((7 * k + i) % 11 - 5) * 0.4 * MiB)
            for k, t in enumerate(times)
        ]
        series.append((labels, points))
    t0 = time.perf_counter()
    prom = HistoryPrometheus(
        folder, openmetrics({"container_memory_working_set_bytes": series}), rules=[]
    )
    print(f"backfill and start: {time.perf_counter() - t0:.1f} s for {containers} containers")
    try:
        client = prometheus.Prometheus(prom.url, timeout=120)
        read, fit, found = [], [], 0
        for _ in range(3):
            t0 = time.perf_counter()
            frame = prometheus.container_memory(
                client, namespace="production", since=dt.timedelta(hours=2)
            )
            read.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            found = len(metrics.leak_suspects(frame, {}, source="prometheus"))
            fit.append(time.perf_counter() - t0)
        r, f = statistics.median(read), statistics.median(fit)
        print(
            f"range query, 2 h of {containers} containers ({len(frame)} points): {r:.2f} s; "
            f"fit of every container: {f:.2f} s ({f / r:.2f}x the query); {found} suspects "
            f"(of {len(range(0, containers, 100))} leaking)"
        )
    finally:
        prom.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-detection-") as tmp:
        probes(Path(tmp) / "certs")
        leaks(Path(tmp) / "prom", args.containers)


if __name__ == "__main__":
    main()
