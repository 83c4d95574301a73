"""`runbook`: the command line. Subcommands live in the modules that own them and are imported
lazily, so `runbook --help` stays fast and one missing optional piece never breaks the others."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import RunbookError

__all__ = ["COMMANDS", "entry", "main"]

# name -> (module, function, one-line help). Each function takes argv (list[str]) and returns an
# exit code.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "incidentlib.cli.run",
        "run_main",
        "execute a scenario notebook and archive the evidence",
    ),
    "list": ("incidentlib.cli.run", "list_main", "list the scenarios with their parameters"),
    "verify": (
        "incidentlib.cli.run",
        "verify_main",
        "recompute every hash of an incident's evidence (and its signatures)",
    ),
    "keygen": (
        "incidentlib.cli.run",
        "keygen_main",
        "make an Ed25519 key pair that signs the evidence",
    ),
    "demo": (
        "incidentlib.cli.demo",
        "main",
        "bring up the demo environment and run every scenario",
    ),
    "postmortem": (
        "incidentlib.cli.postmortem",
        "postmortem_main",
        "build the post-mortem notebook of an incident",
    ),
    "serve": (
        "incidentlib.cli.serve",
        "main",
        "receive Alertmanager's webhook: evidence archived seconds after an alert",
    ),
    "lab": (
        "incidentlib.cli.lab",
        "main",
        "JupyterLab on the notebooks, after saying which cluster and database they will read",
    ),
    "sim": ("incidentlib.cli.sim", "main", "serve the simulated Kubernetes cluster"),
    "demo-app": (
        "incidentlib.sandbox.demoapp",
        "main",
        "serve the demo HTTP service (health, login, metrics)",
    ),
}

USAGE = "usage: runbook [--version] [--help] COMMAND [ARGS...]"


def _help() -> str:
    lines = [USAGE, "", "Executable incident-response runbooks.", "", "commands:"]
    for name, (_, _, text) in COMMANDS.items():
        lines.append(f"  {name:<12} {text}")
    lines += ["", "`runbook COMMAND --help` explains a command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `runbook` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_help())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        print(f"runbook (incidentlib) {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(
            f"runbook: unknown command {name!r}; valid commands: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module_name, func_name, _ = COMMANDS[name]
    import faulthandler

    if (
        not faulthandler.is_enabled()
    ):  # a hard crash (a C library's abort) prints every thread's stack
        faulthandler.enable()
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as e:
        print(f"runbook {name}: not available in this build ({e})", file=sys.stderr)
        return 2
    try:
        return int(func(rest) or 0)
    except RunbookError as e:
        print(f"runbook {name}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"runbook {name}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The `runbook` console script: `main()`, then the process ends without tearing the interpreter
    down.

    By then every command has written and closed its files and stopped its threads and children.
    What is left of the teardown only frees memory, and it is where native libraries' thread pools
    can abort the process after the work is done (Arrow's "terminate called without an active
    exception", apache/arrow#34314, seen here in 2 of about 400 `runbook run`): the exit status must
    be the command's."""
    code = main()
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
