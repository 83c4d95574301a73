"""`runbook serve`: Alertmanager's webhook receiver; evidence archived seconds after an alert.

    runbook serve --port 9095 --outputs /evidence --token-file /etc/runbook/token \\
        -p kubeconfig ~/.kube/config -p health_url https://api.example.com/health \\
        [--config routes.yaml] [-f params.yaml] [--evidence-base-url URL]
        (RUNBOOK_NOTIFY_WEBHOOK=URL: the initial alert and the resolution posted there)
    runbook serve --outputs s3://bucket/prefix --state-dir /var/lib/runbook [--s3-endpoint-url URL]

Alertmanager's receiver (payload version 4, bearer token from a file):

    receivers:
      - name: runbook
        webhook_configs:
          - url: http://runbook:9095/alerts
            send_resolved: true
            http_config: {authorization: {type: Bearer, credentials_file: /etc/am/runbook-token}}

The -p/-f values go to every run whose notebook declares them, as `runbook run` takes them; the
routes (`incidentlib/serve/routes.py` shows the file) add what each alert says. Mitigations are
never applied from an alert: `apply` is always False."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from ..evidence.signing import load_private
from ..params import parse_duration, url, webhook
from ..serve import AlertServer, Catalog, Options, load_routing, serve_forever
from .run import (
    add_outputs,
    add_parameter_options,
    check_outputs,
    default_notebooks,
    default_outputs,
    given_parameters,
    use_s3_endpoint,
)

NOTIFY_ENV = "RUNBOOK_NOTIFY_WEBHOOK"  # the notify webhook, kept off the command line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="runbook serve",
        description=__doc__.splitlines()[0],
        epilog="Pages: POST /alerts (the webhook), GET / (incidents and their evidence), "
        "/healthz, /readyz, /metrics.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9095, help="port (default 9095; 0: any free port)")
    add_outputs(p)
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the server's journal and the runs' scratch files (default <outputs>/.serve; "
        "required with s3:// outputs: a folder that outlives the process)",
    )
    p.add_argument("--notebooks", type=Path, default=None, help="scenario notebooks (./notebooks)")
    p.add_argument(
        "--config", metavar="ROUTES.yaml", default=None, help="routes (default: the built-in ones)"
    )
    p.add_argument(
        "--token-file",
        metavar="FILE",
        default=None,
        help="bearer token Alertmanager sends (required unless listening on loopback)",
    )
    add_parameter_options(p, "a parameter for every run whose notebook declares it")
    p.add_argument("--workers", type=int, default=2, help="runs at once (default 2)")
    p.add_argument(
        "--queue-size", type=int, default=100, help="runs waiting at most; then 503 (default 100)"
    )
    p.add_argument(
        "--warm-kernels",
        type=int,
        default=None,
        help="kernels started ahead (default: as many as workers; 0: every run starts cold)",
    )
    p.add_argument(
        "--dedupe-window",
        default="30m",
        help="repeats of an alert group within it start no new run (default 30m)",
    )
    p.add_argument(
        "--evidence-base-url",
        metavar="URL",
        default=None,
        help="where people read the outputs folder (this server's /evidence, or a copy): links "
        "in the messages",
    )
    p.add_argument(
        "--notify-webhook",
        metavar="URL",
        default=None,
        help="Slack-compatible incoming webhook: the initial alert and the resolution are posted "
        f"(better as ${NOTIFY_ENV}: the URL is a secret, and a command line is visible to every "
        "user of the host)",
    )
    p.add_argument(
        "--cell-timeout",
        type=float,
        default=300.0,
        help="a cell running longer fails the run (default 300)",
    )
    p.add_argument("--signing-key", metavar="FILE", default=None, help="sign the manifest entries")
    p.add_argument(
        "--open-index",
        action="store_true",
        help="serve the index and the evidence without the token (behind a proxy that "
        "authenticates people)",
    )
    return p


def read_token(path: str) -> str:
    """The bearer token in a file (the one Alertmanager's credentials_file reads)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
        mode = os.stat(path).st_mode
    except OSError as e:
        raise InvalidParameter(f"--token-file {path!r} cannot be read: {e.strerror}") from None
    if not text:
        raise InvalidParameter(f"--token-file {path!r} is empty")
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        print(
            f"runbook serve: warning: {path} is readable by others (chmod 600 it)",
            file=sys.stderr,
        )
    return text


def notify_hook(args: argparse.Namespace, given: str | None) -> str | None:
    """The webhook the server posts to: --notify-webhook, else -p/-f notify_webhook, else
    $RUNBOOK_NOTIFY_WEBHOOK. The URL is its own credential (whoever has it posts to the channel):
    given on the command line it shows in every local user's `ps`, so that is warned of; read from
    the environment it is taken out of it, so the kernels the server starts never inherit it."""
    from_env = os.environ.pop(NOTIFY_ENV, None) or None
    if args.notify_webhook or given:
        if args.notify_webhook or any(name == "notify_webhook" for name, _ in args.parameter):
            print(
                "runbook serve: warning: the notify webhook is on the command line, where every "
                f"user of the host can read it (ps); set ${NOTIFY_ENV} instead",
                file=sys.stderr,
            )
        return webhook(args.notify_webhook or given, "--notify-webhook")
    return webhook(from_env, f"${NOTIFY_ENV}")


def defaults(args: argparse.Namespace) -> tuple[dict[str, Any], set[str], str | None]:
    """The -p/-f values (-p wins), the names given as text, and a notify_webhook among them (the
    server posts the messages itself, with links: the notebooks never do)."""
    given, text = given_parameters(args)
    if "incident_id" in given:
        raise InvalidParameter("incident_id comes from the alert group: do not give it to serve")
    if given.pop("apply", None) not in (None, False, "False", "false"):
        print(
            "runbook serve: apply ignored: the alert path never applies a mitigation",
            file=sys.stderr,
        )
    hook = given.pop("notify_webhook", None)
    return given, text, hook


def _outputs(args: argparse.Namespace) -> tuple[Path | str, Path | None]:
    """The archive root (a folder, resolved, or an s3:// URL) and the state folder: a bucket
    cannot hold the journal, so s3:// outputs need --state-dir."""
    outputs = check_outputs(args.outputs or default_outputs())
    state = args.state_dir.resolve() if args.state_dir else None
    if isinstance(outputs, str):
        if state is None:
            raise InvalidParameter(
                f"runbook serve --outputs {outputs}: the evidence goes to the bucket, but the "
                "server's journal cannot: give --state-dir DIR, a folder that outlives the process "
                "(in a cluster an emptyDir or a persistent volume)"
            )
        return outputs, state
    return outputs.resolve(), state


def options(args: argparse.Namespace) -> Options:
    """Everything checked before the server starts."""
    use_s3_endpoint(args)
    outputs, state = _outputs(args)
    given, text, hook = defaults(args)
    catalog = Catalog(args.notebooks or default_notebooks(), given, text=text)
    routing = load_routing(args.config)
    catalog.check_routing(routing)
    window = parse_duration(args.dedupe_window, what="--dedupe-window")
    workers = args.workers
    return Options(
        outputs=outputs,
        state_dir=state,
        catalog=catalog,
        routing=routing,
        host=args.host,
        port=args.port,
        token=read_token(args.token_file) if args.token_file else None,
        workers=workers,
        queue_size=args.queue_size,
        warm_kernels=workers if args.warm_kernels is None else args.warm_kernels,
        dedupe_window=timedelta(seconds=window.total_seconds()),
        evidence_base_url=url(args.evidence_base_url, "--evidence-base-url"),
        notify_webhook=notify_hook(args, hook),
        cell_timeout=args.cell_timeout,
        signing_key=load_private(args.signing_key),
        open_index=args.open_index,
    )


def main(argv: list[str]) -> int:
    """`runbook serve ...`: until SIGINT or SIGTERM."""
    args = parser().parse_args(argv)
    opts = options(args)
    if isinstance(opts.outputs, Path):
        opts.outputs.mkdir(parents=True, exist_ok=True)
    server = AlertServer(opts)
    scenario_names = ", ".join(opts.catalog.paths) or "(none)"
    print(f"runbook serve: listening on {server.url} (webhook POST /alerts)", flush=True)
    print(f"  scenarios: {scenario_names}", flush=True)
    print(f"  evidence:  {opts.outputs}  (journal {server.journal.path})", flush=True)
    print(
        f"  {opts.workers} workers, {opts.warm_kernels} warm kernels, queue of "
        f"{opts.queue_size}, dedupe window {args.dedupe_window}, "
        f"token {'required' if opts.token else 'not required (loopback)'}",
        flush=True,
    )
    serve_forever(server)
    print("runbook serve: stopped", flush=True)
    return 0
