"""Redaction, in one place: everything displayed, glued or archived goes through here.

What it hides: passwords in DSNs and URLs, Authorization/Bearer tokens,
password=/token=/secret=-style key-values (also as JSON or YAML), AWS access keys, private key
blocks, JWTs, any secret registered at run time (a DSN's password), and, for SQL text, every literal
value. `scrub_notebook` applies it to a whole executed notebook (outputs, errors, scraps, metadata,
the injected parameters) before it is archived."""

from __future__ import annotations

import re
from typing import Any

from .scraps import SCRAP_MIME_PREFIX, frame_from_scrap, plain

MASK = "***"

_KEYS = (
    r"(?:password|passwd|pwd|pass|token|access[_-]?token|refresh[_-]?token|auth[_-]?token|api[_-]?key|apikey"
    r"|secret|client[_-]?secret|secret[_-]?key|access[_-]?key|private[_-]?key|credentials?)"
)

_RULES: list[tuple[re.Pattern[str], str]] = [
    # -----BEGIN RSA PRIVATE KEY----- ... -----END RSA PRIVATE KEY-----
    (
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.S
        ),
        r"-----BEGIN \1PRIVATE KEY-----" + MASK + r"-----END \1PRIVATE KEY-----",
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)([^\s@'\"]+)(@)"), r"\1" + MASK + r"\3"),
    # Authorization: Bearer xyz / Basic xyz / Token xyz (header or free text)
    (
        re.compile(
            r"(?i)\b(authorization\s*[:=]\s*\"?(?:bearer|basic|token|digest)?\s*)([^\s\"',;]+)"
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]{8,})"), r"\1" + MASK),
    # "password": "x" (JSON) and password: x (YAML)
    (re.compile(r"(?i)(\"" + _KEYS + r"\"\s*:\s*\")([^\"]*)(\")"), r"\1" + MASK + r"\3"),
    # password=x, password = 'x y', token: x, PGPASSWORD=x, DB_PASSWORD=x
    (
        re.compile(
            r"(?i)\b([A-Za-z0-9_]*"
            + _KEYS
            + r"\s*[=:]\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;&'\"}]+)"
        ),
        r"\1" + MASK,
    ),
    # AWS access key ids and secret keys in the open
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), MASK),
    # JSON web tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
]

_known: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret seen at run time (a DSN's password) so it is masked wherever it turns
    up."""
    if value and len(value) >= 4:
        _known.add(value)


# Every rule above needs one of these words in the text: one search decides whether the rules must
# run at all (most strings of a 5,000-pod table hold none, and running every rule on each cost 0.15
# s per notebook).
_MAYBE_SECRET = re.compile(
    r"(?i)pass|pwd|token|key|secret|credential|auth|bearer|://|eyj|akia|asia|agpa|aida|aroa|anpa"
)


def redact_text(text: str) -> str:
    """Mask every secret in free text (log lines, messages, URLs, DSNs)."""
    if not text:
        return text
    if _MAYBE_SECRET.search(text):
        for pattern, repl in _RULES:
            text = pattern.sub(repl, text)
    if _known:
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
    """Replace every literal value in SQL text by `?` (strings, numbers, dollar quotes; comments
    dropped)."""
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
    """Redact strings inside any value: str, list, tuple, dict, pandas DataFrame/Series (copies,
    never in place)."""
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
    if isinstance(value, pd.Series) and (
        value.dtype == object or str(value.dtype).startswith("str")
    ):
        return value.map(lambda v: redact_text(v) if isinstance(v, str) else v)
    return value


# -- whole notebooks (the archive's last line of defence) ------------------------------------------

_BINARY_MIME = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
_HTML_TEXT = re.compile(r">([^<>]+)<")
_HTML_ATTR = re.compile(r"""(\s[\w:-]+\s*=\s*")([^"]*)(")""")


def known_secrets() -> frozenset[str]:
    """The secrets registered so far (a DSN's password...)."""
    return frozenset(_known)


def mask_known(text: str, secrets: frozenset[str] | set[str] | tuple[str, ...] = ()) -> str:
    """Mask only exact secrets (registered ones and `secrets`): safe on code, which pattern rules
    could mangle."""
    if not text:
        return text
    for secret in sorted(
        set(_known) | {s for s in secrets if s and len(s) >= 4}, key=len, reverse=True
    ):
        text = text.replace(secret, MASK)
    return text


def redact_html(markup: str) -> str:
    """Redact the text between the tags of an HTML fragment (entities decoded first, so quoted
    secrets are seen)."""
    import html

    def repl(m: re.Match[str]) -> str:
        raw = m.group(1)
        plain = html.unescape(raw)
        red = redact_text(plain)
        return ">" + (raw if red == plain else html.escape(red, quote=False)) + "<"

    def attr(m: re.Match[str]) -> str:
        plain = html.unescape(m.group(2))
        red = redact_text(plain)
        return m.group(1) + (m.group(2) if red == plain else html.escape(red)) + m.group(3)

    return mask_known(_HTML_ATTR.sub(attr, _HTML_TEXT.sub(repl, markup)))


def _redact_scrap(mime: str, payload: Any) -> Any:
    """A scrapbook payload: json scraps redacted as values, pandas (parquet, base64) decoded,
    redacted, re-encoded."""
    if not isinstance(payload, dict) or "data" not in payload:
        return redact_value(payload)
    out = dict(payload)
    if payload.get("encoder") == "pandas" and isinstance(payload["data"], str):
        import base64
        import io

        try:
            df = frame_from_scrap(payload["data"])
        except (
            Exception
        ):  # not a parquet we can read: drop it rather than archive what we cannot check
            out["data"] = None
            return out
        red = redact_value(df)
        if not red.equals(df):
            buf = io.BytesIO()
            red.to_parquet(buf, index=False)
            out["data"] = base64.b64encode(buf.getvalue()).decode("ascii")
        return out
    out["data"] = redact_value(payload["data"])
    return out


def _redact_mimebundle(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mime, value in data.items():
        if mime in _BINARY_MIME:
            out[mime] = value
        elif mime.startswith(SCRAP_MIME_PREFIX):
            out[mime] = _redact_scrap(mime, value)
        elif mime == "text/html":
            text = "".join(value) if isinstance(value, list) else value
            out[mime] = redact_html(text) if isinstance(text, str) else redact_value(text)
        else:
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = "".join(value)
            out[mime] = redact_value(value)
    return out


def scrub_notebook(nb: Any, *, secrets: set[str] | frozenset[str] | tuple[str, ...] = ()) -> Any:
    """Redact a whole notebook in place and return it: outputs, errors, all metadata, the injected
    parameters.

    Code and markdown keep their text except for exact secrets (pattern rules would mangle code);
    the cell papermill injects with the parameters is redacted with every rule."""
    for s in secrets:
        register_secret(s)
    nb["metadata"] = redact_value(plain(nb.get("metadata", {})))
    for cell in nb.get("cells", []):
        tags = (cell.get("metadata") or {}).get("tags") or []
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        cell["source"] = redact_text(src) if "injected-parameters" in tags else mask_known(src)
        cell["metadata"] = redact_value(plain(cell.get("metadata", {})))
        if "attachments" in cell:
            cell["attachments"] = {k: _redact_mimebundle(v) for k, v in cell["attachments"].items()}
        for out in cell.get("outputs", []) or []:
            kind = out.get("output_type")
            if kind == "stream":
                text = out.get("text", "")
                out["text"] = redact_text("".join(text) if isinstance(text, list) else text)
            elif kind == "error":
                out["ename"] = redact_text(out.get("ename", ""))
                out["evalue"] = redact_text(out.get("evalue", ""))
                out["traceback"] = [redact_text(line) for line in out.get("traceback", [])]
            if "data" in out:
                out["data"] = _redact_mimebundle(dict(out["data"]))
            if "metadata" in out:
                out["metadata"] = redact_value(plain(out["metadata"]))
    return nb
