"""`AlertServer`: Alertmanager's webhook in, evidence out, seconds after the alert.

    POST /alerts   the webhook (payload version 4); bearer token unless on loopback
    GET  /healthz  the process answers        GET /readyz  the journal is replayed, workers run
    GET  /metrics  Prometheus text            GET /        the incidents, with their evidence

A notification is checked (400: nothing runs), planned (`incidents.plan`), written to the journal
and synced, and only then answered 200; when its runs do not fit in the bounded queue it is
answered 503 with Retry-After and nothing is recorded (Alertmanager retries 5xx, never 4xx).
`workers` threads run the queued jobs through `evidence.run_notebook` (the same archive as
`runbook run`) on warm kernels from a `KernelPool`; `apply` is always False. At start the journal
is replayed: runs cut short by a stop are archived as failed and run again.

The journal (and, with s3:// outputs, the runs' scratch folders) live in the state folder:
`<outputs>/.serve` for a folder archive; given (`--state-dir`) for s3:// outputs, whose index and
evidence pages then read the bucket."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, RunbookError
from ..evidence.kernels import KernelPool
from ..evidence.run import (
    RunResult,
    archive_interrupted,
    kernel_environment,
    prepare_thread,
    run_notebook,
)
from ..evidence.storage import is_s3, open_archive
from ..redact import redact_text
from . import notify
from .alerts import parse
from .incidents import Incident, Job, Journal, State, plan
from .metrics import Metrics
from .routes import Catalog, Routing
from .web import (
    EVIDENCE_CSP,
    INDEX_CSP,
    TYPES,
    archived_incidents,
    evidence_file,
    evidence_object,
    index_page,
)

log = logging.getLogger("incidentlib.serve")
MAX_BODY = 4 << 20  # bytes of one webhook post (Alertmanager caps a group at max_alerts anyway)
SERVE_DIR = ".serve"  # beside the incidents, ignored by them (verify reads only its incident)


def is_loopback(host: str) -> bool:
    """Whether listening on `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Options:
    """How the server runs (`runbook serve`'s flags)."""

    outputs: Path | str  # a folder, or s3://bucket/prefix
    catalog: Catalog
    routing: Routing
    host: str = "127.0.0.1"
    port: int = 9095
    token: str | None = None
    workers: int = 2
    queue_size: int = 100
    warm_kernels: int = 2
    dedupe_window: timedelta = timedelta(minutes=30)
    evidence_base_url: str | None = None
    notify_webhook: str | None = None
    cell_timeout: float = 300.0
    signing_key: Any = None
    open_index: bool = False  # the index and evidence without the token (behind a proxy that
    # authenticates people)
    state_dir: Path | None = None  # the journal's folder (default <outputs>/.serve)

    def check(self) -> None:
        if self.token is None and not is_loopback(self.host):
            raise InvalidParameter(
                f"listening on {self.host} needs a token: give --token-file (the file "
                "Alertmanager's http_config.authorization.credentials_file reads), or listen on "
                "127.0.0.1"
            )
        if self.token is not None and len(self.token) < 16:
            raise InvalidParameter("the token must be at least 16 characters long")
        if self.workers < 1 or self.queue_size < 1 or self.warm_kernels < 0:
            raise InvalidParameter("workers and queue size must be at least 1, warm kernels 0+")
        if is_s3(self.outputs) and self.state_dir is None:
            raise InvalidParameter(
                f"--outputs {self.outputs}: the server's journal cannot live in a bucket: give "
                "--state-dir DIR, a folder that outlives the process (in a cluster an emptyDir "
                "or a persistent volume)"
            )

    @property
    def state(self) -> Path:
        """Where the server keeps its journal (and an s3:// archive's run scratch folders)."""
        return self.state_dir or Path(self.outputs) / SERVE_DIR


class AlertServer:
    """The webhook receiver, its queue and workers, its journal and its pages."""

    def __init__(self, options: Options, *, now: Callable[[], datetime] | None = None) -> None:
        options.check()
        self.o = options
        self.now = now or (lambda: datetime.now(UTC))
        self.metrics = Metrics()
        self.metrics.queue_capacity.set(options.queue_size)
        self.state = State()
        self.dir = options.state
        self.archive = open_archive(options.outputs)
        # an s3:// run's files before they are staged: kept here, so that a run cut short (kill
        # -9) is archived with what it had done when the server comes back
        self.scratch = self.dir / "scratch" if is_s3(options.outputs) else None
        self.journal = Journal(self.dir / "journal.jsonl")
        self._cond = threading.Condition()
        self._running: set[str] = set()
        self._stopping = False
        self._ready = False
        self._workers: list[threading.Thread] = []
        defaults_env = kernel_environment(options.catalog.defaults)
        self.pool = KernelPool(
            options.warm_kernels,
            env=defaults_env,
            on_change=self.metrics.warm_kernels.set,
            busy=self._busy,
        )
        self.http = _HTTPServer((options.host, options.port), _handler(self))
        self._http_thread: threading.Thread | None = None
        self._run_seconds: list[float] = []

    # ------------------------------------------------------------------------------ life cycle
    @property
    def url(self) -> str:
        host = f"[{self.o.host}]" if ":" in self.o.host else self.o.host
        return f"http://{host}:{self.http.server_port}"

    def start(self) -> AlertServer:
        """Import what runs need (here, before any other thread imports), then answer HTTP
        (readyz says when the rest is up), replay the journal, start the kernels and the
        workers."""
        prepare_thread()
        self._http_thread = threading.Thread(
            target=self.http.serve_forever, name="serve-http", daemon=True
        )
        self._http_thread.start()
        self.pool.start()
        self._replay()
        for i in range(self.o.workers):
            t = threading.Thread(target=self._worker, name=f"serve-worker-{i + 1}", daemon=True)
            t.start()
            self._workers.append(t)
        with self._cond:
            self._ready = True
        return self

    def stop(self, *, wait: float = 600) -> None:
        """Stop answering, let running runs finish (up to `wait` seconds), stop the kernels.
        Queued runs stay in the journal: the next start runs them."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.http.shutdown()
        self.http.server_close()
        deadline = time.monotonic() + wait
        for t in self._workers:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self.pool.close()
        self.journal.close()

    def _replay(self) -> None:
        for record in self.journal.records():
            try:
                self.state.apply(record)
            except (KeyError, TypeError) as e:  # a record we cannot use: say so, go on
                log.warning("journal record skipped (%s): %.200s", e, record)
        for job in self.state.pending():
            if job.state == "running" and job.run_id:
                self._archive_cut_short(job)
        self._gauges()

    def _archive_cut_short(self, job: Job) -> None:
        """A run the server was running when it stopped (kill -9): archive what it produced as
        failed, then run it again."""
        run_id = job.run_id or ""
        try:
            params = self.o.catalog.parameters(job.spec, self._extra(job))
            archived = archive_interrupted(
                self.o.catalog.paths[job.scenario],
                outputs=self.o.outputs,
                incident=job.incident,
                run_id=run_id,
                parameters=params,
                scenario=job.scenario,
                reason="interrupted: runbook serve stopped mid-run (killed or crashed); "
                "the run was started again when it came back",
                signing_key=self.o.signing_key,
                scratch=self.scratch,
            )
            self._drop_fetched(params)
        except (RunbookError, KeyError, OSError) as e:
            log.warning("could not archive the cut-short run %s: %s", run_id, e)
            archived = None
        record: dict[str, Any] = {"type": "requeued", "job": job.id, "cut_short": run_id}
        if archived is not None:
            self.metrics.runs.labels(job.scenario, archived.status).inc()
            record["archived"] = self._rel(archived.notebook)
            if "was lost" in (archived.error or ""):
                record["lost"] = "what the cut-short run had produced (its scratch folder)"
                log.warning("run %s was cut short; %s", run_id, record["lost"] + " was lost")
        self._record(record)

    # ---------------------------------------------------------------------------------- webhook
    def authorized(self, header: str | None) -> bool:
        """The request's Authorization header carries the token (any header does without one)."""
        if self.o.token is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.o.token.encode()
        )

    def receive(self, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One webhook post: (HTTP status, JSON reply, extra headers)."""
        try:
            note = parse(body)
        except InvalidParameter as e:
            self.metrics.notifications.labels("unknown", "rejected").inc()
            return 400, {"error": str(e)}, {}
        with self._cond:
            if self._stopping or not self._ready:
                self.metrics.notifications.labels(note.status, "busy").inc()
                return 503, {"error": "starting or stopping: send it again"}, {"Retry-After": "5"}
            try:
                record = plan(
                    self.state,
                    note,
                    self.o.routing,
                    self.o.catalog,
                    now=self.now(),
                    dedupe_window=self.o.dedupe_window,
                )
            except InvalidParameter as e:
                self.metrics.notifications.labels(note.status, "rejected").inc()
                return 400, {"error": redact_text(str(e))}, {}
            queued = sum(1 for j in self.state.jobs.values() if j.state == "queued")
            if record["jobs"] and queued + len(record["jobs"]) > self.o.queue_size:
                self.metrics.notifications.labels(note.status, "busy").inc()
                wait = self._retry_after(queued)
                return (
                    503,
                    {
                        "error": f"busy: {queued} runs queued, the queue holds "
                        f"{self.o.queue_size}; send it again in {wait} s",
                    },
                    {"Retry-After": str(wait)},
                )
            self._record(record)
            self._cond.notify_all()
        self.metrics.notifications.labels(note.status, "accepted").inc()
        for outcome in record["outcomes"].values():
            self.metrics.alerts.labels(outcome.split(":")[0].split(" ")[0]).inc()
        if record.get("resolves") and not record["jobs"]:
            threading.Thread(target=self._resolved, args=(record["incident"], None)).start()
        return (
            200,
            {
                "incident": record["incident"],
                "runs": [j["scenario"] for j in record["jobs"]],
                "outcomes": record["outcomes"],
            },
            {},
        )

    def _busy(self) -> bool:
        """Runs are waiting for a worker (a burst): kernels start without extras."""
        with self._cond:
            return any(j.state == "queued" for j in self.state.jobs.values())

    def _retry_after(self, queued: int) -> int:
        per_run = sorted(self._run_seconds)[len(self._run_seconds) // 2] if self._run_seconds else 5
        return int(min(300, max(5, math.ceil(per_run * (queued + 1) / self.o.workers))))

    def _record(self, record: dict[str, Any]) -> None:
        """Journal first (synced), then the state: what was answered 200 survives a crash."""
        with self._cond:
            self.journal.append(record)
            self.state.apply(record)
            self._gauges()

    def _gauges(self) -> None:
        jobs = self.state.jobs.values()
        self.metrics.queue_depth.set(sum(1 for j in jobs if j.state == "queued"))
        self.metrics.running.set(len(self._running))
        self.metrics.open_incidents.set(
            sum(1 for i in self.state.incidents.values() if i.status == "firing")
        )

    # ---------------------------------------------------------------------------------- workers
    def _next_job(self) -> Job | None:
        """The oldest queued job whose predecessors are done (None when stopping)."""
        with self._cond:
            while not self._stopping:
                for job in self.state.pending():
                    if (
                        job.state == "queued"
                        and job.id not in self._running
                        and all(
                            self.state.jobs[a].state == "done"
                            for a in job.after
                            if a in self.state.jobs
                        )
                    ):
                        self._running.add(job.id)
                        self._gauges()
                        return job
                self._cond.wait(timeout=1.0)
            return None

    def _worker(self) -> None:
        try:
            # this thread's HTML templates and the scenarios' highlighted code (imports are done)
            prepare_thread(self.o.catalog.paths.values())
        except Exception:  # noqa: BLE001 - only a head start: the first run pays it instead
            log.exception("warming up a worker failed")
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                self._run(job)
            except Exception as e:  # noqa: BLE001 - a worker never dies of one job
                log.exception("job %s failed to run", job.id)
                self._finish(job, None, error=f"{type(e).__name__}: {e}")
            finally:
                with self._cond:
                    self._running.discard(job.id)
                    self._gauges()
                    self._cond.notify_all()

    def _extra(self, job: Job) -> dict[str, Any]:
        """What the server adds to a job's parameters: a recovery's baseline (the incident's first
        run of the recovery scenario, else its first triage)."""
        if job.kind != "recovery":
            return {}
        inc = self.state.incidents[job.incident]
        done = [self.state.jobs[j] for j in inc.jobs if j in self.state.jobs]
        done = [j for j in done if j.kind == "evidence" and j.notebook and j.status != "error"]
        first = next((j for j in done if j.scenario == job.scenario), None) or next(
            (j for j in done if j.scenario == "triage"), None
        )
        if first is None or "baseline" not in self.o.catalog.declared[job.scenario]:
            return {}
        if self.scratch is None:
            return {"baseline": str((Path(self.o.outputs) / str(first.notebook)).resolve())}
        # the recovery reads its baseline from a file: the first run's notebook, fetched
        incident, _, name = str(first.notebook).partition("/")
        data = self.archive.incident(incident).read(name)
        if data is None:
            return {}
        local = self.dir / "baselines" / incident / name
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        return {"baseline": str(local)}

    def _drop_fetched(self, params: dict[str, Any]) -> None:
        """Remove the baseline `_extra` fetched from the bucket for a run (never a file given)."""
        fetched = Path(str(params.get("baseline") or "/"))
        if fetched.parent.parent == self.dir / "baselines":
            fetched.unlink(missing_ok=True)

    def _run(self, job: Job) -> None:
        try:
            params = self.o.catalog.parameters(job.spec, self._extra(job))
        except InvalidParameter as e:
            self._finish(job, None, error=f"cannot run: {e}")
            return

        def started(run_id: str) -> None:
            self._record({"type": "started", "job": job.id, "run_id": run_id})

        try:
            result = run_notebook(
                self.o.catalog.paths[job.scenario],
                outputs=self.o.outputs,
                incident=job.incident,
                parameters=params,
                scenario=job.scenario,
                cell_timeout=self.o.cell_timeout,
                signing_key=self.o.signing_key,
                kernels=self.pool,
                on_started=started,
                scratch=self.scratch,
            )
        finally:
            self._drop_fetched(params)
        self._finish(job, result)
        if job.kind == "recovery":
            self._resolved(job.incident, job.id)
        elif job.scenario == "triage" and self._first_triage(job):
            self._initial(job)

    def _finish(self, job: Job, result: RunResult | None, *, error: str | None = None) -> None:
        received = datetime.fromisoformat(job.received_at)
        now = self.now()
        seconds = (now - received).total_seconds()
        record: dict[str, Any] = {
            "type": "finished",
            "job": job.id,
            "status": result.status if result else "error",
            "error": result.error if result else error,
            "seconds": round(seconds, 3),
            "run_id": result.run_id if result else job.run_id,
        }
        if result is not None:
            record.update(
                notebook=self._rel(result.notebook),
                html=self._rel(result.html) if result.html else None,
                warm=result.warm,
            )
            self.metrics.kernels.labels("warm" if result.warm else "cold").inc()
            self.metrics.receipt_to_evidence.labels(job.scenario).observe(seconds)
            started = datetime.fromisoformat(job.alert_started_at)
            self.metrics.alert_to_evidence.labels(job.scenario).observe(
                (now - started).total_seconds()
            )
            self._run_seconds = [*self._run_seconds[-49:], seconds]
        self.metrics.runs.labels(job.scenario, record["status"]).inc()
        self._record(record)

    def _rel(self, where: str | Path) -> str:
        """An archived file's path relative to the outputs (`<incident>/<file>`)."""
        if is_s3(where):
            return str(where)[len(str(self.archive.location)) + 1 :]
        return Path(where).relative_to(self.o.outputs).as_posix()

    def _first_triage(self, job: Job) -> bool:
        inc = self.state.incidents[job.incident]
        return (
            next((j for j in inc.jobs if self.state.jobs[j].scenario == "triage"), None) == job.id
        )

    def _initial(self, job: Job) -> None:
        inc = self.state.incidents[job.incident]
        text = notify.initial_message(inc, self.state.jobs[job.id], self.o.outputs, self._base())
        self._message(inc, "initial", text)

    def _resolved(self, incident: str, recovery: str | None) -> None:
        inc = self.state.incidents[incident]
        runs = [self.state.jobs[j] for j in inc.jobs if j in self.state.jobs]
        evidence = [j for j in runs if j.kind == "evidence" and j.state == "done"]
        rec = self.state.jobs.get(recovery) if recovery else None
        text = notify.resolution_message(inc, evidence, rec, self.o.outputs, self._base())
        self._message(inc, "resolution", text)

    def _message(self, inc: Incident, kind: str, text: str) -> None:
        posted = notify.post(self.o.notify_webhook, text)
        self._record(
            {
                "type": "message",
                "incident": inc.id,
                "kind": kind,
                "text": text,
                "posted": posted,
                "at": self.now().isoformat(timespec="seconds"),
            }
        )

    def _base(self) -> str | None:
        if self.o.evidence_base_url:
            return self.o.evidence_base_url
        return None

    # ------------------------------------------------------------------------------------ pages
    def ready(self) -> tuple[bool, str]:
        with self._cond:
            if self._stopping:
                return False, "stopping"
            if not self._ready:
                return False, "starting: replaying the journal"
            alive = sum(1 for t in self._workers if t.is_alive())
        if not alive:
            return False, "no worker is running"
        return True, f"ready: {alive} workers, {self.pool.ready} warm kernels"

    def index(self) -> str:
        with self._cond:
            incidents = list(self.state.incidents.values())
            jobs = dict(self.state.jobs)
            queued = sum(1 for j in jobs.values() if j.state == "queued")
            running = len(self._running)
        if self.scratch is None:
            return index_page(incidents, jobs, queued=queued, running=running)
        try:
            archived = archived_incidents(self.archive, {i.id for i in incidents})
        except RunbookError as e:
            log.warning("the index could not list the archive: %s", e)
            archived = []
        return index_page(incidents, jobs, queued=queued, running=running, archived=archived)


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128  # Alertmanager posts many groups at once in a storm: none refused
    daemon_threads = True


def _handler(server: AlertServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "runbook-serve/1"
        timeout = 30  # a client that stops sending is cut off
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            log.debug("%s " + format, self.address_string(), *args)

        def _send(
            self,
            status: int,
            body: bytes,
            ctype: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, (json.dumps(obj) + "\n").encode(), headers=headers)

        def _unauthorized(self) -> None:
            self._json(
                401,
                {"error": "missing or wrong bearer token (Authorization: Bearer ...)"},
                {"WWW-Authenticate": 'Bearer realm="runbook serve"'},
            )

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path != "/alerts":
                self._json(404, {"error": "no such path; the webhook is POST /alerts"})
                return
            if not server.authorized(self.headers.get("Authorization")):
                server.metrics.notifications.labels("unknown", "unauthorized").inc()
                self.close_connection = True
                self._unauthorized()
                return
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                self.close_connection = True
                self._json(411, {"error": "Content-Length is required"})
                return
            if length > MAX_BODY or length < 0:
                self.close_connection = True
                self._json(413, {"error": f"the body is larger than {MAX_BODY} bytes"})
                return
            body = self.rfile.read(length)
            status, reply, headers = server.receive(body)
            self._json(status, reply, headers)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/readyz":
                ok, why = server.ready()
                self._send(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
            elif path == "/metrics":
                self._send(200, server.metrics.text(), server.metrics.content_type)
            elif path in ("/", "/index.html") or path.startswith("/evidence/"):
                if not server.o.open_index and not server.authorized(
                    self.headers.get("Authorization")
                ):
                    self._unauthorized()
                elif path.startswith("/evidence/"):
                    self._evidence(path[len("/evidence/") :])
                else:
                    page = server.index().encode("utf-8")
                    self._send(
                        200,
                        page,
                        "text/html; charset=utf-8",
                        {"Content-Security-Policy": INDEX_CSP},
                    )
            else:
                self._json(404, {"error": "no such page"})

        do_HEAD = do_GET  # noqa: N815

        def _evidence(self, tail: str) -> None:
            if server.scratch is not None:  # s3:// outputs: the object, read
                self._evidence_object(tail)
                return
            found = evidence_file(Path(server.o.outputs), tail)
            if found is None:
                self._json(404, {"error": "no such evidence file"})
                return
            headers = {"Content-Security-Policy": EVIDENCE_CSP}
            if found.suffix != ".html":
                headers["Content-Disposition"] = f'attachment; filename="{found.name}"'
            self._send(200, found.read_bytes(), TYPES[found.suffix], headers)

        def _evidence_object(self, tail: str) -> None:
            try:
                got = evidence_object(server.archive, tail)
            except RunbookError as e:
                log.warning("evidence %s: %s", tail[:200], e)
                self._json(502, {"error": "the archive could not be read; see the server's log"})
                return
            if got is None:
                self._json(404, {"error": "no such evidence file"})
                return
            name, data = got
            suffix = Path(name).suffix
            headers = {"Content-Security-Policy": EVIDENCE_CSP}
            if suffix != ".html":
                headers["Content-Disposition"] = f'attachment; filename="{name}"'
            self._send(200, data, TYPES[suffix], headers)

        def _other(self) -> None:
            self._json(405, {"error": "method not allowed"}, {"Allow": "GET, HEAD, POST"})

        do_PUT = do_DELETE = do_PATCH = _other  # noqa: N815

    return Handler


def serve_forever(server: AlertServer) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly (`runbook serve`)."""
    import signal

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(3600):
            pass
    server.stop()
