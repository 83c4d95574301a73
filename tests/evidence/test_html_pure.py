"""strip_external: what would fetch from the network leaves the page; the evidence itself stays
(pure)."""

from __future__ import annotations

from incidentlib.evidence.html import strip_external

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
