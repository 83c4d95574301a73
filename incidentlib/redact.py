"""Redaction, in one place: everything displayed, glued or archived goes through here.

What it hides: passwords in DSNs and URLs, Authorization/Bearer tokens, password=/token=/secret=-style
key-values (also as JSON or YAML), AWS access keys, private key blocks, JWTs, any secret registered at run
time (a DSN's password), and, for SQL text, every literal value."""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "MASK",
    "redact_text",
    "redact_sql",
    "redact_dsn",
    "redact_value",
    "register_secret",
    "dsn_password",
]

MASK = "***"

_KEYS = r"(?:password|passwd|pwd|pass|token|access[_-]?token|refresh[_-]?token|auth[_-]?token|api[_-]?key|apikey|secret|client[_-]?secret|secret[_-]?key|access[_-]?key|private[_-]?key|credentials?)"

_RULES: list[tuple[re.Pattern[str], str]] = [
    # -----BEGIN RSA PRIVATE KEY----- ... -----END RSA PRIVATE KEY-----
    (re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.S),
     r"-----BEGIN \1PRIVATE KEY-----" + MASK + r"-----END \1PRIVATE KEY-----"),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)([^\s@'\"]+)(@)"), r"\1" + MASK + r"\3"),
    # Authorization: Bearer xyz / Basic xyz / Token xyz (header or free text)
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*\"?(?:bearer|basic|token|digest)?\s*)([^\s\"',;]+)"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]{8,})"), r"\1" + MASK),
    # "password": "x" (JSON) and password: x (YAML)
    (re.compile(r"(?i)(\"" + _KEYS + r"\"\s*:\s*\")([^\"]*)(\")"), r"\1" + MASK + r"\3"),
    # password=x, password = 'x y', token: x, PGPASSWORD=x, DB_PASSWORD=x
    (re.compile(r"(?i)\b([A-Za-z0-9_]*" + _KEYS + r"\s*[=:]\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;&'\"}]+)"),
     r"\1" + MASK),
    # AWS access key ids and secret keys in the open
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), MASK),
    # JSON web tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
]

_known: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret seen at run time (a DSN's password) so it is masked wherever it turns up."""
    if value and len(value) >= 4:
        _known.add(value)


def redact_text(text: str) -> str:
    """Mask every secret in free text (log lines, messages, URLs, DSNs)."""
    if not text:
        return text
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


_SQL_LITERAL = re.compile(
    r"""
    (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$)     # $$...$$, $tag$...$tag$
  | (?P<string>(?:[EeBbXxNn]|U&)?'(?:[^']|'')*'(?:\s*'(?:[^']|'')*')*)  # 'it''s', E'..', B'..'
  | (?P<ident>"(?:[^"]|"")*")                               # quoted identifiers stay
  | (?P<number>(?<![\w$."])-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<comment>--[^\n]*|/\*.*?\*/)
    """,
    re.S | re.X,
)


def redact_sql(query: str | None) -> str | None:
    """Replace every literal value in SQL text by `?` (strings, numbers, dollar quotes; comments dropped)."""
    if not query:
        return query

    def repl(m: re.Match[str]) -> str:
        if m.group("ident"):
            return m.group("ident")
        if m.group("comment"):
            return ""
        return "?"

    return redact_text(_SQL_LITERAL.sub(repl, query))


def dsn_password(dsn: str | None) -> str | None:
    """The password in a libpq conninfo string or URI, if any (to register it as a secret)."""
    if not dsn:
        return None
    m = re.search(r"(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)
    if m:
        value = m.group(1)
        return value[1:-1].replace("\\'", "'") if value.startswith("'") else value
    m = re.search(r"(?i)^[a-z]+://[^:/@\s]*:([^@\s]+)@", dsn)
    return m.group(1) if m else None


def redact_dsn(dsn: str | None) -> str | None:
    """A DSN safe to print: its password masked (conninfo or URI)."""
    if dsn is None:
        return None
    register_secret(dsn_password(dsn))
    return redact_text(dsn)


def redact_value(value: Any) -> Any:
    """Redact strings inside any value: str, list, tuple, dict, pandas DataFrame/Series (copies, never in place)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return value
    if isinstance(value, pd.DataFrame):
        out = value.copy()
        for col in out.columns:
            if out[col].dtype == object or str(out[col].dtype).startswith("str"):
                out[col] = out[col].map(lambda v: redact_text(v) if isinstance(v, str) else v)
        return out
    if isinstance(value, pd.Series) and (value.dtype == object or str(value.dtype).startswith("str")):
        return value.map(lambda v: redact_text(v) if isinstance(v, str) else v)
    return value
