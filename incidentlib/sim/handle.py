"""Starting a simulated cluster and talking to it: `start()` returns a `SimHandle` with the URL, a
kubeconfig, the environment for subprocesses and the staging calls tests use."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import yaml

from ..errors import InvalidParameter
from .cluster import Cluster
from .scenario import ScenarioError, build
from .server import SimServer
from .tls import make_certificates

CONTEXT = "sim"
KUBECTL = "/usr/bin/kubectl"
STAGING_TIMEOUT = 30.0


def write_kubeconfig(
    path: Path, *, url: str, ca_pem: bytes | None = None, namespace: str = "default"
) -> Path:
    """A kubeconfig with one context, `sim`, pointing at url (trusting ca_pem for HTTPS)."""
    cluster: dict = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": {"token": "sim-not-a-secret"}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class SimHandle:
    """A running simulated cluster."""

    def __init__(
        self,
        *,
        server: SimServer,
        cluster: Cluster,
        workdir: Path,
        url: str,
        kubeconfig: Path,
        ca: Path | None,
    ) -> None:
        self.server = server
        self.cluster = cluster
        self.workdir = workdir
        self.url = url
        self.kubeconfig = kubeconfig
        self.context = CONTEXT
        self.ca = ca
        cache = workdir / "kubecache"
        cache.mkdir(parents=True, exist_ok=True)
        self.env = {"KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache)}
        self._thread = server.serve_in_thread()
        self._stopped = False

    # --- staging calls (the /_sim/ endpoints) --------------------------------------------------
    def _call(self, method: str, path: str, payload: object | None = None) -> object:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        ctx = ssl.create_default_context(cafile=str(self.ca)) if self.ca else None
        with urllib.request.urlopen(req, timeout=STAGING_TIMEOUT, context=ctx) as resp:
            return json.loads(resp.read())

    def requests(self) -> list[dict]:
        """The Kubernetes requests served so far: method, path, query, content_type."""
        answer = self._call("GET", "/_sim/requests")
        assert isinstance(answer, list)
        return answer

    def clear_requests(self) -> None:
        self._call("DELETE", "/_sim/requests")

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward; the kubelet and controllers catch up."""
        self._call("POST", "/_sim/advance", {"seconds": seconds})

    def append_logs(self, namespace: str, pod: str, container: str, lines: Iterable[str]) -> None:
        """Append lines (stamped now) to a container's current log."""
        self._call(
            "POST",
            "/_sim/logs",
            {"namespace": namespace, "pod": pod, "container": container, "lines": list(lines)},
        )

    def set_metrics(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        cpu_m: float | None = None,
        memory_bytes: float | None = None,
    ) -> None:
        """Fix a container's CPU (millicores) and/or memory (bytes) in the metrics and summary
        APIs."""
        self._call(
            "POST",
            "/_sim/metrics",
            {
                "namespace": namespace,
                "pod": pod,
                "container": container,
                "cpu_m": cpu_m,
                "memory_bytes": memory_bytes,
            },
        )

    # --- tools -------------------------------------------------------------------------------
    def kubectl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run the real kubectl against this cluster (own kubeconfig and cache)."""
        env = {**os.environ, **self.env}
        return subprocess.run(
            [KUBECTL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    scenario: str | dict = "healthy",
    *,
    workdir: Path,
    port: int = 0,
    tls: bool = False,
    forbidden_namespaces: Iterable[str] = (),
    forbidden_resources: Iterable[str] = (),
    metrics: bool = True,
    kubeconfig: Path | None = None,
    verbose: bool = False,
) -> SimHandle:
    """Seed a cluster with `scenario` and serve it on 127.0.0.1 in a background thread.

    `scenario` is a name (`scenario_names()`) or a spec dict in the YAML format, e.g.
    `{"include": ["healthy"], "nodes": {"conditions": {"node-3": {"Ready": "False"}}}}`.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(
        forbidden_namespaces=frozenset(forbidden_namespaces),
        forbidden_resources=frozenset(forbidden_resources),
        metrics=metrics,
    )
    try:
        build(scenario, cluster=cluster)
    except ScenarioError as e:
        raise InvalidParameter(str(e)) from e
    certs = make_certificates(workdir / "tls") if tls else None
    server = SimServer(
        cluster, port=port, tls=(certs.cert, certs.key) if certs else None, verbose=verbose
    )
    url = f"{'https' if tls else 'http'}://127.0.0.1:{server.port}"
    kc = write_kubeconfig(
        kubeconfig or workdir / "kubeconfig",
        url=url,
        ca_pem=certs.ca.read_bytes() if certs else None,
    )
    return SimHandle(
        server=server,
        cluster=cluster,
        workdir=workdir,
        url=url,
        kubeconfig=kc,
        ca=certs.ca if certs else None,
    )
