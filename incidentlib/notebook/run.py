"""The notebook side of the evidence contract: sources, findings, figures, glued scraps.

    run = Run("outage", params={"namespace": namespace})
    with run.source("kubernetes: pods") as src:
        pods = ...
    run.finding("SEV2", "backend crash-loops", "3/3 pods ...", "roll back to revision 2")
    run.glue("pods", pods)
    run.finish(severity)

A source that fails leaves one clear line and a record in `sources`; the notebook goes on."""

from __future__ import annotations

import html
import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import RunbookError
from ..redact import redact_text, redact_value
from ..scraps import PARQUET_COMPRESSION, SCRAP_MIME
from ..severity import LEVELS, Severity, with_declared

if TYPE_CHECKING:
    import pandas as pd


def utcnow_iso() -> str:
    """Now, as an ISO 8601 string in UTC (scrapbook cannot glue datetimes)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _expected_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [RunbookError, OSError, TimeoutError, ValueError]
    for mod, name in (
        ("psycopg", "Error"),
        ("kubernetes.client.exceptions", "ApiException"),
        ("urllib3.exceptions", "HTTPError"),
        ("kubernetes.config.config_exception", "ConfigException"),
    ):
        m = sys.modules.get(mod)
        if m is not None and hasattr(m, name):
            errors.append(getattr(m, name))
    return tuple(errors)


@dataclass
class SourceResult:
    """What happened when a data source was read."""

    source: str
    ok: bool = False
    status: str = "pending"  # ok | failed | skipped
    error: str | None = None
    seconds: float = 0.0


# -------------------------------------------------------------------------------- concurrent gather
class _NotRead:
    """What a gathered task returns when it found nothing to read (see `Run.gather`)."""

    def __repr__(self) -> str:
        return "NOT_READ"


NOT_READ: Any = _NotRead()


@dataclass(frozen=True)
class After:
    """A gathered task that needs another's answer: `fn(value of the task named parent)`."""

    parent: str
    fn: Callable[[Any], Any]


def _parents_first(tasks: dict[str, Callable[[], Any] | After]) -> list[str]:
    """The task names in an order where each `After` comes after the task it waits for; a task
    that waits for one not gathered, or for itself through others, is a programming error."""
    order: list[str] = []
    pending = dict(tasks)
    while pending:
        ready = [n for n, t in pending.items() if not isinstance(t, After) or t.parent in order]
        if not ready:
            name, task = next(iter(pending.items()))
            parent = task.parent if isinstance(task, After) else "?"
            raise ValueError(
                f"task {name!r} waits for {parent!r}, which is not gathered or waits for it"
            )
        for n in ready:
            order.append(n)
            del pending[n]
    return order


@dataclass
class Gathered:
    """Results of concurrent reads: value per name, and the error of those that failed."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def merge(self, other: Gathered) -> None:
        """Add the results of a later round."""
        self.values.update(other.values)
        self.errors.update(other.errors)
        self.seconds.update(other.seconds)


@dataclass
class Run:
    """One execution of a scenario notebook: collects what the evidence contract asks for."""

    scenario: str
    params: dict[str, Any] = field(default_factory=dict)
    started_at: str = field(default_factory=utcnow_iso)
    sources: list[SourceResult] = field(default_factory=list)
    findings: list[dict[str, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)
    quiet: bool = False

    def __post_init__(self) -> None:
        if not self.quiet:  # the notebook's own Run: its kernel may exit without the slow teardown
            from .kernel import install_fast_exit

            install_fast_exit()

    @contextmanager
    def source(self, name: str) -> Iterator[SourceResult]:
        """Read a data source; an expected failure is recorded and printed, never raised."""
        rec = SourceResult(name)
        t0 = time.perf_counter()
        try:
            yield rec
        except _expected_errors() as e:
            rec.ok, rec.status, rec.error = False, "failed", redact_text(_message(e))
            if not self.quiet:
                print(f"✗ {name}: {rec.error}")
        else:
            rec.ok, rec.status = True, "ok"
        finally:
            rec.seconds = round(time.perf_counter() - t0, 3)
            self.sources.append(rec)

    def gather(self, tasks: dict[str, Callable[[], Any] | After], *, workers: int = 8) -> Gathered:
        """Run independent reads concurrently; each is then recorded, in order, as a source of this
        run.

        A task given as `After(parent, fn)` starts as soon as the task named `parent` has read its
        value, with that value (`fn(value)`), while the others go on: a read that needs another's
        answer costs no round of its own. If the parent fails, or a task returns `NOT_READ`, it is
        recorded nowhere (nothing was read; the caller says why if it matters).

        A failing read prints one line and is recorded in `sources`; the others go on."""

        def timed(fn: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
            t0 = time.perf_counter()
            try:
                return fn(), None, time.perf_counter() - t0
            except Exception as e:  # noqa: BLE001 - re-raised in the caller's thread, under self.source
                return None, e, time.perf_counter() - t0

        def after(task: After) -> tuple[Any, BaseException | None, float]:
            value, error, _ = futures[task.parent].result()
            if error is not None or value is NOT_READ:
                return NOT_READ, None, 0.0
            return timed(lambda: task.fn(value))

        order = _parents_first(tasks)
        out = Gathered()
        futures: dict[str, Future[tuple[Any, BaseException | None, float]]] = {}
        # a thread of its own for every task that waits for another: a waiting task never holds
        # up the one it waits for
        waiting = sum(isinstance(t, After) for t in tasks.values())
        size = max(1, min(workers, len(tasks) - waiting) + waiting)
        with ThreadPoolExecutor(max_workers=size) as pool:
            for name in order:
                task = tasks[name]
                if isinstance(task, After):
                    futures[name] = pool.submit(after, task)
                else:
                    futures[name] = pool.submit(timed, task)
        for name in tasks:
            value, error, seconds = futures[name].result()
            if value is NOT_READ:
                continue
            out.seconds[name] = seconds
            if error is not None:
                out.errors[name] = error
            else:
                out.values[name] = value
            with self.source(name):
                if error is not None:
                    raise error
            if self.sources and self.sources[-1].source == name:
                self.sources[-1].seconds = round(seconds, 3)
        return out

    def skip(self, name: str, why: str) -> None:
        """Record a source that was deliberately not read (no DSN given, no cluster) with the
        reason."""
        self.sources.append(SourceResult(name, ok=False, status="skipped", error=why))
        if not self.quiet:
            print(f"– {name}: skipped: {why}")

    def ok(self, name: str) -> bool:
        """Whether the last read of the named source worked."""
        for rec in reversed(self.sources):
            if rec.source == name:
                return rec.ok
        return False

    def finding(
        self,
        severity: str | None,
        title: str,
        detail: str = "",
        next_step: str = "",
        **extra: Any,
    ) -> dict[str, Any]:
        """Record a problem found, with the suggested next step.

        `severity` is SEV1 to SEV4, or None for a finding that makes no severity claim (a problem of
        the runbook itself, such as a refused login)."""
        if severity is not None and severity not in LEVELS:
            raise ValueError(
                f"finding severity {severity!r} is not one of {', '.join(LEVELS)} (or None)"
            )
        rec: dict[str, Any] = {
            "severity": severity,
            "title": redact_text(title),
            "detail": redact_text(detail),
            "next_step": redact_text(next_step),
        }
        rec.update({k: redact_value(v) for k, v in extra.items()})
        self.findings.append(rec)
        return rec

    def record_action(self, action: dict[str, Any]) -> None:
        """Record a mitigation shown or applied (it goes to the `actions` scrap)."""
        self.actions.append(redact_value(dict(action)))

    def glue(self, name: str, value: Any, *, display: bool = False) -> None:
        """Glue a scrap for machine readers, redacted first."""
        glue(name, value, display=display)

    def sources_table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [asdict(s) for s in self.sources],
            columns=["source", "ok", "status", "error", "seconds"],
        )

    def findings_table(self) -> pd.DataFrame:
        import pandas as pd

        cols = ["severity", "title", "detail", "next_step"]
        df = pd.DataFrame(self.findings)
        if df.empty:
            return pd.DataFrame(columns=cols)
        return df.sort_values("severity", kind="stable")[
            [c for c in cols if c in df.columns] + [c for c in df.columns if c not in cols]
        ]

    def checked(self, severity: Severity) -> Severity:
        """The severity to report: "no problem measured" is never an all-clear while a source could
        not be read; what the incident commander declared (the `data_loss`, `security_incident`,
        `payment_failure` parameters) is SEV1 whatever was measured.

        With nothing read at all the verdict becomes "not assessed"; with some sources failed it
        names them."""
        return with_declared(self._measured(severity), self.params)

    def _measured(self, severity: Severity) -> Severity:
        if severity.rule != "no-impact":
            return severity
        failed = [s.source for s in self.sources if s.status == "failed"]
        if not any(s.ok for s in self.sources):
            missing = failed or [s.source for s in self.sources] or ["no source was read"]
            return Severity(
                severity.level,
                "not-assessed",
                f"NOT ASSESSED: nothing could be measured ({', '.join(missing)}); this is not an "
                "all-clear: "
                "fix what the sources table says and run it again",
            )
        if failed:
            return Severity(
                severity.level,
                "partly-assessed",
                f"{severity.reason}; but {', '.join(failed)} could not be read, so this is not an "
                "all-clear",
            )
        return severity

    def finish(self, severity: Severity) -> dict[str, Any]:
        """Glue the scraps every scenario leaves: scenario, severity, findings, sources, actions,
        times."""
        severity = self.checked(severity)
        finished_at = utcnow_iso()
        glue("scenario", self.scenario)
        glue("severity", severity.as_dict())
        glue("findings", [dict(f) for f in self.findings])
        glue("sources", [asdict(s) for s in self.sources])
        glue("actions", list(self.actions))
        glue(
            "figures",
            {
                k: v
                for k, v in self.figures.items()
                if isinstance(v, int | float | str | bool) or v is None
            },
        )
        glue("started_at", self.started_at)
        glue("finished_at", finished_at)
        return {"severity": severity.as_dict(), "finished_at": finished_at}


def _message(e: BaseException) -> str:
    text = str(e).strip()
    if not text:
        return type(e).__name__
    if isinstance(e, RunbookError):
        return text
    first = text.splitlines()[0]
    return f"{type(e).__name__}: {first[:500]}"


def glue(name: str, value: Any, *, display: bool = False) -> None:
    """Glue a scrap, redacted first, in scrapbook's own format (`scrapbook.read_notebook` reads it
    back).

    Written here rather than calling `scrapbook.glue` because importing scrapbook in the kernel
    imports papermill and nbformat (about 0.6 s of every notebook's run) for a display call."""
    import base64
    import io

    import pandas as pd
    from IPython.display import display as ip_display

    value = redact_value(value)
    data: Any
    if isinstance(value, pd.DataFrame):
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(_arrow_table(value), buf, compression=PARQUET_COMPRESSION)  # as to_parquet
        encoder, data = "pandas", base64.b64encode(buf.getvalue()).decode()
    elif isinstance(value, str):
        encoder, data = "text", value
    elif isinstance(value, list | dict | int | float | bool):
        encoder, data = "json", value
    else:
        raise TypeError(
            f"scrap {name!r}: cannot glue a {type(value).__name__}; glue text, numbers, lists, "
            "dicts or DataFrames"
        )
    payload = {"name": name, "data": data, "encoder": encoder, "version": 1}
    ip_display(
        {SCRAP_MIME.format(encoder=encoder): payload},
        metadata={"scrapbook": {"name": name, "data": True, "display": False}},
        raw=True,
    )
    if display:
        from IPython.core.formatters import format_display_data

        shown, meta = format_display_data(value)
        meta["scrapbook"] = {"name": name, "data": False, "display": True}
        ip_display(shown, metadata=meta, raw=True)


def _arrow_table(df: pd.DataFrame) -> Any:
    """The frame as an Arrow table, converted once (a column Arrow cannot hold, mixed types or
    objects, as text): the scrap's parquet is written from it."""
    import pyarrow as pa

    df = df.reset_index(drop=True)
    try:
        return pa.Table.from_pandas(df)
    except (pa.ArrowException, TypeError, ValueError):
        out = df.copy()
        for col in out.columns:
            try:
                pa.array(out[col])
            except (pa.ArrowException, TypeError, ValueError):
                out[col] = out[col].map(lambda v: None if v is None else str(v))
        return pa.Table.from_pandas(out)


def show_table(
    df: Any, *, max_rows: int = 30, empty: str = "nothing to show", caption: str | None = None
) -> None:
    """Display the first rows of a table and a count of the rest; a clear line when it is empty."""
    from IPython.display import display

    if df is None or len(df) == 0:
        print(f"({empty})")
        return
    if caption:
        print(caption)
    display(Table(df.head(max_rows)))
    if len(df) > max_rows:
        print(f"... and {len(df) - max_rows} more rows (the full table is in the scrap)")


def show_text(text: str, *, strong: bool = False) -> None:
    """Display a sentence that carries data (an image name, a pod name, a log line): escaped, so it
    shows as the characters it holds and is never read as markup. Never put such data in Markdown:
    `<img onerror=...>` or `[x](javascript:...)` in a Deployment's image would become live HTML."""
    from IPython.display import display

    body = html.escape(text)
    display(
        {
            "text/html": f"<p>{f'<strong>{body}</strong>' if strong else body}</p>",
            "text/plain": text,
        },
        raw=True,
    )


def show_list(items: list[str], *, label: str = "") -> None:
    """Display a numbered list of sentences that carry data, each escaped (see `show_text`); `label`
    (our own words, e.g. "Hypothesis:") is set in italics before each."""
    from IPython.display import display

    if not items:
        return
    lead = f"<em>{html.escape(label)}</em> " if label else ""
    rows = "".join(f"<li>{lead}{html.escape(item)}</li>" for item in items)
    plain = "\n".join(
        f"{i}. {label + ' ' if label else ''}{item}" for i, item in enumerate(items, 1)
    )
    display({"text/html": f"<ol>{rows}</ol>", "text/plain": plain}, raw=True)


_RED, _ORANGE, _AMBER, _GREEN, _GREY = "#f8d7da", "#ffe0c2", "#fff3cd", "#d4edda", "#e2e3e5"
_SEVERITY_COLORS = {"SEV1": _RED, "SEV2": _ORANGE, "SEV3": _AMBER, "SEV4": _GREEN}
_STATUS_COLORS = {
    "ok": _GREEN,
    "Running": _GREEN,
    "Completed": _GREEN,
    "Succeeded": _GREEN,
    "rolled out": _GREEN,
    "applied": _GREEN,
    "skipped": _GREY,
    "shown": _GREY,
    "Pending": _AMBER,
    "ContainerCreating": _AMBER,
    "PodInitializing": _AMBER,
    "Terminating": _AMBER,
    "SchedulingGated": _AMBER,
    "timeout": _ORANGE,
    "firing": _RED,
    "pending": _AMBER,
    "silenced": _GREY,
    "inhibited": _GREY,
}
_COLORED = ("status", "severity", "level", "state")
_CODE_COLUMNS = ("next_step",)


def _memory_column(name: Any) -> bool:
    """Whether a column holds memory in bytes, as every frame of the library names them (`memory`,
    `memory_limit`, `memory_requested`, `memory_bytes`...; not `memory_pct` nor
    `memory_requested_pct`): shown as `kubectl top` shows memory (`32Mi`, `127.8Gi`), never as
    `3.35544e+07`."""
    return (
        isinstance(name, str)
        and (name == "memory" or name.startswith("memory_"))
        and ("pct" not in name)
    )


"""Columns in our own words that quote commands between backticks (`kubectl rollout undo ...`): the
HTML sets each quoted command in a code font, as the runbook's Markdown does, instead of showing
the backticks. Only these: a backtick in data (an event message, a log line) stays as it is."""
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_LEFT = ' style="text-align: left"'
"""Columns whose cells a person scans for, colored: a pod's kubectl STATUS by kind of failure (red:
it fails; amber: on its way; green: fine), a severity, a source's or a mitigation's status, an
alert's state (firing red, pending amber, silenced grey)."""


def cell_color(value: Any) -> str:
    """The background of a status or severity cell: red for a failure, amber for on-its-way, green
    for fine, grey for skipped or only shown; '' for anything else."""
    if not isinstance(value, str) or not value:
        return ""
    if value in _SEVERITY_COLORS:
        return _SEVERITY_COLORS[value]
    if value in _STATUS_COLORS:
        return _STATUS_COLORS[value]
    if (
        value in ("failed", "Error", "Unknown", "NodeLost", "Evicted")
        or value.startswith(("Init:", "ExitCode", "Signal"))
        or value.endswith(("BackOff", "Error", "ErrImagePull", "OOMKilled", "InvalidImageName"))
    ):
        return _RED
    return ""


class Table:
    """A DataFrame as the notebook shows it: missing values are blank cells, not NaN, NaT or <NA>;
    no 0..n index; status and severity cells colored (`cell_color`); every value escaped.

    Only the display changes; the scraps keep the typed values."""

    def __init__(self, df: Any) -> None:
        import pandas as pd

        shown = df.copy()
        for col in shown.columns:
            s = shown[col]
            # nullable integers and booleans print pd.NA whatever na_rep says: show those as plain
            # objects
            if (
                isinstance(s.dtype, pd.api.extensions.ExtensionDtype)
                and s.dtype.kind in "iub"
                and s.isna().any()
            ):
                shown[col] = s.astype(object).where(s.notna(), float("nan"))
        self.df = shown.reset_index(drop=True)
        self._rows: list[list[Any]] | None = None
        self._cells: list[list[str]] | None = None

    def _values(self) -> list[list[Any]]:
        """The rows' values as Python objects, once (what `itertuples` gives, at half its cost)."""
        if self._rows is None:
            self._rows = self.df.to_numpy(dtype=object).tolist()
        return self._rows

    def _texts(self) -> list[list[str]]:
        """Every cell as text (`_cell_text`; memory in bytes as kubectl shows it), built once for
        both the HTML and the plain text."""
        if self._cells is None:
            from ..quantity import format_bytes

            memory = [_memory_column(c) for c in self.df.columns]
            self._cells = [
                [
                    format_bytes(v)
                    if mem and isinstance(v, int | float) and not isinstance(v, bool)
                    else _cell_text(v)
                    for v, mem in zip(values, memory, strict=True)
                ]
                for values in self._values()
            ]
        return self._cells

    def _text_columns(self) -> set[int]:
        """The columns shown left-aligned: all but numbers (a sentence or a pod name read from the
        right is hard to scan)."""
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        return {
            i
            for i, dtype in enumerate(self.df.dtypes)
            if not is_numeric_dtype(dtype) or is_bool_dtype(dtype)
        }

    def _repr_html_(self) -> str:
        """The table as HTML, built directly (pandas' Styler costs a jinja2 import and about 5 ms a
        table): Jupyter's `dataframe` class, every value escaped, colored cells with an inline
        style (the evidence page's CSP allows inline styles, never script)."""
        colored = {i for i, c in enumerate(self.df.columns) if c in _COLORED}
        code = {i for i, c in enumerate(self.df.columns) if c in _CODE_COLUMNS}
        text = self._text_columns()  # numbers right-aligned, Jupyter's default for every cell
        head = "".join(
            f"<th{_LEFT if i in text else ''}>{html.escape(str(c))}</th>"
            for i, c in enumerate(self.df.columns)
        )
        rows = []
        for values, texts in zip(self._values(), self._texts(), strict=True):
            cells = []
            for i, (value, cell) in enumerate(zip(values, texts, strict=True)):
                color = cell_color(value) if i in colored else ""
                styles = [f"background-color: {color}"] if color else []
                styles += ["text-align: left"] if i in text else []
                style = f' style="{"; ".join(styles)}"' if styles else ""
                # escaped first: <code> is the only tag a code column adds
                shown = html.escape(cell)
                if i in code:
                    shown = _CODE_SPAN.sub(r"<code>\1</code>", shown)
                cells.append(f"<td{style}>{shown}</td>")
            rows.append(f"<tr>{''.join(cells)}</tr>")
        return (
            '<table border="1" class="dataframe">'
            f'<thead><tr style="text-align: right;">{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    def __repr__(self) -> str:
        """The table as plain text (a terminal, a text-only reader of the notebook): the HTML's
        cells, padded into columns, text left-aligned and numbers right-aligned, a line break inside
        a value shown as `\\n` so every row stays one line. Built directly: `DataFrame.to_string`
        costs about 6 ms a table, some 60 ms of an outage run at 5,000 pods."""
        text = self._text_columns()
        rows = [[str(c) for c in self.df.columns]] + [
            [cell.replace("\r", "\\r").replace("\n", "\\n") for cell in texts]
            for texts in self._texts()
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(
                cell.ljust(w) if i in text else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
            for row in rows
        )


def _cell_text(value: Any) -> str:
    """A cell as pandas prints it: blank when missing, floats to 6 significant digits."""
    import pandas as pd

    if value is None or (not isinstance(value, str | list | dict | tuple) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
