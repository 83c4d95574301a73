"""The server certificate on every HTTPS health check, against real local HTTPS servers whose
certificates the test makes: expired, self-signed, expiring in 10 days, valid for a year."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from incidentlib.notebook.run import Run
from incidentlib.sandbox.certs import https_servers
from incidentlib.scenarios import outage, triage
from incidentlib.service import probe

pytestmark = pytest.mark.server  # real HTTPS servers on loopback


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    with https_servers(tmp_path_factory.mktemp("certs")) as (ca, urls):
        yield ca, urls


def test_every_certificate_is_reported_even_when_verification_refuses_it(servers) -> None:
    ca, urls = servers
    seen = {name: probe.probe(url, timeout=3, ca_file=str(ca)) for name, url in urls.items()}
    expired, self_signed, expiring, valid = (
        seen[k] for k in ("expired", "self-signed", "expiring", "valid")
    )
    assert expired.status is None and expired.tls_error == "certificate has expired"
    assert expired.error == "TLS error: certificate verify failed: certificate has expired"
    assert -3.2 < expired.tls_days_left < -3.0
    assert expired.tls_subject == "CN=expired.runbook.test,O=Runbook Test"
    assert expired.tls_issuer == "CN=Runbook Test CA,O=Runbook Test"
    assert self_signed.status is None and self_signed.tls_error == "self-signed certificate"
    assert (
        self_signed.tls_subject
        == self_signed.tls_issuer
        == ("CN=self-signed.runbook.test,O=Runbook Test")
    )
    assert 199.9 < self_signed.tls_days_left < 200.1
    assert expiring.ok and expiring.tls_error is None and 9.9 < expiring.tls_days_left < 10.1
    assert valid.ok and valid.tls_error is None and 364.9 < valid.tls_days_left < 365.1
    # the same server without the test CA: refused, and still seen
    unknown = probe.probe(urls["valid"], timeout=3)
    assert unknown.tls_error == "unable to get local issuer certificate"
    assert 364.9 < unknown.tls_days_left < 365.1
    # plain HTTP has no certificate
    frame = probe.latency_frame([expired, valid])
    assert frame[["tls_days_left", "tls_error"]].values.tolist()[0][1] == "certificate has expired"
    assert probe.health_frame([valid], urls["valid"])["tls_error"].tolist() == [None]


def test_findings_expired_and_refused_are_sev1_expiring_soon_sev3(servers) -> None:
    ca, urls = servers

    def found(name: str) -> list[tuple[str, str]]:
        results = probe.health_check(urls[name], count=2, timeout=3, ca_file=str(ca))
        return [(f["severity"], f["title"]) for f in probe.tls_findings(results, url=urls[name])]

    assert found("expired") == [("SEV1", "TLS certificate of 127.0.0.1 expired 3 days ago")]
    assert found("self-signed") == [
        ("SEV1", "TLS certificate of 127.0.0.1 is refused: self-signed certificate")
    ]
    assert found("expiring") == [("SEV3", "TLS certificate of 127.0.0.1 expires in 10 days")]
    assert found("valid") == []


def test_triage_figures_make_an_expired_certificate_sev1(servers) -> None:
    ca, urls = servers
    results = probe.health_check(urls["expired"], count=3, timeout=3, ca_file=str(ca))
    health = triage.health_figures(results)
    assert health["tls_error"] == "certificate has expired" and health["health_ok"] is False
    figures = triage.triage_figures(namespace="production", deployment="backend", health=health)
    severity = triage.suggest_severity(figures, namespace="production", deployment="backend")
    assert (severity.level, severity.rule) == ("SEV1", "certificate-expired")
    assert severity.reason.startswith("the health URL's TLS certificate expired 3.0 days ago")


def test_the_outage_health_check_reports_the_certificate(
    servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, urls = servers
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # what a notebook trusts: the system's CAs
    run = Run("outage", quiet=True)
    cfg = outage.Params.check({"health_url": urls["self-signed"]})
    frame = outage.health_check(run, cfg, timeout=3)
    assert frame["tls_error"].tolist() == ["self-signed certificate"]
    assert [(f["severity"], f["root_cause"]) for f in run.findings] == [("SEV1", True)]
    assert run.figures["probe_failures"] == 1 and run.figures["tls_days_left"] > 199
    run = Run("outage", quiet=True)
    outage.health_check(run, outage.Params.check({"health_url": urls["expiring"]}), timeout=3)
    assert [f["title"] for f in run.findings] == ["TLS certificate of 127.0.0.1 expires in 10 days"]


def test_a_server_that_never_finishes_the_handshake_keeps_the_deadline() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # accepts, then never says a word
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    try:
        t0 = time.monotonic()
        r = probe.probe(f"https://127.0.0.1:{listener.getsockname()[1]}/health", timeout=0.6)
        assert time.monotonic() - t0 < 1.5
        assert r.error == "timeout after 0.6 s (during tls)" and r.tls_days_left is None
    finally:
        stop.set()
        for s in held:
            s.close()
        listener.close()
