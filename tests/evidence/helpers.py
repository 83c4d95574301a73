"""Shared checks of the evidence tests (not fixtures: plain functions)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

HTTP_REF = re.compile(r"https?://[^\s\"'<>)]+")


def archived_files(root: Path) -> list[Path]:
    """Every file an archive holds (ipynb, html, manifest), hidden lock files aside."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def find_canaries(files: list[Path], canaries: list[str]) -> list[tuple[str, str]]:
    """(file, canary) for every canary found in any file, read as bytes (any encoding of the
    text)."""
    hits = []
    for f in files:
        data = f.read_bytes()
        for c in canaries:
            if c.encode() in data:
                hits.append((f.name, c))
    return hits


def outside_references(page: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """Every http(s) URL in an HTML page that is not one of the allowed prefixes (the user's
    parameters)."""
    return sorted({u for u in HTTP_REF.findall(page) if not u.startswith(allowed)})


FETCHING = re.compile(
    r"""(?:\b(?:src|href|srcset|action|data|poster)\s*=\s*["']?|url\(\s*["']?|@import\s+["']|import\s*\(\s*["'])(https?:)?//""",
    re.I,
)


def fetching_references(page: str) -> list[str]:
    """URLs in positions a browser follows or loads (src, href, url(), @import, import()), with
    their context."""
    return [page[max(0, m.start() - 40) : m.end() + 60] for m in FETCHING.finditer(page)]


def text_urls_of_notebook(nb_path: Path, parameters: dict) -> tuple[str, ...]:
    """URLs a notebook's own text carries (cell sources: markdown words, examples in comments) and
    its parameters: shown as text, never loaded."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    text = (
        "\n".join(c.source for c in nb.cells)
        + "\n"
        + "\n".join(str(v) for v in parameters.values())
    )
    return tuple(sorted(set(HTTP_REF.findall(text))))


def chromium_args(binary: str, profile: str) -> list[str]:
    """Headless chromium with the network off (no proxy that works, no name that resolves)."""
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--hide-scrollbars",
    ]


def screenshot(binary: str, html: Path, png: Path, *, size: str = "1200,2000") -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        r = subprocess.run(
            [
                *chromium_args(binary, profile),
                f"--window-size={size}",
                f"--screenshot={png}",
                html.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert png.exists(), f"chromium wrote no screenshot: {r.stderr[-2000:]}"


def loaded_images(binary: str, html: Path, workdir: Path) -> tuple[int, int]:
    """(images in the page, images that decoded) after chromium loaded it offline, read from
    --dump-dom."""
    probe = workdir / f"probe-{html.name}"
    # the page allows no script: the probe gets a nonce of its own, the page's CSP otherwise stays
    # (images still only from data: URIs)
    script = (
        "<script nonce=\"probe\">window.addEventListener('load', () => { "
        "const imgs = [...document.images]; "
        "document.body.setAttribute('data-images', imgs.length + '/' + "
        "imgs.filter(i => i.complete && i.naturalWidth > 0).length); });</script>"
    )
    page = html.read_text(encoding="utf-8")
    page = re.sub(
        r'(http-equiv="Content-Security-Policy" content="[^"]*)"',
        lambda m: m.group(1) + "; script-src 'nonce-probe'\"",
        page,
        count=1,
    )
    probe.write_text(page.replace("</body>", script + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        r = subprocess.run(
            [
                *chromium_args(binary, profile),
                "--virtual-time-budget=5000",
                "--dump-dom",
                probe.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    m = re.search(r'data-images="(\d+)/(\d+)"', r.stdout)
    assert m, f"chromium did not run the probe: {r.stderr[-2000:]}"
    return int(m.group(1)), int(m.group(2))


def red_pixels(png: Path) -> int:
    """Pixels of the fixture chart's pure red bars in a screenshot."""
    import matplotlib.image as mpimg

    img = mpimg.imread(str(png))
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return int(((r > 0.9) & (g < 0.15) & (b < 0.15)).sum())


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def kernels_of(pid: int, timeout: float = 60) -> list:
    """The ipykernel processes a `runbook run` process started, once there is one (an empty list
    when none came up within `timeout` seconds)."""
    import time

    import psutil

    me = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    kernels: list[psutil.Process] = []
    while time.monotonic() < deadline and not kernels:
        kernels = [c for c in me.children(recursive=True) if "ipykernel" in " ".join(c.cmdline())]
        time.sleep(0.2)
    return kernels


def try_lock(incident: Path, mode: int) -> bool:
    """Whether another open file description gets the incident's lock (`mode`: fcntl.LOCK_SH or
    LOCK_EX) at once."""
    import fcntl

    with open(incident / ".manifest.lock", "a+") as f:
        try:
            fcntl.flock(f.fileno(), mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return True


def notebook_with_scraps(**scraps: object) -> bytes:
    """An executed notebook's JSON (UTF-8) holding these scraps, as scrapbook glues them."""
    from incidentlib.scraps import SCRAP_MIME

    outputs = [
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {
                SCRAP_MIME.format(encoder="json"): {
                    "name": name,
                    "data": value,
                    "encoder": "json",
                    "version": 1,
                }
            },
        }
        for name, value in scraps.items()
    ]
    cell = {"cell_type": "code", "source": "", "metadata": {}, "outputs": outputs}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb).encode()
