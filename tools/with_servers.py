"""Run a command with one throwaway PostgreSQL and one S3 API (moto's standalone server) running
for it: `python tools/with_servers.py -- CMD ARGS...`. Both are started first and described to the
command in the environment, `INCIDENTLIB_PG_ATTACH` and `INCIDENTLIB_S3_ATTACH` (the `pg_server`
and `s3_store` fixtures in tests/conftest.py attach to them instead of starting their own), and
stopped when the command ends, however it ends. The command's exit code is ours.

`make mutate` runs mutmut under it: mutmut starts a fresh pytest session for every mutant, and
servers started by each of them would cost a second or more per mutant."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from incidentlib.sandbox.postgres import ATTACH_ENV, ThrowawayPostgres

S3_ATTACH_ENV = "INCIDENTLIB_S3_ATTACH"  # tests/conftest.py reads it


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """moto_server on a free loopback port, once it accepts connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = Path(sys.executable).with_name("moto_server")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"moto_server did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python tools/with_servers.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    server = ThrowawayPostgres()
    logs = Path(tempfile.mkdtemp(prefix="with-servers-"))
    moto: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        moto, port = start_moto(logs / "moto.log")
        print(
            f"with_servers: {server.install.describe()} on port {server.port}, "
            f"moto_server on port {port}",
            flush=True,
        )
        env = {**os.environ, ATTACH_ENV: server.to_env(), S3_ATTACH_ENV: str(port)}
        child = subprocess.Popen(argv, env=env)

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, forward)
        return child.wait()
    finally:
        if moto is not None:
            moto.terminate()
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
        server.cleanup()
        shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
