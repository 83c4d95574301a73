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
import subprocess
import sys
import tempfile
from pathlib import Path

from incidentlib.sandbox.monitoring import free_port
from incidentlib.sandbox.moto import ATTACH_ENV as MOTO_ATTACH_ENV
from incidentlib.sandbox.moto import start_moto, stop_moto
from incidentlib.sandbox.postgres import ATTACH_ENV, ThrowawayPostgres


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
        port = free_port()
        moto = start_moto(port, logs / "moto.log")
        print(
            f"with_servers: {server.install.describe()} on port {server.port}, "
            f"moto_server on port {port}",
            flush=True,
        )
        env = {**os.environ, ATTACH_ENV: server.to_env(), MOTO_ATTACH_ENV: str(port)}
        child = subprocess.Popen(argv, env=env)

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, forward)
        return child.wait()
    finally:
        stop_moto(moto)
        server.cleanup()
        shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
