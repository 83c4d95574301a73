"""The evidence's HTML: a self-contained page per executed notebook (images embedded, nothing
fetched from the network, no scraps' raw payloads), readable offline by whoever writes the
post-mortem."""

from __future__ import annotations

import re
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


def export_html(nb: Any) -> str:
    """A self-contained HTML page of a notebook: images as data URIs, no MathJax/require.js/CDN,
    readable offline."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab", mathjax_url="", require_js_url="", embed_images=True
    )
    body, _ = exporter.from_notebook_node(_without_scraps(nb))
    return mask_known(strip_external(body))


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
