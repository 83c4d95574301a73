"""The Jupyter kernels a run executes in: on IPC transport, and (for the alert path) started ahead.

**IPC, not TCP.** A kernel started the usual way listens on five loopback TCP ports, and ipykernel
says so on every run ("Kernel is running over TCP without encryption ... susceptible to
eavesdropping"). On a shared jump host that is true where it matters: another local user can
connect to the kernel's output port and read the evidence (pods, queries, log lines) as it is
produced. Every kernel the runbook starts listens on unix sockets instead, in a directory of its
own made by `mkdtemp` (mode 700: only this user may enter it), with its connection file (and its
signing key) beside them. `new_kernel_manager` makes such a manager; `RunbookEngine`
(`evidence/engine.py`) gives plain papermill the same.

**Warm kernels.** A cold run pays for the interpreter, the kernel and the imports (pandas, the
Kubernetes client, psycopg, the library) before its first query: 1-1.5 s. `KernelPool` keeps a few
kernels started ahead with those imports done (ipykernel's `exec_lines`, run before the kernel
answers its first request and kept out of the history, so the first cell is still `In [1]`). Each
run takes one and its kernel is shut down after the run, as a cold kernel is: no state passes from
one run to the next. A replacement is started in the background at once."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_client import KernelManager

# What the scenario notebooks import, done before the kernel is handed out. A module that cannot be
# imported is skipped (the notebook meets the error itself, as in a cold run).
PRELOAD_MODULES = (
    "pandas",
    "pyarrow",
    "IPython.display",
    "incidentlib.notebook.run",
    "incidentlib.notebook.comms",
    "incidentlib.notebook.chartworker",
    "incidentlib.scenarios.triage",
    "incidentlib.scenarios.outage",
    "incidentlib.scenarios.database",
    "incidentlib.scenarios.performance",
    "kubernetes.client",
    "psycopg",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
)
# A warm chart helper for the outage notebook (`ChartWorker.start()` takes it): about a second of
# the machine's time per kernel, worth it while nothing waits (`KernelPool.busy` says when).
CHART_HELPER = "incidentlib.notebook.chartworker:start_ahead"
# The kernel's own log is noise on the engineer's terminal: errors only.
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",)
ASYNC_CLIENT = "jupyter_client.asynchronous.AsyncKernelClient"

_dir_lock = threading.Lock()
_private_dir: str | None = None


def private_dir() -> str:
    """This process's directory for kernel sockets and connection files: mode 700, removed at exit.

    Made by `mkdtemp` (owner only) under $XDG_RUNTIME_DIR when that is set (a per-user tmpfs),
    else the temp directory; a unix socket's path must stay under 108 bytes, so it is short."""
    global _private_dir
    with _dir_lock:
        if _private_dir is None or not os.path.isdir(_private_dir):
            base = os.environ.get("XDG_RUNTIME_DIR")
            if not base or not os.path.isdir(base) or not os.access(base, os.W_OK):
                base = None
            _private_dir = tempfile.mkdtemp(prefix="runbook-kernels-", dir=base)
            os.chmod(_private_dir, 0o700)
            atexit.register(shutil.rmtree, _private_dir, True)
        return _private_dir


def preload_lines(modules: Sequence[str] = PRELOAD_MODULES) -> list[str]:
    """ipykernel `exec_lines` importing `modules` (`module:function` also calls the function), each
    one on its own so one failure skips only itself, leaving no name behind in the user's
    namespace."""
    names = ", ".join(repr(m) for m in modules)
    return [
        "def _runbook_preload():\n"
        "    import importlib\n"
        f"    for name in ({names},):\n"
        "        module, _, call = name.partition(':')\n"
        "        try:\n"
        "            imported = importlib.import_module(module)\n"
        "            if call:\n"
        "                getattr(imported, call)()\n"
        "        except Exception:\n"
        "            pass\n"
        "_runbook_preload()\n"
        "del _runbook_preload"
    ]


def new_kernel_manager(
    *, kernel_name: str = "python3", asynchronous: bool = False, directory: str | None = None
) -> KernelManager:
    """A kernel manager on IPC transport: sockets and connection file in a private directory.

    `asynchronous` gives a `jupyter_client.AsyncKernelManager` (what nbclient starts a kernel with);
    otherwise a `KernelManager` whose clients are asynchronous, to be started ahead (`KernelPool`)
    and then handed to nbclient."""
    from jupyter_client import AsyncKernelManager, KernelManager

    where = directory or private_dir()
    name = f"k-{uuid.uuid4().hex[:12]}"
    options: dict[str, Any] = {
        "kernel_name": kernel_name,
        "transport": "ipc",
        "ip": os.path.join(where, name),
        "connection_file": os.path.join(where, f"{name}.json"),
    }
    if asynchronous:
        return AsyncKernelManager(**options)
    return KernelManager(client_class=ASYNC_CLIENT, **options)


def start_ready(
    km: KernelManager,
    *,
    env: Mapping[str, str] | None = None,
    preload: Sequence[str] = PRELOAD_MODULES,
    timeout: float = 60,
) -> None:
    """Start the kernel with `preload` imported and wait until it answers (its imports done).
    Raises (and leaves no process behind) when it does not start or answer within `timeout`."""
    args = [*KERNEL_ARGUMENTS]
    if preload:
        args.append("--IPKernelApp.exec_lines=" + _traitlets_list(preload_lines(preload)))
    km.start_kernel(extra_arguments=args, env={**os.environ, **(env or {})})
    kc = km.blocking_client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=timeout)
    except BaseException:
        stop(km)
        raise
    finally:
        kc.stop_channels()


def _traitlets_list(items: Sequence[str]) -> str:
    import json

    return json.dumps(list(items))


def stop(km: Any, *, now: bool = True) -> None:
    """Shut a kernel down (`now`: killed; else asked first, killed after 5 s) and remove its sockets
    and connection file; never raises."""
    with contextlib.suppress(Exception):
        if km.has_kernel:
            km.shutdown_kernel(now=now)
    with contextlib.suppress(Exception):
        km.cleanup_resources()


class KernelPool:
    """Kernels started ahead with the heavy imports done; `take()` hands one to a run.

    `size` kernels are kept ready (or starting, in background threads, as many at once as are
    missing). A kernel is used once: the run that takes it shuts it down, and a replacement starts
    at once. `env` is what the kernels' environment adds to this process's (a run that needs
    another environment starts cold). A kernel also starts the outage notebook's chart helper
    unless `busy()` says runs are waiting: in a burst, the machine's time goes to the runs."""

    def __init__(
        self,
        size: int = 2,
        *,
        kernel_name: str = "python3",
        env: Mapping[str, str] | None = None,
        preload: Sequence[str] = PRELOAD_MODULES,
        start_timeout: float = 60,
        on_change: Callable[[int], None] | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        if size < 0:
            raise ValueError("a kernel pool's size is 0 or more")
        self.size = size
        self.kernel_name = kernel_name
        self.env = dict(env or {})
        self.preload = tuple(preload)
        self.start_timeout = start_timeout
        self._on_change = on_change
        self._busy = busy or (lambda: False)
        self._ready: list[Any] = []
        self._wanted = 0  # kernels to start
        self._cond = threading.Condition()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._broken = False  # the last start failed: take() does not wait for one
        self.started = 0
        self.failed = 0
        self.last_error: str | None = None

    def start(self) -> KernelPool:
        """Begin starting the pool's kernels (in the background); returns at once."""
        with self._cond:
            self._wanted += self.size
            while len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._starter, name=f"kernel-pool-{len(self._threads) + 1}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
            self._cond.notify_all()
        return self

    @property
    def ready(self) -> int:
        """How many kernels are ready now."""
        with self._cond:
            return len(self._ready)

    def fits(self, *, kernel_name: str, env: Mapping[str, str] | None) -> bool:
        """Whether a run with this kernel and environment can use the pool's kernels."""
        return self.size > 0 and kernel_name == self.kernel_name and dict(env or {}) == self.env

    def take(
        self,
        *,
        kernel_name: str = "python3",
        env: Mapping[str, str] | None = None,
        wait: float = 30,
    ) -> Any | None:
        """A ready kernel's manager (the caller shuts it down), or None: none fits, or none is ready
        within `wait` seconds, or the pool's last start failed (the caller then starts one cold).
        Waiting for the kernel being started beats starting another: it is further along. A
        replacement starts at once."""
        if not self.fits(kernel_name=kernel_name, env=env):
            return None
        with self._cond:
            self._cond.wait_for(lambda: self._ready or self._closed or self._broken, timeout=wait)
            if not self._ready or self._closed:
                return None
            km = self._ready.pop(0)
            self._wanted += 1
            self._cond.notify_all()
        self._changed()
        if not km.is_alive():  # died while waiting: never hand out a dead kernel
            stop(km)
            return self.take(kernel_name=kernel_name, env=env, wait=wait)
        return km

    def close(self) -> None:
        """Stop starting kernels and shut down the ready ones."""
        with self._cond:
            self._closed = True
            ready, self._ready = self._ready, []
            self._cond.notify_all()
        for km in ready:
            stop(km)
        for thread in self._threads:
            thread.join(timeout=self.start_timeout + 5)
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            with contextlib.suppress(Exception):
                self._on_change(self.ready)

    def _starter(self) -> None:
        failures = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._wanted > 0)
                if self._closed:
                    return
                self._wanted -= 1
            km = new_kernel_manager(kernel_name=self.kernel_name)
            preload = self.preload if self._busy() else (*self.preload, CHART_HELPER)
            try:
                start_ready(km, env=self.env, preload=preload, timeout=self.start_timeout)
            except Exception as e:  # noqa: BLE001 - a kernel that cannot start: runs start cold
                self.failed += 1
                self.last_error = f"{type(e).__name__}: {e}"
                failures += 1
                with self._cond:
                    self._wanted += 1
                    self._broken = True
                    self._cond.notify_all()
                    # back off (up to 30 s) so a broken environment does not spin
                    self._cond.wait_for(lambda: self._closed, timeout=min(30.0, 0.5 * 2**failures))
                continue
            failures = 0
            with self._cond:
                if self._closed:
                    stop(km)
                    return
                self.started += 1
                self._broken = False
                self._ready.append(km)
                self._cond.notify_all()
            self._changed()
