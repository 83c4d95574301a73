"""What a command run with `kubectl exec` prints inside a simulated container.

The diagnostic commands the runbook uses are answered from the scenario (`exec:` of a deployment,
top-level `blocked:`) and the container's simulated usage: `ps aux [--sort=-%mem]`, `df [-h|-k|-P]`,
`cat /proc/meminfo`, `env`, and checks of a host and port (`nc -z`, `pg_isready`, the library's
`sh -c <script> tcp-check HOST PORT`). Any other command fails as a missing binary does under
containerd: exit code 126 and the runtime's message."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .objects import quantity

if TYPE_CHECKING:
    from .cluster import Cluster

CHECK_MARK = "tcp-check"  # $0 of the library's connectivity script
NOT_FOUND = 126


@dataclass(frozen=True)
class ExecSpec:
    """A container's processes and mounts as a scenario declares them (defaults otherwise)."""

    processes: tuple[dict, ...] = ()
    filesystems: tuple[dict, ...] = ()
    secret_env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_spec(cls, spec: dict) -> ExecSpec:
        return cls(
            processes=tuple(spec.get("processes") or ()),
            filesystems=tuple(spec.get("filesystems") or ()),
            secret_env=tuple((k, str(v)) for k, v in (spec.get("secretEnv") or {}).items()),
        )


@dataclass
class Result:
    """What the command wrote and how it ended."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    extra: dict = field(default_factory=dict)


def run(cluster: Cluster, pod: dict, container: str, argv: list[str], *, now: float) -> Result:
    """Run `argv` in a running container of `pod`, as the scenario says it would go."""
    if not argv:
        return Result(
            stderr="error: you must specify at least one command for the container\n",
            exit_code=NOT_FOUND,
        )
    prog = argv[0].rsplit("/", 1)[-1]
    args = argv[1:]
    if prog == "ps" and args and args[0] in ("aux", "-aux", "-ef") or prog == "ps" and not args:
        return Result(_ps(cluster, pod, container, args, now=now))
    if prog == "df" and all(a in ("-h", "-k", "-P", "-Pk", "-kP", "-B1", "-T") for a in args):
        return Result(_df(cluster, pod, container, args, now=now))
    if prog == "cat" and args == ["/proc/meminfo"]:
        return Result(_meminfo(cluster, pod))
    if prog == "env" and not args or prog == "printenv" and not args:
        return Result(_env(cluster, pod, container))
    if prog == "sh" and len(args) >= 4 and args[0] == "-c" and args[2] == CHECK_MARK:
        return _tcp_script(cluster, pod, container, args[3], args[4] if len(args) > 4 else "")
    if prog == "nc" and "-z" in args and len(args) >= 3:
        ok, ms, error = reach(cluster, pod, container, args[-2], args[-1])
        if ok:
            return Result(
                stderr=f"{args[-2]} ({args[-2]}:{args[-1]}) open\n" if "-v" in args else ""
            )
        return Result(stderr=f"nc: {error}\n", exit_code=1)
    if prog == "pg_isready":
        host = _opt(args, "-h") or "localhost"
        port = _opt(args, "-p") or "5432"
        ok, ms, error = reach(cluster, pod, container, host, port)
        if ok:
            return Result(f"{host}:{port} - accepting connections\n")
        return Result(f"{host}:{port} - no response\n", exit_code=2)
    return Result(
        "OCI runtime exec failed: exec failed: unable to start container process: "
        f'exec: "{argv[0]}": executable file not found in $PATH: unknown\r\n',
        exit_code=NOT_FOUND,
    )


def _opt(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag) and len(a) > len(flag):
            return a[len(flag) :]
    return None


# --- processes ---------------------------------------------------------------------------------
def _node(cluster: Cluster, pod: dict) -> dict:
    entry = cluster.store.get("/nodes", "", pod["spec"].get("nodeName") or "")
    return entry.obj if entry else {}


def _mem_total(cluster: Cluster, pod: dict) -> float:
    return quantity(
        ((_node(cluster, pod).get("status") or {}).get("capacity") or {}).get("memory", "16Gi")
    )


def processes(cluster: Cluster, pod: dict, container: str, *, now: float) -> list[dict]:
    """The container's processes: pid, user, cpu_pct, mem_pct, rss_bytes, vsz_bytes, command."""
    cpu_m, mem = cluster.container_usage(pod, container, now=now)
    spec = cluster.exec_spec(pod, container)
    c: dict = next((c for c in pod["spec"].get("containers", []) if c["name"] == container), {})
    declared = spec.processes or (
        {
            "user": "app",
            "command": " ".join(
                c.get("command") or [f"/usr/local/bin/{container}"] + (c.get("args") or [])
            ),
            "memoryShare": 0.97,
            "cpuShare": 0.98,
        },
        {
            "user": "app",
            "command": "/bin/sh /usr/local/bin/healthcheck.sh",
            "memoryShare": 0.01,
            "cpuShare": 0.01,
        },
    )
    total = _mem_total(cluster, pod)
    out = []
    for i, p in enumerate(declared):
        rss = mem * float(p.get("memoryShare", 1.0 / len(declared)))
        out.append(
            {
                "user": p.get("user", "app"),
                "pid": int(p.get("pid", 1 if i == 0 else 7 + 13 * i)),
                "cpu_pct": round(cpu_m / 10 * float(p.get("cpuShare", 1.0 / len(declared))), 1),
                "mem_pct": round(100 * rss / total, 1) if total else 0.0,
                "rss_bytes": int(rss),
                "vsz_bytes": int(rss * 1.6 + 4 * 2**20),
                "command": p["command"],
            }
        )
    return out


def _ps(cluster: Cluster, pod: dict, container: str, args: list[str], *, now: float) -> str:
    procs = processes(cluster, pod, container, now=now)
    if "--sort=-%mem" in args:
        procs.sort(key=lambda p: -p["rss_bytes"])
    elif "--sort=-%cpu" in args:
        procs.sort(key=lambda p: -p["cpu_pct"])
    lines = ["USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND"]
    for p in procs:
        lines.append(
            f"{p['user']:<10} {p['pid']:>5} {p['cpu_pct']:>4.1f} {p['mem_pct']:>4.1f} "
            f"{p['vsz_bytes'] // 1024:>6} {p['rss_bytes'] // 1024:>5} ?        "
            f"{'Ssl' if p['pid'] == 1 else 'S'}    08:14   0:{p['pid'] % 60:02d} {p['command']}"
        )
    return "\n".join(lines) + "\n"


# --- file systems ------------------------------------------------------------------------------
def filesystems(cluster: Cluster, pod: dict, container: str, *, now: float) -> list[dict]:
    """The container's mounts: filesystem, size_bytes, used_bytes, mounted_on."""
    node = _node(cluster, pod)
    disk = quantity(
        ((node.get("status") or {}).get("capacity") or {}).get("ephemeral-storage", "100Gi")
    )
    spec = cluster.metric_spec(pod, container)
    pressure = any(
        c.get("type") == "DiskPressure" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )
    node_used = 0.92 * disk if pressure else 8 * 2**30 + spec.fs_bytes
    out = [
        {"filesystem": "overlay", "size_bytes": disk, "used_bytes": node_used, "mounted_on": "/"},
        {"filesystem": "tmpfs", "size_bytes": 64 * 2**20, "used_bytes": 0, "mounted_on": "/dev"},
        {"filesystem": "shm", "size_bytes": 64 * 2**20, "used_bytes": 0, "mounted_on": "/dev/shm"},
        {
            "filesystem": "/dev/sda1",
            "size_bytes": disk,
            "used_bytes": node_used,
            "mounted_on": "/etc/hosts",
        },
    ]
    for f in cluster.exec_spec(pod, container).filesystems:
        size = quantity(f["size"])
        used = quantity(f["used"]) if "used" in f else size * float(f.get("usedShare", 0.5))
        out.append(
            {
                "filesystem": f.get("filesystem", "/dev/rbd0"),
                "size_bytes": size,
                "used_bytes": used,
                "mounted_on": f["mountedOn"],
            }
        )
    return out


def _human(n: float) -> str:
    """coreutils `df -h`: powers of 1024, rounded up, one decimal below 10."""
    if n < 1024:
        return f"{int(n)}"
    for unit in "KMGTPE":
        n /= 1024
        if n < 1024 or unit == "E":
            if n < 10:
                return f"{math.ceil(n * 10) / 10:.1f}{unit}"
            return f"{math.ceil(n):d}{unit}"
    return str(n)


def _df(cluster: Cluster, pod: dict, container: str, args: list[str], *, now: float) -> str:
    human = "-h" in args
    rows = filesystems(cluster, pod, container, now=now)
    if human:
        lines = ["Filesystem      Size  Used Avail Use% Mounted on"]
    else:
        head = "1024-blocks" if any("P" in a for a in args) else "1K-blocks"
        lines = [f"Filesystem     {head}     Used Available Use% Mounted on"]
    for r in rows:
        size, used = r["size_bytes"], r["used_bytes"]
        avail = max(size - used, 0)
        pct = f"{math.ceil(100 * used / size) if size and used else 0}%"
        if human:
            lines.append(
                f"{r['filesystem']:<15} {_human(size):>4} {_human(used):>5} "
                f"{_human(avail):>5} {pct:>4} {r['mounted_on']}"
            )
        else:
            lines.append(
                f"{r['filesystem']:<15} {int(size // 1024):>10} {int(used // 1024):>8} "
                f"{int(avail // 1024):>9} {pct:>4} {r['mounted_on']}"
            )
    return "\n".join(lines) + "\n"


def _meminfo(cluster: Cluster, pod: dict) -> str:
    total = _mem_total(cluster, pod) // 1024
    free = int(total * 0.41)
    avail = int(total * 0.63)
    return (
        f"MemTotal:       {int(total):>8} kB\nMemFree:        {free:>8} kB\n"
        f"MemAvailable:   {avail:>8} kB\nBuffers:        {int(total * 0.02):>8} kB\n"
        f"Cached:         {int(total * 0.19):>8} kB\nSwapCached:            0 kB\n"
        "SwapTotal:             0 kB\nSwapFree:              0 kB\n"
    )


def _env(cluster: Cluster, pod: dict, container: str) -> str:
    c: dict = next((c for c in pod["spec"].get("containers", []) if c["name"] == container), {})
    pairs = [
        ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("HOSTNAME", pod["metadata"]["name"]),
    ]
    pairs += [(e["name"], str(e.get("value", ""))) for e in c.get("env") or [] if "name" in e]
    pairs += list(cluster.exec_spec(pod, container).secret_env)
    for svc in cluster.store.objects("/services", pod["metadata"]["namespace"]):
        name = svc["metadata"]["name"].upper().replace("-", "_")
        port = ((svc.get("spec") or {}).get("ports") or [{}])[0].get("port", 80)
        pairs += [
            (f"{name}_SERVICE_HOST", svc["spec"].get("clusterIP", "")),
            (f"{name}_SERVICE_PORT", str(port)),
        ]
    pairs += [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("HOME", "/home/app"),
    ]
    return "".join(f"{k}={v}\n" for k, v in pairs)


# --- reaching a host and port ------------------------------------------------------------------
def _service(cluster: Cluster, host: str, namespace: str) -> dict | None:
    for svc in cluster.store.objects("/services"):
        meta = svc["metadata"]
        names = {
            f"{meta['name']}.{meta['namespace']}",
            f"{meta['name']}.{meta['namespace']}.svc",
            f"{meta['name']}.{meta['namespace']}.svc.cluster.local",
            (svc.get("spec") or {}).get("clusterIP", ""),
        }
        if meta["namespace"] == namespace:
            names.add(meta["name"])
        if host in names:
            return svc
    return None


def reach(
    cluster: Cluster, pod: dict, container: str, host: str, port: str
) -> tuple[bool, float, str]:
    """(reached, milliseconds, error) for a TCP connect from the pod to host:port."""
    ns = pod["metadata"]["namespace"]
    app = cluster.app_of(pod)
    seed = hashlib.sha256(f"{pod['metadata']['name']}|{host}|{port}".encode()).digest()
    latency = 0.4 + seed[0] % 200 / 100
    for b in cluster.blocked:
        if b.get("from") in (app, "*") and b.get("to") in (f"{host}:{port}", host):
            return (
                False,
                3000.0,
                f"connect to {host} port {port} (tcp) timed out: Operation in progress",
            )
    if host in ("localhost", "127.0.0.1", "::1"):
        c: dict = next((c for c in pod["spec"].get("containers", []) if c["name"] == container), {})
        if any(str(p.get("containerPort")) == port for p in c.get("ports") or []):
            return True, 0.1, ""
        return False, 0.1, f"connect to {host} port {port} (tcp) failed: Connection refused"
    svc = _service(cluster, host, ns)
    if svc is not None:
        ports = [str(p.get("port")) for p in (svc.get("spec") or {}).get("ports") or []]
        ep = cluster.store.get("/endpoints", svc["metadata"]["namespace"], svc["metadata"]["name"])
        ready = [
            a
            for s in ((ep.obj if ep else {}).get("subsets") or [])
            for a in s.get("addresses") or []
        ]
        if port in ports and ready:
            return True, latency, ""
        return False, 1.0, f"connect to {host} port {port} (tcp) failed: Connection refused"
    for p in cluster.store.objects("/pods"):
        if (p.get("status") or {}).get("podIP") == host:
            return True, latency, ""
    if any(ch.isalpha() for ch in host):
        return False, 12.0, f'getaddrinfo for host "{host}" port {port}: Name or service not known'
    return False, 3000.0, f"connect to {host} port {port} (tcp) timed out: Operation in progress"


def _tcp_script(cluster: Cluster, pod: dict, container: str, host: str, port: str) -> Result:
    ok, ms, error = reach(cluster, pod, container, host, port)
    if ok:
        return Result(f"{CHECK_MARK} ok {ms:.1f} ms\n")
    return Result(f"{CHECK_MARK} failed {ms:.1f} ms: {error}\n", exit_code=1)
