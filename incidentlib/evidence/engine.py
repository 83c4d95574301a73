"""papermill's engine `runbook`: its own nbclient engine, with the kernel on IPC transport.

Registered by the package as the entry point `papermill.engine` named `runbook`, so plain papermill
users get the same kernels as `runbook run`:

    papermill --engine runbook notebooks/database.ipynb out.ipynb -p namespace production

Every kernel listens on unix sockets in a directory only this user may enter (`kernels.py` says
why), never on TCP. Given `km` (a kernel already started, from `kernels.KernelPool`), the run uses
it instead of starting one, and shuts it down afterwards (in the background: every output has
arrived by then), as it would a kernel of its own.

The running notebook is saved as papermill saves it (at the start and the end, when a code cell
starts and when it completes, so a run cut short leaves what it did and the cell it was in), but
not for markdown cells (nothing of theirs changes), written without nbformat's copy, validation and
indentation, atomically, and with the text of every finished cell kept from the save before:
papermill's two writes of the whole notebook per cell were a third of a warm triage run. The save
at the end writes every cell afresh; the notebook papermill writes then is its own, unchanged.

papermill loads its engines' entry points while it is itself being imported, so this module
imports nothing of papermill when it is imported: `RunbookEngine` is built at its first use (an
import of this module first, then of papermill, would otherwise be circular)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Any

from .kernels import new_kernel_manager, stop


def __getattr__(name: str) -> Any:
    if name == "RunbookEngine":
        return engine()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_built: Any = None


def connected(km: Any, *, timeout: float = 60) -> Any:
    """A client of a running kernel, its channels up and the kernel answering: what nbclient's
    setup does, without jupyter_client's wait for 0.2 s of silence on the output channel (a fifth
    of a warm run). Ready is a `kernel_info` reply, then the output channel's `idle` for that
    request: it proves the output channel connected and leaves nothing of it behind."""
    from queue import Empty

    from jupyter_core.utils import run_sync

    kc = km.client()
    kc.start_channels()

    async def ready() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id = kc.kernel_info()
            try:
                while (await kc.shell_channel.get_msg(timeout=1))["parent_header"].get(
                    "msg_id"
                ) != msg_id:
                    pass
                while True:  # short waits: a subscription not yet connected missed it, ask again
                    msg = await kc.iopub_channel.get_msg(timeout=0.1)
                    if (
                        msg["parent_header"].get("msg_id") == msg_id
                        and msg["msg_type"] == "status"
                        and msg["content"].get("execution_state") == "idle"
                    ):
                        return
            except Empty:
                continue
        raise RuntimeError(f"the kernel did not answer within {timeout:g} s")

    try:
        run_sync(ready)()
    except BaseException:
        kc.stop_channels()
        raise
    kc.allow_stdin = False
    return kc


def engine() -> Any:
    """The `runbook` engine class (papermill's `papermill.engine` entry point), built once."""
    global _built
    if _built is None:
        import papermill.engines  # noqa: F401 - loading its entry points may build it (below)
    if _built is None:
        _built = _build()
    return _built


def _build() -> Any:
    from nbformat.v4.nbjson import BytesEncoder
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, NotebookExecutionManager
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class _Manager(NotebookExecutionManager):  # type: ignore[misc]
        """papermill's execution manager, saving the running notebook faster (see the module)."""

        output_path: Any
        _finished: dict[int, tuple[int, str]]  # cell index -> (id of the cell, its JSON)

        def _text(self, *, fresh: bool = False) -> str:
            """The notebook as JSON; the cells that finished before the last save are not encoded
            again (a finished cell changes no more, but for a display update: `fresh` encodes
            all)."""
            done = self.__dict__.setdefault("_finished", {})
            if fresh:
                done.clear()
            cells = []
            for i, cell in enumerate(self.nb.cells):
                kept = done.get(i)
                if kept is not None and kept[0] == id(cell):
                    cells.append(kept[1])
                    continue
                text = json.dumps(cell, cls=BytesEncoder, ensure_ascii=False)
                status = (cell.get("metadata", {}).get("papermill") or {}).get("status")
                if status in (self.COMPLETED, self.FAILED):
                    done[i] = (id(cell), text)
                cells.append(text)
            head = json.dumps(
                {k: v for k, v in self.nb.items() if k != "cells"},
                cls=BytesEncoder,
                ensure_ascii=False,
            )
            return (
                head[:-1] + (", " if head != "{}" else "") + '"cells": [' + ", ".join(cells) + "]}"
            )

        def notebook_complete(self, **kwargs: Any) -> None:
            self._fresh = True
            try:
                super().notebook_complete(**kwargs)
            finally:
                self._fresh = False

        def save(self, **kwargs: Any) -> None:
            nb = kwargs.get("nb")
            if nb is not None:
                self.nb = nb
            if self.output_path and "://" not in str(self.output_path):
                path = os.fspath(self.output_path)
                tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
                try:
                    text = self._text(fresh=getattr(self, "_fresh", False))
                    with open(tmp, "w", encoding="utf-8") as f:
                        f.write(text)
                    os.replace(tmp, path)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
            elif self.output_path:  # a remote path: papermill's own writer
                super().save(**kwargs)
            self.last_save_time = self.now()

        def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            if cell.get("cell_type") == "code":
                super().cell_start(cell, cell_index, **kwargs)
            else:
                cell.metadata.papermill["start_time"] = self.now().isoformat()
                cell.metadata.papermill["status"] = self.RUNNING
                cell.metadata.papermill["exception"] = False

        def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            if cell.get("cell_type") == "code":
                super().cell_complete(cell, cell_index, **kwargs)
                return
            saved = self.output_path
            self.output_path = None  # the same bookkeeping, without the write
            try:
                super().cell_complete(cell, cell_index, **kwargs)
            finally:
                self.output_path = saved

    class RunbookEngine(NBClientEngine):
        """nbclient through papermill, the kernel on IPC transport (started here, or handed in as
        `km`)."""

        @classmethod
        def execute_notebook(
            cls,
            nb: Any,
            kernel_name: str,
            output_path: str | None = None,
            progress_bar: bool = True,
            log_output: bool = False,
            autosave_cell_every: int = 30,
            **kwargs: Any,
        ) -> Any:
            """papermill's `Engine.execute_notebook`, with this module's execution manager."""
            nb_man = _Manager(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: float | None = None,
            **kwargs: Any,
        ) -> Any:
            km = kwargs.pop("km", None)
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            given = km is not None
            if km is None:
                km = new_kernel_manager(kernel_name=kernel_name, asynchronous=True)
            options = merge_kwargs(
                kwargs,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = PapermillNotebookClient(nb_man, km=km, **options)
            if not given:
                client.owns_km = True  # nbclient starts it, shuts it down and removes its files
                return client.execute()
            try:
                client.kc = connected(km, timeout=start_timeout)
                return client.execute()
            finally:
                kc = client.kc
                if kc is not None:
                    kc.stop_channels()
                threading.Thread(
                    target=stop, args=(km,), kwargs={"now": False}, name="kernel-stop", daemon=True
                ).start()

    return RunbookEngine
