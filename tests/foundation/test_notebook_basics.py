"""The notebook toolchain works in this environment: papermill injects parameters, scrapbook reads
scraps back."""

from pathlib import Path

import papermill as pm
import pytest
import scrapbook as sb

import incidentlib
from incidentlib.errors import InvalidParameter

HERE = Path(__file__).parent / "notebooks"


@pytest.mark.notebook
def test_parameters_are_injected(tmp_path):
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(HERE / "parameters_only.ipynb"),
        str(out),
        parameters={"namespace": "staging"},
        kernel_name="python3",
        progress_bar=False,
    )
    nb = sb.read_notebook(str(out)).node
    assert nb.metadata.papermill.parameters == {"namespace": "staging"}
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)


@pytest.mark.notebook
def test_evidence_contract_scraps(tmp_path):
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(HERE / "evidence_contract.ipynb"), str(out), kernel_name="python3", progress_bar=False
    )
    scraps = sb.read_notebook(str(out)).scraps
    assert scraps["scenario"].data == "smoke"
    assert scraps["severity"].data["level"] == "SEV3"
    assert scraps["sources"].data[0]["source"] == "nothing"
    assert scraps["sources"].data[0]["status"] == "failed"
    assert "no route to host" in scraps["sources"].data[0]["error"]
    assert scraps["findings"].data[0]["detail"] == "password=***"
    outputs = [o for c in sb.read_notebook(str(out)).node.cells for o in c.get("outputs", [])]
    assert "hunter2secret" not in str(outputs)
    assert scraps["started_at"].data <= scraps["finished_at"].data


@pytest.mark.notebook
def test_invalid_namespace_fails_with_clear_message(tmp_path):
    out = tmp_path / "out.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as e:
        pm.execute_notebook(
            str(HERE / "evidence_contract.ipynb"),
            str(out),
            parameters={"namespace": "Prod_NS"},
            kernel_name="python3",
            progress_bar=False,
        )
    assert e.value.ename == "InvalidParameter" and "'Prod_NS'" in e.value.evalue
    assert out.exists()  # the failed run still leaves its notebook
    assert issubclass(InvalidParameter, ValueError)


def test_no_problem_is_never_an_all_clear_while_sources_failed():
    from incidentlib.notebook.run import Run

    nothing = Run("t", quiet=True)
    nothing.skip("health check", "no health_url given")
    with nothing.source("kubernetes: connect"):
        raise OSError("connection refused")
    blind = nothing.checked(incidentlib.assess())
    assert blind.rule == "not-assessed" and "NOT ASSESSED" in blind.reason
    assert "kubernetes: connect" in blind.reason and "not an all-clear" in blind.reason

    partly = Run("t", quiet=True)
    with partly.source("health check"):
        pass
    with partly.source("metrics API"):
        raise OSError("404")
    seen = partly.checked(incidentlib.assess(health_ok=True))
    assert seen.rule == "partly-assessed" and "metrics API could not be read" in seen.reason

    real = incidentlib.assess(database_reachable=False)
    assert nothing.checked(real) is real  # a measured verdict stands


def test_a_frame_glued_reads_back_whole_and_an_odd_column_as_text():
    """`glue` writes a DataFrame scrap as scrapbook would (parquet, base64), converted to Arrow
    once: the frame reads back with its values and types, its index reset, a column Arrow cannot
    hold (mixed types, dicts) as text."""
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from incidentlib.notebook.run import glue
    from incidentlib.scraps import SCRAP_MIME, frame_from_scrap

    InteractiveShell.instance()
    frame = pd.DataFrame(
        {
            "pod": ["api-1", "api-2"],
            "restarts": [3, 0],
            "odd": [1, {"x": 1}],
            "at": pd.to_datetime(["2026-12-02T08:00:00Z", None], utc=True),
        },
        index=[7, 9],
    )
    with capture_output() as out:
        glue("pods", frame)
    [shown] = out.outputs
    payload = shown.data[SCRAP_MIME.format(encoder="pandas")]
    assert (payload["name"], payload["encoder"], payload["version"]) == ("pods", "pandas", 1)
    back = frame_from_scrap(payload["data"])
    assert list(back.index) == [0, 1] and list(back.columns) == ["pod", "restarts", "odd", "at"]
    assert back["pod"].tolist() == ["api-1", "api-2"] and back["restarts"].tolist() == [3, 0]
    assert back["restarts"].dtype == "int64" and back["odd"].tolist() == ["1", "{'x': 1}"]
    assert back["at"].iloc[0] == pd.Timestamp("2026-12-02T08:00:00Z") and pd.isna(back["at"][1])
