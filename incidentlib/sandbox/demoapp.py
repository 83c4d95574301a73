"""The demo HTTP service: health and login endpoints with tunable latency and error share, and
metrics.

`runbook demo-app --port 8080 --latency-ms 300 --error-rate 0.08` serves it; `DemoApp(...)` starts
it in a thread for tests and the demo. Errors are spread deterministically (error diffusion): at 8%,
exactly 8 of every 100 requests fail. `POST /_control {"error_rate": 0, "latency_ms": 0}` changes
both while it runs.

Endpoints: `GET /health` (also `/healthz`), `POST /login` (a JSON body), `GET /metrics` (Prometheus
text: `http_requests_total{method,path,status}` and `http_request_duration_seconds` histogram),
`GET|POST /_control`.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..errors import InvalidParameter

# Fine buckets around the demo's usual 300 ms, so histogram_quantile agrees with the probes.
BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.31,
    0.325,
    0.35,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
_PATHS = {"/health": "/health", "/healthz": "/health", "/login": "/login"}


def _check_rate(value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"error_rate {value!r} is not a number; give a share between 0 and 1, e.g. 0.08"
        ) from None
    if not 0.0 <= rate <= 1.0:
        raise InvalidParameter(
            f"error_rate {value!r} is outside 0..1; give a share, e.g. 0.08 for 8%"
        )
    return rate


def _check_latency(value: Any) -> float:
    try:
        ms = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"latency_ms {value!r} is not a number of milliseconds, e.g. 300"
        ) from None
    if not 0.0 <= ms <= 60_000:
        raise InvalidParameter(f"latency_ms {value!r} is outside 0..60000 ms")
    return ms


class _State:
    """Latency, error share and the error-diffusion accumulator, shared by the handler threads."""

    def __init__(self, latency_ms: float, error_rate: float) -> None:
        self.lock = threading.Lock()
        self.latency_ms = latency_ms
        self.error_rate = error_rate
        self._acc = 0.5

    def set(self, *, latency_ms: float | None = None, error_rate: float | None = None) -> None:
        with self.lock:
            if latency_ms is not None:
                self.latency_ms = latency_ms
            if error_rate is not None:
                self.error_rate = error_rate
                self._acc = 0.5

    def next(self) -> tuple[float, bool]:
        """The latency to add and whether this request fails (exactly `error_rate` of requests
        do)."""
        with self.lock:
            self._acc += self.error_rate
            fail = self._acc >= 1.0
            if fail:
                self._acc -= 1.0
            return self.latency_ms, fail

    def snapshot(self) -> dict[str, float]:
        with self.lock:
            return {"latency_ms": self.latency_ms, "error_rate": self.error_rate}


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests",
            "HTTP requests served.",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to serve a request.",
            ["method", "path"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        # Every series exists from the first scrape with 0, so increase() sees the first error too.
        for method, path in (("GET", "/health"), ("POST", "/login")):
            for status in ("200", "500"):
                self.requests.labels(method, path, status)
            self.duration.labels(method, path)


def _handler(state: _State, metrics: _Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "incident-demo-app/1.0"
        disable_nagle_algorithm = True  # one reply must not wait on a delayed ACK

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj).encode())

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve_app(self, method: str, path: str, body: bytes | None) -> None:
            start = time.perf_counter()
            latency_ms, fail = state.next()
            if latency_ms:
                time.sleep(latency_ms / 1000)
            if fail:
                status, obj = 500, {"error": "simulated failure"}
            elif path == "/login":
                try:
                    json.loads(body or b"{}")
                    status, obj = 200, {"token": "demo-session"}
                except ValueError:
                    status, obj = 400, {"error": "body is not JSON"}
            else:
                status, obj = 200, {"status": "ok"}
            self._json(status, obj)
            metrics.requests.labels(method, path, str(status)).inc()
            metrics.duration.labels(method, path).observe(time.perf_counter() - start)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/_control":
                self._json(200, state.snapshot())
            elif _PATHS.get(path) == "/health":
                self._serve_app("GET", "/health", None)
            else:
                self._json(404, {"error": f"no such path {path}"})

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            body = self._body()
            if path == "/_control":
                try:
                    change = json.loads(body or b"{}")
                    state.set(
                        latency_ms=_check_latency(change["latency_ms"])
                        if "latency_ms" in change
                        else None,
                        error_rate=_check_rate(change["error_rate"])
                        if "error_rate" in change
                        else None,
                    )
                except (ValueError, TypeError, InvalidParameter) as e:
                    self._json(400, {"error": str(e)})
                    return
                self._json(200, state.snapshot())
            elif path == "/login":
                self._serve_app("POST", "/login", body)
            else:
                self._json(404, {"error": f"no such path {path}"})

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = socket.SOMAXCONN  # a probe burst is never left waiting on a dropped SYN


class DemoApp:
    """The demo service in a background thread: `with DemoApp(latency_ms=300, error_rate=0.08) as
    app: app.url`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
    ) -> None:
        self._host = host
        self._state = _State(_check_latency(latency_ms), _check_rate(error_rate))
        self._metrics = _Metrics()
        self._server = _Server((host, port), _handler(self._state, self._metrics))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234 (health is at url + "/health")."""
        return f"http://{self._host}:{self.port}"

    def set(self, *, latency_ms: float | None = None, error_rate: float | None = None) -> None:
        """Change latency and/or error share now (same as POST /_control)."""
        self._state.set(
            latency_ms=None if latency_ms is None else _check_latency(latency_ms),
            error_rate=None if error_rate is None else _check_rate(error_rate),
        )

    def start(self) -> DemoApp:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-app", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> DemoApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str]) -> int:
    """`runbook demo-app`: serve the demo service until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="runbook demo-app", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port (0: any free port; default 8080)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="latency added to each request"
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests answered 500 (0..1)"
    )
    args = parser.parse_args(list(argv))
    app = DemoApp(
        host=args.host, port=args.port, latency_ms=args.latency_ms, error_rate=args.error_rate
    )
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=app._server.shutdown).start())
    print(
        f"demo app on {app.url} (health {app.url}/health, login {app.url}/login, metrics "
        f"{app.url}/metrics); "
        f"latency {args.latency_ms:g} ms, error rate {args.error_rate:g}",
        flush=True,
    )
    try:
        app.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app._server.server_close()
    return 0
