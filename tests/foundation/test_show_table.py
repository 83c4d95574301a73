"""Tables as the notebooks show them: blank cells for missing values, the typed values kept."""

from __future__ import annotations

import re

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
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert cells == [
        "backend-1",
        "7",
        "False",
        "12.5",
        "2026-11-27 09:03:00+00:00",
        "CrashLoopBackOff",
        "frontend-1",
        "",
        "",
        "",
        "",
        "",
    ]  # frontend-1: its name, then five blank cells
    assert "<th" in html and ">0<" not in html  # no 0..n index column


def test_only_the_display_changes() -> None:
    df = _frame()
    Table(df)
    assert str(df["restarts"].dtype) == "Int64" and df["restarts"].isna().sum() == 1
    assert df["last_restart"].isna().sum() == 1


def test_the_plain_text_is_the_html_cells_in_aligned_columns_without_an_index() -> None:
    df = pd.DataFrame(
        {
            "pod": ["backend-1", "fe"],
            "restarts": [7, 12],
            "cpu": [0.5, 1.25],
            "message": ["back-off\nrestarting", None],
        }
    )
    # text left-aligned, numbers right-aligned, a missing value blank, a line break kept visible
    # on its row; trailing blanks trimmed
    assert repr(Table(df)).split("\n") == [
        "pod        restarts   cpu  message",
        "backend-1         7   0.5  back-off\\nrestarting",
        "fe               12  1.25",
    ]


def test_values_are_escaped_and_status_and_severity_cells_colored() -> None:
    df = pd.DataFrame(
        {
            "name": ["<img src=x onerror=alert(1)>", "ok-pod", "pending-pod", "init-pod"],
            "status": ["CrashLoopBackOff", "Running", "Pending", "Init:Error"],
            "severity": ["SEV1", "SEV4", "SEV3", "SEV2"],
        }
    )
    html = Table(df)._repr_html_()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1])
    by_cell = {
        (str(r), str(c)): m.group(1)
        for r, row in enumerate(rows)
        for c, cell in enumerate(re.findall(r"<td[^>]*>", row))
        if (m := re.search(r'style="background-color: (#\w+)', cell))
    }
    assert by_cell == {
        ("0", "1"): "#f8d7da",
        ("1", "1"): "#d4edda",
        ("2", "1"): "#fff3cd",
        ("3", "1"): "#f8d7da",
        ("0", "2"): "#f8d7da",
        ("1", "2"): "#d4edda",
        ("2", "2"): "#fff3cd",
        ("3", "2"): "#ffe0c2",
    }
    assert 'class="dataframe"' in html  # Jupyter's and the HTML export's table style


def test_text_is_left_aligned_and_numbers_right_aligned() -> None:
    # Jupyter right-aligns every cell: sentences and names are set left, numbers stay right
    df = pd.DataFrame({"pod": ["backend-1"], "restarts": [7], "ready": [True], "cpu": [0.5]})
    html = Table(df)._repr_html_()
    heads = re.findall(r"<th([^>]*)>(\w+)</th>", html)
    assert heads == [
        (' style="text-align: left"', "pod"),
        ("", "restarts"),
        (' style="text-align: left"', "ready"),
        ("", "cpu"),
    ]
    cells = re.findall(r"<td([^>]*)>([^<]*)</td>", html)
    assert cells == [
        (' style="text-align: left"', "backend-1"),
        ("", "7"),
        (' style="text-align: left"', "True"),
        ("", "0.5"),
    ]


def test_commands_in_next_step_are_set_as_code_and_everything_else_stays_literal() -> None:
    findings = pd.DataFrame(
        {
            "severity": ["SEV2", "SEV3"],
            "title": ["bad `rollout`", "x"],
            "detail": ["event said `<img src=x onerror=alert(1)>`", ""],
            "next_step": [
                "roll back: `kubectl rollout undo deployment/backend -n production` "
                "(here: apply=True)",
                "check `<script>alert(1)</script>` then `a` and a lone ` backtick",
            ],
        }
    )
    page = Table(findings)._repr_html_()
    cells = re.findall(r"<td[^>]*>(.*?)</td>", page)
    assert cells[3] == (
        "roll back: <code>kubectl rollout undo deployment/backend -n production</code> "
        "(here: apply=True)"
    )
    # a quoted span is escaped before it is set as code; an unpaired backtick stays as it is
    assert cells[7] == (
        "check <code>&lt;script&gt;alert(1)&lt;/script&gt;</code> then <code>a</code> and a lone "
        "` backtick"
    )
    # other columns show backticks literally, escaped, whatever they quote
    assert cells[1] == "bad `rollout`"
    assert cells[2] == "event said `&lt;img src=x onerror=alert(1)&gt;`"
    assert "<script" not in page and "<img" not in page
    # the plain text keeps the command exactly as it is to be typed
    assert "`kubectl rollout undo deployment/backend -n production`" in repr(Table(findings))


def test_memory_in_bytes_shows_as_kubectl_shows_it_and_the_scrap_keeps_the_bytes() -> None:
    """`kubectl top` prints memory as 32Mi or 127.8Gi; a table of bytes printed 3.35544e+07. The
    percentages beside them and memory already written as text are left as they are."""
    df = pd.DataFrame(
        {
            "node": ["node-1", "node-2"],
            "memory_allocatable": [137_229_000_000.0, np.nan],
            "memory": [33_554_432, 2**28],
            "memory_requested_pct": [12.5, 3.0],
            "memory_of_limit": ["12%", "3%"],
        }
    )
    table = Table(df)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", table._repr_html_())
    assert cells == ["node-1", "127.8Gi", "32Mi", "12.5", "12%", "node-2", "", "256Mi", "3", "3%"]
    assert repr(table).split("\n")[1].split() == ["node-1", "127.8Gi", "32Mi", "12.5", "12%"]
    assert df["memory"].tolist() == [33_554_432, 2**28]  # only the display changes
