"""A hostile cluster and database: markup in images, annotations, change-causes, event messages, log
lines, pod and container names, and query text reaches the evidence as text, never as live HTML.

The staged values would set `data-pwned` on the page's <body> if any of them ran; the archived HTML
is parsed (no <script>, no event-handler attribute, no script URL) and opened in headless chromium
(the DOM it builds has no `data-pwned`), and the notebook itself shows the values escaped."""

from __future__ import annotations

import json
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from incidentlib import evidence

from .conftest import SCENARIO_NOTEBOOKS
from .helpers import chromium_args

pytestmark = [pytest.mark.sim, pytest.mark.notebook]

PWN = "document.body.setAttribute('data-pwned','{}')"
IMG = f'registry.example.com/backend:<img src=x onerror="{PWN.format("image")}">'
SVG = f'<svg onload="{PWN.format("svg")}">'
LINK = "[open the runbook](javascript:alert(1))"
CAUSE = f'deploy <img src=x onerror="{PWN.format("cause")}"> {LINK}'
LOG = f"FATAL <script>{PWN.format('log')}</script> {LINK}"
POD = f'evil-<img src=x onerror="{PWN.format("pod")}">'

HOSTILE = {
    "include": ["bad-rollout"],
    "images": {
        IMG: {
            "mode": "crashloop",
            "exitCode": 1,
            "reason": "Error",
            "runSeconds": 4,
            "previousLog": ["INFO starting", LOG],
        },
    },
    "deployments": [
        {
            "name": "backend",
            "namespace": "production",
            "replicas": 2,
            "container": f"backend{SVG}",
            "podAnnotations": {"note": f'<iframe src="javascript:{PWN.format("annotation")}">'},
            "revisions": [
                {
                    "image": "registry.example.com/backend:2.3.1",
                    "age": "3d",
                    "changeCause": "deploy 2.3.1",
                },
                {"image": IMG, "age": "11m", "changeCause": CAUSE},
            ],
            "logs": {"rate": 2, "errorShare": 0.5, "info": ["INFO fine"], "errors": [LOG]},
        }
    ],
    "pods": [
        {
            "name": POD,
            "namespace": "production",
            "image": "registry.example.com/x:1",
            "node": "node-1",
        }
    ],
}


class _Page(HTMLParser):
    """Every element, its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    return p


def _assert_inert(page: str) -> str:
    """No script element, no event handler, no script URL; the CSP first in <head>. Returns the
    page's text."""
    parsed = _parse(page)
    assert not [t for t, _ in parsed.tags if t == "script"]
    handlers = [(t, k) for t, a in parsed.tags for k in a if k.lower().startswith("on")]
    assert handlers == []
    urls = [
        (t, v)
        for t, a in parsed.tags
        for k, v in a.items()
        if v and k in ("href", "src", "action", "data") and "javascript:" in v.lower()
    ]
    assert urls == []
    metas = [
        a
        for t, a in parsed.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert metas and metas[0]["content"].startswith("default-src 'none'; img-src data:")
    return "".join(parsed.text)


def _dom(chromium: str, html: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        r = subprocess.run(
            [*chromium_args(chromium, profile), "--dump-dom", html.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert "<body" in r.stdout, r.stderr[-2000:]
    return r.stdout


def test_cluster_markup_is_text_in_the_outage_evidence(
    sim_cluster, chromium, tmp_path: Path
) -> None:
    sim = sim_cluster(HOSTILE)
    result = evidence.run_notebook(
        SCENARIO_NOTEBOOKS / "outage.ipynb",
        outputs=tmp_path / "outputs",
        incident="INC-HOSTILE",
        parameters={
            "kubeconfig": str(sim.kubeconfig),
            "namespace": "production",
            "app_deployment": "backend",
        },
    )
    assert result.ok, result.error
    assert result.html is not None
    page = result.html.read_text()
    text = _assert_inert(page)
    # the values did reach the page, as the characters they are
    assert "onerror=\"document.body.setAttribute('data-pwned','image')\"" in text  # rollouts, diff
    assert "onerror=\"document.body.setAttribute('data-pwned','cause')\"" in text  # change-cause
    assert "<script>document.body.setAttribute('data-pwned','log')</script>" in text  # log tail
    assert "evil-<img src=x" in text  # the pod's name
    assert "backend<svg onload=" in text  # the container's name
    assert LINK in text  # a Markdown link stays text: it never became <a href="javascript:...">

    dom = _dom(chromium, result.html)
    body = dom[dom.index("<body") : dom.index(">", dom.index("<body")) + 1]
    assert "data-pwned" not in body  # not one staged value ran

    nb = json.loads(result.notebook.read_text())
    html_outputs = [
        o["data"]["text/html"]
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]
    joined = "".join("".join(h) if isinstance(h, list) else h for h in html_outputs)
    assert "&lt;img src=x onerror=" in joined  # escaped in the notebook's own HTML outputs
    assert "<img src=x onerror" not in joined
    markdown_outputs = [
        o for c in nb["cells"] for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})
    ]
    assert markdown_outputs == []  # data is never shown as Markdown


@pytest.mark.pg
def test_query_text_markup_is_text_in_the_database_evidence(
    pg_dsn, stager, chromium, tmp_path: Path
) -> None:
    hostile = f'SELECT pg_sleep(30) AS "<img src=x onerror=""{PWN.format("query")}"">"'
    busy = stager.long_query(30, sql_text=hostile, running_for=1.5)  # threshold 1s below
    result = evidence.run_notebook(
        SCENARIO_NOTEBOOKS / "database.ipynb",
        outputs=tmp_path / "outputs",
        incident="INC-HOSTILE",
        parameters={"dsn": pg_dsn, "long_query_threshold": "1s"},
    )
    assert result.ok, result.error
    assert result.html is not None
    text = _assert_inert(result.html.read_text())
    assert f"pid {busy}" in text
    assert 'AS "<img src=x onerror=""document.body' in text  # the quoted identifier, as text
    dom = _dom(chromium, result.html)
    body = dom[dom.index("<body") : dom.index(">", dom.index("<body")) + 1]
    assert "data-pwned" not in body
