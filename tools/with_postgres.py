"""Run a command with one throwaway PostgreSQL running for it: `python tools/with_postgres.py --
CMD ARGS...`. The server is started first, described to the command in `INCIDENTLIB_PG_ATTACH`
(the `pg_server` fixture in tests/conftest.py attaches to it instead of starting its own), and
stopped and deleted when the command ends, however it ends. The command's exit code is ours.

`make mutate` runs mutmut under it: mutmut starts a fresh pytest session for every mutant, and a
server started by each of them would cost a second or more per mutant."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from incidentlib.sandbox.postgres import ATTACH_ENV, ThrowawayPostgres


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python tools/with_postgres.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    server = ThrowawayPostgres()
    try:
        server.start()
        print(f"with_postgres: {server.install.describe()} on port {server.port}", flush=True)
        child = subprocess.Popen(argv, env={**os.environ, ATTACH_ENV: server.to_env()})

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, forward)
        return child.wait()
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
