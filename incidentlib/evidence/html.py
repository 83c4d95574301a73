"""The evidence's HTML: a self-contained page per executed notebook (images embedded, nothing
fetched from the network, no scraps' raw payloads), readable offline by whoever writes the
post-mortem, and inert: it runs no script.

Everything in it that came from the cluster, the database, logs or HTTP replies was escaped where it
was displayed (`notebook.run.show_text`, pandas' escaped tables, stream text). As a second wall the
page carries a Content-Security-Policy that allows no script at all (images only as data: URIs,
styles inline), and `sanitize` removes every <script> element, every event-handler attribute
(`onerror=`, `onload=`...) and every script URL (`javascript:`, `vbscript:`, `data:text/html`) that
a template or an output might still hold."""

from __future__ import annotations

import re
import threading
from typing import Any

from ..redact import mask_known
from ..scraps import SCRAP_MIME_PREFIX

_EXTERNAL = [
    re.compile(r"<script\b[^>]*\bsrc\s*=\s*['\"]?(?:https?:)?//[^>]*>\s*</script>", re.I),
    re.compile(r"<link\b[^>]*\bhref\s*=\s*['\"]?(?:https?:)?//[^>]*>", re.I),
    re.compile(
        r"<script\b[^>]*\bsrc\s*=\s*(?:\"\"|'')[^>]*>\s*</script>", re.I
    ),  # the emptied require.js
    # nbconvert's mermaid loader: a module script importing from a CDN
    re.compile(
        r"<script\b[^>]*>(?:(?!</script>).)*?\bimport\s*\(\s*['\"]https?://.*?</script>",
        re.I | re.S,
    ),
]


# images, frames and media from the network (a markdown image linking the web): not embedded, so not
# shown
_EXTERNAL_MEDIA = re.compile(
    r"<(?:img|iframe|video|audio|source|embed)\b[^>]*\bsrc\s*=\s*['\"]?(?:https?:)?//[^>]*>(?:\s*</(?:iframe|video|audio)>)?",
    re.I,
)


_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.I | re.S)


_CSS_EXTERNAL = [
    re.compile(r"/\*(?:(?!\*/).)*?https?://.*?\*/", re.S),  # comments citing a URL
    re.compile(r"@import\s+(?:url\()?\s*['\"]?(?:https?:)?//[^;]*;", re.I),
]


_exporters = threading.local()
_MEMO_ENTRIES = 2048  # per filter and thread
_MEMO_LARGEST = 1 << 16  # characters: larger texts (big output tables) are not kept


class _Memo:
    """A pure filter whose results are kept: a scenario notebook's code cells are the same text at
    every run, and highlighting and cleaning them (pygments, then bleach) is most of a page's
    time. Same text in, same HTML out: the page does not change."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.kept: dict[tuple[str, str], str] = {}

    def __call__(self, text: Any, *args: Any, **kwargs: Any) -> Any:
        metadata = kwargs.get("metadata") or {}
        if args or set(kwargs) - {"metadata"} or not isinstance(text, str):
            return self.fn(text, *args, **kwargs)
        if len(text) > _MEMO_LARGEST:
            return self.fn(text, *args, **kwargs)
        key = (text, str(metadata.get("magics_language", "")))
        out = self.kept.get(key)
        if out is None:
            out = self.fn(text, *args, **kwargs)
            if len(self.kept) >= _MEMO_ENTRIES:
                self.kept.clear()
            self.kept[key] = out
        return out


_IMG_NO_ALT = re.compile(r"<img\b(?![^<>]*\balt\s*=)", re.I)
_FOCUSABLE = re.compile(
    r"""<div\b(?![^<>]*\btabindex\s*=)(?=[^<>]*\bclass\s*=\s*(["'])(?:(?!\1).)*?"""
    r"""(?<![\w-])jp-(?:Cell-inputWrapper|OutputArea-output)(?![\w-]))""",
    re.I,
)
NO_ALT = "No description has been provided for this image"


def accessible(page: str) -> str:
    """What nbconvert's HTMLExporter does to a page with BeautifulSoup (a parse of the whole page,
    most of its time), done on the tags: images without alternative text get nbconvert's, and the
    cells' input and output areas can be reached with the keyboard (tabindex 0)."""
    page = _IMG_NO_ALT.sub(f'<img alt="{NO_ALT}"', page)
    return _FOCUSABLE.sub('<div tabindex="0"', page)


def _exporter_class() -> Any:
    """nbconvert's HTMLExporter, its page finished by `accessible` instead of BeautifulSoup."""
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class Exporter(HTMLExporter):  # type: ignore[misc]
        def from_notebook_node(
            self, nb: Any, resources: dict[str, Any] | None = None, **kw: Any
        ) -> Any:
            # HTMLExporter.from_notebook_node (nbconvert 7.17), but for its soup
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            highlight_code = self.filters.get(
                "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)
            )
            resources = self._init_resources(resources)
            filter_data_type = WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources
            )
            self.register_filter("highlight_code", highlight_code)
            self.register_filter("filter_data_type", filter_data_type)
            page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            return accessible(page), resources

    return Exporter


def _exporter(lexer: str | None = None) -> Any:
    """This thread's HTML exporter, made once: its templates are compiled at its first page (about
    0.2 s), which a server's every run would otherwise pay again; its code highlighting and HTML
    cleaning keep their results (`_Memo`), per language."""
    exporter = getattr(_exporters, "html", None)
    if exporter is None:
        from nbconvert.filters import clean_html

        exporter = _exporter_class()(
            template_name="lab", mathjax_url="", require_js_url="", embed_images=True
        )
        exporter.register_filter("clean_html", _Memo(clean_html))
        _exporters.html = exporter
        _exporters.highlighters = {}
    highlighters: dict[str, _Memo] = _exporters.highlighters
    language = lexer or "ipython3"
    if language not in highlighters:
        from nbconvert.filters.highlight import Highlight2HTML

        highlighters[language] = _Memo(Highlight2HTML(pygments_lexer=language, parent=exporter))
    # read by from_notebook_node in place of the highlighter it would make for this page (a change
    # to the dict, not the trait: the compiled templates stay)
    exporter.filters["highlight_code"] = highlighters[language]
    return exporter


def export_html(nb: Any) -> str:
    """A self-contained HTML page of a notebook: images as data URIs, no MathJax/require.js/CDN,
    readable offline."""
    info = nb.metadata.get("language_info", {})
    exporter = _exporter(info.get("pygments_lexer", info.get("name")))
    body, _ = exporter.from_notebook_node(_without_scraps(nb))
    return mask_known(sanitize(strip_external(body)))


def _without_scraps(nb: Any) -> Any:
    """A copy without scrapbook's machine-only outputs (no HTML form; they are read from the
    .ipynb)."""
    import copy

    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.get("outputs"):
            cell.outputs = [
                o
                for o in cell.outputs
                if not (
                    "data" in o
                    and o["data"]
                    and all(k.startswith(SCRAP_MIME_PREFIX) for k in o["data"])
                )
            ]
    return out


def strip_external(page: str) -> str:
    """Remove what would fetch from the network: <script src>, <link href>, CDN imports, CSS @import
    (and the CSS comments citing URLs, so the page holds no outside reference at all)."""
    for pattern in _EXTERNAL:
        page = pattern.sub("", page)
    page = _EXTERNAL_MEDIA.sub(
        "<em>[an outside image or frame is not embedded in the evidence]</em>", page
    )

    def clean_style(m: re.Match[str]) -> str:
        css = m.group(2)
        for pattern in _CSS_EXTERNAL:
            css = pattern.sub("", css)
        return m.group(1) + css + m.group(3)

    return _STYLE.sub(clean_style, page)


CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "base-uri 'none'; form-action 'none'"
)
"""The evidence page's Content-Security-Policy: no script, nothing fetched, no form, no base URL."""

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>|<script\b[^>]*/>", re.I | re.S)
_TAG = re.compile(r"<[a-zA-Z][^<>]*>")
_EVENT_ATTR = re.compile(r"""\s+on[a-zA-Z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]*)""")
_SCRIPT_URL = re.compile(
    r"""(\s(?:href|src|action|formaction|xlink:href|data)\s*=\s*["']?)\s*"""
    r"""(?:javascript|vbscript|data\s*:\s*text/html)[^"'\s>]*""",
    re.I,
)


def sanitize(page: str) -> str:
    """The page made inert: the CSP meta first in <head>, no <script> element, no event-handler
    attribute, no script URL. Text (escaped by whoever displayed it) is left as it is."""
    page = _SCRIPT.sub("", page)

    def clean(m: re.Match[str]) -> str:
        return _SCRIPT_URL.sub(r"\1#", _EVENT_ATTR.sub("", m.group(0)))

    page = _TAG.sub(clean, page)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{CSP}"/>'
    head = re.search(r"<head\b[^>]*>", page, re.I)
    if head:
        return page[: head.end()] + "\n" + meta + page[head.end() :]
    return meta + "\n" + page
