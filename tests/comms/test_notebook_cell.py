"""The notification cell the scenario notebooks end with (comms.NOTEBOOK_CELL), run inside a real
scenario notebook."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import pytest
import scrapbook as sb

from incidentlib.notebook.comms import NOTEBOOK_CELL, NOTEBOOK_PARAMETERS

from .recorder import Recorder

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SCENARIOS = [
    p
    for p in (NOTEBOOKS / f"{n}.ipynb" for n in ("outage", "database", "performance"))
    if p.exists()
]


def with_notifications(path: Path) -> Any:
    """The notebook as the lead will commit it: the two parameters added, the cell appended (unless
    already there)."""
    nb = nbformat.read(path, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for line in NOTEBOOK_PARAMETERS.splitlines():
        if not re.search(rf"^{line.split(' =')[0]} = ", params.source, re.M):
            params.source = params.source.rstrip("\n") + "\n" + line
    if not any("show_notifications(" in c.source for c in nb.cells if c.cell_type == "code"):
        nb.cells.append(nbformat.v4.new_code_cell(NOTEBOOK_CELL))
    return nb


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_notebook_defines_what_the_cell_uses(path: Path) -> None:
    nb = json.loads(path.read_text())
    params = "".join(
        next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))["source"]
    )
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert re.search(r"^incident_id = ", params, re.M)
    assert re.search(r"\bseverity = ", code) and re.search(r"\brun = Run\(", code)


@pytest.mark.notebook
@pytest.mark.sim
def test_outage_notebook_fills_and_posts_the_status_update(
    sim_cluster: Callable[..., Any], tmp_path: Path
) -> None:
    sim = sim_cluster("bad-rollout")
    source = tmp_path / "outage-with-notifications.ipynb"
    nbformat.write(with_notifications(NOTEBOOKS / "outage.ipynb"), source)
    hook = Recorder()
    try:
        pm.execute_notebook(
            str(source),
            str(tmp_path / "out.ipynb"),
            kernel_name="python3",
            progress_bar=False,
            cwd=str(NOTEBOOKS),
            parameters={
                "kubeconfig": str(sim.kubeconfig),
                "incident_id": "INC-N1",
                "commander": "Dana",
                "notify_webhook": hook.url,
            },
        )
    finally:
        hook.close()
    rows = sb.read_notebook(str(tmp_path / "out.ipynb")).scraps["notifications"].data
    notes = rows.set_index("kind")["text"]
    assert notes["initial"].startswith("🚨 INCIDENT [INC-N1]: ")
    assert (
        "Severity: SEV1 — " in notes["initial"] and "Impact: 3 of 3 pods down" in notes["initial"]
    )
    assert notes["initial"].endswith("Incident Commander: Dana")
    assert (
        notes["update"].startswith("📊 UPDATE [INC-N1]: ")
        and "Status: Identified" in notes["update"]  # the failing revision is a root cause
    )
    assert (
        "• prepared, not applied: " in notes["update"]
    )  # the rollback shown, not applied (apply=False)
    assert (
        notes["resolution"].splitlines()[-1] == "Post-mortem: runbook postmortem --incident INC-N1"
    )
    posted = rows[rows["posted"]]
    assert posted["kind"].tolist() == ["update"]
    assert posted["post_result"].iloc[0].startswith("✓ notification posted to http://127.0.0.1:")
    assert [r["body"]["text"] for r in hook.requests] == [notes["update"]]
    assert list(notes.index) == ["initial", "update", "resolution", "customer"]
