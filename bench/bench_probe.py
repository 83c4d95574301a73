"""Benchmark: the probe's own overhead per request against `curl -w '%{time_total}'` on the same
endpoint.

Starts the demo service in its own process (no added latency), then alternates rounds of N curl
transfers (one curl process, N URLs, Connection: close) and N `probe()` calls, and prints medians,
the difference per request and the ratio. Target: the probe within 1 ms per request of curl. Run:
.venv/bin/python bench/bench_probe.py
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

from incidentlib.service.probe import latency_frame, probe

N = 200
ROUNDS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    curl = shutil.which("curl")
    if not curl:
        print("curl is missing: apt-get install -y curl")
        return 2
    port = free_port()
    url = f"http://127.0.0.1:{port}/health"
    server = subprocess.Popen(
        [sys.executable, "-m", "incidentlib.cli", "demo-app", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        curl_ms: list[float] = []
        probe_ms: list[float] = []
        probe_wall_ms: list[float] = []
        for _ in range(ROUNDS):
            out = subprocess.run(
                [curl, "-s", "-H", "Connection: close", "-w", "%{time_total}\n"]
                + ["-o", "/dev/null", url] * N,
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout.split()
            curl_ms += [float(x) * 1000 for x in out]
            results = []
            for _ in range(N):
                t0 = time.perf_counter()
                results.append(probe(url, timeout=5))
                probe_wall_ms.append((time.perf_counter() - t0) * 1000)
            probe_ms += latency_frame(results)["total_ms"].tolist()
        c, p, w = (
            statistics.median(curl_ms),
            statistics.median(probe_ms),
            statistics.median(probe_wall_ms),
        )
        print(
            f"requests per tool: {len(curl_ms)} (demo service in its own process, no added latency)"
        )
        print(
            f"curl -w time_total   median {c:.3f} ms  p95 "
            f"{statistics.quantiles(curl_ms, n=20)[18]:.3f} ms"
        )
        print(
            f"probe total_ms       median {p:.3f} ms  p95 "
            f"{statistics.quantiles(probe_ms, n=20)[18]:.3f} ms"
        )
        print(f"probe() wall clock   median {w:.3f} ms (incl. URL parsing and result building)")
        print(
            f"difference per request: {p - c:+.3f} ms (reported), {w - c:+.3f} ms (wall); "
            f"ratio probe/curl {p / c:.2f}x (reported), {w / c:.2f}x (wall)"
        )
        verdict = "MET" if w - c <= 1.0 else "MISSED"
        print(f"target (within 1 ms per request): {verdict}")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
