"""Tables as the notebooks show them: blank cells for missing values, the typed values kept."""

from __future__ import annotations

import numpy as np
import pandas as pd

from incidentlib.notebook.run import Table


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["backend-1", "frontend-1"],
            "restarts": pd.array([7, None], dtype="Int64"),
            "ready": pd.array([False, None], dtype="boolean"),
            "cpu_pct": [12.5, np.nan],
            "last_restart": pd.to_datetime(["2026-11-27T09:03:00Z", None], utc=True),
            "waiting_reason": ["CrashLoopBackOff", None],
        }
    )


def test_missing_values_are_blank_in_html_and_text() -> None:
    table = Table(_frame())
    html, text = table._repr_html_(), repr(table)
    for noise in ("NaN", "NaT", "&lt;NA&gt;", "<NA>", "None", "nan"):
        assert noise not in html and noise not in text, noise
    assert "<td>CrashLoopBackOff</td>" in html and "<td>7</td>" in html and "<td>12.5</td>" in html
    assert "2026-11-27 09:03:00+00:00" in html
    row = html.split("<tr>")[-1]  # frontend-1: its name, then five blank cells
    assert row.count("<td></td>") == 5 and "frontend-1" in row


def test_only_the_display_changes() -> None:
    df = _frame()
    Table(df)
    assert str(df["restarts"].dtype) == "Int64" and df["restarts"].isna().sum() == 1
    assert df["last_restart"].isna().sum() == 1


def test_a_full_table_shows_as_pandas_would() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.25]})
    assert repr(Table(df)) == df.to_string()
