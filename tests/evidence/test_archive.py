"""`runbook run` on the fixture notebooks (one per behaviour): what the archive holds, failures
included."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from incidentlib import cli
from incidentlib.evidence.manifest import PARTIAL, load_manifest, read_scraps, verify
from incidentlib.evidence.run import FAILURE_TAG
from incidentlib.evidence.storage import open_archive
from incidentlib.evidence.summary import SUMMARY_TAG

from .conftest import FIXTURES
from .helpers import (
    archived_files,
    fetching_references,
    find_canaries,
    loaded_images,
    outside_references,
    red_pixels,
    screenshot,
)

pytestmark = [pytest.mark.notebook]

INCIDENT = "INC-20261127-0935-test"
DSN_PW = "canary-dsnpw-4242"
DSN = f"host=127.0.0.1 port=9 dbname=app user=x password={DSN_PW}"


@dataclass
class Invocation:
    code: int
    out: str
    err: str


def runbook(*argv: str) -> Invocation:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return Invocation(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One incident with a run of every fixture notebook (about 15 s)."""
    outputs = tmp_path_factory.mktemp("outputs")
    common = ["--notebooks", str(FIXTURES), "--outputs", str(outputs), "--incident", INCIDENT]
    runs = {
        "ok": runbook("run", "ok", *common, "-p", "dsn", DSN, "-p", "count", "4"),
        "raises": runbook("run", "raises", *common),
        "dies": runbook("run", "dies", *common),
        "sleeps": runbook(
            "run", "sleeps", *common, "--cell-timeout", "6"
        ),  # roomy: a loaded machine imports slowly
        "leaks": runbook("run", "leaks", *common, "-p", "dsn", DSN),
        "unreachable": runbook("run", "unreachable", *common),
    }
    manifest = load_manifest(outputs / INCIDENT)
    by_scenario = {r["scenario"]: r for r in manifest["runs"]}
    return {
        "outputs": outputs,
        "dir": outputs / INCIDENT,
        "runs": runs,
        "manifest": manifest,
        "entry": by_scenario,
    }


def _nb(archive: dict, scenario: str) -> nbformat.NotebookNode:
    return nbformat.read(
        archive["dir"] / archive["entry"][scenario]["files"][0]["path"], as_version=4
    )


def test_a_good_run_is_archived_with_its_html_and_manifest_entry(archive):
    inv, entry = archive["runs"]["ok"], archive["entry"]["ok"]
    assert inv.code == 0, inv.err
    assert f"incident: {INCIDENT}" in inv.out
    assert entry["status"] == "ok" and entry["error"] is None
    assert set(entry) == {
        "run_id",
        "scenario",
        "status",
        "error",
        "started_at",
        "finished_at",
        "parameters",
        "files",
        "versions",
        "kubernetes",
        "postgres",
        "prev",
        "entry_sha256",
    }
    names = [f["path"] for f in entry["files"]]
    assert names == [f"{entry['run_id']}.ipynb", f"{entry['run_id']}.html"]
    assert (
        f"notebook: {archive['dir'] / names[0]}" in inv.out
        and f"html:     {archive['dir'] / names[1]}" in inv.out
    )
    assert entry["run_id"].endswith("Z-ok") and len(entry["run_id"]) == len("20261127T093501Z-ok")
    assert set(entry["versions"]) == {"incidentlib", "papermill", "python"}
    assert entry["parameters"] == {
        "dsn": "host=127.0.0.1 port=9 dbname=app user=x password=***",
        "count": 4,
        "incident_id": INCIDENT,
    }
    # the database was unreachable: the manifest says so instead of a version
    assert (
        entry["postgres"]["server_version"] is None
        and "Connection refused" in entry["postgres"]["error"]
    )
    scraps = read_scraps(archive["dir"] / names[0])
    assert scraps["scenario"] == "ok" and scraps["severity"]["level"] == "SEV4"
    assert scraps["pods"]["name"].tolist() == ["pod-0", "pod-1", "pod-2", "pod-3"]


def test_read_scraps_reads_what_scrapbook_reads(archive):
    """Our reader (no Arrow threads) and scrapbook's agree on every scrap; `names` decodes only
    those."""
    import pandas as pd
    import scrapbook as sb

    path = archive["dir"] / archive["entry"]["ok"]["files"][0]["path"]
    ours = read_scraps(path)
    theirs = {name: scrap.data for name, scrap in sb.read_notebook(str(path)).scraps.items()}
    assert set(ours) == set(theirs) and {"pods", "severity", "sources", "finished_at"} <= set(ours)
    for name, value in theirs.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(ours[name], value)
        else:
            assert ours[name] == value, name
    assert read_scraps(path, names=["severity", "no-such-scrap"]) == {
        "severity": theirs["severity"]
    }


def test_the_dsn_password_reaches_the_kernel_through_pgpassword_only(archive):
    nb = _nb(archive, "ok")
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "password" not in injected.source and "dbname=app" in injected.source
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "PGPASSWORD in the kernel: set" in printed
    assert (
        "dsn seen by the kernel: " in printed
        and "password" not in printed.split("dsn seen by the kernel: ")[1].splitlines()[0]
    )
    assert "PGPASSWORD" not in os.environ  # restored in the parent


@pytest.mark.parametrize(
    ("scenario", "cell", "error"),
    [
        ("raises", "cell 5", "RuntimeError: boom in namespace production"),
        ("dies", "cell 4", "the kernel died (DeadKernelError"),
        ("sleeps", "cell 4", "timed out: the cell ran longer than 6 s"),
    ],
)
def test_a_failed_run_is_archived_with_the_failure_on_top_and_a_nonzero_exit(
    archive, scenario, cell, error
):
    inv, entry = archive["runs"][scenario], archive["entry"][scenario]
    assert inv.code == 1
    assert f"runbook run: {scenario} failed at {cell}: {error}" in inv.err
    assert entry["status"] == "failed" and entry["error"].startswith(f"{cell}: {error}")
    nb = _nb(archive, scenario)
    summary, banner = nb.cells[0], nb.cells[1]  # the summary first, then what failed
    assert SUMMARY_TAG in summary.metadata["tags"] and "FAILED</strong>: " + cell in summary.source
    assert banner.cell_type == "markdown" and FAILURE_TAG in banner.metadata["tags"]
    assert f"This run FAILED at {cell}" in banner.source and error.split(" (")[0] in banner.source
    html = (archive["dir"] / entry["files"][1]["path"]).read_text()
    assert f"This run FAILED at {cell}" in html
    if scenario == "raises":  # the error is shown as text, never interpreted as markup
        assert "<b>not markup</b>" in entry["error"] and "&lt;b&gt;not markup&lt;/b&gt;" in html
        assert "<b>not markup</b>" not in html
    assert not list((archive["outputs"] / PARTIAL).rglob("*.ipynb")), "temp files left behind"


def test_secrets_printed_glued_or_raised_by_a_notebook_never_reach_the_archive(archive):
    canaries = [
        DSN_PW,
        "canary-bearer-7d1f9a2c",
        "canary-logpw-55c1",
        "canary-token-9e8f7a6b",
        "canary-secret-1a2b3c",
        "canary-htmlpw-77ab",
        "canary-errpw-31d4",
    ]
    files = archived_files(archive["dir"])
    assert len(files) == 13  # 6 runs x (ipynb + html) + manifest
    assert find_canaries(files, canaries) == []
    nb = _nb(archive, "leaks")
    text = json.dumps(nb)
    assert (
        "Bearer ***" in text and "token=***" in text and "secret=***" in text
    )  # masked, not dropped
    assert read_scraps(archive["dir"] / archive["entry"]["leaks"]["files"][0]["path"])["raw_lines"][
        "line"
    ].tolist() == ["token=***", "fine"]


def test_cluster_and_database_unreachable_still_leave_complete_evidence(archive):
    inv, entry = archive["runs"]["unreachable"], archive["entry"]["unreachable"]
    assert inv.code == 3 and entry["status"] == "incomplete"  # ran to the end, could not read
    assert entry["error"].startswith("not read: kubernetes: pods: cannot reach the Kubernetes API")
    scraps = read_scraps(archive["dir"] / entry["files"][0]["path"])
    sources = {s["source"]: s for s in scraps["sources"]}
    assert (
        sources["kubernetes: pods"]["status"] == "failed"
        and "cannot reach the Kubernetes API" in sources["kubernetes: pods"]["error"]
    )
    assert (
        sources["postgresql: connections"]["status"] == "failed"
        and "cannot connect to PostgreSQL" in sources["postgresql: connections"]["error"]
    )
    assert scraps["severity"]["level"] == "SEV1"
    html = (archive["dir"] / entry["files"][1]["path"]).read_text()
    assert "✗ kubernetes: pods: cannot reach the Kubernetes API" in html
    assert "✗ postgresql: connections: cannot connect to PostgreSQL" in html


def test_html_has_no_outside_reference_and_embeds_its_images(archive):
    for entry in archive["manifest"]["runs"]:
        page = (archive["dir"] / entry["files"][1]["path"]).read_text()
        # the unreachable fixture's kubeconfig points at http://127.0.0.1:9 and its errors say so:
        # that is the run's own target, not a resource the page loads
        assert outside_references(page, allowed=("http://127.",)) == [], entry["run_id"]
        assert "<script src" not in page and "cdnjs" not in page and fetching_references(page) == []
    ok_page = (archive["dir"] / archive["entry"]["ok"]["files"][1]["path"]).read_text()
    assert ok_page.count('src="data:image/png;base64,') == 1


def test_html_renders_its_chart_offline_in_chromium(archive, chromium, tmp_path):
    html = archive["dir"] / archive["entry"]["ok"]["files"][1]["path"]
    png = tmp_path / "ok.png"
    screenshot(chromium, html, png)
    assert (
        red_pixels(png) > 20_000
    )  # the three red bars of the chart (about 45,000 px at 1200x2000)
    assert loaded_images(chromium, html, tmp_path) == (1, 1)


def test_verify_passes_fresh_and_fails_on_any_change(archive, tmp_path):
    assert verify(archive["dir"]).ok
    assert runbook("verify", str(archive["dir"])).code == 0

    def copy() -> Path:
        d = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(archive["dir"], d)
        return d

    html = archive["entry"]["ok"]["files"][1]["path"]
    d = copy()
    data = bytearray((d / html).read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte
    (d / html).write_bytes(bytes(data))
    report = verify(d)
    assert (report.changed, report.missing, report.added) == ([html], [], [])
    inv = runbook("verify", str(d))
    assert inv.code == 1 and f"✗ changed: {html}" in inv.out

    d = copy()
    nb = archive["entry"]["raises"]["files"][0]["path"]
    (d / nb).unlink()
    assert verify(d).missing == [nb] and runbook("verify", str(d)).code == 1

    d = copy()
    (d / "extra.txt").write_text("x")
    assert verify(d).added == ["extra.txt"] and runbook("verify", str(d)).code == 1

    d = copy()
    raw = (d / "manifest.json").read_bytes()
    (d / "manifest.json").write_bytes(raw.replace(b'"status": "failed"', b'"status": "ok"    ', 1))
    assert verify(d).manifest_problems and runbook("verify", str(d)).code == 1


def test_same_second_runs_get_distinct_names(tmp_path):
    store = open_archive(tmp_path).incident("INC-x")
    store.scratch()
    ids = [store.reserve("20261127T093501Z", "outage") for _ in range(3)]
    assert ids == [
        "20261127T093501Z-outage",
        "20261127T093501Z-outage-2",
        "20261127T093501Z-outage-3",
    ]


def test_bad_input_is_refused_before_anything_runs(tmp_path):
    common = ["--notebooks", str(FIXTURES), "--outputs", str(tmp_path / "out")]
    inv = runbook("run", "outgae", *common)
    assert (
        inv.code == 1
        and "unknown scenario 'outgae'; valid scenarios" in inv.err
        and "ok, raises" in inv.err
    )
    inv = runbook("run", "ok", *common, "-p", "cuont", "3")
    assert inv.code == 1 and "unknown parameter 'cuont'" in inv.err and "count (int)" in inv.err
    inv = runbook("run", "ok", *common, "-p", "count", "three")
    assert (
        inv.code == 1 and "parameter 'count' = 'three': not a whole number; expected int" in inv.err
    )
    (tmp_path / "p.yaml").write_text("flag: maybe\n")
    inv = runbook("run", "ok", *common, "-f", str(tmp_path / "p.yaml"))
    assert (
        inv.code == 1 and "parameter 'flag' = 'maybe': wrong type (str); expected bool" in inv.err
    )
    inv = runbook("run", "ok", *common, "--incident", "../../etc")
    assert inv.code == 1 and "incident id '../../etc' is not valid" in inv.err
    assert not (tmp_path / "out").exists()


def test_list_shows_parameters_with_types_defaults_and_help():
    inv = runbook("list", "--notebooks", str(FIXTURES))
    assert inv.code == 0
    assert "ok  (" in inv.out
    assert any(
        line.split() == ["count", "int", "default", "3", "how", "many", "rows", "to", "make"]
        for line in inv.out.splitlines()
    )
