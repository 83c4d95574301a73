"""Real local HTTPS servers for the certificate checks (tests and benchmarks): a throwaway CA, and
servers presenting an expired certificate, a self-signed one, one expiring in 10 days and one valid
for a year (all for 127.0.0.1 and localhost), made with `cryptography` when they start.

    with https_servers(folder) as (ca_file, urls):   # urls: {"expired": "https://127.0.0.1:.../health"}
        probe(urls["expired"], ca_file=str(ca_file))
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# name -> (signed by the throwaway CA, valid from, valid until), in days from now
CERTS: dict[str, tuple[bool, timedelta, timedelta]] = {
    "expired": (True, timedelta(days=-90), timedelta(days=-3, hours=-1)),
    "self-signed": (False, timedelta(days=-1), timedelta(days=200, hours=1)),
    "expiring": (True, timedelta(days=-80), timedelta(days=10, hours=1)),
    "valid": (True, timedelta(days=-1), timedelta(days=365, hours=1)),
}


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Runbook Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_certificates(folder: Path) -> dict[str, tuple[Path, Path]]:
    """The throwaway CA (`ca.pem`) and, per name in CERTS, (certificate, key) files."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Runbook Test CA"))
        .issuer_name(_name("Runbook Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=365))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out = {}
    for name, (by_ca, start, end) in CERTS.items():
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(f"{name}.runbook.test")
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject if by_ca else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + start)
            .not_valid_after(now + end)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .sign(ca_key if by_ca else key, hashes.SHA256())
        )
        crt, pem = folder / f"{name}.crt", folder / f"{name}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem.write_bytes(_pem(key))
        out[name] = (crt, pem)
    return out


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def https_server(cert: Path, key: Path) -> Iterator[str]:
    """A real HTTPS server on loopback presenting `cert`; yields its /health URL."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{srv.server_address[1]}/health"
    finally:
        srv.shutdown()
        srv.server_close()


@contextmanager
def https_servers(folder: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """Every server of CERTS at once: (the CA file, {name: health URL})."""
    folder.mkdir(parents=True, exist_ok=True)
    certs = make_certificates(folder)
    with ExitStack() as stack:
        urls = {name: stack.enter_context(https_server(*files)) for name, files in certs.items()}
        yield folder / "ca.pem", urls
