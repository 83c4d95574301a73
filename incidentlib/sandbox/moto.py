"""moto's standalone S3 server on loopback (tests and `make mutate`; moto is a dev dependency).

`start_moto(port, log)` starts `moto_server` beside this interpreter and returns once it accepts
connections. `ATTACH_ENV` names the port of one already running for a whole command
(`tools/with_servers.py` sets it; the `s3_store` fixture attaches to it instead of starting its
own)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import RunbookError

ATTACH_ENV = "INCIDENTLIB_S3_ATTACH"
MOTO_SERVER = Path(sys.executable).with_name("moto_server")


def start_moto(port: int, log: Path, *, timeout: float = 30) -> subprocess.Popen[bytes]:
    """moto_server on 127.0.0.1:`port`, its output appended to `log`, once it accepts
    connections; RunbookError with the log's tail if it exits or is not up within `timeout`."""
    if not MOTO_SERVER.exists():
        raise RunbookError("moto_server is not installed: make dev (moto is a dev dependency)")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RunbookError(
                    f"moto_server did not start: {log.read_text()[-2000:]}"
                ) from None
            time.sleep(0.1)


def stop_moto(proc: subprocess.Popen[bytes] | None) -> None:
    """End a moto_server `start_moto` started (a gone or absent one is fine)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
