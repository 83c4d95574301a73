"""The server side of RFC 6455 as the Kubernetes stream protocols use it: the handshake, binary
frames whose first byte is the channel, the exit Status, the closing handshake."""

from __future__ import annotations

import base64
import hashlib
import select
import struct
import time
from typing import IO

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def handshake(key: str, protocol: str) -> bytes:
    """The 101 answer accepting the upgrade with `protocol`."""
    accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
    ).encode()


def frame(payload: bytes, *, opcode: int = 0x2) -> bytes:
    """One unmasked final frame (servers never mask)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def close_frame(code: int = 1000) -> bytes:
    return frame(struct.pack("!H", code), opcode=0x8)


def exit_status(argv: list[str], code: int) -> dict:
    """The Status on the error channel: Success, or NonZeroExitCode with the code as its cause."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
        f"[{' '.join(argv)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def drain(sock: object, rfile: IO[bytes], *, seconds: float = 2.0) -> None:
    """Read the client's frames (stdin close signals, its close frame) until it closes or goes
    quiet, so it sees our close frame answered rather than a reset connection."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            ready, _, _ = select.select([sock], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                return
            head = rfile.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", rfile.read(8))[0]
            if head[1] & 0x80:
                rfile.read(4)
            rfile.read(n)
            if opcode == 0x8:
                return
        except (OSError, ValueError, struct.error):
            return
