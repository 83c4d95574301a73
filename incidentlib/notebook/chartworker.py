"""Charts drawn in a helper process while the kernel is still reading the cluster.

Importing matplotlib and drawing the first figure (fonts, text layout) costs a kernel about 0.6 s,
all of it on the one core the kernel's Python can use, and the outage notebook spends the same
seconds decoding thousands of pods. So the notebook starts a helper process first: it imports
matplotlib and loads the font on the machine's other core while the kernel reads (a helper started
ahead of its run, with time to spare, also draws a throw-away figure); the kernel hands it the
charts' plain values (`charts.*_data`: lists, numbers, text, datetimes) as soon as the evidence is
built and displays the PNGs it sends back when the charts' cell runs. The kernel itself never
imports matplotlib, and the helper never imports pandas (half a second of a core, which on a
machine of two came out of the reads the charts wait for).

Nothing depends on the helper: if it cannot start, fails, or is late, the charts are drawn in the
kernel as before (`INCIDENTLIB_CHART_WORKER=0` always draws them in the kernel). The helper is a
plain child process (`python -m incidentlib.notebook.chartworker`) speaking pickles over its stdin
and stdout, in a session of its own, so the kernel's shutdown never waits on it; it exits when the
kernel closes its stdin or goes away. This module imports neither pandas nor matplotlib in the
kernel; the helper imports `incidentlib.notebook.figures` itself."""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

DEFAULT_TIMEOUT = 15.0  # for all the charts of a job; then the kernel draws what is missing itself
NICE = 10  # the helper's niceness, added to the kernel's (see main)


def _enabled() -> bool:
    return os.environ.get("INCIDENTLIB_CHART_WORKER", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def draw(name: str, kwargs: dict[str, Any]) -> bytes:
    """Draw the named chart recipe (`figures.RECIPES`) to PNG bytes; in the helper or, as fallback,
    here."""
    from . import figures

    return figures.recipe_png(name, **kwargs)


class ChartJob:
    """Charts requested from the helper: `pngs()` waits for them, or draws them here if the helper
    cannot."""

    def __init__(
        self, specs: list[tuple[str, dict[str, Any]]], futures: list[Future[bytes]] | None
    ) -> None:
        self.specs = specs
        self._futures = futures
        self.drawn_here = 0  # how many of the charts the kernel had to draw itself

    def pngs(self, timeout: float = DEFAULT_TIMEOUT) -> list[bytes]:
        """The PNG bytes, in the order requested; whatever the helper has not sent within `timeout`
        seconds (all charts together) is drawn here."""
        import time

        deadline = time.monotonic() + timeout
        out: list[bytes] = []
        for i, (name, kwargs) in enumerate(self.specs):
            png: bytes | None = None
            if self._futures is not None:
                try:
                    png = self._futures[i].result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - a broken or late helper only means drawing here
                    png = None
            if png is None:
                png = draw(name, kwargs)
                self.drawn_here += 1
            out.append(png)
        return out


class ChartWorker:
    """The helper process, seen from the kernel."""

    def __init__(self, proc: subprocess.Popen[bytes] | None) -> None:
        self._proc = proc
        self._lock = threading.Lock()
        self._pending: list[Future[bytes]] = []
        self._dead = proc is None
        self._closed = False
        self._writes: queue.SimpleQueue[list[tuple[str, dict[str, Any]]] | None] = (
            queue.SimpleQueue()
        )
        if proc is not None:
            threading.Thread(
                target=self._write_requests, name="chart-worker-requests", daemon=True
            ).start()
            threading.Thread(
                target=self._read_replies, name="chart-worker-replies", daemon=True
            ).start()

    _live: ClassVar[ChartWorker | None] = None
    """The helper this kernel started last: a notebook run again (its setup cell again) closes it
    first, so a kernel never keeps more than one helper."""

    @classmethod
    def start(cls, *, warm_up: str = "outage") -> ChartWorker:
        """Start the helper now (it warms up at once for the `warm_up` kind of chart:
        `figures.warm_up`), or take the one `start_ahead` started for that kind; without one
        (disabled, cannot start) charts draw in the kernel. The helper started before, if any, is
        told to finish and exit."""
        global _ahead
        previous, cls._live = cls._live, None
        if previous is not None:
            previous.close()
        if not _enabled():
            return cls(None)
        proc, kind = _ahead if _ahead is not None else (None, warm_up)
        _ahead = None
        if proc is not None and (kind != warm_up or proc.poll() is not None):
            _retire(proc)
            proc = None
        if proc is None:
            try:
                proc = _spawn(warm_up)
            except OSError:
                return cls(None)
        cls._live = cls(proc)
        return cls._live

    @property
    def running(self) -> bool:
        return not self._dead and self._proc is not None and self._proc.poll() is None

    def submit(self, specs: list[tuple[str, dict[str, Any]]]) -> ChartJob:
        """Ask for these charts (recipe name, keyword arguments); returns at once (a thread writes
        them to the helper, whose pipe only takes 64 KB while it is still warming up)."""
        futures: list[Future[bytes]] = [Future() for _ in specs]
        with self._lock:
            # a helper that has exited is dead even before its reply reader has noticed
            if self._dead or self._closed or not self.running:
                return ChartJob(specs, None)
            self._pending.extend(futures)
        self._writes.put(specs)
        return ChartJob(specs, futures)

    def _write_requests(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            while (specs := self._writes.get()) is not None:
                # pickled whole first: a value that cannot be pickled sends nothing, never half a
                # job
                payload = b"".join(
                    pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL) for spec in specs
                )
                self._proc.stdin.write(payload)
                self._proc.stdin.flush()
        except Exception:  # noqa: BLE001 - helper gone or a value it cannot take: the kernel draws
            self._fail_pending(RuntimeError("the chart helper could not be sent the charts' data"))
        finally:
            try:
                self._proc.stdin.close()
            except OSError:
                pass

    def close(self) -> None:
        """No more charts: the helper finishes what it has, then exits (never waits); charts asked
        for after this are drawn in the kernel."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._proc is not None:
            self._writes.put(None)

    def _read_replies(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        out = self._proc.stdout
        try:
            while True:
                ok, value = pickle.load(out)
                with self._lock:
                    fut = self._pending.pop(0)
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(RuntimeError(f"the chart helper failed: {value}"))
        except Exception:  # noqa: BLE001 - EOF or garbage: whatever is pending is drawn in the kernel
            self._fail_pending(RuntimeError("the chart helper exited"))
        finally:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def _fail_pending(self, error: BaseException) -> None:
        with self._lock:
            self._dead = True
            pending, self._pending = self._pending, []
        for fut in pending:
            if not fut.done():
                fut.set_exception(error)


_ahead: tuple[subprocess.Popen[bytes], str] | None = None


def _helper_env() -> dict[str, str]:
    """The helper's environment: the kernel's, with the directory that holds the `incidentlib`
    package first on its path (the helper imports the same library as the kernel, even from a
    source checkout that is not installed). Not the package's own directory: that would make its
    rooms (`notebook`, `service`, `cli`...) top-level modules that shadow real ones."""
    root = str(Path(__file__).resolve().parents[2])  # incidentlib/notebook/chartworker.py
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
    }


AHEAD = "ahead"  # the helper's second argument when it is started ahead of its run


def _spawn(warm_up: str = "outage", *, ahead: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "incidentlib.notebook.chartworker", warm_up]
        + ([AHEAD] if ahead else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_helper_env(),
        start_new_session=True,
        close_fds=True,
    )


def _retire(proc: subprocess.Popen[bytes]) -> None:
    """A helper started ahead that no notebook will use: its stdin closed, it exits."""
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()


def start_ahead(warm_up: str = "outage") -> None:
    """Start a helper now, for this process's next `ChartWorker.start()`: a kernel started ahead
    of its run (`runbook serve`'s warm kernels) has its helper warm when the outage notebook asks.
    It exits with the kernel if no notebook takes it (its stdin closes)."""
    global _ahead
    if _enabled() and _ahead is None:
        try:
            _ahead = (_spawn(warm_up, ahead=True), warm_up)
        except OSError:
            _ahead = None


def _serve(inp: BinaryIO, out: BinaryIO, warm_up: str = "outage", mode: str = "") -> None:
    """The helper's loop: warm up (throw-away charts only when started `ahead` of its run, with
    time to spare), then draw each request and answer (True, png) or (False, error)."""
    from . import figures

    try:
        figures.warm_up(warm_up, stop=lambda: _waiting(inp), throw_away=mode == AHEAD)
    except Exception:  # noqa: BLE001, S110 - warming up is only an optimisation
        pass
    while True:
        try:
            name, kwargs = pickle.load(inp)
        except EOFError:
            return
        try:
            reply: tuple[bool, Any] = (True, draw(name, kwargs))
        except Exception as e:  # noqa: BLE001 - reported to the kernel, which draws it itself
            reply = (False, f"{type(e).__name__}: {e}")
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


def _waiting(inp: BinaryIO) -> bool:
    """Whether a request is already waiting on the helper's input (then it stops warming up)."""
    import select

    try:
        return bool(select.select([inp], [], [], 0)[0])
    except (OSError, ValueError):  # not a pipe (io.UnsupportedOperation is both): never stop early
        return False


def main() -> None:
    """Entry point of the helper process: requests on stdin, replies on stdout (stray prints go to
    stderr)."""
    # Below the kernel in the scheduler's eyes: the helper only ever uses a core nothing else
    # wants. On a machine whose cores are busy with the runbook's own reads (the kernel decoding
    # thousands of pods, or a local API server or database serving them), its warm-up would
    # otherwise take CPU from the reads the charts are waiting for.
    with contextlib.suppress(OSError):
        os.nice(NICE)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, out, *sys.argv[1:3])


if __name__ == "__main__":
    main()
