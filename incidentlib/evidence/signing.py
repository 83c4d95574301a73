"""Signing the manifest's entries with Ed25519, so that a consistent rewrite of the evidence (a
file, its sha256 and every hash after it) is detected by whoever holds the public key.

    runbook keygen DIR                     DIR/signing.key (private, mode 600), DIR/signing.pub
    runbook run ... --signing-key FILE     or RUNBOOK_SIGNING_KEY=FILE (or the PEM text itself)
    runbook verify outputs/INC-... --public-key DIR/signing.pub

A signature covers one entry's hash, and each entry's hash covers the hash of the entry before it
(`manifest.py`), so the last signature vouches for the whole chain up to it. Keep the private key
where the runbooks run (a Kubernetes Secret, a vault), and the public key with the people who
audit."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidParameter

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

ENV = "RUNBOOK_SIGNING_KEY"
ALGORITHM = "ed25519"


def generate(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """A new key pair in `directory`: signing.key (PKCS#8 PEM, mode 600) and signing.pub; never
    overwrites a key that is there."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    root = Path(directory)
    key_path, pub_path = root / "signing.key", root / "signing.pub"
    for p in (key_path, pub_path):
        if p.exists():
            raise InvalidParameter(
                f"{p} exists already: keygen never overwrites a key; choose "
                "another directory or remove the old pair on purpose"
            )
    root.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    pub_path.write_bytes(public)
    return key_path, pub_path


def load_private(source: str | os.PathLike[str] | None = None) -> Ed25519PrivateKey | None:
    """The signing key: from `source` (a file, or PEM text), else from $RUNBOOK_SIGNING_KEY; None
    when neither is set (the archive is then chained but not signed)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    value = os.fspath(source) if source is not None else os.environ.get(ENV)
    if not value:
        return None
    where = "the PEM text given" if value.lstrip().startswith("-----BEGIN") else repr(value)
    try:
        data = (
            value.encode() if value.lstrip().startswith("-----BEGIN") else Path(value).read_bytes()
        )
    except OSError as e:
        raise InvalidParameter(
            f"signing key {where} cannot be read ({e.strerror}); give the "
            "signing.key that `runbook keygen DIR` wrote"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise InvalidParameter(f"signing key {where} is not a PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidParameter(
            f"signing key {where} is not an Ed25519 key; make one with `runbook keygen DIR`"
        )
    return key


def load_public(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """The public key that checks the signatures (signing.pub)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as e:
        raise InvalidParameter(
            f"public key {os.fspath(path)!r} cannot be read ({e.strerror})"
        ) from None
    except (ValueError, TypeError) as e:
        raise InvalidParameter(
            f"public key {os.fspath(path)!r} is not a PEM public key ({e})"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidParameter(f"public key {os.fspath(path)!r} is not an Ed25519 key")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of the sha256 of its raw bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, entry_sha256: str) -> dict[str, str]:
    """The signature of one entry's hash: {"alg", "key_id", "value" (base64)}."""
    value = base64.b64encode(key.sign(entry_sha256.encode("ascii"))).decode("ascii")
    return {"alg": ALGORITHM, "key_id": key_id(key.public_key()), "value": value}


def file_message(run_id: str, path: str, sha256: str) -> str:
    """What a file's own signature covers: the run, the file's path and its sha256, so a verify that
    fails names the file that was rewritten."""
    return f"{run_id}\n{path}\n{sha256}"


def check(public: Ed25519PublicKey, entry_sha256: str, signature: object) -> str | None:
    """Why a signature does not hold for this entry hash (or any message signed by `sign`), or None
    when it does."""
    from cryptography.exceptions import InvalidSignature

    if not isinstance(signature, dict) or not isinstance(signature.get("value"), str):
        return "it is not signed"
    if signature.get("alg") != ALGORITHM:
        return f"its signature's algorithm is {signature.get('alg')!r}, not {ALGORITHM}"
    if signature.get("key_id") != key_id(public):
        return (
            f"it is signed by key {signature.get('key_id')}, not by the public key given "
            f"({key_id(public)})"
        )
    try:
        public.verify(
            base64.b64decode(signature["value"], validate=True), entry_sha256.encode("ascii")
        )
    except (InvalidSignature, ValueError):
        return "its signature does not match its content"
    return None
