"""Committed notebooks are clean sources: no outputs, no execution counts, a `parameters` cell whose
every parameter has a comment (papermill --help-notebook shows it), and markdown that carries the
runbook's words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no scenario notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_a_clean_source(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not [c for c in code if c.get("outputs")], "cells with outputs"
    assert not [c for c in code if c.get("execution_count")], "cells with execution counts"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged parameters"
    for line in "".join(params[0]["source"]).splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            assert "#" in line, f"parameter without a help comment: {line!r}"
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert len(markdown) >= 3, "a runbook notebook explains its steps in markdown"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_thin(path):
    """Each cell calls one or two steps of its scenario: at most 100 code lines (the parameters
    included) and at most 6 lines of control flow in the whole notebook; the logic lives in
    incidentlib.scenarios."""
    nb = json.loads(path.read_text())
    lines = [
        ln
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for ln in "".join(c["source"]).splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    flow = [ln for ln in lines if re.match(r"\s*(if|for|while|try|with)\b", ln)]
    assert len(lines) <= 100, f"{len(lines)} code lines"
    assert len(flow) <= 6, flow


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_parameter_is_checked_by_its_scenario_with_the_same_default(path):
    """The parameters cell and the scenario's `Params` agree: no parameter goes unchecked, none is
    invented, and a notebook run with its own defaults passes the checks."""
    import dataclasses
    import importlib

    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    defaults: dict = {}
    exec("".join(cell["source"]), {}, defaults)  # noqa: S102 - our own committed parameters cell
    params = importlib.import_module(f"incidentlib.scenarios.{path.stem}").Params
    fields = {f.name: f.default for f in dataclasses.fields(params)}
    assert set(defaults) == set(fields)
    for name, value in defaults.items():
        assert value == fields[name] or (value is None and fields[name] is None), name
    if (
        path.stem != "postmortem"
    ):  # the post-mortem needs an incident: its default refuses on purpose
        params.check(defaults)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_sees_every_parameter_with_its_help(path):
    """`papermill --help-notebook` (and `runbook list`) show every parameter: papermill skips a line
    it cannot parse (two `=` on it, e.g. a selector `app=postgres`) without a word, so a value
    written to please it must still read as what it is."""
    import dataclasses
    import importlib

    import papermill

    inferred = papermill.inspect_notebook(str(path))
    params = importlib.import_module(f"incidentlib.scenarios.{path.stem}").Params
    declared = {f.name for f in dataclasses.fields(params)}
    assert set(inferred) == declared, f"papermill does not see {sorted(declared - set(inferred))}"
    assert all(p["help"] for p in inferred.values()), [
        n for n, p in inferred.items() if not p["help"]
    ]
    source = "".join(
        "".join(c["source"])
        for c in json.loads(path.read_text())["cells"]
        if "parameters" in c["metadata"].get("tags", [])
    )
    assert "\\u00" not in source  # no escapes to type at 3 a.m.
