"""Redaction against hostile input: SQL cut at track_activity_query_size or written with E'',
dollar quotes and nested comments; signed URLs; percent-encoded DSN passwords (pure)."""

from __future__ import annotations

import base64
import io
import json

import nbformat
import pandas as pd
import pytest
from psycopg import conninfo

from incidentlib.redact import (
    MASK,
    dsn_password,
    mask_known,
    redact_dsn,
    redact_html,
    redact_sql,
    redact_text,
    redact_value,
    register_secret,
    scrub_notebook,
)

# -- SQL -------------------------------------------------------------------------------------------


def test_a_query_cut_by_track_activity_query_size_masks_the_open_literal_to_the_end():
    # pg_stat_activity keeps track_activity_query_size - 1 bytes (1023 by default): the cut lands
    # inside the card number, whose closing quote is gone
    ids = ", ".join(str(i) for i in range(10_000, 10_137))
    head = f"UPDATE cards SET note = 'ok' WHERE id IN ({ids}) AND pan = '"
    query = (head + "4111111111111111' AND cvv = '123'")[:1023]
    assert len(head) == 1012 and query.endswith("= '41111111111")
    masked_ids = ", ".join("?" for _ in range(137))
    assert redact_sql(query) == f"UPDATE cards SET note = ? WHERE id IN ({masked_ids}) AND pan = ?"


def test_an_escape_string_literal_is_masked_whole():
    assert redact_sql(r"SELECT * FROM t WHERE note = E'it\'s secret' AND n = 1") == (
        "SELECT * FROM t WHERE note = ? AND n = ?"
    )
    assert redact_sql(r"SELECT e'a\\', 'b', E'\'', e'x''y\'z' FROM t") == "SELECT ?, ?, ?, ? FROM t"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # unterminated literals (the query was cut)
        ("SELECT 1 WHERE a = 'open secret", "SELECT ? WHERE a = ?"),
        (r"SELECT 1 WHERE a = E'open \' secret", "SELECT ? WHERE a = ?"),
        ("SELECT 1 WHERE a = E'trailing backslash\\", "SELECT ? WHERE a = ?"),
        ("SELECT 'a'\n  'continued secret", "SELECT ?"),
        # comments: nested, unterminated, line
        ("SELECT 1 /* a /* nested */ secret */ , 2", "SELECT ?  , ?"),
        ("SELECT 1 /* cut here secret", "SELECT ? "),
        ("SELECT 1 /* a /* nested, cut */ secret", "SELECT ? "),
        ("SELECT 1 -- secret\n, 2", "SELECT ? \n, ?"),
        # dollar quotes, closed and open; $1 and identifiers with $ stay
        ("SELECT $$top secret$$, $1", "SELECT ?, $1"),
        ("SELECT $fn$ a $$ secret $fn$, $2::int", "SELECT ?, $2::int"),
        ("SELECT $a_1$ x $a_2$ secret $a_1$ FROM t", "SELECT ? FROM t"),
        ("SELECT $1 WHERE x = $$open secret", "SELECT $1 WHERE x = ?"),
        ("SELECT $1 WHERE x = $q$open $$ secret", "SELECT $1 WHERE x = ?"),
        ("SELECT a$b$, c FROM t WHERE d = $10", "SELECT a$b$, c FROM t WHERE d = $10"),
        # quoted identifiers stay, with what looks like literals inside
        ('SELECT "it\'s", "a""b", "x1" FROM "T$1"', 'SELECT "it\'s", "a""b", "x1" FROM "T$1"'),
        # prefixed strings and numbers PostgreSQL 16 reads
        (
            "VALUES (B'101', X'ff', N'n', U&'d\\0061t', date '2026-01-01')",
            "VALUES (?, ?, ?, ?, date ?)",
        ),
        (
            "SELECT 0xFF, 0o17, 0b101, 1_000_000, -1.5e3, .5 FROM t1",
            "SELECT ?, ?, ?, ?, ?, ? FROM t1",
        ),
        # an identifier ending in e/b/x/n is not a prefix
        ("SELECT name'x' FROM t", "SELECT name? FROM t"),
    ],
)
def test_hostile_sql_is_masked_exactly(query, expected):
    assert redact_sql(query) == expected


_SECRET = "Zq7Secret"
# (literal holding the secret, offset of the secret's first character)
_LITERALS = [
    (f"'{_SECRET}'", 1),
    (f"'it''s {_SECRET}'", 1),
    (f"E'it\\'s {_SECRET}'", 2),
    (f"e'\\\\{_SECRET}\\''", 2),
    (f"E'\\'{_SECRET}'", 2),
    (f"$${_SECRET}$$", 2),
    (f"$t$ $$ {_SECRET} $t$", 3),
    (f"$Tag_9$ {_SECRET} $Tag_9$", 7),
    (f"B'{_SECRET}'", 2),
    (f"U&'{_SECRET}'", 3),
    (f"'x'\n   '{_SECRET}'", 8),
]
_PREFIX = 'SELECT "Ident9", $1, t1.c2 FROM t WHERE a = '


@pytest.mark.parametrize(("literal", "opening"), _LITERALS)
def test_no_cut_of_a_literal_lets_its_text_out(literal, opening):
    # closed, with the query going on: identifiers, parameters and the rest survive
    query = f'{_PREFIX}{literal} AND "b$2" = $2 /* {_SECRET} */ -- {_SECRET}'
    assert redact_sql(query) == f'{_PREFIX}? AND "b$2" = $2  '
    # cut anywhere after the opening: masked to the end, nothing of the secret left
    for cut in range(opening + 1, len(literal) + 1):
        assert redact_sql(_PREFIX + literal[:cut]) == f"{_PREFIX}?", literal[:cut]


def test_todays_masking_is_kept():
    # the texts the database tests assert
    assert redact_sql("SELECT pg_sleep(30), count(*) FROM stage_cards WHERE card = '4111'") == (
        "SELECT pg_sleep(?), count(*) FROM stage_cards WHERE card = ?"
    )
    assert redact_sql("UPDATE t SET v = 'x' WHERE id = 42") == "UPDATE t SET v = ? WHERE id = ?"
    assert redact_sql("SELECT 1 FROM t7") == "SELECT ? FROM t7"
    assert redact_sql("SELECT x::numeric(10, 2), y[3] FROM s.t") == (
        "SELECT x::numeric(?, ?), y[?] FROM s.t"
    )


# -- URLs ------------------------------------------------------------------------------------------

SIGNED = "https://api.example.com/health?sig=abc123&code=XYZ&x-amz-signature=9f8e7d6c#top"
SIGNED_MASKED = f"https://api.example.com/health?sig={MASK}&code={MASK}&x-amz-signature={MASK}#top"


def test_every_query_value_of_a_url_is_masked_its_keys_and_fragment_kept():
    assert redact_text(f"probe {SIGNED} failed") == f"probe {SIGNED_MASKED} failed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # any scheme; empty values and bare keys stay; a=b=c masks all of b=c
        (
            "s3://bucket/key?versionId=v123&X-Amz-Credential=AK%2F1",
            f"s3://bucket/key?versionId={MASK}&X-Amz-Credential={MASK}",
        ),
        ("ftp://h/f?a=&wsdl&b=c=d", f"ftp://h/f?a=&wsdl&b={MASK}"),
        (
            "postgresql://sre@db/app?sslmode=require&password=p%40ss",
            f"postgresql://sre@db/app?sslmode={MASK}&password={MASK}",
        ),
        # a URL ends at white space, quotes, angle brackets, backquotes
        (
            "['https://x/a?t=1', \"https://x/b?t=2\"] <https://x/c?t=3> `https://x/d?t=4`",
            f"['https://x/a?t={MASK}', \"https://x/b?t={MASK}\"] <https://x/c?t={MASK}> "
            f"`https://x/d?t={MASK}`",
        ),
        # a URL inside a parameter's value is masked with it
        (
            "https://sso/cb?next=https://app/x?token=T0k3n&state=s1",
            f"https://sso/cb?next={MASK}&state={MASK}",
        ),
        # userinfo, as before, and a token as user
        (
            "https://svc:pw-basic-333@api.example.com/h?x=1",
            f"https://svc:{MASK}@api.example.com/h?x={MASK}",
        ),
        (
            "git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r.git",
            f"git clone https://{MASK}@github.com/o/r.git",
        ),
        (
            "https://0123456789abcdef0123456789abcdef@hooks.example.com/x",
            f"https://{MASK}@hooks.example.com/x",
        ),
        # not URLs, or URLs without a query: left alone
        ("GET /health?x=1 200 12ms", "GET /health?x=1 200 12ms"),
        ("https://api.example.com/health#a?b=c", "https://api.example.com/health#a?b=c"),
        ("postgresql://sre@db.example.com:5432/app", "postgresql://sre@db.example.com:5432/app"),
        ("why? because=yes", "why? because=yes"),
    ],
)
def test_urls_are_masked_exactly(text, expected):
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # masking again changes nothing


@pytest.mark.parametrize("scheme", ["http", "https", "s3", "gs", "wss", "postgresql", "git+ssh"])
@pytest.mark.parametrize("key", ["sig", "code", "X-Amz-Signature", "state", "q"])
def test_no_query_value_survives_any_scheme(scheme, key):
    value = "Vq9-secret%2B/x=="
    out = redact_text(f"see {scheme}://h.example/p?a=1&{key}={value}&b=2#frag tail")
    assert out == f"see {scheme}://h.example/p?a={MASK}&{key}={MASK}&b={MASK}#frag tail"


def test_frames_html_and_notebooks_inherit_url_masking():
    df = pd.DataFrame(
        {
            "pod": ["web-7d9f-abcde", "probe-0"],
            "image": ["registry.example.com/web:1.4.2", "curlimages/curl:8.7.1"],
            "target": ["http://10.0.0.7:8080/ready", SIGNED],
            "restarts": [0, 3],
        }
    )
    out = redact_value(df)
    assert out["target"].tolist() == ["http://10.0.0.7:8080/ready", SIGNED_MASKED]
    assert out.drop(columns="target").equals(df.drop(columns="target"))
    assert df["target"][1] == SIGNED  # not in place

    escaped = SIGNED.replace("&", "&amp;")
    assert redact_html(f'<a href="{escaped}">{escaped}</a>') == (
        f'<a href="{SIGNED_MASKED.replace("&", "&amp;")}">{SIGNED_MASKED.replace("&", "&amp;")}</a>'
    )

    nb = nbformat.v4.new_notebook()
    injected = nbformat.v4.new_code_cell(f'# Parameters\nhealth_url = "{SIGNED}"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    cell = nbformat.v4.new_code_cell("probe(health_url)")
    buf = io.BytesIO()
    df[["target"]].to_parquet(buf, index=False)
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"GET {SIGNED} -> 503\n"),
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/plain": SIGNED,
                "application/scrapbook.scrap.json+json": {
                    "name": "probe",
                    "data": {"url": SIGNED},
                    "encoder": "json",
                    "version": 1,
                },
                "application/scrapbook.scrap.pandas+json": {
                    "name": "targets",
                    "data": base64.b64encode(buf.getvalue()).decode(),
                    "encoder": "pandas",
                    "version": 1,
                },
            },
        ),
        nbformat.v4.new_output("error", ename="HTTPError", evalue=f"503 for {SIGNED}"),
    ]
    nb.cells = [injected, cell]
    nb.metadata["papermill"] = {"parameters": {"health_url": SIGNED}}
    nb = scrub_notebook(nb)
    assert "abc123" not in json.dumps(nb) and "9f8e7d6c" not in json.dumps(nb)
    assert nb.cells[0].source == f'# Parameters\nhealth_url = "{SIGNED_MASKED}"\n'
    assert nb.metadata["papermill"]["parameters"] == {"health_url": SIGNED_MASKED}
    stream, display, error = nb.cells[1].outputs
    assert stream["text"] == f"GET {SIGNED_MASKED} -> 503\n"
    assert display["data"]["text/plain"] == SIGNED_MASKED
    assert display["data"]["application/scrapbook.scrap.json+json"]["data"] == {
        "url": SIGNED_MASKED
    }
    scrap = display["data"]["application/scrapbook.scrap.pandas+json"]["data"]
    targets = pd.read_parquet(io.BytesIO(base64.b64decode(scrap)))["target"].tolist()
    assert targets == ["http://10.0.0.7:8080/ready", SIGNED_MASKED]
    assert error["evalue"] == f"503 for {SIGNED_MASKED}"


# -- DSN passwords ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "password", "written"),
    [
        ("postgresql://u:p%40ss@host/db", "p@ss", "p%40ss"),
        ("postgres://u:a%2Fb%25c+d@host:5433/db", "a/b%c+d", "a%2Fb%25c+d"),
        ("postgresql://u:p?ss#1@host/db", "p?ss#1", "p?ss#1"),
        ("postgresql://u:old@h/db?sslmode=require&password=n%26w", "n&w", "n%26w"),
        ("postgresql://u:p?password=x@h/db", "p?password=x", "p?password=x"),
        ("host=a password='it\\'s x' user=b", "it's x", "it\\'s x"),
        ("host=a password=pa\\ ss user=b", "pa ss", "pa\\ ss"),
        ("host=a password=plain-pw", "plain-pw", "plain-pw"),
        ("postgresql://u:@h/db", None, None),
        ("host=a password='' user=b", "", ""),
        ("postgresql://u@h/db", None, None),
    ],
)
def test_dsn_password_is_what_libpq_uses_and_raw_is_what_the_dsn_says(dsn, password, written):
    assert dsn_password(dsn) == password
    assert dsn_password(dsn) == conninfo.conninfo_to_dict(dsn).get("password")
    assert dsn_password(dsn, raw=True) == written
    assert written is None or written in dsn


def test_a_percent_encoded_uri_password_is_decoded_for_pgpassword():
    # psql connects with `postgresql://u:p%40ss@host/db`: the password is p@ss, not p%40ss
    assert dsn_password("postgresql://u:p%40ss@host/db") == "p@ss"
    assert dsn_password("postgresql://sre:%C3%A9t%C3%A9-2026@db/app") == "\u00e9t\u00e9-2026"


def test_both_forms_of_a_percent_encoded_password_are_masked(isolated_secrets):
    register_secret("p%40ss-7d1")  # as written in a URI
    register_secret("w0rd/f1sh")  # as libpq uses it
    assert redact_text("auth failed: p@ss-7d1 / p%40ss-7d1") == f"auth failed: {MASK} / {MASK}"
    assert mask_known("pw w0rd/f1sh w0rd%2Ff1sh") == f"pw {MASK} {MASK}"


def test_redact_dsn_registers_the_decoded_password(isolated_secrets):
    dsn = "postgresql://sre:s%3Acr%40t-91@db.example.com/app"
    assert redact_dsn(dsn) == f"postgresql://sre:{MASK}@db.example.com/app"
    # libpq, and so the server's error messages, use the decoded form
    assert (
        redact_text('FATAL: password "s:cr@t-91" rejected') == f'FATAL: password "{MASK}" rejected'
    )
    assert mask_known("PGPASSWORD=s:cr@t-91") == f"PGPASSWORD={MASK}"
    assert dsn_password(dsn) == "s:cr@t-91"
