"""The kernel's fast exit: installed only inside a Jupyter kernel by the notebook's Run; the kernel
still closes its IPython history session and exits with status 0."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from incidentlib.notebook import kernel


def test_not_installed_outside_a_kernel() -> None:
    assert kernel.in_kernel() is False
    assert kernel.install_fast_exit() is False


def _run_kernel(
    tmp_path: Path, code: str, *, env_extra: dict[str, str] | None = None
) -> tuple[str, int | None]:
    import os

    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython"), **(env_extra or {})}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    out: list[str] = []
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda m: (
                out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None
            ),
        )
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        proc = km.provisioner.process if km.provisioner else None
        km.shutdown_kernel(now=False)
    return "".join(out), (proc.returncode if proc is not None else None)


CODE = (
    "from incidentlib.notebook.run import Run\nfrom incidentlib.notebook import kernel\n"
    "run = Run('outage')\nprint('installed', kernel._installed, 'in kernel', kernel.in_kernel())\n"
    "class Marker:\n"
    "    def __del__(self):\n"
    "        open({path!r}, 'w').write('torn down')\n"
    "marker = Marker()\n"
)


@pytest.mark.notebook
def test_installed_by_the_notebooks_run_and_the_history_session_is_closed(tmp_path: Path) -> None:
    torn = tmp_path / "torn"
    text, code = _run_kernel(tmp_path, CODE.format(path=str(torn)))
    assert "installed True in kernel True" in text
    assert code == 0
    assert (
        not torn.exists()
    )  # the interpreter was not torn down: the user namespace was never cleared
    db = tmp_path / "ipython" / "profile_default" / "history.sqlite"
    with sqlite3.connect(db) as con:
        sessions = con.execute("SELECT session, end FROM sessions").fetchall()
        inputs = [r[0] for r in con.execute("SELECT source_raw FROM history")]
    assert len(sessions) == 1 and sessions[0][1] is not None, sessions  # end time written at exit
    assert any("Run('outage')" in s for s in inputs)


@pytest.mark.notebook
def test_opt_out_keeps_the_normal_teardown(tmp_path: Path) -> None:
    torn = tmp_path / "torn"
    text, code = _run_kernel(
        tmp_path, CODE.format(path=str(torn)), env_extra={"INCIDENTLIB_FAST_EXIT": "0"}
    )
    assert "installed False in kernel True" in text
    assert code == 0
    assert torn.read_text() == "torn down"  # IPython's own exit cleared the namespace


@pytest.mark.parametrize("value", ["0", "false", "off", "no"])
def test_opt_out_values(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("INCIDENTLIB_FAST_EXIT", value)
    monkeypatch.setattr(kernel, "in_kernel", lambda: True)
    monkeypatch.setattr(kernel, "_installed", False)
    assert kernel.install_fast_exit() is False
