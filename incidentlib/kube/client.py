"""Connecting to Kubernetes like kubectl does, and the one path every cluster call goes through.

Reads are raw (`_preload_content=False` + `json.loads`): no model objects, 16x faster on big lists.
Every API error or transport failure becomes a KubeAPIError that keeps the server's own message.

Big lists are decoded with Python's cyclic garbage collector paused (`paused_gc`). Decoding a 13 MB
pod list allocates about a million dicts, lists and strings; with the collector on, every 700
allocations start a collection and the growing tree is rescanned again and again: at 5,000 pods
`json.loads` takes 0.21-0.42 s with it and 0.09 s without. Decoded JSON and the frames built from it
hold no reference cycles, so pausing loses nothing: reference counting frees them as usual, and the
collector runs again when the last pause ends. Pauses nest and may overlap across threads (the
reading thread and the notebook's own); the collector is re-enabled only when the last one ends, and
only if it was enabled when the first began."""

from __future__ import annotations

import gc
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KubeAPIError, KubeConfigError

DEFAULT_TIMEOUT = 10.0

_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False
_frozen_by: object | None = None


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic garbage collector paused (reference counting still frees
    memory)."""
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


def freeze_heap(owner: object | None = None) -> None:
    """Move every object allocated so far out of the cyclic collector's sight (`gc.freeze`).

    Called once a notebook has imported its libraries and read its evidence: the modules, pandas'
    internals and thousands of decoded pods live until the kernel ends, and the first full
    collection after a big read otherwise walks all of them, about 80 ms in the middle of a cell.
    Reference counting still frees a frozen object that nothing refers to any more. A notebook run
    again in the same kernel hands the last run's objects back first and collects them once, so
    cycles among them are not kept for the kernel's life.

    `owner`: what is freezing (a notebook run's reading); a second freeze by the same owner only
    adds what was allocated since (the read-ahead freezes the decoded lists, the reading then the
    tables built from them), never hands the first freeze back to a full collection."""
    global _frozen_by
    with _gc_lock:
        if gc.get_freeze_count() and (owner is None or owner is not _frozen_by):
            gc.unfreeze()
            gc.collect()
        gc.freeze()
        _frozen_by = owner


def strip_empty(value: Any) -> Any:
    """Drop null and empty values recursively: the API server's semantic equality ignores them (how
    kubectl matches a template to an existing ReplicaSet)."""
    if isinstance(value, dict):
        out = {k: strip_empty(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "")}
    if isinstance(value, list):
        return [strip_empty(v) for v in value]
    return value


def resolve_kubeconfig(kubeconfig: str | os.PathLike[str] | None = None) -> str | None:
    """The kubeconfig path(s) kubectl would use: the argument, $KUBECONFIG, then ~/.kube/config;
    None if none exists."""
    if kubeconfig:
        return os.fspath(kubeconfig)
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    default = Path.home() / ".kube" / "config"
    return str(default) if default.exists() else None


def _in_cluster() -> bool:
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()
    )


@dataclass
class Cluster:
    """A configured API client and what it points at. Pass it in; never a module-level singleton."""

    api_client: Any
    context: str | None
    server: str
    _version: str | None = field(default=None, repr=False)

    # -- the one execution path -------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        accept: str = "application/json",
    ) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        params = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
        try:
            _, url, hdrs, body_out, _ = self.api_client.param_serialize(
                method,
                path,
                query_params=params,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self.api_client.call_api(
                method, url, header_params=hdrs, body=body_out, _request_timeout=timeout
            )
            data = resp.read()
        except ApiException as e:  # TLS failures and unpreparable requests surface as status 0
            raise KubeAPIError(
                f"cannot reach the Kubernetes API at {self.server} ({_short(e)}); check the "
                "kubeconfig's "
                "certificate-authority and server",
                reason="Unreachable",
            ) from None
        except (HTTPError, OSError) as e:
            raise KubeAPIError(
                f"cannot reach the Kubernetes API at {self.server} ({type(e).__name__}: "
                f"{_short(e)}); "
                "check that the cluster is up and that the kubeconfig's server and context are "
                "right",
                reason="Unreachable",
            ) from None
        if not 200 <= resp.status < 300:
            raise _api_error(resp.status, resp.reason, data, method, path)
        return data

    def get_json(
        self, path: str, *, query: dict[str, Any] | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """GET an API path and return the decoded JSON (no model objects; decoded with the collector
        paused)."""
        data = self._call("GET", path, query=query, timeout=timeout)
        with paused_gc():
            return json.loads(data)

    def get_text(
        self, path: str, *, query: dict[str, Any] | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> str:
        """GET an API path answered as text (container logs)."""
        data = self._call("GET", path, query=query, timeout=timeout, accept="*/*")
        return data.decode("utf-8", errors="replace")

    def list_items(
        self,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        page_size: int = 1000,
    ) -> list[dict[str, Any]]:
        """List a collection, following `continue` pages, and return all its items."""
        q = dict(query or {})
        q.setdefault("limit", page_size)
        items: list[dict[str, Any]] = []
        while True:
            doc = self.get_json(path, query=q, timeout=timeout)
            items.extend(doc.get("items") or [])
            token = (doc.get("metadata") or {}).get("continue")
            if not token:
                return items
            q["continue"] = token

    def write_json(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        content_type: str = "application/json",
        query: dict[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Send a change (POST/PUT/PATCH/DELETE). Only mitigation modules call this, and only with
        apply=True; the one other POST is a SelfSubjectAccessReview (`exec.not_permitted`), which
        asks and changes nothing."""
        data = self._call(
            method, path, query=query, body=body, content_type=content_type, timeout=timeout
        )
        return json.loads(data) if data else {}

    def server_version(self, *, timeout: float = 5.0) -> str:
        """The API server's gitVersion (cached)."""
        if self._version is None:
            self._version = str(
                self.get_json("/version", timeout=timeout).get("gitVersion", "unknown")
            )
        return self._version

    def close(self) -> None:
        try:
            self.api_client.close()
        except Exception:  # pragma: no cover - closing never matters for evidence
            pass


def _query_value(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def _short(e: BaseException) -> str:
    text = str(e)
    reason = getattr(e, "reason", None)
    if reason is not None:
        text = str(reason)
    return text if len(text) < 300 else text[:300] + "..."


def _api_error(
    status: int, reason: str | None, body: bytes | None, method: str, path: str
) -> KubeAPIError:
    message = None
    try:
        doc = json.loads(body or b"")
        message = doc.get("message")
        reason = doc.get("reason") or reason
    except (TypeError, ValueError, AttributeError):
        pass
    hint = {
        401: "the credentials were refused; refresh them (kubectl config view, re-login)",
        403: "this identity may not do that; ask for read access (get/list/watch) on the namespace"
        if method == "GET"
        else "this identity may not change that; mitigations need the incident-runbook-mitigate "
        "role in this namespace (deploy/overlays/mitigations)",
        404: "check the name and the namespace (kubectl get ... -A)",
    }.get(status, "")
    text = f"{method} {path} answered {status} {reason}: {message or reason}"
    if status == 403:  # the words a reader looks for, first: RBAC refused it, nothing happened
        text = f"not permitted: {text}"
    return KubeAPIError(text + (f"; {hint}" if hint else ""), status=status, reason=reason)


def connect(
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    verify_ssl: bool | None = None,
) -> Cluster:
    """Configure a client like kubectl: `kubeconfig` path, else $KUBECONFIG, else ~/.kube/config,
    else in-cluster.

    An unreadable kubeconfig or an unknown context is a KubeConfigError naming what exists."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    path = resolve_kubeconfig(kubeconfig)
    if path is None:
        if not _in_cluster():
            raise KubeConfigError(
                "no kubeconfig found: pass kubeconfig=PATH, set $KUBECONFIG, create "
                "~/.kube/config, "
                "or run inside a pod with a service account"
            )
        if context:
            raise KubeConfigError(
                f"context {context!r} was asked for, but there is no kubeconfig (running "
                "in-cluster)"
            )
        config.load_incluster_config(client_configuration=cfg)
        used_context: str | None = "in-cluster"
    else:
        for part in path.split(os.pathsep):
            if part and kubeconfig and not os.access(part, os.R_OK):
                raise KubeConfigError(
                    f"kubeconfig {part!r} cannot be read: "
                    f"{'no such file' if not os.path.exists(part) else 'permission denied'}"
                )
        try:
            contexts, current = config.list_kube_config_contexts(config_file=path)
        except ConfigException as e:
            raise KubeConfigError(f"kubeconfig {path!r} is not usable: {e}") from None
        except Exception as e:  # yaml errors, IO errors
            raise KubeConfigError(
                f"kubeconfig {path!r} cannot be read: {type(e).__name__}: {e}"
            ) from None
        names = [c["name"] for c in contexts or []]
        if context and context not in names:
            raise KubeConfigError(
                f"context {context!r} is not in kubeconfig {path!r}; contexts there: "
                f"{', '.join(names) or '(none)'}"
            )
        if not context and not current:
            raise KubeConfigError(
                f"kubeconfig {path!r} has no current-context; pass context=NAME, one of: "
                f"{', '.join(names) or '(none)'}"
            )
        used_context = context or (current or {}).get("name")
        try:
            config.load_kube_config(
                config_file=path,
                context=used_context,
                client_configuration=cfg,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError) as e:
            raise KubeConfigError(
                f"context {used_context!r} of kubeconfig {path!r} is not usable: {e}"
            ) from None
    if verify_ssl is not None:
        cfg.verify_ssl = verify_ssl
    cfg.retries = 1
    api = client.ApiClient(configuration=cfg)
    return Cluster(api_client=api, context=used_context, server=cfg.host)
