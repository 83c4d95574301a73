"""Each redaction rule on its own, asserted exactly: deleting or weakening any one of them fails a
test here (pure; `make mutate` runs these against every mutant of redact.py)."""

from __future__ import annotations

import base64
import io
import json

import nbformat
import pandas as pd
import pyarrow.parquet as pq
import pytest

from incidentlib import redact
from incidentlib.redact import (
    MASK,
    dsn_password,
    known_secrets,
    mask_known,
    redact_dsn,
    redact_html,
    redact_sql,
    redact_text,
    redact_value,
    register_secret,
    scrub_notebook,
)

pytestmark = pytest.mark.usefixtures("isolated_secrets")  # each test starts with no secret known


# -- the text rules, one by one --------------------------------------------------------------------

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzcmUiLCJpYXQiOjE3MDB9.Qm9ndXNTaWduYXR1cmVfXzEyMw"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a JWT in the open (no key, no Bearer before it)
        (f"session {JWT} expired", f"session {MASK} expired"),
        (f"cookie={JWT}; path=/", f"cookie={MASK}; path=/"),
        # api_key, apikey, api-key, credentials, credential: the value goes, the key stays
        ("api_key=k-1234-abcd rest", f"api_key={MASK} rest"),
        ("APIKEY: k-1234-abcd", f"APIKEY: {MASK}"),
        ("api-key = 'k 1234 abcd'", f"api-key = {MASK}"),
        ("credentials=user:pw-9876", f"credentials={MASK}"),
        ("credential: pw-9876, next", f"credential: {MASK}, next"),
        (
            '{"credentials": "pw-9876", "user": "sre"}',
            f'{{"credentials": "{MASK}", "user": "sre"}}',
        ),
        ('{"api_key":"k-1234"}', f'{{"api_key":"{MASK}"}}'),
        ('{"client_secret": "s-1"}', f'{{"client_secret": "{MASK}"}}'),
        # every other key the rule names
        ("passwd=a1b2c3 pwd=d4e5f6", f"passwd={MASK} pwd={MASK}"),
        ("access_token=t1&refresh-token=t2", f"access_token={MASK}&refresh-token={MASK}"),
        ("secret_key: s3 private_key: s4", f"secret_key: {MASK} private_key: {MASK}"),
        ('PGPASSWORD="quoted pw" psql', f"PGPASSWORD={MASK} psql"),
        # Authorization headers (each scheme) and Bearer in free text
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {MASK}"),
        ("authorization=Token tk-777", f"authorization=Token {MASK}"),
        ('Authorization: "Digest dg-888"', f'Authorization: "Digest {MASK}"'),
        ("Authorization: rawvalue99", f"Authorization: {MASK}"),
        ("sent bearer abcdefgh12345", f"sent bearer {MASK}"),
        ("a bearer of bad news", "a bearer of bad news"),  # under 8 characters: a word
        # AWS access key ids (every prefix)
        ("id AKIAIOSFODNN7EXAMPLE.", f"id {MASK}."),
        ("id ASIAIOSFODNN7EXAMPLE", f"id {MASK}"),
        ("id AROAIOSFODNN7EXAMPLE", f"id {MASK}"),
        ("not AKIAIOSFODNN7EXAMPLE1", "not AKIAIOSFODNN7EXAMPLE1"),  # 17 characters: not a key id
    ],
)
def test_each_text_rule_masks_exactly_its_value(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize("kind", ["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "])
def test_a_private_key_is_masked_with_or_without_its_end_line(kind):
    body = "MIIEowIBAAKCAQEAx7\nq9ZsecretkeybodyQ==\n"
    whole = f"-----BEGIN {kind}PRIVATE KEY-----\n{body}-----END {kind}PRIVATE KEY-----"
    masked = f"-----BEGIN {kind}PRIVATE KEY-----{MASK}-----END {kind}PRIVATE KEY-----"
    assert redact_text(f"key:\n{whole}\nnext line") == f"key:\n{masked}\nnext line"
    # a log line cut before the END line: masked to the end of the text
    assert redact_text(f"key:\n-----BEGIN {kind}PRIVATE KEY-----\n{body}") == f"key:\n{masked}"


def test_a_public_key_or_certificate_stays():
    cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"
    assert redact_text(cert) == cert


def test_text_without_a_hint_of_a_secret_is_returned_as_is():
    for text in ("", "GET /health 200", "pods 5/5 ready", "x" * 200):
        assert redact_text(text) == text
    assert redact_text(None) is None  # type: ignore[arg-type]


# -- secrets registered at run time ----------------------------------------------------------------


def test_registered_secrets_in_every_form_and_only_from_four_characters():
    register_secret("a/b c")  # raw; percent-encoded a%2Fb%20c
    register_secret("abc")  # too short: would mask ordinary words
    register_secret("")
    register_secret(None)
    assert known_secrets() == {"a/b c", "a%2Fb%20c"}
    assert redact_text("x a/b c y a%2Fb%20c z abc") == f"x {MASK} y {MASK} z abc"
    register_secret("wxyz")  # exactly four characters is enough
    assert redact_text("wxyz!") == f"{MASK}!"


def test_the_longest_secret_is_masked_first():
    # "pw-12" inside "pw-12345": masking the short one first would leave "***345"; "b-12x" sorts
    # after "ab-12x99" but is shorter, and sits inside it
    for s in ("pw-12", "pw-12345", "b-12x", "ab-12x99"):
        register_secret(s)
    text = "got pw-12345 and pw-12, ab-12x99 and b-12x"
    assert redact_text(text) == f"got {MASK} and {MASK}, {MASK} and {MASK}"
    assert mask_known(text) == f"got {MASK} and {MASK}, {MASK} and {MASK}"
    assert mask_known("ab-12x99 b-12x", {"b-12x", "ab-12x99"}) == f"{MASK} {MASK}"


def test_a_secret_added_behind_register_secret_is_still_masked(monkeypatch):
    register_secret("first-secret")
    redact._known.add("second-secret-longer")  # as a test or a caller might
    assert redact_text("first-secret second-secret-longer") == f"{MASK} {MASK}"


def test_mask_known_takes_extra_secrets_in_each_form_and_ignores_short_ones():
    text = "pw=s%2Fx-1 raw s/x-1 keep abc none"
    assert mask_known(text, {"s/x-1", "abc", ""}) == f"pw={MASK} raw {MASK} keep abc none"
    assert mask_known("", {"s/x-1"}) == ""
    assert mask_known("a wxyz b", {"wxyz"}) == f"a {MASK} b"  # four characters are enough
    register_secret("known-one")
    assert mask_known("known-one and s/x-1", ("s/x-1",)) == f"{MASK} and {MASK}"
    # code is masked only where a secret is exact: key=value rules do not touch it
    assert mask_known("token = os.environ['TOKEN']") == "token = os.environ['TOKEN']"


# -- DSNs ------------------------------------------------------------------------------------------


def test_redact_dsn_registers_the_password_as_written_and_as_libpq_reads_it():
    assert redact_dsn("postgresql://sre:p%40ss-wd@db/app") == f"postgresql://sre:{MASK}@db/app"
    assert known_secrets() >= {"p%40ss-wd", "p@ss-wd"}
    assert redact_text("libpq said p@ss-wd") == f"libpq said {MASK}"
    assert redact_dsn("host=db password='it\\'s-pw'") == f"host=db password={MASK}"
    assert known_secrets() >= {"it's-pw", "it\\'s-pw"}
    assert redact_text("FATAL for it's-pw") == f"FATAL for {MASK}"
    assert redact_dsn(None) is None
    assert redact_dsn("") == ""


def test_dsn_password_reads_the_query_string_after_the_userinfo():
    # the userinfo itself holds "?password=": only a later one overrides it
    assert dsn_password("postgresql://u:p?password=x@h/db?password=real") == "real"
    assert dsn_password("postgresql://u@h/db?password=only") == "only"
    # a conninfo value escapes across a newline too
    assert dsn_password("host=a password=ab\\\ncd") == "ab\ncd"
    assert dsn_password("") is None and dsn_password(None) is None


# -- values, frames, HTML --------------------------------------------------------------------------


def test_redact_value_walks_tuples_and_series_and_leaves_other_types():
    assert redact_value(("token=t-1", 3)) == (f"token={MASK}", 3)
    s = pd.Series(["password=p-1", None, 5], dtype=object)
    assert redact_value(s).tolist() == [f"password={MASK}", None, 5]
    assert s[0] == "password=p-1"  # a copy
    strings = pd.Series(["password=p-1", "ok"], dtype="string")
    assert redact_value(strings).tolist() == [f"password={MASK}", "ok"]
    numbers = pd.Series([1, 2])
    assert redact_value(numbers) is numbers  # nothing to redact: the same object
    assert redact_value(42) == 42 and redact_value(None) is None


def test_redact_value_masks_object_and_string_columns_only():
    df = pd.DataFrame(
        {
            "obj": pd.Series(["token=t-1", 7, None], dtype=object),
            "str": pd.Series(["password=p-2", "ok", "x"], dtype="string"),
            "n": [1, 2, 3],
        }
    )
    out = redact_value(df)
    assert out["obj"].tolist() == [f"token={MASK}", 7, None]
    assert out["str"].tolist() == [f"password={MASK}", "ok", "x"]
    assert out["n"].tolist() == [1, 2, 3] and out["n"].dtype == df["n"].dtype
    assert df["obj"][0] == "token=t-1"


@pytest.mark.parametrize("dtype", ["str", "string[python]", "string[pyarrow]", object])
def test_a_column_masks_keywords_and_registered_secrets_in_every_row_that_holds_one(dtype):
    """A column is searched whole for the rows that may hold a secret: a rule's keyword (any case)
    or a registered secret as it is (no keyword near it, characters a regular expression would
    read), and every such row is redacted; rows without one come back as they were, missing values
    too."""
    register_secret("s3cr(t.9")
    rows = [
        "pull failed: Bearer abc.def.ghi",
        "login as app with s3cr(t.9 failed",
        "Back-off restarting failed container",
        None,
        "Back-off restarting failed container",
        "PASSWORD=Hunter2 in env",
        "s3cr(t-9 is not the secret",
    ]
    col = pd.Series(rows, dtype=dtype)
    out = redact_value(col)
    assert out is not col and (dtype is object or out.dtype == col.dtype)  # object: inferred
    assert out.tolist()[:3] + out.tolist()[4:] == [
        f"pull failed: Bearer {MASK}",
        f"login as app with {MASK} failed",
        "Back-off restarting failed container",
        "Back-off restarting failed container",
        f"PASSWORD={MASK} in env",
        "s3cr(t-9 is not the secret",
    ]
    assert pd.isna(out[3]) and col[1] == "login as app with s3cr(t.9 failed"  # a copy
    clean = pd.Series(["pods 5/5 ready", "GET /health 200"], dtype=dtype)
    assert redact_value(clean).tolist() == clean.tolist()
    frame = redact_value(pd.DataFrame({"message": col, "count": range(len(rows))}))
    assert frame["message"].tolist()[1] == f"login as app with {MASK} failed"
    assert frame["count"].tolist() == list(range(len(rows)))


def test_redact_html_escapes_what_it_masks_and_leaves_the_rest_byte_for_byte():
    # untouched text keeps its entities as written (&#39; stays, not re-escaped as &#x27;)
    markup = '<td>it&#39;s fine &amp; ok</td><a title="a&#39;b">x</a>'
    assert redact_html(markup) == markup
    # masked text is escaped again, quotes left alone between tags
    assert redact_html('<td>"x" &lt;b&gt; token=t-1</td>') == (
        f'<td>"x" &lt;b&gt; token={MASK}</td>'
    )
    # in an attribute, quotes are escaped
    assert redact_html('<a title="&quot;q&quot; token=t-1">x</a>') == (
        f'<a title="&quot;q&quot; token={MASK}">x</a>'
    )
    # exact secrets anywhere, tags included
    register_secret("exact-secret-1")
    assert redact_html("<exact-secret-1>") == f"<{MASK}>"


# -- whole notebooks -------------------------------------------------------------------------------


def _parquet(df: pd.DataFrame) -> str:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _scrap(encoder: str, data, name: str = "s") -> dict:
    return {"name": name, "data": data, "encoder": encoder, "version": 1}


PANDAS = "application/scrapbook.scrap.pandas+json"
JSONS = "application/scrapbook.scrap.json+json"


def test_every_metadata_attachment_and_error_name_is_scrubbed():
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"dsn": "host=db password=tk-1"}}
    md = nbformat.v4.new_markdown_cell("![shot](attachment:shot.txt)")
    md.metadata["note"] = "password=cellmeta-1"
    md["attachments"] = {
        "shot.txt": {"text/plain": ["token=", "attach-2"], "image/png": "iVBORpng"},
    }
    code = nbformat.v4.new_code_cell("run()")
    code.outputs = [
        nbformat.v4.new_output(
            "error", ename="Leak token=ename-3", evalue="password=evalue-4", traceback=[]
        ),
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": "ok"},
            metadata={"url": "https://h/p?sig=outmeta-5"},
        ),
        nbformat.v4.new_output("stream", name="stdout", text=["line one\n", "token=stream-6\n"]),
    ]
    nb.cells = [md, code]
    nb = scrub_notebook(nb)
    assert nb.metadata["papermill"]["parameters"] == {"dsn": f"host=db password={MASK}"}
    assert nb.cells[0].metadata["note"] == f"password={MASK}"
    assert nb.cells[0]["attachments"] == {
        "shot.txt": {"text/plain": f"token={MASK}", "image/png": "iVBORpng"}
    }
    error, display, stream = nb.cells[1].outputs
    assert (error["ename"], error["evalue"]) == (f"Leak token={MASK}", f"password={MASK}")
    assert display["metadata"] == {"url": f"https://h/p?sig={MASK}"}
    assert stream["text"] == f"line one\ntoken={MASK}\n"
    for canary in (
        "tk-1",
        "cellmeta-1",
        "attach-2",
        "ename-3",
        "evalue-4",
        "outmeta-5",
        "stream-6",
    ):
        assert canary not in json.dumps(nb)


def test_code_keeps_its_text_but_not_an_exact_secret_and_parameters_get_every_rule():
    nb = nbformat.v4.new_notebook()
    injected = nbformat.v4.new_code_cell(["# Parameters\n", 'dsn = "password=inj-7"\n'])
    injected.metadata["tags"] = ["injected-parameters"]
    code = nbformat.v4.new_code_cell(["conn('code-secret-8')\n", "token = get_token()"])
    md = nbformat.v4.new_markdown_cell("password=md-keeps-it and code-secret-8")
    nb.cells = [injected, code, md]
    nb = scrub_notebook(nb, secrets={"code-secret-8"})
    assert nb.cells[0].source == f'# Parameters\ndsn = "password={MASK}"\n'
    assert nb.cells[1].source == f"conn('{MASK}')\ntoken = get_token()"
    assert nb.cells[2].source == f"password=md-keeps-it and {MASK}"
    assert "code-secret-8" in known_secrets()  # registered for the rest of the run


def test_html_outputs_as_lists_and_other_mimetypes_are_joined_and_redacted():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("show()")
    code.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": ["<b>ok ", "token=html-9</b>"],
                "text/markdown": ["password=", "md-10"],
                "application/json": {"token": "json-11", "n": [1, "token=json-12"]},
                "image/svg+xml": ["<svg>token=svg-13 ", "</svg>"],
                "image/png": "token=png-stays",
            },
        )
    ]
    nb.cells = [code]
    data = scrub_notebook(nb).cells[0].outputs[0]["data"]
    assert data["text/html"] == f"<b>ok token={MASK}</b>"
    assert data["text/markdown"] == f"password={MASK}"
    assert data["application/json"] == {"token": "json-11", "n": [1, f"token={MASK}"]}
    assert data["image/svg+xml"] == f"<svg>token={MASK} </svg>"
    assert data["image/png"] == "token=png-stays"  # binary: never rewritten
    # an HTML bundle that is not text (a malformed output) is still redacted as a value
    odd = redact._redact_mimebundle({"text/html": {"v": "token=html-odd"}})
    assert odd == {"text/html": {"v": f"token={MASK}"}}


def test_scraps_json_pandas_unreadable_and_odd_shapes():
    frame = pd.DataFrame({"line": ["password=frame-14", "ok"], "n": [1, 2]})
    clean = pd.DataFrame({"line": ["fine", "ok"]})
    clean_data = _parquet(clean)
    bundle = {
        JSONS: _scrap("json", {"msg": "token=json-15"}),
        PANDAS: _scrap("pandas", _parquet(frame)),
    }
    out = redact._redact_mimebundle(bundle)
    assert out[JSONS] == _scrap("json", {"msg": f"token={MASK}"})
    assert out[PANDAS]["name"] == "s" and out[PANDAS]["encoder"] == "pandas"
    decoded = pd.read_parquet(io.BytesIO(base64.b64decode(out[PANDAS]["data"])))
    assert decoded.to_dict("list") == {"line": [f"password={MASK}", "ok"], "n": [1, 2]}
    assert list(decoded.index) == [0, 1] and out[PANDAS]["data"].isascii()
    # the index is not written as a column of its own
    schema = pq.read_schema(io.BytesIO(base64.b64decode(out[PANDAS]["data"])))
    assert schema.names == ["line", "n"]
    # a clean frame is left byte for byte
    assert redact._redact_mimebundle({PANDAS: _scrap("pandas", clean_data)})[PANDAS] == _scrap(
        "pandas", clean_data
    )
    # a pandas scrap that is not a parquet we can read is dropped, the rest of it kept
    assert redact._redact_mimebundle({PANDAS: _scrap("pandas", "bm90IHBhcnF1ZXQ=")}) == {
        PANDAS: _scrap("pandas", None)
    }
    # a json scrap whose data is a string that looks like base64 is redacted as text
    assert redact._redact_mimebundle({JSONS: _scrap("json", "token=json-16")}) == {
        JSONS: _scrap("json", f"token={MASK}")
    }
    # a scrap payload that is not a dict with data: redacted as a value
    assert redact._redact_mimebundle({JSONS: ["token=odd-17"]}) == {JSONS: [f"token={MASK}"]}
    assert redact._redact_mimebundle({JSONS: {"name": "token=odd-18"}}) == {
        JSONS: {"name": f"token={MASK}"}
    }


def test_a_notebook_missing_optional_fields_is_scrubbed_without_inventing_any():
    nb = {
        "cells": [
            {"cell_type": "code", "source": "x", "outputs": None},
            {"cell_type": "code", "outputs": [{"output_type": "stream"}, {"output_type": "error"}]},
        ]
    }
    out = scrub_notebook(nb)
    assert out == {
        "metadata": {},
        "cells": [
            {"cell_type": "code", "source": "x", "outputs": None, "metadata": {}},
            {
                "cell_type": "code",
                "source": "",
                "metadata": {},
                "outputs": [
                    {"output_type": "stream", "text": ""},
                    {"output_type": "error", "ename": "", "evalue": "", "traceback": []},
                ],
            },
        ],
    }
    assert scrub_notebook({"metadata": {}}) == {"metadata": {}}


# -- SQL -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT $$secret$$", "SELECT ?"),
        ("SELECT $body$it's $$ secret$body$ AS x", "SELECT ? AS x"),
        ("SELECT /* card 4111 */ 1", "SELECT  ?"),
        ("SELECT 1 /* outer /* inner */ card 4111 */ FROM t", "SELECT ?  FROM t"),
        ("SELECT a /* open /* nested */ still open", "SELECT a "),
        ("SELECT 'a' -- card 4111\nFROM t", "SELECT ? \nFROM t"),
        ('SELECT "x--y", "a/*b" FROM t', 'SELECT "x--y", "a/*b" FROM t'),
        ("SELECT 'x' || 'y', 2", "SELECT ? || ?, ?"),
        ("", ""),
    ],
)
def test_dollar_quotes_and_comments_never_reach_the_output(query, expected):
    assert redact_sql(query) == expected


def test_sql_goes_through_the_text_rules_too():
    register_secret("dbpw-4711")
    assert redact_sql('SELECT "dbpw-4711" FROM t') == f'SELECT "{MASK}" FROM t'
    assert redact_sql(None) is None
