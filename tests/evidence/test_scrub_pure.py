"""scrub_notebook: every place of a notebook where a secret can hide is redacted before archiving
(pure)."""

from __future__ import annotations

import base64
import io
import json

import nbformat
import pandas as pd

from incidentlib.redact import MASK, scrub_notebook

DSN_PW = "canary-dsn-pw-31415"
TOKEN = "canary-token-27182818"
LOGPW = "canary-logpw-16180"


def _parquet_scrap(df: pd.DataFrame) -> dict:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return {
        "name": "raw",
        "data": base64.b64encode(buf.getvalue()).decode(),
        "encoder": "pandas",
        "version": 1,
    }


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    injected = nbformat.v4.new_code_cell(f'# Parameters\ndsn = "host=db password={DSN_PW}"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    code = nbformat.v4.new_code_cell("token = os.environ['TOKEN']  # token=token stays code")
    code.outputs = [
        nbformat.v4.new_output(
            "stream", name="stdout", text=f"GET /x Authorization: Bearer {TOKEN}\n"
        ),
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": f"<pre>password=&quot;{LOGPW}&quot;</pre><a "
                f'href="postgresql://app:{LOGPW}@db/x">db</a>',
                "text/plain": f"password={LOGPW}",
                "image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQV"
                "R42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
                "application/scrapbook.scrap.json+json": {
                    "name": "lines",
                    "data": [f"token={TOKEN}"],
                    "encoder": "json",
                    "version": 1,
                },
                "application/scrapbook.scrap.pandas+json": _parquet_scrap(
                    pd.DataFrame({"line": [f"password={LOGPW}", "ok"]})
                ),
            },
        ),
        nbformat.v4.new_output(
            "error",
            ename="OperationalError",
            evalue=f"failed for password={LOGPW}",
            traceback=[f"connect('host=db password={DSN_PW}')"],
        ),
    ]
    nb.cells = [injected, code]
    nb.metadata["papermill"] = {
        "parameters": {"dsn": f"host=db password={DSN_PW}"},
        "exception": None,
    }
    return nb


def test_no_secret_survives_anywhere_in_the_notebook():
    nb = scrub_notebook(_notebook(), secrets={DSN_PW})
    text = json.dumps(nb)
    for secret in (DSN_PW, TOKEN, LOGPW):
        assert secret not in text
    # the parquet scrap was decoded, redacted and re-encoded: still a readable table
    scrap = nb.cells[1].outputs[1]["data"]["application/scrapbook.scrap.pandas+json"]
    df = pd.read_parquet(io.BytesIO(base64.b64decode(scrap["data"])))
    assert df["line"].tolist() == [f"password={MASK}", "ok"]


def test_each_place_is_masked_not_dropped():
    nb = scrub_notebook(_notebook(), secrets={DSN_PW})
    injected, code = nb.cells
    assert injected.source == f'# Parameters\ndsn = "host=db password={MASK}"\n'
    assert nb.metadata["papermill"]["parameters"]["dsn"] == f"host=db password={MASK}"
    out = code.outputs
    assert out[0]["text"] == f"GET /x Authorization: Bearer {MASK}\n"
    assert (
        out[1]["data"]["text/html"]
        == f'<pre>password={MASK}</pre><a href="postgresql://app:{MASK}@db/x">db</a>'
    )
    assert out[1]["data"]["application/scrapbook.scrap.json+json"]["data"] == [f"token={MASK}"]
    assert out[2]["evalue"] == f"failed for password={MASK}"
    assert out[2]["traceback"] == [f"connect('host=db password={MASK}')"]


def test_code_and_images_are_left_alone():
    before = _notebook()
    nb = scrub_notebook(_notebook(), secrets={DSN_PW})
    assert nb.cells[1].source == "token = os.environ['TOKEN']  # token=token stays code"
    assert (
        nb.cells[1].outputs[1]["data"]["image/png"]
        == before.cells[1].outputs[1]["data"]["image/png"]
    )
    assert nbformat.validate(nbformat.from_dict(nb)) is None
