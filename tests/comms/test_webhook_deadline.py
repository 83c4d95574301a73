"""The webhook post against real local servers that misbehave: a reply that is not HTTP, headers
trickled one line at a time, no reply at all, a redirect; a slow DNS lookup; a bad URL refused
before anything runs. Each ends in one exact line, within the deadline given (plus a margin for a
busy machine, never a speed threshold)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.notebook.comms import post_webhook
from incidentlib.params import Common, url_origin, webhook

SECRET_PATH = "/services/T000/B000/SECRETTOKEN"
DEADLINE = 1.0
# The misbehaving servers below keep at it for this long, then give up (close): a post that returns
# before then was cut by its own deadline, however loaded the machine (no timing threshold).
GIVES_UP_S = 30.0


class RawServer:
    """A TCP server on 127.0.0.1 that reads each HTTP request whole, then hands the socket to
    `answer` (in a thread per connection). `stop()` ends every connection."""

    def __init__(self, answer: Callable[[socket.socket, threading.Event], None]) -> None:
        self.answer = answer
        self.stopped = threading.Event()
        self.requests: list[bytes] = []
        self.conns: list[socket.socket] = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SECRET_PATH}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                body += chunk
            self.requests.append(head + b"\r\n\r\n" + body)
            self.answer(conn, self.stopped)
        except OSError:
            pass

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    started: list[RawServer] = []

    def start(answer: Callable[[socket.socket, threading.Event], None]) -> RawServer:
        server = RawServer(answer)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def timed_post(url: str, *, deadline: float = DEADLINE) -> tuple[str, float]:
    t0 = time.monotonic()
    line = post_webhook(url, "🚨 INCIDENT: backend down", timeout=deadline)
    return line, time.monotonic() - t0


def garbage(conn: socket.socket, stopped: threading.Event) -> None:
    conn.sendall(b"garbage\r\n")
    conn.close()


def trickle(conn: socket.socket, stopped: threading.Event) -> None:
    """A status line, then one header line every 0.4 s for 30 s: each read is quick, the whole is
    not."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for i in range(int(GIVES_UP_S / 0.4)):
        if stopped.wait(0.4):
            return
        conn.sendall(f"X-Slow-{i}: {i}\r\n".encode())


def silent(conn: socket.socket, stopped: threading.Event) -> None:
    stopped.wait(GIVES_UP_S)


@pytest.mark.server
def test_a_reply_that_is_not_http_is_one_line(serve: Callable[..., RawServer]) -> None:
    server = serve(garbage)
    line, elapsed = timed_post(server.url)
    assert line == (
        f"✗ notification NOT confirmed: http://127.0.0.1:{server.port} answered something that "
        "is not HTTP ('garbage'); check the channel, post by hand if missing"
    )
    assert len(server.requests) == 1 and server.requests[0].startswith(
        f"POST {SECRET_PATH} HTTP/1.1".encode()
    )


@pytest.mark.server
def test_headers_trickled_slowly_are_cut_at_the_deadline(serve: Callable[..., RawServer]) -> None:
    server = serve(trickle)
    line, elapsed = timed_post(server.url)
    assert line == (
        f"✗ notification NOT confirmed: http://127.0.0.1:{server.port} did not answer within "
        "1 s; check the channel, post by hand if missing"
    )
    assert elapsed < GIVES_UP_S
    assert len(server.requests) == 1


@pytest.mark.server
def test_a_server_that_never_answers_is_cut_at_the_deadline(
    serve: Callable[..., RawServer],
) -> None:
    server = serve(silent)
    line, elapsed = timed_post(server.url, deadline=1.5)
    assert line == (
        f"✗ notification NOT confirmed: http://127.0.0.1:{server.port} did not answer within "
        "1.5 s; check the channel, post by hand if missing"
    )
    assert elapsed < GIVES_UP_S


@pytest.mark.server
def test_a_redirect_is_an_answer_not_a_second_request(serve: Callable[..., RawServer]) -> None:
    def redirect(conn: socket.socket, stopped: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 5\r\n"
            b"Connection: close\r\n\r\nmoved"
        )
        conn.close()

    server = serve(redirect)
    line, elapsed = timed_post(server.url)
    assert line == (
        f"✗ notification NOT posted: http://127.0.0.1:{server.port} answered 302 Found (moved); "
        "post the text above by hand"
    )
    assert len(server.requests) == 1  # not resent as a GET without the message
    assert elapsed < GIVES_UP_S


def test_the_deadline_covers_a_dns_lookup_that_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host: str, *args: object, **kwargs: object) -> object:
        if host == "hooks.slow-dns.test":
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        line, elapsed = timed_post(f"http://hooks.slow-dns.test{SECRET_PATH}")
    finally:
        release.set()
    assert line == (
        "✗ notification NOT posted: cannot reach http://hooks.slow-dns.test within 1 s "
        "(DNS or connect); post the text above by hand"
    )
    assert elapsed < GIVES_UP_S


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            f"http://127.0.0.1:99999{SECRET_PATH}",
            "notify_webhook http://127.0.0.1:99999 has a port that is not a number from 1 to "
            "65535; give the incoming-webhook URL, e.g. https://hooks.slack.com/services/...",
        ),
        (
            f"https://hooks.example.com:0{SECRET_PATH}",
            "notify_webhook https://hooks.example.com:0 has a port that is not a number from 1 to "
            "65535; give the incoming-webhook URL, e.g. https://hooks.slack.com/services/...",
        ),
        (
            f"http://hooks.example.com:https{SECRET_PATH}",
            "notify_webhook http://hooks.example.com:https has a port that is not a number from 1 "
            "to 65535; give the incoming-webhook URL, e.g. https://hooks.slack.com/services/...",
        ),
        (
            f"https://{SECRET_PATH}",
            "notify_webhook https:// has no host; give the incoming-webhook URL, e.g. "
            "https://hooks.slack.com/services/...",
        ),
        (
            f"ftp://hooks.example.com{SECRET_PATH}",
            "notify_webhook ftp://hooks.example.com is not an http(s) URL; give the "
            "incoming-webhook URL, e.g. https://hooks.slack.com/services/...",
        ),
        (
            f"hooks.example.com{SECRET_PATH}",
            "notify_webhook does not start with http:// or https:// and a host (not echoed: a "
            "webhook's path is a secret); give the incoming-webhook URL, e.g. "
            "https://hooks.slack.com/services/...",
        ),
        (
            f"https://hooks.example.com{SECRET_PATH} ",
            "notify_webhook contains spaces or control characters (not echoed: a webhook's path "
            "is a secret); give the incoming-webhook URL, e.g. "
            "https://hooks.slack.com/services/...",
        ),
        (
            f"http://[::1{SECRET_PATH}",
            "notify_webhook is not a URL that can be parsed (not echoed: a webhook's path is a "
            "secret); give the incoming-webhook URL, e.g. https://hooks.slack.com/services/...",
        ),
    ],
    ids=["port-99999", "port-0", "port-name", "no-host", "ftp", "no-scheme", "space", "bad-ipv6"],
)
def test_a_bad_url_is_refused_before_anything_runs_without_its_secret(
    url: str, message: str
) -> None:
    with pytest.raises(InvalidParameter) as e:
        Common.check({"notify_webhook": url})  # the notebook's first cell
    assert str(e.value) == message and "SECRETTOKEN" not in str(e.value)
    # and posting to it anyway is one line, nothing sent, no exception
    assert post_webhook(url, "text", timeout=DEADLINE) == f"✗ notification NOT posted: {message}"


def test_a_good_url_passes_and_its_origin_hides_the_path_and_the_password() -> None:
    url = f"https://sre:hunter2@hooks.example.com:8443{SECRET_PATH}?x=1"
    assert webhook(url) == url
    assert url_origin(url) == "https://hooks.example.com:8443"
    assert Common.check({"notify_webhook": url}).recorded()["notify_webhook"] == (
        "https://hooks.example.com:8443/***"
    )


def test_a_bad_deadline_is_a_line_too() -> None:
    assert post_webhook(f"http://127.0.0.1:9{SECRET_PATH}", "text", timeout=0) == (
        "✗ notification NOT posted: timeout 0 must be a positive number of seconds"
    )
