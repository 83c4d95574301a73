import pandas as pd
import pytest

from incidentlib.redact import (
    MASK,
    dsn_password,
    redact_dsn,
    redact_sql,
    redact_text,
    redact_value,
    register_secret,
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://app:s3cr3t-pw@db:5432/x", "s3cr3t-pw"),
        ("host=db password=s3cr3t-pw user=x", "s3cr3t-pw"),
        ("host=db password='with space' user=x", "with space"),
        (
            "GET /api Authorization: Bearer eyJhbGciOi.abc.def-token-1234",
            "eyJhbGciOi.abc.def-token-1234",
        ),
        ('curl -H "Authorization: Basic QWxhZGRpbjpvcGVu"', "QWxhZGRpbjpvcGVu"),
        ("user login ok token=abcd1234efgh", "abcd1234efgh"),
        ('{"password": "hunter22", "user": "bob"}', "hunter22"),
        ("export DB_PASSWORD=xyz987", "xyz987"),
        ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("secret: topsecretvalue", "topsecretvalue"),
        ("probe https://api.example.com/health?sig=abc123&code=XYZ failed", "abc123"),
        ("probe https://api.example.com/health?sig=abc123&code=XYZ failed", "XYZ"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA",
        ),
    ],
)
def test_secrets_are_masked(text, secret):
    out = redact_text(text)
    assert secret not in out
    assert MASK in out


def test_innocent_text_is_untouched():
    line = "2026-11-27T09:00:00Z INFO GET /health 200 12ms user=bob"
    assert redact_text(line) == line


def test_sql_literals_are_replaced_identifiers_kept():
    q = (
        "SELECT * FROM cards c1 WHERE card = '4111111111111111' AND c1.x > 42 AND y = $1 AND "
        "\"Col9\" = E'it''s' -- note 5"
    )
    out = redact_sql(q)
    assert (
        "4111111111111111" not in out
        and "42" not in out
        and "it''s" not in out
        and "note 5" not in out
    )
    assert "c1.x > ?" in out and "y = $1" in out and '"Col9"' in out


def test_dsn_password_is_found_and_registered():
    assert dsn_password("host=a password=zz99zz dbname=b") == "zz99zz"
    assert dsn_password("postgresql://u:pw1234@h/db") == "pw1234"
    assert dsn_password("postgresql://u:p%40ss@h/db") == "p@ss"
    assert dsn_password("postgresql://u:p%40ss@h/db", raw=True) == "p%40ss"
    assert dsn_password("host=a dbname=b") is None
    assert redact_dsn("host=a password=zz99zz dbname=b") == f"host=a password={MASK} dbname=b"
    assert redact_text("it was zz99zz all along") == f"it was {MASK} all along"


def test_registered_secret_is_masked_anywhere():
    register_secret("canary-5151")
    assert "canary-5151" not in redact_text("password was canary-5151")


def test_redact_value_walks_structures_without_mutating():
    df = pd.DataFrame({"line": ["token=abc12345", "ok"], "n": [1, 2]})
    out = redact_value({"rows": [df], "msg": "password=p4ssw0rd"})
    assert out["msg"] == f"password={MASK}"
    assert out["rows"][0]["line"].tolist() == [f"token={MASK}", "ok"]
    assert df["line"][0] == "token=abc12345"


def test_a_frame_with_nothing_to_mask_comes_back_equal_and_apart():
    """Most frames hold no secret: redact_value returns them unchanged, and changing what it
    returned never changes the frame it was given (nor the other way round)."""
    df = pd.DataFrame({"pod": ["web-1", "web-2"], "restarts": [0, 3]})
    series = df["pod"]
    out, col = redact_value(df), redact_value(series)
    assert out.equals(df) and col.equals(series) and out is not df and col is not series
    out.loc[0, "pod"] = "changed"
    out["restarts"] = out["restarts"] + 1
    col.iloc[1] = "changed"
    assert df["pod"].tolist() == ["web-1", "web-2"] and df["restarts"].tolist() == [0, 3]
    df.loc[1, "pod"] = "later"
    assert out["pod"].tolist() == ["changed", "web-2"]
