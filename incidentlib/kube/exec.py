"""Read-only `kubectl exec`: a fixed allow-list of diagnostic commands run in a pod's container,
with a timeout, a cap on what is read back, and the output redacted.

    checks          the allow-list: name -> argv (`ps aux --sort=-%mem`, `df -P -k`, ...)
    run_check       run one over the WebSocket stream protocol; an ExecResult, never a raise
                    for what a pod can answer (forbidden, not running, no such binary, timeout)
    parse_ps / parse_df / parse_tcp_check   pure: the command's text in, rows out
    processes_frame / pod_disk_frame / connectivity_frame   pure: results in, the scraps' tables out

Nothing here takes a command from a caller: only the names in CHECKS, and for the connectivity
check a host and a port, which go to a fixed script as its arguments (never into its text)."""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameter
from ..redact import redact_text
from .client import Cluster

if TYPE_CHECKING:
    import pandas as pd

MAX_BYTES = 256 * 1024
DEFAULT_TIMEOUT = 10.0
TCP_MARK = "tcp-check"
# $0 is the mark, $1 the host, $2 the port: they are arguments, never part of the script's text.
TCP_SCRIPT = (
    't0=$(date +%s%N); if command -v nc >/dev/null 2>&1; then out=$(nc -z -w 3 "$1" "$2" 2>&1); '
    'rc=$?; else out=$(timeout 3 bash -c \'exec 3<>"/dev/tcp/$0/$1"\' "$1" "$2" 2>&1); rc=$?; fi; '
    "t1=$(date +%s%N); ms=$(( (t1 - t0) / 1000000 )); "
    'if [ $rc -eq 0 ]; then echo "tcp-check ok $ms ms"; else echo "tcp-check failed $ms ms: $out"; '
    "fi; exit $rc"
)
CHECKS: dict[str, list[str]] = {
    "processes": ["ps", "aux", "--sort=-%mem"],
    "disk": ["df", "-P", "-k"],
    "meminfo": ["cat", "/proc/meminfo"],
    "env": ["env"],
}
PROCESS_COLUMNS = [
    "namespace",
    "pod",
    "container",
    "pid",
    "user",
    "cpu_pct",
    "mem_pct",
    "rss_bytes",
    "command",
]
POD_DISK_COLUMNS = [
    "pod",
    "container",
    "filesystem",
    "size_bytes",
    "used_bytes",
    "use_pct",
    "mounted_on",
]
CONNECTIVITY_COLUMNS = ["from_pod", "target", "ok", "latency_ms", "error"]
_SECRET_NAME = re.compile(r"(PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|DSN|DATABASE_URL|PRIVATE)", re.I)
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$|^[0-9a-fA-F:]+$")


@dataclass
class ExecResult:
    """What one check returned: its output (redacted), its exit code, or why it did not run."""

    namespace: str
    pod: str
    container: str
    check: str
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    error: str | None = None  # a sentence for the notebook: forbidden, not running, no binary...
    truncated: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_code == 0


def check_argv(check: str, *, host: str | None = None, port: int | None = None) -> list[str]:
    """The argv of an allowed check; `tcp` takes a host and a port, checked, as arguments."""
    if check == "tcp":
        if not host or not _HOST.match(host) or not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidParameter(f"connectivity check to {host!r}:{port!r}: not a host and port")
        return ["sh", "-c", TCP_SCRIPT, TCP_MARK, host, str(port)]
    if check not in CHECKS:
        raise InvalidParameter(f"exec check {check!r} is not allowed; allowed: {', '.join(CHECKS)}")
    return list(CHECKS[check])


def not_running(pod: dict[str, Any], container: str) -> str | None:
    """Why `container` of `pod` cannot be exec'd into (as the API server would refuse), or None."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name = meta.get("name", "")
    if meta.get("deletionTimestamp"):
        return f"pod {name} is terminating: nothing to exec into"
    if not (pod.get("spec") or {}).get("nodeName"):
        return f"pod {name} is not scheduled on a node yet ({status.get('phase', 'Pending')})"
    cs = next(
        (s for s in status.get("containerStatuses") or [] if s.get("name") == container), None
    )
    state = (cs or {}).get("state") or {}
    if "running" in state:
        return None
    what = (state.get("waiting") or {}).get("reason") or (
        "terminated" if "terminated" in state else "not started"
    )
    return f"container {container} of pod {name} is not running ({what}): nothing to exec into"


def _handshake_error(reason: str, namespace: str, pod: str, container: str) -> str:
    """The sentence for a refused exec upgrade (the client reports the HTTP status in its text)."""
    m = re.search(r"Handshake status (\d+)", reason)
    code = int(m.group(1)) if m else 0
    body = reason.rsplit("-+-+-", 1)[-1].strip()
    try:
        raw = ast.literal_eval(body) if body.startswith(("b'", 'b"')) else body.encode()
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    except (ValueError, SyntaxError):
        text = body
    try:
        message = str(json.loads(text).get("message") or text)
    except (ValueError, AttributeError):
        message = text
    if code == 403:
        return (
            f"exec forbidden: this identity may not create pods/exec in namespace {namespace} "
            f"({message}); grant it, or run with exec_checks=False"
        )
    if code in (400, 404, 500) and "container not found" in message:
        return f"container {container} of pod {pod} is not running: nothing to exec into"
    if code:
        return f"exec into {pod}/{container} refused: HTTP {code}: {message}"
    return f"exec into {pod}/{container} failed: {reason[:300]}"


def run_check(
    cluster: Cluster,
    namespace: str,
    pod: str,
    container: str,
    check: str,
    *,
    host: str | None = None,
    port: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> ExecResult:
    """Run an allowed check in a container; what went wrong is in `.error`, never raised."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream

    argv = check_argv(check, host=host, port=port)
    out = ExecResult(namespace, pod, container, check)
    t0 = time.monotonic()
    try:
        ws = stream(
            client.CoreV1Api(cluster.api_client).connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=argv,
            container=container,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
            _request_timeout=timeout,
        )
    except ApiException as e:
        out.error = _handshake_error(str(e.reason or e), namespace, pod, container)
        out.seconds = round(time.monotonic() - t0, 3)
        return out
    stdout: list[str] = []
    stderr: list[str] = []
    size = 0
    try:
        while ws.is_open():
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                out.error = f"{check} in {pod}/{container} gave no answer within {timeout:g} s"
                break
            ws.update(timeout=min(left, 1.0))
            for sink, chunk in ((stdout, ws.read_stdout()), (stderr, ws.read_stderr())):
                if chunk:
                    sink.append(chunk)
                    size += len(chunk)
            if size > max_bytes:
                out.truncated = True
                break
        if out.error is None and not out.truncated:
            stdout.append(ws.read_stdout() or "")
            stderr.append(ws.read_stderr() or "")
            try:
                out.exit_code = ws.returncode
            except (TypeError, ValueError, KeyError, IndexError):
                out.exit_code = None
    finally:
        ws.close()
    out.stdout = redact_text("".join(stdout)[:max_bytes])
    out.stderr = redact_text("".join(stderr)[:max_bytes])
    if out.truncated:
        out.exit_code = out.exit_code if out.exit_code is not None else 0
    if out.error is None and out.exit_code in (126, 127):
        out.error = (
            f"the container has no `{argv[0]}` (a minimal or distroless image?): "
            f"{(out.stdout + out.stderr).strip()[:200]}"
        )
    if check == "env":
        out.stdout = redact_env(out.stdout)
    out.seconds = round(time.monotonic() - t0, 3)
    return out


# ------------------------------------------------------------------------------------ pure parsing
def redact_env(text: str) -> str:
    """`env` output with the value of every variable whose name looks secret replaced."""
    lines = []
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and _SECRET_NAME.search(name):
            value = "[REDACTED]"
        lines.append(f"{name}{sep}{value}")
    return redact_text("\n".join(lines) + ("\n" if text.endswith("\n") else ""))


def parse_ps(text: str) -> list[dict[str, Any]]:
    """`ps aux` rows: user, pid, cpu_pct, mem_pct, rss_bytes, command (RSS is in KiB)."""
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split(None, 10)
        if len(parts) < 11:
            continue
        try:
            rows.append(
                {
                    "user": parts[0],
                    "pid": int(parts[1]),
                    "cpu_pct": float(parts[2]),
                    "mem_pct": float(parts[3]),
                    "rss_bytes": int(parts[5]) * 1024,
                    "command": parts[10],
                }
            )
        except ValueError:
            continue
    return rows


def parse_df(text: str) -> list[dict[str, Any]]:
    """`df -P -k` rows: filesystem, size_bytes, used_bytes, use_pct, mounted_on."""
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        try:
            size, used = int(parts[1]) * 1024, int(parts[2]) * 1024
        except ValueError:
            continue
        rows.append(
            {
                "filesystem": parts[0],
                "size_bytes": size,
                "used_bytes": used,
                "use_pct": round(100 * used / size, 1) if size else 0.0,
                "mounted_on": parts[5],
            }
        )
    return rows


def parse_tcp_check(text: str) -> tuple[bool, float | None, str | None]:
    """(ok, latency_ms, error) from the connectivity script's line."""
    m = re.search(r"tcp-check (ok|failed) ([\d.]+) ms(?:: (.*))?", text)
    if not m:
        return False, None, text.strip()[:300] or "no answer from the check"
    return m.group(1) == "ok", float(m.group(2)), (m.group(3) or None)


# -------------------------------------------------------------------------------------- frames
def processes_frame(results: Iterable[ExecResult]) -> pd.DataFrame:
    """The `processes` scrap: every process of every container that answered."""
    import pandas as pd

    rows = [
        {"namespace": r.namespace, "pod": r.pod, "container": r.container, **p}
        for r in results
        if r.exit_code == 0
        for p in parse_ps(r.stdout)
    ]
    df = pd.DataFrame(rows, columns=PROCESS_COLUMNS)
    return df.astype(
        {"pid": "int64", "cpu_pct": "float64", "mem_pct": "float64", "rss_bytes": "int64"}
    )


def pod_disk_frame(results: Iterable[ExecResult]) -> pd.DataFrame:
    """The `pod_disk` scrap: each file system mounted in each container that answered."""
    import pandas as pd

    rows = [
        {"pod": r.pod, "container": r.container, **f}
        for r in results
        if r.exit_code == 0
        for f in parse_df(r.stdout)
    ]
    df = pd.DataFrame(rows, columns=POD_DISK_COLUMNS)
    return df.astype({"size_bytes": "int64", "used_bytes": "int64", "use_pct": "float64"})


def connectivity_frame(results: Iterable[tuple[str, ExecResult]]) -> pd.DataFrame:
    """The `connectivity` scrap: (target, result) of each pod's TCP check."""
    import pandas as pd

    rows = []
    for target, r in results:
        ok: bool
        ms: float | None
        error: str | None
        if r.error is not None and not r.stdout:
            ok, ms, error = False, None, r.error
        else:
            ok, ms, error = parse_tcp_check(r.stdout)
        rows.append(
            {"from_pod": r.pod, "target": target, "ok": ok, "latency_ms": ms, "error": error}
        )
    df = pd.DataFrame(rows, columns=CONNECTIVITY_COLUMNS)
    return df.astype({"ok": "bool", "latency_ms": "float64"})
