"""The streaming and node-side answers of the API server, as a mixin of the request handler:
watches (chunked, with bookmarks and resumption), pod logs (incl. follow), the metrics API and
the kubelet summary through the node proxy."""

from __future__ import annotations

import select
import socket
import ssl
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, urlsplit

from . import api, commands, resources, tables, telemetry
from . import websocket as ws
from .api import Target, parse_bool
from .clock import go_duration, parse_iso
from .cluster import PODS
from .logs import LogQuery
from .selectors import SelectorError, parse_fields, parse_labels
from .status import ApiError, bad_request, unknown_path
from .store import Gone, dumps, rkey

if TYPE_CHECKING:
    import threading

    from .cluster import Cluster


class StreamingServer(Protocol):
    """What the streams need of the server that owns the handler (`server.SimServer` is one)."""

    cluster: Cluster
    stopping: threading.Event


BOOKMARK_EVERY = 2.0
WATCH_DEFAULT_SECONDS = 1800.0
EXEC_START_S = 0.02  # the runtime starting the exec'd process (see _exec)


class StreamsMixin(BaseHTTPRequestHandler):
    """Watch, logs, metrics and summary for `server.Handler`."""

    server: StreamingServer  # type: ignore[assignment]

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        raise NotImplementedError

    def _send_json(self, code: int, obj: object) -> None:
        raise NotImplementedError

    def _status(self, code: int) -> None:
        raise NotImplementedError

    def _stream_over(self) -> bool:
        """True once the server stops or the client hung up (a plain socket reads EOF)."""
        if self.server.stopping.is_set():
            return True
        try:
            ready, _, _ = select.select([self.connection], [], [], 0)
            if ready and not isinstance(self.connection, ssl.SSLSocket):
                return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
        return False

    def _wants_table(self) -> bool:
        return "as=Table" in (self.headers.get("Accept") or "")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _watch_event(
        self, t: Target, type_: str, obj: dict, raw: bytes, include: str, table: bool
    ) -> bytes:
        if table and type_ != "BOOKMARK":
            payload = tables.table(
                rkey(t.res), [obj], now=self.server.cluster.now(), include=include, raws=[raw]
            )
        else:
            payload = raw
        return b'{"type":"' + type_.encode() + b'","object":' + payload + b"}\n"

    def _watch(self, t: Target, query: dict[str, str]) -> None:
        cluster = self.server.cluster
        table = self._wants_table()
        include = query.get("includeObject", "Metadata")
        bookmarks = parse_bool(query.get("allowWatchBookmarks"))
        timeout = WATCH_DEFAULT_SECONDS
        if query.get("timeoutSeconds"):
            timeout = float(query["timeoutSeconds"])
        elif query.get("timeout"):
            timeout = go_duration(query["timeout"])
        deadline = time.monotonic() + timeout
        try:
            by_label, by_field = (
                parse_labels(query.get("labelSelector")),
                parse_fields(query.get("fieldSelector")),
            )
        except SelectorError as e:
            raise bad_request(str(e)) from e
        rv_param = query.get("resourceVersion", "")
        key = rkey(t.res)
        with cluster.store.lock:
            cursor = cluster.store.rv
            initial = api.select(cluster, t, query) if rv_param in ("", "0") else []
            if rv_param not in ("", "0"):
                try:
                    cursor = int(rv_param)
                    cluster.store.changes_since(cursor)
                except ValueError as e:
                    raise bad_request(f"invalid resourceVersion {rv_param!r}") from e
                except Gone as e:
                    raise ApiError(410, "Expired", str(e)) from e
        self._status(200)
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nCache-Control: no-cache, private\r\n\r\n"
        )
        for item in initial:
            self._chunk(self._watch_event(t, "ADDED", item.obj, item.raw, include, table))
        last_bookmark = time.monotonic()
        while not self._stream_over():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            cluster.sync()
            with cluster.store.changed:
                try:
                    changes = cluster.store.changes_since(cursor)
                except Gone as e:
                    err = ApiError(410, "Expired", str(e)).body()
                    self._chunk(b'{"type":"ERROR","object":' + dumps(err) + b"}\n")
                    break
                if not changes:
                    cluster.store.changed.wait(min(remaining, 0.5))
                    changes = cluster.store.changes_since(cursor)
                cursor = cluster.store.rv
            for c in changes:
                if c.key != key or (t.namespace is not None and c.namespace != t.namespace):
                    continue
                obj = c.entry.obj
                if by_label(obj["metadata"].get("labels") or {}) and by_field(obj):
                    self._chunk(self._watch_event(t, c.type, obj, c.entry.raw, include, table))
            if bookmarks and time.monotonic() - last_bookmark >= BOOKMARK_EVERY:
                mark = {
                    "kind": t.res.kind,
                    "apiVersion": t.res.api_version,
                    "metadata": {
                        "resourceVersion": str(cursor),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                self._chunk(self._watch_event(t, "BOOKMARK", mark, dumps(mark), include, False))
                last_bookmark = time.monotonic()
        self.wfile.write(b"0\r\n\r\n")

    def _logs(self, t: Target, query: dict[str, str]) -> None:
        cluster = self.server.cluster
        pod = api.get_entry(cluster, Target(t.res, t.namespace, t.name)).obj
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        container = query.get("container") or (names[0] if len(names) == 1 else "")
        if not container:
            raise bad_request(
                f"a container name must be specified for pod {t.name}, choose one of: "
                f"[{' '.join(names)}]"
            )
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {t.name}")
        if not pod["spec"].get("nodeName"):
            raise bad_request(f"pod {t.name} does not have a host assigned")
        q = _log_query(query)
        previous = parse_bool(query.get("previous"))
        body = cluster.pod_logs(pod, container, q, previous=previous)
        if body is None:
            if previous:
                raise bad_request(
                    f'previous terminated container "{container}" in pod "{t.name}" not found'
                )
            cs: dict = next(
                (s for s in pod["status"].get("containerStatuses") or [] if s["name"] == container),
                {},
            )
            reason = ((cs.get("state") or {}).get("waiting") or {}).get(
                "reason", "ContainerCreating"
            )
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                raise bad_request(
                    f'container "{container}" in pod "{t.name}" is waiting to start: trying and '
                    "failing to pull image"
                )
            raise bad_request(
                f'container "{container}" in pod "{t.name}" is waiting to start: {reason}'
            )
        if not parse_bool(query.get("follow")):
            return self._send(200, body, "text/plain")
        self._follow(pod, container, q, body)

    def _follow(self, pod: dict, container: str, q: LogQuery, first: bytes) -> None:
        cluster = self.server.cluster
        self._status(200)
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        if first:
            self._chunk(first)
        seen = cluster.now()
        end = time.monotonic() + 600
        while time.monotonic() < end and not self._stream_over():
            time.sleep(0.25)
            now = cluster.now()
            later = LogQuery(since_time=seen + 1e-6, timestamps=q.timestamps)
            body = cluster.pod_logs(pod, container, later, previous=False) or b""
            lines = [ln for ln in body.split(b"\n") if ln]
            seen = now
            if lines:
                self._chunk(b"\n".join(lines) + b"\n")
        self.wfile.write(b"0\r\n\r\n")

    # --- exec over WebSocket ----------------------------------------------------------------
    def _exec(self, t: Target, query: dict[str, str], method: str) -> None:
        """`pods/exec` as the API server and the kubelet answer it: refused for a pod without a
        node or a container that is not running, else run over the WebSocket stream protocol
        (v5.channel.k8s.io or v4.channel.k8s.io): stdout, stderr, then the Status on channel 3."""
        cluster = self.server.cluster
        pod = api.get_entry(cluster, Target(t.res, t.namespace, t.name)).obj
        params = parse_qs(urlsplit(self.path).query)
        argv = params.get("command") or []
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        container = (params.get("container") or [""])[0] or (names[0] if names else "")
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {t.name}")
        if not pod["spec"].get("nodeName"):
            raise bad_request(f"pod {t.name} does not have a host assigned")
        cs: dict = next(
            (
                s
                for s in (pod.get("status") or {}).get("containerStatuses") or []
                if s["name"] == container
            ),
            {},
        )
        if "running" not in (cs.get("state") or {}) or pod["metadata"].get("deletionTimestamp"):
            # the kubelet's answer, passed through by the API server (kubectl: "unable to upgrade
            # connection: container not found")
            return self._send(500, f'container not found ("{container}")'.encode(), "text/plain")
        if (self.headers.get("Upgrade") or "").lower() != "websocket":
            raise bad_request(
                "exec needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io); this "
                "API server speaks no SPDY"
            )
        offered = [
            p.strip()
            for p in (self.headers.get("Sec-WebSocket-Protocol") or "").split(",")
            if p.strip()
        ]
        protocol = next((p for p in offered if p in ws.PROTOCOLS), None)
        if protocol is None:
            raise bad_request(
                f"none of the offered subprotocols {offered} is supported; "
                f"supported: {', '.join(ws.PROTOCOLS)}"
            )
        result = commands.run(cluster, pod, container, argv, now=cluster.now())
        self._status(101)
        self.wfile.write(ws.handshake(self.headers.get("Sec-WebSocket-Key") or "", protocol))
        self.wfile.flush()
        # A container runtime takes a moment to start the process before its first byte: kubectl
        # releases whose WebSocket executor reads before creating its streams (client-go fixed
        # that race later with a readyChan) drop output that arrives with the handshake itself
        # ("Unknown stream id 1, discarding message").
        time.sleep(EXEC_START_S)
        out = b""
        for channel, text in ((1, result.stdout), (2, result.stderr)):
            data = text.encode()
            for i in range(0, len(data), 32 * 1024):
                out += ws.frame(bytes([channel]) + data[i : i + 32 * 1024])
        out += ws.frame(b"\x03" + dumps(ws.exit_status(argv, result.exit_code)))
        out += ws.close_frame()
        self.wfile.write(out)
        self.wfile.flush()
        ws.drain(self.connection, self.rfile)  # type: ignore[arg-type]
        self.close_connection = True

    def _metrics(self, t: Target) -> None:
        cluster = self.server.cluster
        now = cluster.now()
        if t.res.plural == "nodes":
            if t.name:
                nodes = resources.find("", "v1", "nodes")
                node = api.get_entry(cluster, Target(nodes, None, t.name)).obj  # type: ignore[arg-type]
                return self._send_json(200, telemetry.node_metrics(cluster, node, now))
            items = telemetry.all_node_metrics(cluster, now)
            return self._send_json(
                200,
                {
                    "kind": "NodeMetricsList",
                    "apiVersion": telemetry.METRICS_API,
                    "metadata": {},
                    "items": items,
                },
            )
        pods_res = resources.find("", "v1", "pods")
        if t.name:
            pod = api.get_entry(cluster, Target(pods_res, t.namespace, t.name)).obj  # type: ignore[arg-type]
            m = telemetry.pod_metrics(cluster, pod, now)
            if m is None:
                raise ApiError(
                    404, "NotFound", f'podmetrics.metrics.k8s.io "{t.namespace}/{t.name}" not found'
                )
            return self._send_json(200, m)
        items = [
            m
            for p in cluster.store.objects(PODS, t.namespace)
            if (m := telemetry.pod_metrics(cluster, p, now))
        ]
        self._send_json(
            200,
            {
                "kind": "PodMetricsList",
                "apiVersion": telemetry.METRICS_API,
                "metadata": {},
                "items": items,
            },
        )

    def _summary(self, t: Target, rest: list[str]) -> None:
        cluster = self.server.cluster
        if rest[-2:] != ["stats", "summary"]:
            raise unknown_path()
        node = api.get_entry(cluster, Target(t.res, None, t.name)).obj
        self._send_json(200, telemetry.summary(cluster, node, cluster.now()))


def _log_query(query: dict[str, str]) -> LogQuery:
    def num(name: str) -> int | None:
        if not query.get(name):
            return None
        try:
            value = int(query[name])
        except ValueError as e:
            raise bad_request(f"{name}: invalid value {query[name]!r}: must be an integer") from e
        if value < 0:
            raise bad_request(f"{name}: Invalid value: {value}: must be greater than or equal to 0")
        return value

    since_time = parse_iso(query["sinceTime"]) if query.get("sinceTime") else None
    since = num("sinceSeconds")
    return LogQuery(
        tail_lines=num("tailLines"),
        since_seconds=float(since) if since is not None else None,
        since_time=since_time,
        timestamps=parse_bool(query.get("timestamps")),
        limit_bytes=num("limitBytes"),
    )
