"""A real local HTTP server standing in for a chat webhook (used through the `hook` fixture)."""

from __future__ import annotations

import http.server
import json
import threading


class Recorder:
    """A real local HTTP server that records each request and answers with a chosen status, or
    hangs."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.hang_s = 0.0
        self.release = threading.Event()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec.requests.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "body": json.loads(body),
                    }
                )
                if rec.hang_s:
                    rec.release.wait(rec.hang_s)
                    return
                payload = b"ok" if rec.status == 200 else b"internal_error"
                self.send_response(rec.status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/SECRETTOKEN"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
