"""A self-signed CA and a server certificate for 127.0.0.1, made with the `openssl` command."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import RunbookError


@dataclass(frozen=True)
class Certificates:
    """Paths of the CA certificate and of the server's certificate and key."""

    ca: Path
    cert: Path
    key: Path


def _run(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode:
        raise RunbookError(f"openssl failed ({' '.join(args[:3])}...): {proc.stderr.strip()}")


def make_certificates(directory: Path) -> Certificates:
    """Write ca.crt, server.crt and server.key (SAN IP:127.0.0.1, DNS:localhost) into directory."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RunbookError(
            "--tls needs the openssl command: install it (apt-get install openssl) or drop --tls"
        )
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(
        [
            openssl,
            "req",
            "-x509",
            *ec,
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=incidentlib-sim-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        directory,
    )
    _run(
        [
            openssl,
            "req",
            *ec,
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        directory,
    )
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    _run(
        [
            openssl,
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "3650",
            "-extfile",
            "server.ext",
        ],
        directory,
    )
    return Certificates(directory / "ca.crt", directory / "server.crt", directory / "server.key")
