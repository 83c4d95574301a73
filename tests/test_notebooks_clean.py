"""Committed notebooks are clean sources: no outputs, no execution counts, a `parameters` cell whose every
parameter has a comment (papermill --help-notebook shows it), and markdown that carries the runbook's words."""

from __future__ import annotations

import json
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
