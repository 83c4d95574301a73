"""The HTTP(S) server: routes Kubernetes paths to the verbs, answers discovery, Tables, watches,
logs, metrics and the kubelet summary, and the `/_sim/` staging endpoints for tests."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from . import api, authz, identity, openapi, rbac, resources, tables
from .api import Target, parse_bool
from .cluster import Cluster
from .identity import UserInfo
from .resources import METRICS_GROUP, SELF_REVIEWS, Resource
from .status import ApiError, unknown_path
from .store import dumps, rkey
from .streams import StreamsMixin

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4-sim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}
JSON = "application/json"
REQUEST_LOG_MAX = 100_000


class Handler(StreamsMixin):
    """One request; `self.server.cluster` is the simulated cluster."""

    protocol_version = "HTTP/1.1"
    server: SimServer

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet by default
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing --------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, content_type: str = JSON) -> None:
        self._status(code)
        head = (
            f"HTTP/1.1 {code} {self.responses.get(code, ('',))[0]}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Audit-Id: sim\r\nCache-Control: no-cache, private\r\n\r\n"
        ).encode()
        self.wfile.write(head + body)

    def _status(self, code: int) -> None:
        """Record the answer's status in the request log (the first status sent is the one)."""
        entry = getattr(self, "_logged", None)
        if entry is not None and "status" not in entry:
            with self.server.cluster.requests_lock:
                entry["status"] = code

    def _send_json(self, code: int, obj: object) -> None:
        self._send(code, dumps(obj))

    def _error(self, err: ApiError) -> None:
        self._send_json(err.code, err.body())

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path, query = unquote(split.path), dict(parse_qsl(split.query, keep_blank_values=True))
        body = self._body()
        cluster = self.server.cluster
        self._logged: dict | None = None
        try:
            if path.startswith("/_sim/"):
                return self._staging(method, path, body)
            self._logged = {
                "method": method,
                "path": path,
                "query": split.query,
                "content_type": self.headers.get("Content-Type"),
                "user": None,
            }
            with cluster.requests_lock:
                cluster.requests.append(self._logged)
                if len(cluster.requests) > REQUEST_LOG_MAX:
                    del cluster.requests[
                        : REQUEST_LOG_MAX // 2
                    ]  # a long-running demo keeps the recent half
            user = identity.authenticate(
                cluster, self.headers.get("Authorization"), tls=self.server.tls
            )
            with cluster.requests_lock:
                self._logged["user"] = user.name
            self._route(user, method, path, query, body)
        except ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the simulator answers 500 and the server keeps serving
            self._error(
                ApiError(
                    500,
                    "InternalError",
                    f"an error on the server ({type(e).__name__}: {e}) "
                    "has prevented the request from succeeding",
                )
            )

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    # --- staging endpoints -----------------------------------------------------------------
    def _staging(self, method: str, path: str, body: bytes) -> None:
        cluster = self.server.cluster
        data = json.loads(body or b"{}")
        if path == "/_sim/requests" and method == "GET":
            with cluster.requests_lock:
                self._send_json(200, list(cluster.requests))
        elif path == "/_sim/requests" and method == "DELETE":
            with cluster.requests_lock:
                cluster.requests.clear()
            self._send_json(200, {"cleared": True})
        elif path == "/_sim/advance" and method == "POST":
            cluster.advance(float(data["seconds"]))
            self._send_json(200, {"now": cluster.now()})
        elif path == "/_sim/logs" and method == "POST":
            key = (data["namespace"], data["pod"], data["container"])
            now = cluster.now()
            with cluster.store.lock:
                cluster.appended_logs.setdefault(key, []).extend(
                    (now, line) for line in data["lines"]
                )
            self._send_json(200, {"appended": len(data["lines"])})
        elif path == "/_sim/metrics" and method == "POST":
            key = (data["namespace"], data["pod"], data["container"])
            over = cluster.metric_overrides.setdefault(key, {})
            for field in ("cpu_m", "memory_bytes"):
                if data.get(field) is not None:
                    over[field] = float(data[field])
            self._send_json(200, {"metrics": over})
        else:
            raise unknown_path()

    # --- routing ---------------------------------------------------------------------------
    def _authorize(self, user: UserInfo, method: str, path: str, query: dict[str, str]) -> None:
        """Authorize a request from its path alone, before anything looks the resource up (a real
        API server answers 403 for a resource that does not exist too)."""
        cluster = self.server.cluster
        attrs = rbac.request_attributes(user, method, path, query)
        ok, why = rbac.authorize(cluster, attrs)
        if ok and attrs.subresource == "exec" and attrs.verb == "get":
            # a WebSocket upgrade must also be allowed to create pods/exec, as SPDY's POST is
            # (AuthorizePodWebsocketUpgradeCreatePermission, on by default since 1.35)
            attrs = attrs.with_verb("create")
            ok, why = rbac.authorize(cluster, attrs)
        if not ok:
            raise rbac.forbidden(attrs, why)

    def _route(
        self, user: UserInfo, method: str, path: str, query: dict[str, str], body: bytes
    ) -> None:
        cluster = self.server.cluster
        parts = [p for p in path.split("/") if p]
        self._authorize(user, method, path, query)
        if method == "GET" and self._discovery(path, parts):
            return
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise unknown_path()
        if group == METRICS_GROUP and not cluster.metrics_enabled:
            raise unknown_path()
        target = self._target(group, version, rest)
        if target is None:
            raise unknown_path()
        if method == "POST" and (group, target.res.plural) in SELF_REVIEWS:
            review = {
                "selfsubjectaccessreviews": authz.access_review,
                "selfsubjectrulesreviews": authz.rules_review,
            }.get(target.res.plural)
            answer = review(cluster, user, body) if review else authz.self_review(user)
            return self._send_json(201, answer)
        if method == "POST" and target.sub == "token" and target.name and target.namespace:
            return self._send_json(
                201,
                authz.token_request(cluster, target.res, target.namespace, target.name, body),
            )
        cluster.sync()
        if group == METRICS_GROUP:
            return self._metrics(target)
        if target.sub == "proxy":
            return self._summary(target, rest)
        if target.sub == "log":
            return self._logs(target, query)
        if target.sub == "exec":
            return self._exec(target, query, method)
        if method == "GET":
            if target.name is None:
                if parse_bool(query.get("watch")):
                    return self._watch(target, query)
                return self._list(target, query)
            if parse_bool(query.get("watch")):
                query = {**query, "fieldSelector": f"metadata.name={target.name}"}
                return self._watch(Target(target.res, target.namespace), query)
            entry = api.get_entry(cluster, target)
            if target.sub == "scale":
                return self._send_json(200, api.scale_of(entry.obj))
            if self._wants_table():
                return self._send(
                    200,
                    tables.table(
                        rkey(target.res),
                        [entry.obj],
                        now=cluster.now(),
                        include=query.get("includeObject", "Metadata"),
                        raws=[entry.raw],
                    ),
                )
            return self._send(200, entry.raw)
        if method == "POST" and target.name is None:
            return self._send_json(201, api.create(cluster, target, body, query))
        if method == "PUT" and target.name:
            return self._send_json(200, api.replace(cluster, target, body))
        if method == "PATCH" and target.name:
            return self._send_json(
                200, api.patch(cluster, target, body, self.headers.get("Content-Type") or "")
            )
        if method == "DELETE" and target.name:
            return self._send_json(200, api.delete(cluster, target))
        if method == "DELETE" and target.sub is None:
            return self._send_json(200, api.delete_collection(cluster, target, query))
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    def _target(self, group: str, version: str, rest: list[str]) -> Target | None:
        def res(plural: str) -> Resource | None:
            return resources.find(group, version, plural)

        def checked(t: Target) -> Target | None:
            return t if t.sub is None or t.sub in t.res.subresources else None

        if len(rest) >= 3 and rest[0] == "namespaces" and (r := res(rest[2])) and r.namespaced:
            if len(rest) > 5 and rest[4] != "proxy":
                return None
            return checked(
                Target(
                    r,
                    rest[1],
                    rest[3] if len(rest) > 3 else None,
                    rest[4] if len(rest) > 4 else None,
                )
            )
        if not rest or not (r := res(rest[0])):
            return None
        if (r.namespaced and len(rest) > 1) or (len(rest) > 3 and rest[2] != "proxy"):
            return None
        return checked(
            Target(r, None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)
        )

    def _discovery(self, path: str, parts: list[str]) -> bool:
        cluster = self.server.cluster
        metrics = cluster.metrics_enabled
        path = path.rstrip("/") or "/"
        if path == "/version":
            self._send_json(200, VERSION)
        elif path == "/api":
            self._send_json(200, resources.api_versions())
        elif path == "/apis":
            self._send_json(200, resources.api_group_list(metrics=metrics))
        elif path == "/api/v1":
            self._send_json(200, resources.resource_list("", "v1"))
        elif len(parts) == 2 and parts[0] == "apis":
            group = resources.api_group(parts[1], metrics=metrics)
            if group is None:
                raise unknown_path()
            self._send_json(200, group)
        elif len(parts) == 3 and parts[0] == "apis":
            if (parts[1], parts[2]) not in resources.group_versions(metrics=metrics):
                raise unknown_path()
            self._send_json(200, resources.resource_list(parts[1], parts[2]))
        elif path in ("/healthz", "/readyz", "/livez"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
        elif path == "/openapi/v3":
            self._send_json(200, openapi.index(metrics=metrics))
        elif path.startswith("/openapi/v3/"):
            gv = path[len("/openapi/v3/") :].split("/") + ["", ""]
            g, v = ("", gv[1]) if gv[0] == "api" else (gv[1], gv[2])
            if (g, v) not in resources.group_versions(metrics=metrics):
                raise unknown_path()
            self._send_json(200, openapi.gv_document(g, v))
        else:
            return False
        return True

    # --- reads -----------------------------------------------------------------------------
    def _list(self, t: Target, query: dict[str, str]) -> None:
        cluster = self.server.cluster
        with cluster.store.lock:
            rv = cluster.store.rv
            entries = api.select(cluster, t, query)
        entries, meta = api.page(entries, query, rv)
        if self._wants_table():
            body = tables.table(
                rkey(t.res),
                [e.obj for e in entries],
                now=cluster.now(),
                include=query.get("includeObject", "Metadata"),
                raws=[e.raw for e in entries],
                list_meta=meta,
            )
            return self._send(200, body)
        self._send(200, api.list_body(t, entries, meta))


class SimServer(ThreadingHTTPServer):
    """A threading HTTP(S) server bound to loopback, serving one cluster."""

    daemon_threads = True
    allow_reuse_address = True
    # the listen backlog a Go API server gets (the kernel's somaxconn), not socketserver's 5: a
    # client opening ten connections at once (the runbook's concurrent reads) would otherwise see
    # some SYNs dropped and wait a full second for their retransmission
    request_queue_size = socket.SOMAXCONN

    def __init__(
        self,
        cluster: Cluster,
        *,
        port: int = 0,
        tls: tuple[Path, Path] | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.cluster = cluster
        self.verbose = verbose
        self.stopping = threading.Event()  # ends open watches and log follows
        self._tls = tls
        self.tls = tls is not None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.socket = ctx.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def shutdown(self) -> None:
        """Stop accepting requests and end the streams still open."""
        self.stopping.set()
        with self.cluster.store.changed:
            self.cluster.store.changed.notify_all()
        super().shutdown()

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if self._tls is not None:
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sim-k8s-{self.port}",
            daemon=True,
        )
        thread.start()
        return thread
