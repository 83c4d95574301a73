"""The chart helper process: it draws exactly what the kernel would, and any failure of it only
means the kernel draws the charts itself."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from incidentlib.kube import frames as cl
from incidentlib.notebook import charts
from incidentlib.notebook.chartworker import ChartJob, ChartWorker

from .api_payloads import DEPLOYMENT, EVENTS, NOW, PODS, REPLICASETS

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def specs() -> list[tuple[str, dict]]:
    """The outage charts as the reading sends them: plain values taken out of the frames."""
    pods = cl.pods_frame(PODS, now=NOW, replicasets=REPLICASETS)
    rollouts = cl.rollouts_frame(DEPLOYMENT, REPLICASETS)
    events = cl.events_frame(EVENTS, since=timedelta(hours=1), now=NOW)
    frame = charts.timeline_frame(
        rollouts=rollouts,
        pods=pods,
        events=events,
        deployment="backend",
        since=timedelta(hours=1),
        now=NOW,
    )
    return [
        ("pods_by_status", charts.pods_by_status_data(pods)),
        ("timeline", charts.timeline_data(frame)),
    ]


def _wait_gone(proc: subprocess.Popen) -> int:
    return proc.wait(timeout=20)


def test_the_helper_draws_the_same_pngs_as_the_kernel(specs) -> None:
    worker = ChartWorker.start()
    assert worker.running
    job = worker.submit(specs)
    worker.close()
    pngs = job.pngs(timeout=60)
    assert job.drawn_here == 0
    assert pngs == [charts.recipe_png(name, **kwargs) for name, kwargs in specs]
    # and those are real charts of the one size, 8x3 inches at 80 dpi, not two empty results
    assert [(p[:8], struct.unpack(">II", p[16:24])) for p in pngs] == [
        (b"\x89PNG\r\n\x1a\n", (640, 240)),
        (b"\x89PNG\r\n\x1a\n", (640, 240)),
    ]
    assert min(len(p) for p in pngs) > 5_000  # bars, lanes and labels, not a blank canvas
    assert _wait_gone(worker._proc) == 0  # closing its stdin ends it


def test_the_helper_draws_without_pandas(specs) -> None:
    """What the helper is sent is plain values, so it never loads pandas (half a second of a core
    on a machine of two): its memory maps hold matplotlib's compiled modules, none of pandas'."""
    worker = ChartWorker.start()
    try:
        job = worker.submit(specs)
        assert job.pngs(timeout=60) and job.drawn_here == 0
        maps = Path(f"/proc/{worker._proc.pid}/maps").read_text()
    finally:
        worker.close()
    assert "/matplotlib/" in maps and "/numpy/" in maps  # the check sees extension modules
    assert "/pandas/" not in maps and "/pyarrow/" not in maps
    assert _wait_gone(worker._proc) == 0
    # the same charts drawn from the frames in the kernel are the same pictures
    pods = cl.pods_frame(PODS, now=NOW, replicasets=REPLICASETS)
    assert charts.png(charts.pods_by_status(pods)) == charts.recipe_png(
        *specs[0][:1], **specs[0][1]
    )


def test_disabled_draws_in_the_kernel(specs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENTLIB_CHART_WORKER", "0")
    worker = ChartWorker.start()
    assert not worker.running
    job = worker.submit(specs)
    assert job.pngs() == [charts.recipe_png(n, **k) for n, k in specs]
    assert job.drawn_here == 2


def test_a_killed_helper_means_the_kernel_draws(specs) -> None:
    import time

    worker = ChartWorker.start()
    os.killpg(
        worker._proc.pid, signal.SIGKILL
    )  # its own session: the kernel's group is never signalled
    _wait_gone(worker._proc)
    deadline = time.monotonic() + 10
    while worker.running and time.monotonic() < deadline:  # its reply reader sees the pipe close
        time.sleep(0.01)
    assert not worker.running
    job = worker.submit(specs)
    assert (
        job._futures is None
    )  # nothing is sent to a dead helper, so nothing waits out the timeout
    pngs = job.pngs(timeout=10)
    assert job.drawn_here == 2 and len(pngs) == 2


def test_a_late_helper_means_the_kernel_draws_what_is_missing(specs) -> None:
    worker = ChartWorker.start()  # still starting: nothing can be ready after 0 s
    job = worker.submit(specs)
    worker.close()
    assert job.pngs(timeout=0) == [charts.recipe_png(n, **k) for n, k in specs]
    assert job.drawn_here == 2
    assert _wait_gone(worker._proc) == 0


def test_the_helper_lives_in_its_own_session() -> None:
    worker = ChartWorker.start()
    try:
        assert os.getsid(worker._proc.pid) == worker._proc.pid != os.getsid(0)
    finally:
        worker.close()
        assert _wait_gone(worker._proc) == 0


def test_data_the_helper_cannot_be_sent_is_drawn_in_the_kernel(specs) -> None:
    worker = ChartWorker.start()
    name, kwargs = specs[0]
    job = worker.submit([(name, {**kwargs, "title": lambda: "a title that cannot be pickled"})])
    pngs = job.pngs(timeout=30)
    assert job.drawn_here == 1 and pngs[0].startswith(b"\x89PNG")
    assert _wait_gone(worker._proc) == 0  # its stdin closed when sending failed: it exited


def test_an_unknown_chart_fails_loudly_in_the_kernel_too() -> None:
    worker = ChartWorker.start()
    job = worker.submit([("no-such-chart", {})])
    worker.close()
    with pytest.raises(KeyError, match="no-such-chart"):
        job.pngs(timeout=60)


def test_no_helper_job_draws_in_the_kernel(specs) -> None:
    job = ChartJob(specs[:1], None)
    assert job.pngs() == [charts.recipe_png(*specs[0][:1], **specs[0][1])]
    assert job.drawn_here == 1


def test_starting_again_ends_the_helper_started_before(specs) -> None:
    # the notebook's setup cell run a second time (an engineer re-running after a fix): one helper
    first = ChartWorker.start()
    second = ChartWorker.start()
    assert _wait_gone(first._proc) == 0  # told to finish: its stdin closed, it exited
    late = first.submit(specs)  # a chart asked of the closed one is drawn in the kernel
    assert late._futures is None and late.pngs()[0].startswith(b"\x89PNG")
    assert second.running
    job = second.submit(specs)
    second.close()
    assert job.pngs(timeout=60) == [charts.recipe_png(n, **k) for n, k in specs]
    assert job.drawn_here == 0
    assert _wait_gone(second._proc) == 0


def test_the_helper_finds_the_library_by_the_directory_that_holds_it(monkeypatch) -> None:
    """Its PYTHONPATH starts with the directory holding the `incidentlib` package (so a source
    checkout works uninstalled), never the package's own directory, whose rooms would shadow
    top-level modules of the same names (`notebook`, `service`)."""
    from pathlib import Path

    import incidentlib
    from incidentlib.notebook.chartworker import _helper_env

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    first, rest = _helper_env()["PYTHONPATH"].split(os.pathsep, 1)
    assert Path(first) == Path(incidentlib.__file__).resolve().parents[1]
    assert (Path(first) / "incidentlib" / "__init__.py").is_file() and rest == "/elsewhere"


def test_the_warm_up_stops_drawing_once_real_charts_wait(monkeypatch) -> None:
    """The helper's throw-away charts are skipped when the kernel's request is already on its
    input: the imports are done, the real charts are drawn next."""
    from incidentlib.notebook import chartworker, figures

    drawn: list[str] = []
    real_png = figures.png

    def counting_png(fig):
        drawn.append(fig.axes[0].get_title())
        return real_png(fig)

    monkeypatch.setattr(figures, "png", counting_png)
    figures.warm_up("outage", stop=lambda: True)
    assert drawn == []
    asked: list[int] = []
    figures.warm_up("outage", stop=lambda: bool(asked.append(1)) or len(asked) > 1)
    assert drawn == ["warm-up"]  # the first throw-away chart, then a request came
    figures.warm_up("outage")
    assert drawn == ["warm-up", "warm-up", "warm-up (UTC)"]

    r, w = os.pipe()
    with os.fdopen(r, "rb") as inp, os.fdopen(w, "wb") as out:
        assert not chartworker._waiting(inp)
        out.write(b"x")
        out.flush()
        assert chartworker._waiting(inp)
    import io

    assert not chartworker._waiting(io.BytesIO(b"x"))  # not a pipe: warm up in full


def test_only_a_helper_started_ahead_draws_throw_away_charts(monkeypatch) -> None:
    """A notebook's own helper loads matplotlib and the font, then waits for the real charts (on
    two cores, a throw-away chart takes a tenth of a core from the run); a helper started ahead of
    its run (`start_ahead`, serve's warm kernels) has time to spare and draws them too. The mode
    reaches the helper on its command line."""
    import io

    from incidentlib.notebook import chartworker, figures

    drawn: list[str] = []
    monkeypatch.setattr(figures, "png", lambda fig: drawn.append(fig.axes[0].get_title()) or b"")
    chartworker._serve(io.BytesIO(b""), io.BytesIO(), "outage", "")  # no request: warm-up only
    assert drawn == []
    chartworker._serve(io.BytesIO(b""), io.BytesIO(), "outage", chartworker.AHEAD)
    assert drawn == ["warm-up", "warm-up (UTC)"]

    for ahead, argv in ((False, ["outage"]), (True, ["outage", "ahead"])):
        proc = chartworker._spawn("outage", ahead=ahead)
        try:
            cmdline, deadline = b"", time.monotonic() + 30
            while not cmdline and time.monotonic() < deadline:  # empty while exec is under way
                with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                    cmdline = f.read()
                time.sleep(0.01)
            assert cmdline.split(b"\0")[3:-1] == [a.encode() for a in argv]
        finally:
            chartworker._retire(proc)
            assert proc.wait(timeout=30) == 0  # stdin closed: it exits
