"""strip_external: what would fetch from the network leaves the page; the evidence itself stays
(pure)."""

from __future__ import annotations

from incidentlib.evidence.html import NO_ALT, _exporter, accessible, strip_external

PAGE = """<html><head>
<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js"></script>
<script src=""></script>
<link rel="stylesheet" href="https://fonts.example.com/x.css">
<style>/* https://github.com/some/theme */ @import url("https://cdn.example.com/a.css");
body { color: red; }</style>
<script type="module">
  const mermaid = (await import("https://cdnjs.cloudflare.com/ajax/libs/mermaid/11.10.0/mermaid.esm.min.mjs")).default;
</script>
<script>console.log("local script stays")</script>
</head><body>
<img src="data:image/png;base64,iVBORw0KGgo=" alt="chart">
<p><img src="https://example.com/logo.png"> see
<a href="https://runbooks.example.com/db">the runbook</a></p>
<pre>GET https://api.example.com/health 200</pre>
</body></html>"""


def test_fetching_references_are_removed_and_the_content_kept():
    out = strip_external(PAGE)
    for gone in (
        "require.min.js",
        'src=""',
        "fonts.example.com",
        "github.com/some/theme",
        "cdn.example.com",
        "mermaid.esm",
        "example.com/logo.png",
    ):
        assert gone not in out
    for kept in (
        'console.log("local script stays")',
        "body { color: red; }",
        'src="data:image/png;base64,iVBORw0KGgo="',
        '<a href="https://runbooks.example.com/db">the runbook</a>',
        "GET https://api.example.com/health 200",
        "[an outside image or frame is not embedded in the evidence]",
    ):
        assert kept in out


def _soup_marks(page: str) -> list[tuple[str, object, object]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page, features="html.parser")
    return [(e.name, e.get("tabindex"), e.get("alt")) for e in soup.find_all(["img", "div"])]


def test_accessible_marks_what_nbconverts_soup_marks():
    """The page is finished without BeautifulSoup (most of an export's time): the same images get
    nbconvert's alternative text and the same cell areas a tabindex, and nothing else changes."""
    page = (
        '<div class="jp-Notebook"><div class="jp-Cell jp-CodeCell">'
        '<div class="jp-Cell-inputWrapper">In</div>'
        "<div class='jp-OutputArea-output jp-RenderedHTMLCommon'><img src=\"data:x\">"
        '<img src="data:y" alt="chart"></div>'
        '<div class="jp-OutputArea-output-extra">not this one</div>'
        '<div class="jp-Cell-inputWrapper" tabindex="-1">kept as it is</div>'
        '<pre>&lt;img src=x&gt; &lt;div class="jp-Cell-inputWrapper"&gt; (text)</pre>'
        "</div></div>"
    )
    out = accessible(page)
    assert out.count('tabindex="0"') == 2 and out.count(f'alt="{NO_ALT}"') == 1
    assert _soup_marks(out) == [
        ("div", None, None),
        ("div", None, None),
        ("div", "0", None),
        ("div", "0", None),
        ("img", None, NO_ALT),
        ("img", None, "chart"),
        ("div", None, None),
        ("div", "-1", None),
    ]
    assert "&lt;img src=x&gt;" in out  # text that looks like a tag is left alone


def test_the_exporter_gives_nbconverts_page_but_for_the_soup():
    """The same notebook through nbconvert's own HTMLExporter and through ours (twice: the second
    time from the kept highlighting): the same text, images, alternative texts and tabindexes."""
    import nbformat
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Title\n\n![chart](data:image/png;base64,iVBORw0K)"),
            nbformat.v4.new_code_cell("x = 1  # a <b>comment</b>\nprint(x)"),
            nbformat.v4.new_code_cell(
                "display(HTML(t))",
                outputs=[
                    nbformat.v4.new_output(
                        "display_data",
                        data={"text/html": "<table><tr><td>&lt;pod&gt;</td></tr></table>"},
                    ),
                    nbformat.v4.new_output(
                        "display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<F>"}
                    ),
                ],
            ),
        ]
    )
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    theirs, _ = HTMLExporter(
        template_name="lab", mathjax_url="", require_js_url="", embed_images=True
    ).from_notebook_node(nb)
    for _ in range(2):
        ours, _ = _exporter("ipython3").from_notebook_node(nb)
        a, b = BeautifulSoup(theirs, "html.parser"), BeautifulSoup(ours, "html.parser")
        assert a.get_text() == b.get_text()
        assert _soup_marks(theirs) == _soup_marks(ours)
        assert len(a.find_all("img")) == 2
