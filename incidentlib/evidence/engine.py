"""papermill's engine `runbook`: its own nbclient engine, with the kernel on IPC transport.

Registered by the package as the entry point `papermill.engine` named `runbook`, so plain papermill
users get the same kernels as `runbook run`:

    papermill --engine runbook notebooks/database.ipynb out.ipynb -p namespace production

Every kernel listens on unix sockets in a directory only this user may enter (`kernels.py` says
why), never on TCP. Given `km` (a kernel already started, from `kernels.KernelPool`), the run uses
it instead of starting one, and shuts it down afterwards (in the background: every output has
arrived by then), as it would a kernel of its own."""

from __future__ import annotations

import threading
from typing import Any

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

from .kernels import new_kernel_manager, stop


class RunbookEngine(NBClientEngine):
    """nbclient through papermill, the kernel on IPC transport (started here, or handed in as
    `km`)."""

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
            return client.execute()
        finally:
            kc = client.kc
            if kc is not None:
                kc.stop_channels()
            threading.Thread(
                target=stop, args=(km,), kwargs={"now": False}, name="kernel-stop", daemon=True
            ).start()
