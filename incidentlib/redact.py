"""Redaction, in one place: everything displayed, glued or archived goes through here.

What it hides: passwords in DSNs and URLs (and token-like URL users), the value of every parameter
of a URL's query string, Authorization/Bearer tokens, password=/token=/secret=-style key-values
(also as JSON or YAML), AWS access keys, private key blocks, JWTs, any secret registered at run
time (a DSN's password, raw and percent-decoded), and, for SQL text, every literal value.
`scrub_notebook` applies it to a whole executed notebook (outputs, errors, scraps, metadata, the
injected parameters) before it is archived."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from .scraps import PARQUET_COMPRESSION, SCRAP_MIME_PREFIX, frame_from_scrap, plain

if TYPE_CHECKING:
    import pandas as pd

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

# What ends a URL in free text: white space, quotes, angle brackets, backquotes.
_URL_END = "\\s'\"<>`"
_SCHEME = r"\b[a-z][a-z0-9+.-]*://"

# Rules for URLs (`scheme://...`): they run only on text holding "://".
_URL_RULES: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host (the password may hold / ? # as libpq reads it: mask up to @)
    (re.compile(r"(?i)(" + _SCHEME + r"[^\s:/@'\"]*:)([^\s@'\"]+)(@)"), r"\1" + MASK + r"\3"),
    # scheme://TOKEN@host: a user that is a token (GitHub, GitLab, Slack prefixes, or 32+ characters
    # of a token's alphabet holding a digit)
    (
        re.compile(
            r"(?i)(" + _SCHEME + r")((?:gh[pousr]_|github_pat_|glpat-|xox[abpr]-)[\w.~%-]+"
            r"|(?=[\w.~%-]*\d)[\w.~%-]{32,})(@)"
        ),
        r"\1" + MASK + r"\3",
    ),
]
# scheme://host/path?key=value&key=value#fragment: the query string (up to # or the URL's end)
_URL_QUERY = re.compile(r"(?i)(" + _SCHEME + r"[^?#" + _URL_END + r"]*\?)([^#" + _URL_END + r"]+)")
# one key=value of a query string: the key stays, a non-empty value is masked (a=b=c: all of b=c)
_QUERY_VALUE = re.compile(r"([^&=]*=)[^&]+")


def _mask_query(m: re.Match[str]) -> str:
    return m.group(1) + _QUERY_VALUE.sub(r"\1" + MASK, m.group(2))


_known: set[str] = set()
_known_longest_first: tuple[str, ...] = ()


def _secret_forms(value: str) -> set[str]:
    """The forms a secret takes in text: as given, percent-decoded, percent-encoded (a URI's
    password `p%40ss` is `p@ss` to libpq, and the other way round); forms under 4 characters are
    not masked (they would mask ordinary words)."""
    forms = {value, unquote(value), quote(value, safe="")}
    return {f for f in forms if len(f) >= 4}


def register_secret(value: str | None) -> None:
    """Remember a secret seen at run time (a DSN's password) so it is masked wherever it turns
    up: as given, percent-decoded and percent-encoded (register either form of a URI's password,
    `p%40ss` or `p@ss`, and both are masked). Values under 4 characters are ignored."""
    if value and len(value) >= 4:
        _known.update(_secret_forms(value))
        _refresh_known()


# Every rule above needs one of these words in the text: one search decides whether the rules must
# run at all (most strings of a 5,000-pod table hold none, and running every rule on each cost 0.15
# s per notebook).
_MAYBE_SECRET = re.compile(
    r"(?i)pass|pwd|token|key|secret|credential|auth|bearer|://|eyj|akia|asia|agpa|aida|aroa|anpa"
)


def redact_text(text: str) -> str:
    """Mask every secret in free text (log lines, messages, URLs, DSNs).

    In every `scheme://` URL: the password of its userinfo (`user:***@`), a token-like user
    (`***@`), and the value of each query-string parameter (`?sig=***&code=***`, keys kept; a
    fragment `#...` keeps its text). Text without a scheme (`GET /health?x=1`) is not a URL."""
    if not text:
        return text
    if _MAYBE_SECRET.search(text):
        if "://" in text:
            for pattern, repl in _URL_RULES:
                text = pattern.sub(repl, text)
            text = _URL_QUERY.sub(_mask_query, text)
        for pattern, repl in _RULES:
            text = pattern.sub(repl, text)
    if _known:
        if len(_known_longest_first) != len(_known):  # _known changed behind register_secret
            _refresh_known()
        for secret in _known_longest_first:
            if secret in text:
                text = text.replace(secret, MASK)
    return text


def _refresh_known() -> None:
    global _known_longest_first
    _known_longest_first = tuple(sorted(_known, key=len, reverse=True))


# -- SQL text --------------------------------------------------------------------------------------

# A string literal's body and end: a literal that never closes (a query cut at
# track_activity_query_size) runs to the end of the text. Standard strings: '' is a quote, a
# backslash is a character (standard_conforming_strings, on since PostgreSQL 9.1). E'...' strings:
# a backslash escapes the next character (\' too).
_SQL_STD = r"'(?:[^']+|'')*(?:'|\Z)"
_SQL_ESC = r"'(?:[^'\\]+|\\.?|'')*(?:'|\Z)"
_SQL_TOKEN = re.compile(
    # (a character that can open a token: skips the rest fast)
    r"(?=[\"\-/$EeBbXxNnUu'\d.])(?:"
    # quoted identifiers stay (only closed ones: a stray " must not hide the literals after it)
    r"(?P<ident>\"(?:[^\"]|\"\")*\")"
    r"|(?P<line_comment>--[^\n]*)"
    # /* opens a block comment; its end (comments nest) is found by _block_comment_end
    r"|(?P<block_comment>/\*)"
    # $$...$$ and $tag$...$tag$ (not after an identifier's character: a$b$ is an identifier; $1 is a
    # parameter and stays); an unclosed one runs to the end
    r"|(?P<dollar>(?<![\w$])\$(?:\$.*?(?:\$\$|\Z)|(?P<tag>[^\W\d]\w*)\$.*?(?:\$(?P=tag)\$|\Z)))"
    # E'it\'s' (and its continuations 'x' on the next lines)
    r"|(?P<escape_string>(?<![\w$])[Ee]" + _SQL_ESC + r"(?:\s*" + _SQL_ESC + r")*)"
    # 'it''s', B'101', X'ff', N'x', U&'x'
    r"|(?P<string>(?:(?<![\w$])(?:[BbXxNn]|[Uu]&))?" + _SQL_STD + r"(?:\s*" + _SQL_STD + r")*)"
    # 42, -1.5e3, .5, 1_000, 0xFF, 0o17, 0b101 (not the digits of c1, $1, t.1, "x"1)
    r"|(?P<number>(?<![\w$.\"])-?(?:0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)(?![\w.])))",
    re.S,
)
_BLOCK_COMMENT_EDGE = re.compile(r"/\*|\*/")


def _block_comment_end(query: str, pos: int) -> int:
    """Where the block comment opened just before `pos` ends (comments nest, as in PostgreSQL):
    the end of the text if it never closes."""
    depth = 1
    for m in _BLOCK_COMMENT_EDGE.finditer(query, pos):
        depth += 1 if m.group() == "/*" else -1
        if depth == 0:
            return m.end()
    return len(query)


def redact_sql(query: str | None) -> str | None:
    """Replace every literal value in SQL text by `?` (strings, E'' strings, numbers, dollar quotes;
    comments dropped), then apply `redact_text`.

    Quoted identifiers and positional parameters ($1) stay. Built for text cut at
    track_activity_query_size: a string, dollar quote or block comment that never closes is masked
    (or dropped) to the end of the text."""
    if not query:
        return query
    out: list[str] = []
    pos = 0
    while m := _SQL_TOKEN.search(query, pos):
        out.append(query[pos : m.start()])
        pos = m.end()
        kind = m.lastgroup  # the outer group (`tag` closes inside `dollar`)
        if kind == "ident":
            out.append(m.group())
        elif kind == "block_comment":
            pos = _block_comment_end(query, pos)
        elif kind != "line_comment":
            out.append("?")
    out.append(query[pos:])
    return redact_text("".join(out))


# -- DSNs ------------------------------------------------------------------------------------------

# a URI: postgresql://user:password@host/db?password=x (any scheme, so URL parameters are read too)
_URI_SCHEME = re.compile(r"(?i)^[a-z][a-z0-9+.-]*://")
# the userinfo's password ends at the first @ and, as libpq reads a URI, cannot hold a raw /
_URI_PASSWORD = re.compile(r"(?i)^[a-z][a-z0-9+.-]*://[^:/@\s]*:([^@/\s]+)@")
# a password in the query string overrides the userinfo's, as with libpq
_URI_QUERY_PASSWORD = re.compile(r"[?&]password=([^&\s]+)")
# conninfo: password=x, password = 'it\'s x', password=pa\ ss (a backslash escapes, quoted or not)
_CONNINFO_PASSWORD = re.compile(r"(?i)\bpassword\s*=\s*(?:'((?:[^'\\]|\\.)*)'|((?:\\.|\S)+))", re.S)


def dsn_password(dsn: str | None, *, raw: bool = False) -> str | None:
    """The password in a libpq conninfo string or URI, or None if it has none (`password=''` gives
    `''`, as with libpq; both are false).

    By default the password as libpq uses it, ready for PGPASSWORD: percent-decoded in a URI
    (`postgresql://u:p%40ss@h/db` gives `p@ss`), backslash escapes undone in a conninfo string
    (`password='it\\'s'` gives `it's`). With `raw=True`, the text as written in the DSN (`p%40ss`,
    `it\\'s`, without a conninfo value's enclosing quotes): always a substring of `dsn`, for a
    caller that edits the DSN's text. Register either with `register_secret`, which masks both
    the percent-encoded and the decoded forms; `redact_dsn` registers both."""
    if not dsn:
        return None
    if _URI_SCHEME.match(dsn):
        userinfo = _URI_PASSWORD.match(dsn)
        # the query string's password, looked for after the userinfo (which may hold ?password=)
        m = _URI_QUERY_PASSWORD.search(dsn, userinfo.end() if userinfo else 0) or userinfo
        if not m:
            return None
        written = m.group(1)
        return written if raw else unquote(written)
    m = _CONNINFO_PASSWORD.search(dsn)
    if not m:
        return None
    written = m.group(1) if m.group(1) is not None else m.group(2)
    return written if raw else re.sub(r"\\(.)", r"\1", written, flags=re.S)


def redact_dsn(dsn: str | None) -> str | None:
    """A DSN safe to print: its password masked (conninfo or URI), and the password registered as
    a secret (as written and as libpq uses it)."""
    if dsn is None:
        return None
    register_secret(dsn_password(dsn))
    register_secret(dsn_password(dsn, raw=True))
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
    # A frame exists only once pandas is loaded: a parameter (None, a number) must not load it
    # (the outage notebook starts its reads before that import).
    pd = sys.modules.get("pandas")
    if pd is None or not hasattr(pd, "DataFrame"):
        return value
    if isinstance(value, pd.DataFrame):
        # columns replaced only where a string changed: most frames hold no secret (and with
        # pandas copying on write, a shallow copy is as safe as a deep one)
        changed = {}
        for name, col in value.items():
            if _textual(col):
                red = _redact_column(col)
                if red is not col:
                    changed[name] = red
        out = value.copy(deep=not _copies_on_write(pd))
        for name, red in changed.items():
            out[name] = red
        return out
    if isinstance(value, pd.Series) and _textual(value):
        red = _redact_column(value)
        return value.copy(deep=not _copies_on_write(pd)) if red is value else red
    return value


def _copies_on_write(pd: Any) -> bool:
    """pandas 3 always copies on write: a shallow copy cannot change the frame it came from."""
    return int(pd.__version__.split(".")[0]) >= 3


def _textual(col: pd.Series) -> bool:
    return col.dtype == object or str(col.dtype).startswith("str")


def _redact_column(col: pd.Series) -> pd.Series:
    """The column with its strings redacted (a copy; the column itself if a string column has
    nothing to mask). A string column is searched whole (Arrow's
    regular expressions, RE2 in C++) for the rows that may hold a secret, a rule's keyword or a
    registered secret, and only those rows go through `redact_text`: the messages of thousands
    of events hold none. An object column maps each distinct string once."""
    if col.dtype == object:
        done: dict[str, str] = {}

        def one(v: Any) -> Any:
            if not isinstance(v, str):
                return v
            if v not in done:
                done[v] = redact_text(v)
            return done[v]

        return col.map(one)
    import pyarrow as pa
    import pyarrow.compute as pc

    # Arrow's own kernels (RE2): pandas' `str.contains` parses the pattern again in Python on
    # every call to decide whether RE2 can take it, which cost more than the search
    texts = pa.array(col, type=pa.string(), from_pandas=True)
    found = pc.match_substring_regex(texts, _MAYBE_SECRET.pattern)
    for secret in tuple(_known):
        found = pc.or_(found, pc.match_substring(texts, secret))
    may = pc.fill_null(found, False).to_numpy(zero_copy_only=False)
    if not may.any():
        return col  # nothing to mask: the caller keeps the column it has
    out = col.copy()
    out[may] = col[may].map(redact_text)
    return out


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
    extra: set[str] = set()
    for s in secrets:
        if s and len(s) >= 4:
            extra |= _secret_forms(s)
    for secret in sorted(set(_known) | extra, key=len, reverse=True):
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
            red.to_parquet(buf, index=False, compression=PARQUET_COMPRESSION)
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
