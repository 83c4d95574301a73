"""`runbook sim`: serve a scenario in the foreground until interrupted."""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from pathlib import Path

from ..errors import InvalidParameter, RunbookError
from ..sim.handle import start
from ..sim.scenario import names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="runbook sim", description="Serve the simulated Kubernetes cluster on 127.0.0.1."
    )
    p.add_argument(
        "--scenario", default="healthy", help=f"what the cluster looks like: {', '.join(names())}"
    )
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="where to write the kubeconfig (default: a temp dir)",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a self-signed CA written into the kubeconfig",
    )
    p.add_argument(
        "--workdir", type=Path, default=None, help="directory for certificates and kubectl's cache"
    )
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    return p


def main(argv: list[str]) -> int:
    """Serve until Ctrl-C; print the `export KUBECONFIG=...` line first."""
    args = _parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise InvalidParameter(f"--port {args.port} is not a port (0 to 65535; 0: a free one)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="runbook-sim-"))
    try:
        handle = start(
            args.scenario,
            workdir=workdir,
            port=args.port,
            tls=args.tls,
            kubeconfig=args.kubeconfig.resolve() if args.kubeconfig else None,
            verbose=args.verbose,
        )
    except OSError as e:
        raise RunbookError(
            f"cannot listen on 127.0.0.1:{args.port} ({e.strerror or e}); another process holds "
            "it: "
            "choose another --port, or leave it out for a free one"
        ) from None
    print(f"# simulated cluster ({args.scenario}) serving at {handle.url}", flush=True)
    print(f"export KUBECONFIG={handle.kubeconfig}", flush=True)
    print(f"export KUBECACHEDIR={handle.env['KUBECACHEDIR']}", flush=True)

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return 0
