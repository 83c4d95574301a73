"""Kernels on IPC transport, and warm kernels that leave the same evidence as cold ones.

- plain papermill with `--engine runbook` (the package's entry point) starts its kernel on unix
  sockets in a directory only this user may enter, and ipykernel's "running over TCP without
  encryption" warning is gone; papermill's default engine, on the same notebook, shows both the TCP
  transport and the warning (the control: this test can fail);
- `runbook run` does the same;
- a warm run (a kernel from `KernelPool`) archives the same notebook, scraps, summary, manifest
  entry and signature as a cold run of the same notebook; the pool replaces each kernel it hands
  out, and none outlives its run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from incidentlib.evidence import kernels, read_scraps, run_notebook, verify
from incidentlib.evidence.signing import generate, load_private, load_public

pytestmark = pytest.mark.notebook

HERE = Path(__file__).parent / "notebooks"
BIN = Path(sys.executable).parent
WARNING = "running over TCP without encryption"


def _outputs_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )


def _papermill(tmp_path: Path, *engine: str) -> tuple[str, str]:
    out = tmp_path / f"out{'-'.join(engine)}.ipynb"
    proc = subprocess.run(
        [str(BIN / "papermill"), str(HERE / "kernel.ipynb"), str(out), *engine],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _outputs_text(out), proc.stderr


def test_papermill_engine_runbook_runs_the_kernel_on_ipc_in_a_private_directory(
    tmp_path: Path,
) -> None:
    text, stderr = _papermill(tmp_path, "--engine", "runbook")
    assert "transport: ipc" in text
    assert "directory mode: 0o700" in text
    assert "connection file mode: 0o600" in text
    assert WARNING not in stderr
    # the control: papermill's own engine, same notebook, same machine
    text, stderr = _papermill(tmp_path)
    assert "transport: tcp" in text and WARNING in stderr


def test_runbook_run_runs_the_kernel_on_ipc(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            str(BIN / "runbook"),
            "run",
            "kernel",
            "--notebooks",
            str(HERE),
            "--outputs",
            str(tmp_path),
            "--incident",
            "INC-ipc",
            "--no-html",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert WARNING not in proc.stderr + proc.stdout
    (archived,) = (tmp_path / "INC-ipc").glob("*-kernel.ipynb")
    assert "transport: ipc" in _outputs_text(archived)


def _shape(path: Path) -> list[tuple[str, object, list[str]]]:
    """Every cell: its type, execution count and output types (the text of tables aside)."""
    nb = nbformat.read(path, as_version=4)
    return [
        (c.cell_type, c.get("execution_count"), [o.output_type for o in c.get("outputs", [])])
        for c in nb.cells
    ]


def test_a_warm_run_leaves_the_same_evidence_as_a_cold_run(tmp_path: Path) -> None:
    key_path, pub_path = generate(tmp_path / "keys")
    key = load_private(str(key_path))
    pool = kernels.KernelPool(1).start()
    try:
        params = {"namespace": "staging", "count": 4}
        cold = run_notebook(
            HERE / "ok.ipynb",
            outputs=tmp_path / "out",
            incident="INC-1",
            parameters=params,
            signing_key=key,
        )
        warm = run_notebook(
            HERE / "ok.ipynb",
            outputs=tmp_path / "out",
            incident="INC-1",
            parameters=params,
            signing_key=key,
            kernels=pool,
        )
        assert (cold.warm, warm.warm) == (False, True)
        assert cold.status == warm.status == "ok"
        # same cells, same execution counts (the warm kernel's imports are not In [1]), same
        # outputs
        assert _shape(cold.notebook) == _shape(warm.notebook)
        a, b = (nbformat.read(p, as_version=4) for p in (cold.notebook, warm.notebook))
        assert [c.source for c in a.cells[1:]] == [c.source for c in b.cells[1:]]
        # the summary cell first, in both: the same but for the times
        assert re.sub(r"\d\d:\d\d:\d\d", "T", a.cells[0].source) == re.sub(
            r"\d\d:\d\d:\d\d", "T", b.cells[0].source
        )
        assert "INC-1" in b.cells[0].source
        assert a.metadata.papermill.parameters == b.metadata.papermill.parameters
        evidence_a, evidence_b = dict(a.metadata.evidence), dict(b.metadata.evidence)
        assert evidence_a.pop("run_id") != evidence_b.pop("run_id")
        assert evidence_a == evidence_b
        scraps_a, scraps_b = read_scraps(cold.notebook), read_scraps(warm.notebook)
        assert sorted(scraps_a) == sorted(scraps_b)
        assert scraps_a["pods"].equals(scraps_b["pods"]) and len(scraps_b["pods"]) == 4
        assert scraps_a["findings"] == scraps_b["findings"]
        # the manifest entry: same keys, same values but for times, ids and hashes
        keep = ("scenario", "status", "error", "parameters", "versions", "kubernetes", "postgres")
        assert sorted(cold.entry) == sorted(warm.entry)
        assert {k: cold.entry[k] for k in keep} | {"parameters": None} == {
            k: warm.entry[k] for k in keep
        } | {"parameters": None}
        assert cold.entry["parameters"]["namespace"] == warm.entry["parameters"]["namespace"]
        assert [f["path"].rsplit(".", 1)[1] for f in warm.entry["files"]] == ["ipynb", "html"]
        report = verify(warm.incident_dir, public_key=load_public(str(pub_path)))
        assert report.ok and len(report.matching) == 4, report.lines()
        for run in (cold, warm):
            assert run.html is not None and "<html" in run.html.read_text()[:2000].lower()
        # the pool handed its kernel out and started another; the used one is gone
        deadline = time.monotonic() + 60
        while pool.ready < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pool.ready == 1 and pool.started == 2
    finally:
        pool.close()
    assert not [p for p in os.listdir(kernels.private_dir()) if p.endswith(".json")], (
        "a kernel's connection file was left behind"
    )


def test_the_pool_hands_out_nothing_that_does_not_fit() -> None:
    pool = kernels.KernelPool(1, env={"PGPASSWORD": "x"})
    assert not pool.fits(kernel_name="python3", env={})
    assert not pool.fits(kernel_name="ir", env={"PGPASSWORD": "x"})
    assert pool.fits(kernel_name="python3", env={"PGPASSWORD": "x"})
    assert pool.take(kernel_name="python3", env={}) is None
    assert not kernels.KernelPool(0).fits(kernel_name="python3", env={})


def test_preload_lines_leave_no_name_behind() -> None:
    namespace: dict[str, object] = {}
    for line in kernels.preload_lines(("json", "no_such_module_x")):
        exec(line, namespace)  # noqa: S102 - our own text, as ipykernel runs it
    assert [k for k in namespace if not k.startswith("__")] == []
    assert "json" in sys.modules


def test_connection_file_says_ipc(tmp_path: Path) -> None:
    km = kernels.new_kernel_manager()
    try:
        kernels.start_ready(km, preload=())
        info = json.loads(Path(km.connection_file).read_text())
        assert info["transport"] == "ipc"
        assert os.path.dirname(info["ip"]) == kernels.private_dir()
        assert os.stat(kernels.private_dir()).st_mode & 0o777 == 0o700
    finally:
        kernels.stop(km)
    assert not Path(km.connection_file).exists()


def test_a_warm_kernel_has_its_chart_helper_ready_and_takes_it_with_it() -> None:
    """The outage notebook's chart helper is started with the warm kernel (its imports done by the
    time the charts are asked for); `ChartWorker.start()` takes that one; it ends with the
    kernel."""
    pool = kernels.KernelPool(1).start()
    km = pool.take(wait=120)
    pool.close()
    assert km is not None
    kc = km.blocking_client()
    kc.start_channels()
    out: list[str] = []
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(
            "from incidentlib.notebook import chartworker as cw\n"
            "ahead, kind = cw._ahead\n"
            "worker = cw.ChartWorker.start()\n"
            "print(kind == 'outage', worker._proc is ahead, cw._ahead is None, ahead.pid)",
            timeout=60,
            output_hook=lambda m: (
                out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None
            ),
        )
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        kernels.stop(km, now=False)
    first, second, third, pid = "".join(out).split()
    assert (first, second, third) == ("True", "True", "True")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the chart helper {pid} outlived its kernel")
