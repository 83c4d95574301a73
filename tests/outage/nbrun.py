"""Execute the outage notebook with papermill and read back its scraps (shared by the notebook
tests)."""

from __future__ import annotations

import http.server
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "outage.ipynb"

# Every kernel this test process starts inherits this mark, and so does its chart helper: counting
# helpers by it ignores those of any other test run on the same machine.
SESSION_MARK = ("INCIDENTLIB_TEST_SESSION", f"{os.getpid()}-{secrets.token_hex(4)}")
os.environ[SESSION_MARK[0]] = SESSION_MARK[1]


def execute(out: Path, **parameters: Any) -> tuple[dict[str, Any], Any]:
    """Run the notebook; return its scraps as plain data (name -> value) and the executed
    notebook."""
    import nbformat
    import papermill as pm
    import scrapbook as sb

    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
    )
    scraps = {name: scrap.data for name, scrap in sb.read_notebook(str(out)).scraps.items()}
    return scraps, nbformat.read(str(out), as_version=4)


def text_of(nb: Any) -> str:
    """Every stream and text/plain output of an executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            elif "data" in o:
                parts.append(o["data"].get("text/plain", ""))
            elif o.get("output_type") == "error":
                parts.append(f"{o.get('ename')}: {o.get('evalue')}")
    return "\n".join(parts)


class _Health(http.server.BaseHTTPRequestHandler):
    answer: Callable[[], int] = staticmethod(lambda: 503)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status = self.answer()
        body = (
            b'{"status": "ok"}'
            if status < 400
            else b'{"status": "unavailable", "backend": "connection refused"}'
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def health_server(status: int | Callable[[], int] = 503) -> Iterator[str]:
    """A real local HTTP server whose /health answers `status` (or what `status()` says at each
    request); yields its URL."""
    answer = status if callable(status) else (lambda: status)
    handler = type("Health", (_Health,), {"answer": staticmethod(answer)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def chart_helpers_after(seconds: float) -> list[int]:
    """Chart helper processes of this test run still alive after the kernel is gone (waits up to
    `seconds` for them to end)."""
    import time

    import psutil

    def ours(p: psutil.Process) -> bool:
        try:
            return p.environ().get(SESSION_MARK[0]) == SESSION_MARK[1]
        except psutil.Error:  # gone meanwhile, or not ours to read
            return False

    deadline = time.monotonic() + seconds
    while True:
        left = [
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if "incidentlib.notebook.chartworker" in " ".join(p.info["cmdline"] or []) and ours(p)
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
