"""`runbook demo`: the embedded incident, end to end, in one command.

Brings up the simulated cluster (scenario `demo`: a bad rollout, resource pressure, a database,
leaked secrets in logs), a throwaway PostgreSQL with a staged incident (a lock chain, a session idle
in transaction, a slow statement, a long query) and the demo HTTP service (8% errors); runs every
scenario notebook through the same path as `runbook run` under one incident; prints where the
evidence is; shuts everything down (also on Ctrl-C or SIGTERM). `--keep` leaves the environment up
for JupyterLab until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunbookError
from ..evidence.manifest import verify
from ..evidence.parameters import inspect_parameters, scenarios
from ..evidence.run import RunResult, new_incident_id

NOT_SCENARIOS = frozenset(
    {"postmortem"}
)  # built from an incident's evidence, not from the environment
FIRST = ("triage",)  # the first notebook an on-call engineer runs; then the scenarios it points to
DEMO_ERROR_RATE = 0.08
DEMO_LATENCY_MS = 40.0
LONG_QUERY_SECONDS = 3600.0


@dataclass
class DemoEnvironment:
    """What is up: the cluster's kubeconfig and context, the database DSN, the service URL."""

    kubeconfig: Path
    context: str
    dsn: str
    pg_env: dict[str, str]
    service_url: str
    staged: dict[str, Any]

    def exports(self) -> dict[str, str]:
        """The environment a shell (or JupyterLab) needs to point the notebooks at this demo."""
        return {"KUBECONFIG": str(self.kubeconfig), **self.pg_env}


@contextlib.contextmanager
def demo_environment(
    *, workdir: Path, error_rate: float = DEMO_ERROR_RATE, echo: bool = True
) -> Iterator[DemoEnvironment]:
    """Start the cluster, the database with its staged incident and the service; stop them all on
    exit."""
    from psycopg import conninfo

    from .. import sim
    from ..sandbox.demoapp import DemoApp
    from ..sandbox.postgres import Stager, ThrowawayPostgres

    def say(text: str) -> None:
        if echo:
            print(text, flush=True)

    stack = contextlib.ExitStack()
    try:
        t0 = time.perf_counter()
        handle = sim.start("demo", workdir=workdir / "sim")
        stack.callback(handle.stop)
        say(f"  cluster   {handle.url} (scenario demo, context {handle.context})")
        server = ThrowawayPostgres(workdir=workdir / "pg")
        stack.callback(_stop_postgres, server)
        server.start()
        say(f"  postgres  {server.install.describe()}")
        stager = Stager(server.dsn)
        stack.callback(stager.close)
        chain = stager.lock_chain(3)
        idle = stager.idle_in_transaction()
        stager.slow_statement(0.2, 3)
        long_pid = stager.long_query(LONG_QUERY_SECONDS)
        staged = {"lock_chain": chain, "idle_in_transaction": idle, "long_query": long_pid}
        say(
            f"  database  127.0.0.1:{server.port}/app: lock chain {' <- '.join(map(str, chain))}, "
            f"idle in transaction {idle}, long query {long_pid}, slow statement pg_sleep(0.2) x3"
        )
        app = DemoApp(latency_ms=DEMO_LATENCY_MS, error_rate=error_rate).start()
        stack.callback(app.stop)
        say(f"  service   {app.url} ({error_rate:.0%} errors)")
        say(f"  ready in {time.perf_counter() - t0:.1f} s")
        parts = conninfo.conninfo_to_dict(server.dsn)
        pg_env = {
            "PGHOST": str(parts["host"]),
            "PGPORT": str(parts["port"]),
            "PGDATABASE": str(parts["dbname"]),
            "PGUSER": str(parts["user"]),
            "PGPASSWORD": str(parts["password"]),
        }
        yield DemoEnvironment(
            kubeconfig=Path(handle.kubeconfig),
            context=handle.context,
            dsn=server.dsn,
            pg_env=pg_env,
            service_url=app.url,
            staged=staged,
        )
    finally:
        with (
            _signals_held()
        ):  # a second Ctrl-C must not leave a server up half-way through the shutdown
            stack.close()


def _stop_postgres(server: Any) -> None:
    """Stop and delete the throwaway server, also after an interrupted start (postmaster up,
    `running` unset)."""
    if (server.datadir / "postmaster.pid").exists():
        server.running = True
    server.cleanup()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (blocked, then delivered) until the block is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def scenario_parameters(declared: dict[str, Any], env: DemoEnvironment, incident: str) -> list[str]:
    """`-p NAME VALUE` pairs for one scenario: the demo's cluster, database and service, where it
    takes them."""
    wanted = {
        "kubeconfig": str(env.kubeconfig),
        "context": env.context,
        "namespace": "production",
        "dsn": env.dsn,
        "health_url": env.service_url + "/health",
        "login_url": env.service_url + "/login",
        "incident_id": incident,
    }
    argv: list[str] = []
    for name, value in wanted.items():
        if name in declared:
            argv += ["-p", name, value]
    return argv


def run_all(
    env: DemoEnvironment,
    *,
    notebooks: Path,
    outputs: Path,
    incident: str,
    cell_timeout: float = 300.0,
) -> list[RunResult]:
    """Every scenario notebook through `runbook run`'s own path, one incident."""
    from .run import execute, run_parser

    results = []
    ordered = sorted(scenarios(notebooks).items(), key=lambda kv: (kv[0] not in FIRST, kv[0]))
    for name, path in ordered:
        if name in NOT_SCENARIOS:
            continue
        argv = [
            name,
            "--notebooks",
            str(notebooks),
            "--outputs",
            str(outputs),
            "--incident",
            incident,
            "--cell-timeout",
            str(cell_timeout),
            *scenario_parameters(inspect_parameters(path), env, incident),
        ]
        t0 = time.perf_counter()
        result = execute(run_parser().parse_args(argv), echo=False, progress_bar=False)
        print(
            f"  {'✓' if result.ok else '✗'} {name:<12} {result.status:<10} "
            f"{time.perf_counter() - t0:5.1f} s  "
            f"{result.notebook}" + (f"  ({result.error})" if result.error else ""),
            flush=True,
        )
        results.append(result)
    return results


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _stop_children() -> None:
    """Safety net: end any process this one started that is still running (a kernel left by an
    interrupt)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with ipykernel
        return
    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=3)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def _sigterm_as_interrupt() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)


def main(argv: list[str]) -> int:
    """`runbook demo [--keep] [--outputs DIR]`."""
    from .run import default_notebooks, default_outputs

    p = argparse.ArgumentParser(prog="runbook demo", description=__doc__.splitlines()[0])
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave the environment up (until Ctrl-C) and print how to use it",
    )
    p.add_argument(
        "--outputs",
        metavar="DIR",
        type=Path,
        default=None,
        help="archive root (default: ./outputs)",
    )
    p.add_argument(
        "--notebooks",
        metavar="DIR",
        type=Path,
        default=None,
        help="scenario notebooks (default: ./notebooks)",
    )
    p.add_argument(
        "--incident", metavar="ID", default=None, help="incident id (default: a new one)"
    )
    p.add_argument(
        "--cell-timeout",
        metavar="SECONDS",
        type=float,
        default=300.0,
        help="per-cell timeout (default 300)",
    )
    args = p.parse_args(argv)
    notebooks = args.notebooks or default_notebooks()
    outputs = args.outputs or default_outputs()
    if not isinstance(outputs, Path):
        raise RunbookError(
            f"runbook demo archives to a folder, not {outputs}: pass --outputs DIR (or unset "
            "RUNBOOK_OUTPUTS)"
        )
    if not [n for n in scenarios(notebooks) if n not in NOT_SCENARIOS]:
        raise RunbookError(f"no scenario notebooks in {notebooks}; pass --notebooks DIR")
    incident = args.incident or new_incident_id()
    previous = _sigterm_as_interrupt()
    workdir = Path(tempfile.mkdtemp(prefix="runbook-demo-"))
    t0 = time.perf_counter()
    try:
        print("starting the demo environment ...", flush=True)
        with demo_environment(workdir=workdir) as env:
            print(f"incident: {incident}", flush=True)
            results = run_all(
                env,
                notebooks=notebooks,
                outputs=outputs,
                incident=incident,
                cell_timeout=args.cell_timeout,
            )
            incident_dir = outputs / incident
            report = verify(incident_dir)
            print(
                f"\nevidence: {incident_dir}  ({_size(incident_dir) / 1e6:.1f} MB, "
                f"{len(report.matching)} files, "
                f"verify {'OK' if report.ok else 'FAILED'})"
            )
            for r in results:
                if r.html is not None:
                    print(f"  html: {r.html}")
            print(f"  manifest: {incident_dir / 'manifest.json'}")
            print(f"  check it: runbook verify {incident_dir}")
            if "postmortem" in scenarios(notebooks):
                print(
                    f"  write the post-mortem: runbook postmortem --incident {incident} --outputs "
                    f"{outputs}"
                )
            print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)
            if args.keep:
                _keep(env)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the demo environment is shut down; what ran is archived in "
            f"{outputs / incident}",
            file=sys.stderr,
            flush=True,
        )
        return 130
    finally:
        _stop_children()
        shutil.rmtree(workdir, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0 if all(r.ok for r in results) and report.ok else 1


def _keep(env: DemoEnvironment) -> None:
    """Print how to use the environment live, then wait for Ctrl-C."""
    print("\nThe demo environment stays up until Ctrl-C. In another shell:")
    for k, v in env.exports().items():
        print(f"  export {k}={v}")
    print(
        "  make lab        # JupyterLab on notebooks/: parameters left at None use the variables "
        "above;"
    )
    print(
        f'                  # set health_url = "{env.service_url}/health" where a notebook asks '
        "for it"
    )
    print(flush=True)
    while True:
        time.sleep(3600)
