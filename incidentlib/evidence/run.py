"""The evidence archive: run a scenario notebook with papermill and keep what it found, safely.

    outputs/<incident>/<UTC timestamp>-<scenario>.ipynb  the executed notebook, scrubbed of secrets
    outputs/<incident>/<UTC timestamp>-<scenario>.html   self-contained HTML (images embedded)
    outputs/<incident>/manifest.json                     every run: files + sha256, parameters,
                                                         versions

Nothing is overwritten (same-second runs get distinct names); every file is written atomically
(temp file in `outputs/.partial/`, then os.replace); a failed run is archived too, with the
failure at the top. Manifest appends hold an flock on `<incident>/.manifest.lock`; `verify`
recomputes every hash."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import secrets as _secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameter, RunbookError
from ..redact import (
    dsn_password,
    mask_known,
    redact_text,
    redact_value,
    register_secret,
    scrub_notebook,
)
from ..scraps import plain, read
from .html import export_html
from .manifest import next_manifest, read_scraps
from .parameters import Param, inspect_parameters
from .signing import load_private
from .storage import (
    MANIFEST,
    FolderIncident,
    Incident,
    locked,
    open_archive,
    parse_manifest,
    read_manifest,
    sha256_file,
    write_temp,
)
from .summary import add_summary

if TYPE_CHECKING:
    from .kernels import KernelPool

FAILURE_TAG = "evidence-failure"
_PM_ERROR_TAG = "papermill-error-cell-tag"
_INCIDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_env_lock = threading.Lock()


class _QuietPapermill(logging.Filter):
    """papermill warns about parameter lines its regex cannot parse; our own AST inspection reads
    them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unable to parse line")


_QUIET = _QuietPapermill()


# -- scenarios and their parameters ---------------------------------------------------------------


# -- incidents ----------------------------------------------------------------------------------


def new_incident_id(now: datetime | None = None) -> str:
    """A fresh incident id: INC-20261127-0935-ab12 (UTC minute and 4 random hex digits)."""
    now = now or datetime.now(UTC)
    return f"INC-{now:%Y%m%d-%H%M}-{_secrets.token_hex(2)}"


def validate_incident_id(value: str) -> str:
    """An incident id is also a directory name: letters, digits, '.', '_', '-' (no '/', no '..')."""
    if not isinstance(value, str) or not _INCIDENT_RE.fullmatch(value) or ".." in value:
        raise InvalidParameter(
            f"incident id {value!r} is not valid: use 1-80 letters, digits, '.', '_' or '-', "
            "starting with a "
            "letter or digit (for example INC-20261127-0935-ab12)"
        )
    return value


# -- running -------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What one `runbook run` left behind."""

    run_id: str
    scenario: str
    status: str  # ok | incomplete (ran to the end, some source could not be read) | failed
    error: str | None
    incident_dir: Path | str  # a folder, or the s3:// URL of the incident
    notebook: Path | str
    html: Path | str | None
    entry: dict[str, Any]
    interrupted: bool = False
    warm: bool = False  # ran in a kernel started ahead (`kernels.KernelPool`)

    @property
    def ok(self) -> bool:
        """Ran to the end and read every source."""
        return self.status == "ok"

    @property
    def completed(self) -> bool:
        """Ran to the end (every source read or not)."""
        return self.status in ("ok", "incomplete")


def run_notebook(
    notebook: str | os.PathLike[str],
    *,
    outputs: str | os.PathLike[str],
    incident: str,
    parameters: dict[str, Any] | None = None,
    scenario: str | None = None,
    cell_timeout: float | None = 600,
    progress_bar: bool = False,
    html: bool = True,
    signing_key: Any = None,
    kernels: KernelPool | None = None,
    on_started: Callable[[str], None] | None = None,
    scratch: Path | None = None,
) -> RunResult:
    """Execute a notebook with papermill and archive it (ipynb + HTML + manifest entry), whatever
    happens in it.

    The kernel runs on IPC transport (`kernels.py`): a warm one from `kernels` when the pool has
    one that fits, else one started for this run. `on_started(run_id)` is called once the run has
    its id, before the kernel runs anything (the alert server's journal records it). `scratch`:
    where an s3:// run writes its files first (`storage.open_archive`).

    A KeyboardInterrupt still archives what ran (status failed, "interrupted") and then
    propagates. The manifest entry is signed with `signing_key` (an Ed25519 private key), else with
    the key $RUNBOOK_SIGNING_KEY names, else not at all (`signing.py`)."""
    notebook = Path(notebook)
    scenario = scenario or notebook.stem
    validate_incident_id(incident)
    signing_key = signing_key if signing_key is not None else load_private()
    params = dict(parameters or {})
    declared = inspect_parameters(notebook)
    if "incident_id" in declared and params.get("incident_id") is None:
        params["incident_id"] = incident
    secrets = _secrets_in(params) | {v for k in ("PGPASSWORD",) if (v := os.environ.get(k))}
    for s in secrets:
        register_secret(s)

    store = open_archive(outputs, scratch=scratch).incident(incident)  # a folder, or s3://
    partial = store.scratch()
    started = datetime.now(UTC)
    run_id = store.reserve(f"{started:%Y%m%dT%H%M%SZ}", scenario)
    tmp_nb = partial / f"{run_id}.running.ipynb"
    if on_started is not None:
        on_started(run_id)

    _import_before_threads(declared)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evidence-probe") as probe:
        env_future = probe.submit(_probe_environment, params, declared)
        status, error, interrupted, warm = _execute(
            notebook,
            tmp_nb,
            params,
            cell_timeout=cell_timeout,
            progress_bar=progress_bar,
            kernels=kernels,
        )
        finished = datetime.now(UTC)
        result = _archive(
            _load_partial(tmp_nb, notebook),
            _Archive(notebook.name, scenario, incident, run_id, store, params, secrets),
            status=status,
            error=error,
            started=started,
            finished=finished,
            html=html,
            signing_key=signing_key,
            env_future=env_future,
        )
    result.interrupted, result.warm = interrupted, warm
    if interrupted:
        raise KeyboardInterrupt(result)
    return result


@dataclass(frozen=True)
class _Archive:
    """Where a run goes and what it was given."""

    source_name: str
    scenario: str
    incident: str
    run_id: str
    store: Incident  # the incident in the archive: a folder, or s3://
    params: dict[str, Any]
    secrets: set[str]


def _archive(
    nb: Any,
    run: _Archive,
    *,
    status: str,
    error: str | None,
    started: datetime,
    finished: datetime,
    html: bool,
    signing_key: Any,
    env_future: Future[dict[str, Any]],
) -> RunResult:
    """The one archive path: failure banner, summary, scrub, HTML, manifest entry under the lock."""
    partial = run.store.scratch()
    if status == "failed":
        error = _mark_failure(nb, error or "failed")
    scraps = _safe_read(nb)
    unread = unread_sources(scraps.get("sources"))
    if status == "ok" and unread:  # it ran to the end, but did not see everything
        status, error = "incomplete", "not read: " + "; ".join(unread)
    add_summary(
        nb,
        scraps,
        scenario=run.scenario,
        incident=run.incident,
        status=status,
        error=error,
        started=f"{started:%Y-%m-%d %H:%M:%S}",
        finished=f"{finished:%H:%M:%S}",
    )
    nb.metadata.setdefault("papermill", {})
    nb.metadata["papermill"].update(
        output_path=f"{run.run_id}.ipynb",
        input_path=run.source_name,
        parameters=redact_value(run.params),
    )
    nb.metadata["evidence"] = {
        "incident": run.incident,
        "run_id": run.run_id,
        "scenario": run.scenario,
        "status": status,
        "error": error,
    }
    ready, html_error = _prepare_evidence(
        scrub_notebook(nb, secrets=run.secrets), run.run_id, partial, html=html
    )
    if html_error:
        status, error = "failed", (error + "; " if error else "") + html_error
    env = _environment(_safe_scraps(ready[0][0], names=("environment",)), env_future)
    files = [{"path": name, "sha256": sha256_file(tmp)} for tmp, name in ready]
    entry = {
        "run_id": run.run_id,
        "scenario": run.scenario,
        "status": status,
        "error": redact_text(error) if error else None,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "parameters": _redact_params(run.params, run.secrets),
        "files": files,
        "versions": _versions(),
        "kubernetes": env["kubernetes"],
        "postgres": env["postgres"],
    }
    store = run.store
    store.commit(
        ready, lambda now: next_manifest(now, run.incident, entry, signing_key=signing_key)
    )
    store.release(run.run_id)
    return RunResult(
        run.run_id,
        run.scenario,
        status,
        entry["error"],
        store.location,
        store.where(files[0]["path"]),
        store.where(files[1]["path"]) if len(files) > 1 else None,
        entry,
    )


def archive_interrupted(
    notebook: str | os.PathLike[str],
    *,
    outputs: str | os.PathLike[str],
    incident: str,
    run_id: str,
    parameters: dict[str, Any] | None = None,
    scenario: str | None = None,
    started: datetime | None = None,
    reason: str = "interrupted: the process running it stopped mid-run",
    html: bool = True,
    signing_key: Any = None,
    scratch: Path | None = None,
) -> RunResult | None:
    """Archive as failed a run whose process died before it could (`kill -9` of the alert server):
    what its kernel had produced (papermill saves the notebook after every cell), with the failure
    first, through the same archive path as every run. None when there is nothing to archive: the
    run was committed after all, or its id was never reserved here.

    On S3 the partial notebook is in the run's local scratch folder: found when the run was given
    the same `scratch` root; else the notebook as written is archived, and the error says that
    what the run had produced was lost."""
    notebook = Path(notebook)
    scenario = scenario or notebook.stem
    validate_incident_id(incident)
    store = open_archive(outputs, scratch=scratch).incident(incident)
    if isinstance(store, FolderIncident):
        with locked(store.dir) if store.dir.is_dir() else contextlib.nullcontext():
            doc = read_manifest(store.dir)
    else:
        doc = parse_manifest(store.read(MANIFEST), store.where(MANIFEST))
    taken = {r.get("run_id") for r in doc.get("runs", [])}
    if run_id in taken or not store.reserved(run_id):
        return None
    params = dict(parameters or {})
    if "incident_id" in inspect_parameters(notebook) and params.get("incident_id") is None:
        params["incident_id"] = incident
    secrets = _secrets_in(params) | {v for k in ("PGPASSWORD",) if (v := os.environ.get(k))}
    for s in secrets:
        register_secret(s)
    tmp_nb = store.running(run_id)
    nb = _load_partial(tmp_nb or notebook, notebook)
    if isinstance(store, FolderIncident):
        mark: Path | None = tmp_nb or store.partial / f"{run_id}.reserved"
    else:
        mark = tmp_nb
        if tmp_nb is None:
            reason += "; what it had produced was lost (its scratch folder is gone)"
    when = started or (
        datetime.fromtimestamp(mark.stat().st_ctime, UTC) if mark else datetime.now(UTC)
    )
    probed: Future[dict[str, Any]] = Future()
    probed.set_result({"kubernetes": None, "postgres": None})
    return _archive(
        nb,
        _Archive(notebook.name, scenario, incident, run_id, store, params, secrets),
        status="failed",
        error=reason,
        started=when,
        finished=datetime.now(UTC),
        html=html,
        signing_key=signing_key if signing_key is not None else load_private(),
        env_future=probed,
    )


def _execute(
    notebook: Path,
    output: Path,
    params: dict[str, Any],
    *,
    cell_timeout: float | None,
    progress_bar: bool,
    kernels: KernelPool | None = None,
) -> tuple[str, str | None, bool, bool]:
    """papermill into `output` (saved after every cell), its kernel on IPC transport: a warm one
    from `kernels` if one fits. (status, error, interrupted, warm). Never raises."""
    import papermill
    from papermill.engines import papermill_engines

    from .engine import engine
    from .kernels import KERNEL_ARGUMENTS

    papermill_engines.register("runbook", engine())
    kernel_params, child_env = _move_db_password_to_env(params)
    pm_log = logging.getLogger("papermill")
    if _QUIET not in pm_log.filters:
        pm_log.addFilter(_QUIET)
    km = (
        kernels.take(kernel_name=_kernel_name(notebook), env=child_env)
        if kernels is not None
        else None
    )
    try:
        # a warm kernel has its environment already (the pool's): only a cold one needs ours
        with _child_env(child_env if km is None else {}):
            papermill.execute_notebook(
                os.fspath(notebook),
                os.fspath(output),
                parameters=kernel_params,
                engine_name="runbook",
                progress_bar=progress_bar,
                log_output=False,
                cwd=None,  # the caller's cwd, like papermill
                execution_timeout=cell_timeout,
                start_timeout=60,
                # the kernel's own log is noise on the engineer's terminal
                extra_arguments=list(KERNEL_ARGUMENTS),
                **({"km": km} if km is not None else {}),
            )
    except KeyboardInterrupt:
        return "failed", "interrupted (Ctrl-C)", True, km is not None
    except Exception as e:  # any failure is evidence too: archived, then reported
        return "failed", _describe_exception(e, cell_timeout), False, km is not None
    return "ok", None, False, km is not None


def _kernel_name(notebook: Path) -> str:
    """The kernel a notebook asks for (its kernelspec), python3 when it names none."""
    import json

    try:
        meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata") or {}
    except (OSError, ValueError):
        return "python3"
    return str((meta.get("kernelspec") or {}).get("name") or "python3")


def kernel_environment(params: dict[str, Any]) -> dict[str, str]:
    """What a run with these parameters adds to its kernel's environment (PGPASSWORD, when the DSNs
    carry one): a warm kernel must have been started with the same."""
    return _move_db_password_to_env(params)[1]


def _prepare_evidence(
    nb: Any, run_id: str, partial: Path, *, html: bool
) -> tuple[list[tuple[Path, str]], str | None]:
    """Write the notebook (and its HTML) complete into `partial`: [(temp file, final name)], HTML
    export error."""
    import nbformat

    text = nbformat.writes(nbformat.from_dict(nb))
    ready = [(write_temp(text.encode("utf-8"), partial, ".ipynb"), f"{run_id}.ipynb")]
    if not html:
        return ready, None
    try:
        page = export_html(nbformat.reads(text, as_version=4))
    except Exception as e:  # an export failure must not lose the notebook: record it
        return ready, f"HTML export failed: {type(e).__name__}: {e}"
    ready.append((write_temp(page.encode("utf-8"), partial, ".html"), f"{run_id}.html"))
    return ready, None


def _secrets_in(params: dict[str, Any]) -> set[str]:
    """Secrets a parameter carries: DSN and URL passwords, and values of parameters named like
    secrets."""
    found: set[str] = set()
    for name, value in _strings(params):
        pw = dsn_password(value)
        if pw:
            found.add(pw)
        for m in re.finditer(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]*:([^\s@'\"]+)@", value):
            found.add(m.group(1))
        if (
            re.search(r"(?i)(password|passwd|secret|token|api[_-]?key|webhook)$", name)
            and len(value) >= 4
        ):
            found.add(value)
        found.update(_masked_parts(value))
    return found


def _strings(value: Any, name: str = "") -> Iterator[tuple[str, str]]:
    """(parameter name, text) for every string inside a parameter value (YAML gives lists and
    dicts)."""
    if isinstance(value, str):
        yield name, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, str(k) if isinstance(v, str) else name)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v, name)


def _masked_parts(value: str) -> set[str]:
    """The pieces of `value` that redaction masks (a bearer token inside a header parameter...). A
    URL's query value counts only when its key names a secret (`sig`, `token`...): a masked
    `?namespace=production` must not make `production` a secret masked everywhere."""
    from ..redact import MASK

    red = redact_text(value)
    if red == value:
        return set()
    pieces = red.split(MASK)
    found, pos = set(), len(pieces[0])
    for piece in pieces[1:]:
        nxt = value.find(piece, pos) if piece else len(value)
        if nxt < 0:
            break
        key = re.search(r"[?&]([^=&#\s]*)=$", value[:pos])
        if nxt - pos >= 4 and (key is None or _SECRET_KEY.search(key.group(1))):
            found.add(value[pos:nxt])
        pos = nxt + len(piece)
    return found


_SECRET_KEY = re.compile(r"(?i)sig|token|key|secret|pass|pwd|auth|code|cred|session|state")


def _move_db_password_to_env(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The kernel gets DSNs without their password and PGPASSWORD in its environment instead: the
    password as libpq uses it (percent-decoded from a URI: p%40ss is p@ss).

    Done only when every DSN parameter carries the same password (one PGPASSWORD); otherwise the
    DSNs pass as they are and the archive's scrub masks the password."""
    from psycopg import conninfo

    dsn_names = [
        n
        for n, v in params.items()
        if isinstance(v, str) and (n == "dsn" or n.endswith("_dsn")) and dsn_password(v)
    ]
    if not dsn_names:
        return dict(params), {}
    out = dict(params)
    passwords: set[str] = set()
    for n in dsn_names:
        try:
            parts = conninfo.conninfo_to_dict(params[n])
        except Exception:  # malformed: let the notebook say so; the scrub masks it
            return dict(params), {}
        passwords.add(str(parts.pop("password", "") or ""))
        out[n] = conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()})
    if len(passwords) != 1 or "" in passwords:
        return dict(params), {}
    password = passwords.pop()
    register_secret(password)  # also masks its percent-encoded form
    return out, {"PGPASSWORD": password}


@contextlib.contextmanager
def _child_env(extra: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the kernel papermill starts (it inherits ours), then restore
    them."""
    if not extra:
        yield
        return
    with _env_lock:
        saved = {k: os.environ.get(k) for k in extra}
        os.environ.update(extra)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _describe_exception(e: BaseException, cell_timeout: float | None) -> str:
    name = type(e).__name__
    if name == "PapermillExecutionError":
        evalue = str(getattr(e, "evalue", "") or "").strip().splitlines()
        return f"{getattr(e, 'ename', name)}: {evalue[0] if evalue else ''}".rstrip(": ")
    if name == "CellTimeoutError" or isinstance(e, TimeoutError):
        return (
            f"timed out: the cell ran longer than {cell_timeout:g} s (CellTimeoutError)"
            if cell_timeout
            else f"timed out ({name})"
        )
    if name == "DeadKernelError":
        return (
            "the kernel died (DeadKernelError: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no detail'})"
        )
    text = str(e).strip().splitlines()
    return f"{name}: {text[0] if text else ''}".rstrip(": ")


def _load_partial(tmp_nb: Path, source: Path) -> Any:
    import nbformat

    for path in (tmp_nb, source):
        try:
            return nbformat.read(os.fspath(path), as_version=4)
        except (OSError, ValueError):
            continue
    raise RunbookError(f"cannot read {source}: the notebook is missing or not valid JSON")


def _failing_cell(nb: Any) -> tuple[int, Any] | None:
    """The cell where execution stopped: an error output or papermill's exception mark, else the
    last one started."""
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for i, c in code:
        if any(o.get("output_type") == "error" for o in c.get("outputs", [])) or (
            c.metadata.get("papermill") or {}
        ).get("exception"):
            return i, c
    started = [(i, c) for i, c in code if (c.metadata.get("papermill") or {}).get("start_time")]
    return started[-1] if started else None


def _mark_failure(nb: Any, error: str) -> str:
    """Put a markdown cell first that names the failing cell and the error; return the one-line
    error."""
    import nbformat

    # papermill's own red banner says only "In [N]"; ours replaces it (its anchor before the failing
    # cell stays)
    nb.cells = [
        c
        for c in nb.cells
        if not (
            _PM_ERROR_TAG in (c.metadata.get("tags") or [])
            and "An Exception was encountered" in c.source
        )
    ]
    hit = _failing_cell(nb)
    where, first_line = "before any cell ran", ""
    if hit is not None:
        index, cell = hit
        count = cell.get("execution_count")
        position = sum(1 for c in nb.cells[: index + 1] if c.cell_type == "code")
        where = f"cell {count if count else position}"
        first_line = next(
            (
                ln.strip()
                for ln in cell.source.splitlines()
                if ln.strip() and not ln.strip().startswith("#")
            ),
            "",
        )
    summary = f"{where}: {error}" if hit is not None else error
    text = (
        f"## ✗ This run FAILED at {where}\n\n"
        + (
            f"The failing cell starts with `{_no_ticks(first_line[:120])}`.\n\n"
            if first_line
            else ""
        )
        # the error is shown as text, never as markup
        + f"**Error:**\n\n~~~text\n{redact_text(error).replace('~~~', '~ ~ ~')}\n~~~\n\n"
        + "Everything above the failing cell ran; the cells after it did not. "
        + (
            "[Jump to the failing cell](#papermill-error-cell)."
            if any(_PM_ERROR_TAG in (c.metadata.get("tags") or []) for c in nb.cells)
            else ""
        )
    )
    banner = nbformat.v4.new_markdown_cell(text)
    banner.metadata["tags"] = [FAILURE_TAG]
    nb.cells.insert(0, banner)
    return summary


def _no_ticks(text: str) -> str:
    return text.replace("`", "'")


def _redact_params(params: dict[str, Any], secrets: set[str]) -> dict[str, Any]:
    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return mask_known(redact_text(v), secrets)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    return {k: walk(v) for k, v in params.items()}


def _versions() -> dict[str, str]:
    import papermill

    from .. import __version__

    return {
        "incidentlib": __version__,
        "papermill": papermill.__version__,
        "python": platform.python_version(),
    }


def unread_sources(sources: Any) -> list[str]:
    """The sources of a run's `sources` scrap that failed, as "name: error" lines."""
    if not isinstance(sources, list):
        return []
    return [
        f"{s.get('source')}: {s.get('error') or 'failed'}"
        for s in sources
        if isinstance(s, dict) and s.get("status") == "failed"
    ]


def _safe_read(nb: Any) -> dict[str, Any]:
    """The scraps of an executed notebook in memory; none when they cannot be decoded."""
    try:
        return read(nb)
    except Exception:  # noqa: BLE001 - a notebook that died early may hold no readable scraps
        return {}


def _safe_scraps(path: Path, names: Iterable[str] | None = None) -> dict[str, Any]:
    try:
        return read_scraps(path, names)
    except Exception:  # a notebook that died early may hold no readable scraps
        return {}


# -- where the run pointed: Kubernetes and PostgreSQL ----------------------------------------------


def _import_before_threads(declared: dict[str, Param]) -> None:
    """Import in this thread what the run and the probe thread need: two threads importing one
    package tree at once (papermill and kubernetes both pull in requests) can fail with "partially
    initialized module"."""
    import papermill  # noqa: F401

    if {"kubeconfig", "context", "namespace"} & declared.keys():
        import kubernetes.client  # noqa: F401
        import kubernetes.config  # noqa: F401
    if "dsn" in declared:
        import psycopg  # noqa: F401


def prepare_thread(notebooks: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Pay now, in this thread, what its first run would pay: papermill, the clients, pandas and
    pyarrow (scraps) imported, the HTML templates compiled, and the code of `notebooks` highlighted
    for their pages (a server's worker, before any alert: the first alert's evidence is the one
    that matters most)."""
    import IPython.lib.lexers  # noqa: F401 - the page's code highlighting imports it lazily,
    import IPython.paths  # noqa: F401 - and a second thread meanwhile breaks it (circular import)
    import nbformat
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    _import_before_threads({n: Param(n, "str", True, "None", "") for n in ("kubeconfig", "dsn")})
    page = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("warm-up")])
    export_html(page)
    for path in notebooks:
        with contextlib.suppress(Exception):  # only a head start: the run pays it instead
            nb = nbformat.read(os.fspath(path), as_version=4)
            info = nb.metadata.setdefault("language_info", {})
            if info.get("name", "python") == "python":  # as ipykernel will say when it runs it
                info.setdefault("pygments_lexer", "ipython3")
            export_html(nb)


def _probe_environment(params: dict[str, Any], declared: dict[str, Param]) -> dict[str, Any]:
    """Kubernetes context and server version, PostgreSQL server version, probed with short
    timeouts."""
    return {"kubernetes": _probe_kube(params, declared), "postgres": _probe_pg(params, declared)}


def _probe_kube(params: dict[str, Any], declared: dict[str, Param]) -> dict[str, Any] | None:
    if not {"kubeconfig", "context", "namespace"} & declared.keys():
        return None
    from ..kube import client as kube

    try:
        cluster = kube.connect(kubeconfig=params.get("kubeconfig"), context=params.get("context"))
    except RunbookError:
        return None  # no cluster configured for this run
    try:
        return {"context": cluster.context, "server_version": cluster.server_version(timeout=3)}
    except RunbookError as e:
        return {
            "context": cluster.context,
            "server_version": None,
            "error": redact_text(str(e))[:300],
        }
    finally:
        cluster.close()


def _probe_pg(params: dict[str, Any], declared: dict[str, Param]) -> dict[str, Any] | None:
    if "dsn" not in declared:
        return None
    dsn = params.get("dsn")
    if not dsn and not any(
        os.environ.get(k) for k in ("PGHOST", "PGSERVICE", "PGDATABASE", "PGPORT")
    ):
        return None
    from ..pg import session as pg

    try:
        conn = pg.connect(
            dsn,
            connect_timeout_s=3,
            statement_timeout_ms=2000,
            application_name="incident-runbook-archive",
        )
    except RunbookError as e:
        return {"server_version": None, "error": redact_text(str(e))[:300]}
    try:
        return {"server_version": pg.server_version(conn)}
    finally:
        conn.close()


def _environment(scraps: dict[str, Any], probed: Future[dict[str, Any]]) -> dict[str, Any]:
    """What the notebook glued as `environment` wins; else what the parent probed."""
    raw = scraps.get("environment")
    glued: dict[str, Any] = raw if isinstance(raw, dict) else {}
    try:
        found = probed.result(timeout=10)
    except Exception as e:  # the probe is best effort
        found = {"kubernetes": None, "postgres": None, "error": f"{type(e).__name__}: {e}"}
    out: dict[str, Any] = {}
    for key in ("kubernetes", "postgres"):
        value = glued.get(key) if key in glued else found.get(key)
        out[key] = redact_value(plain(value)) if value is not None else None
    return out


# -- HTML ------------------------------------------------------------------------------------------


# -- manifest --------------------------------------------------------------------------------------
