"""Who is asking: the bearer tokens the simulated cluster accepts, and the ServiceAccount tokens it
issues through the TokenRequest API (`kubectl create token SA -n NS`).

    the kubeconfig's token (ADMIN_TOKEN)   `kubernetes-admin` in `system:masters`; with staged
                                           restrictions (`start(forbidden_namespaces=...)`) it is
                                           the ServiceAccount `ops/runbook` instead (STAGED_USER)
    a ServiceAccount token                 `system:serviceaccount:<ns>:<name>`, groups
                                           `system:serviceaccounts`, `system:serviceaccounts:<ns>`
    no token, over HTTPS                   `system:anonymous` (`system:unauthenticated`)
    no token, over plain HTTP              the kubeconfig's identity: kubectl (clientcmd) sends a
                                           kubeconfig's credentials only to an HTTPS server, so a
                                           plain-HTTP cluster is like the old insecure port
    any other token, an expired one, one   401 Unauthorized, as the real server answers
    whose ServiceAccount is gone

ServiceAccount tokens are JWTs with the claims a real bound token carries (iss, sub, aud, exp,
`kubernetes.io`), signed HS256 with a key of this cluster; they expire on the wall clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .status import ApiError

if TYPE_CHECKING:
    from .cluster import Cluster

ADMIN_TOKEN = "sim-not-a-secret"
ADMIN_USER = "kubernetes-admin"
MASTERS = "system:masters"
STAGED_USER = "system:serviceaccount:ops:runbook"
ISSUER = "https://kubernetes.default.svc.cluster.local"
MIN_SECONDS, DEFAULT_SECONDS, MAX_SECONDS = 600, 3600, 2**32


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity (user.Info)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        uid,
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(
    cluster: Cluster,
    sa: dict,
    *,
    seconds: int = DEFAULT_SECONDS,
    audiences: list[str] | None = None,
) -> tuple[str, float]:
    """A signed token for the ServiceAccount object `sa`: (token, expiry as epoch seconds)."""
    now = int(time.time())
    meta = sa["metadata"]
    claims: dict = {
        "aud": audiences or [ISSUER],
        "exp": now + seconds,
        "iat": now,
        "nbf": now,
        "iss": ISSUER,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {
            "namespace": meta["namespace"],
            "serviceaccount": {"name": meta["name"], "uid": meta["uid"]},
        },
        "sub": f"system:serviceaccount:{meta['namespace']}:{meta['name']}",
    }
    head = _b64(json.dumps({"alg": "HS256", "kid": "sim"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(cluster.token_key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}", float(claims["exp"])


def kubeconfig_user(cluster: Cluster) -> UserInfo:
    """Who the kubeconfig's token (ADMIN_TOKEN) is."""
    if cluster.staged:
        return service_account_user("ops", "runbook")
    return UserInfo(ADMIN_USER, (MASTERS, "system:authenticated"))


def authenticate(cluster: Cluster, authorization: str | None, *, tls: bool) -> UserInfo:
    """The identity behind an Authorization header; 401 for a token this cluster did not issue,
    one that expired, or one whose ServiceAccount was deleted (or recreated)."""
    if not authorization:
        return ANONYMOUS if tls else kubeconfig_user(cluster)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized()
    if hmac.compare_digest(token, ADMIN_TOKEN):
        return kubeconfig_user(cluster)
    parts = token.split(".")
    if len(parts) != 3:
        raise unauthorized()
    want = hmac.new(cluster.token_key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        claims = json.loads(_unb64(parts[1]))
        good = hmac.compare_digest(_unb64(parts[2]), want)
    except ValueError:
        raise unauthorized() from None
    if not good or not isinstance(claims, dict) or ISSUER not in (claims.get("aud") or []):
        raise unauthorized()
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
        raise unauthorized()
    k8s = claims.get("kubernetes.io") or {}
    ns, sa = k8s.get("namespace", ""), (k8s.get("serviceaccount") or {})
    entry = cluster.store.get("/serviceaccounts", ns, sa.get("name", ""))
    if entry is None or entry.obj["metadata"].get("uid") != sa.get("uid"):
        raise unauthorized()
    return service_account_user(ns, sa["name"], sa["uid"])
