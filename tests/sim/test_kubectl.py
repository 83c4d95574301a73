"""Every kubectl command the issue lists, run with the real kubectl against the bad-rollout
scenario."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from incidentlib.sim.handle import KUBECTL
from incidentlib.sim.testing import running_sim

pytestmark = [
    pytest.mark.sim,
    # the kubectl the sim runs (`SimHandle.kubectl`), not whichever is first on PATH
    pytest.mark.skipif(not Path(KUBECTL).exists(), reason=f"{KUBECTL} is not installed"),
]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: production
  labels: {app: worker}
spec:
  replicas: 2
  selector:
    matchLabels: {app: worker}
  template:
    metadata:
      labels: {app: worker}
    spec:
      containers:
        - name: worker
          image: registry.example.com/worker:1.0.0
"""


@pytest.fixture(scope="module")
def ro(tmp_path_factory):
    """One bad-rollout cluster shared by the read-only commands of this module."""
    with running_sim("bad-rollout", workdir=tmp_path_factory.mktemp("sim-ro")) as sim:
        yield sim


def ok(sim, *args: str, timeout: float = 30) -> str:
    proc = sim.kubectl(*args, timeout=timeout)
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


def rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def backend_pods(sim) -> list[str]:
    out = ok(sim, "get", "pods", "-n", "production", "-l", "app=backend", "-o", "name")
    return [line.split("/", 1)[1] for line in out.split()]


def test_get_pods_all_namespaces_wide(ro):
    table = rows(ok(ro, "get", "pods", "-A", "-o", "wide"))
    assert table[0] == [
        "NAMESPACE",
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    backend = [r for r in table if r[1].startswith("backend-")]
    assert len(backend) == 3
    for r in backend:
        assert r[0] == "production" and r[2] == "0/1" and r[3] == "CrashLoopBackOff"
        assert re.fullmatch(r"\d+ \(\S+ ago\)", r[4]) and int(r[4].split()[0]) >= 5
        assert (
            r[5] in {"11m", "12m"}
            and r[6].startswith("10.244.")
            and r[7] in {"node-1", "node-2", "node-3"}
        )
    assert any(
        r[0] == "kube-system" and r[1].startswith("coredns-") and r[3] == "Running" for r in table
    )


def test_get_pods_grep_v_running(ro):
    out = ok(ro, "get", "pods", "-A")
    not_running = [line for line in out.splitlines() if "Running" not in line]
    assert not_running[0].startswith("NAMESPACE")
    assert len(not_running) == 4 and all("CrashLoopBackOff" in line for line in not_running[1:])


def test_get_nodes_wide(ro):
    table = rows(ok(ro, "get", "nodes", "-o", "wide"))
    assert table[0][:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [r[0] for r in table[1:]] == ["node-1", "node-2", "node-3"]
    assert all(
        r[1] == "Ready" and r[4] == "v1.32.4" and r[5].startswith("10.0.0.") for r in table[1:]
    )
    assert table[1][7] == "Debian GNU/Linux 12 (bookworm)" and table[1][9] == "containerd://1.7.24"


def test_get_events_sorted_all_namespaces(ro):
    out = ok(ro, "get", "events", "--sort-by=.lastTimestamp", "-A")
    table = rows(out)
    assert table[0] == ["NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    reasons = [r[3] for r in table[1:]]
    assert {"BackOff", "ScalingReplicaSet", "Pulling", "Pulled", "Created", "Started"} <= set(
        reasons
    )
    backoff = [r for r in table[1:] if r[3] == "BackOff"]
    assert len(backoff) == 3 and all(
        r[2] == "Warning" and r[4].startswith("pod/backend-") for r in backoff
    )
    # sorted by lastTimestamp: the scale-ups of days ago come before the back-offs of seconds ago
    assert reasons.index("ScalingReplicaSet") < reasons.index("BackOff")


def test_top_pods_and_nodes(ro):
    table = rows(ok(ro, "top", "pods", "-A"))
    assert table[0] == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    backend = [r for r in table if r[1].startswith("backend-")]
    assert len(backend) == 3 and all(r[2] == "120m" and r[3] == "310Mi" for r in backend)
    nodes = rows(ok(ro, "top", "nodes"))
    assert nodes[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert [r[0] for r in nodes[1:]] == ["node-1", "node-2", "node-3"]
    assert all(r[2].endswith("%") and int(r[2][:-1]) < 100 for r in nodes[1:])


def test_rollout_history(ro):
    out = ok(ro, "rollout", "history", "deployment/backend", "-n", "production")
    lines = out.strip().splitlines()
    assert lines[0].strip() == "deployment.apps/backend"
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3"]
    assert "deploy backend 2.4.0 (ticket OPS-1450)" in lines[-1]


def test_logs_of_deployment_and_previous(ro):
    out = ok(ro, "logs", "deployment/backend", "-n", "production", "--tail=100")
    assert (
        out.strip().splitlines()[-1]
        == "FATAL backend exiting: ConfigError: DATABASE_POOL_SIZE must be set"
    )
    pod = backend_pods(ro)[0]
    prev = ok(ro, "logs", pod, "-n", "production", "--previous")
    assert "Traceback (most recent call last):" in prev
    assert "backend.errors.ConfigError: DATABASE_POOL_SIZE must be set" in prev
    front = ok(ro, "logs", "deployment/frontend", "-n", "production", "--tail=100")
    lines = front.strip().splitlines()
    assert len(lines) == 100
    assert any("ERROR upstream backend: connection refused" in line for line in lines)
    stamped = ok(ro, "logs", "deployment/frontend", "-n", "production", "--tail=3", "--timestamps")
    assert all(
        re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", line) for line in stamped.splitlines()
    )
    recent = ok(ro, "logs", "deployment/frontend", "-n", "production", "--since=5s")
    assert 5 <= len(recent.strip().splitlines()) <= 14  # 2 lines a second


def test_describe_failing_pod(ro):
    pod = backend_pods(ro)[0]
    out = ok(ro, "describe", "pod", pod, "-n", "production")
    assert "Image:          registry.example.com/backend:2.4.0" in out
    assert re.search(r"State:\s+Waiting\n\s+Reason:\s+CrashLoopBackOff", out)
    assert re.search(r"Last State:\s+Terminated\n\s+Reason:\s+Error\n\s+Exit Code:\s+1", out)
    assert re.search(
        r"Warning\s+BackOff\s+\S+ \(x\d+ over 1\dm\)\s+kubelet\s+Back-off restarting failed "
        r"container backend",
        out,
    )
    assert "Controlled By:  ReplicaSet/backend-" in out


def test_scale(sim_cluster):
    sim = sim_cluster("bad-rollout")
    assert (
        ok(sim, "scale", "deployment/backend", "--replicas=5", "-n", "production").strip()
        == "deployment.apps/backend scaled"
    )
    assert len(backend_pods(sim)) == 5
    assert (
        ok(sim, "get", "deploy", "backend", "-n", "production", "-o", "jsonpath={.spec.replicas}")
        == "5"
    )
    bad = sim.kubectl("scale", "deployment/backend", "--replicas=-1", "-n", "production")
    assert bad.returncode != 0


def test_rollout_undo_returns_to_revision_2_and_pods_run(sim_cluster):
    sim = sim_cluster("bad-rollout")
    assert "rolled back" in ok(sim, "rollout", "undo", "deployment/backend", "-n", "production")
    image = ok(
        sim,
        "get",
        "deploy",
        "backend",
        "-n",
        "production",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image == "registry.example.com/backend:2.3.1"
    status = ok(sim, "rollout", "status", "deployment/backend", "-n", "production", "--timeout=30s")
    assert 'deployment "backend" successfully rolled out' in status
    history = ok(sim, "rollout", "history", "deployment/backend", "-n", "production")
    assert [line.split()[0] for line in history.strip().splitlines()[2:]] == ["1", "3", "4"]
    rs = json.loads(ok(sim, "get", "rs", "-n", "production", "-l", "app=backend", "-o", "json"))[
        "items"
    ]
    assert len(rs) == 3  # the old ReplicaSet was reused, not a new one made
    pods = rows(ok(sim, "get", "pods", "-n", "production", "-l", "app=backend"))[1:]
    assert len(pods) == 3 and all(p[1] == "1/1" and p[2] == "Running" for p in pods)


def test_rollout_restart(sim_cluster):
    sim = sim_cluster("bad-rollout")
    before = set(backend_pods(sim))
    assert "restarted" in ok(sim, "rollout", "restart", "deployment/backend", "-n", "production")
    ann = ok(
        sim,
        "get",
        "deploy",
        "backend",
        "-n",
        "production",
        "-o",
        "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    )
    assert re.match(r"\d{4}-\d\d-\d\dT", ann)
    after = set(backend_pods(sim))
    assert len(after) == 3 and not before & after
    history = ok(sim, "rollout", "history", "deployment/backend", "-n", "production")
    assert history.strip().splitlines()[-1].split()[0] == "4"


def test_patch_deployment_limits_and_configmap(sim_cluster):
    sim = sim_cluster("bad-rollout")
    patch = (
        '{"spec":{"template":{"spec":{"containers":'
        '[{"name":"backend","resources":{"limits":{"memory":"1Gi"}}}]}}}}'
    )
    assert "patched" in ok(sim, "patch", "deployment", "backend", "-n", "production", "-p", patch)
    res = json.loads(
        ok(
            sim,
            "get",
            "deploy",
            "backend",
            "-n",
            "production",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].resources}",
        )
    )
    assert res == {"limits": {"memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "256Mi"}}
    assert "patched" in ok(
        sim,
        "patch",
        "configmap",
        "app-config",
        "-n",
        "production",
        "-p",
        '{"data":{"CACHE_ENABLED":"true"}}',
    )
    data = json.loads(
        ok(sim, "get", "cm", "app-config", "-n", "production", "-o", "jsonpath={.data}")
    )
    assert data["CACHE_ENABLED"] == "true" and data["LOG_LEVEL"] == "info"


def test_apply_manifest(sim_cluster, tmp_path):
    sim = sim_cluster("bad-rollout")
    manifest = tmp_path / "worker.yaml"
    manifest.write_text(DEPLOYMENT)
    assert ok(sim, "apply", "-f", str(manifest)).strip() == "deployment.apps/worker created"
    assert ok(sim, "apply", "-f", str(manifest)).strip() == "deployment.apps/worker unchanged"
    manifest.write_text(DEPLOYMENT.replace("replicas: 2", "replicas: 3"))
    assert ok(sim, "apply", "-f", str(manifest)).strip() == "deployment.apps/worker configured"
    assert (
        ok(sim, "get", "deploy", "worker", "-n", "production", "-o", "jsonpath={.spec.replicas}")
        == "3"
    )


def test_get_pods_watch_until_timeout(sim_cluster):
    sim = sim_cluster("bad-rollout")
    ok(sim, "scale", "deployment/frontend", "--replicas=3", "-n", "production")
    out = ok(sim, "get", "pods", "-w", "-n", "production", "--request-timeout=3s", timeout=20)
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["NAME", "READY", "STATUS"]
    new = [
        line for line in lines[1:] if line.startswith("frontend-") and "ContainerCreating" in line
    ]
    assert len(new) == 1
    name = new[0].split()[0]
    assert any(
        line.startswith(name) and " Running " in line for line in lines
    )  # the watch saw it start


def test_logs_follow_streams_new_lines(sim_cluster):
    import os
    import subprocess
    import time

    sim = sim_cluster("bad-rollout")
    pod = ok(sim, "get", "pods", "-n", "production", "-l", "app=frontend", "-o", "name").split()[0]
    proc = subprocess.Popen(
        ["kubectl", "logs", "-f", "--tail=1", pod, "-n", "production"],
        env={**os.environ, **sim.env},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        sim.append_logs("production", pod.split("/", 1)[1], "frontend", ["ERROR followed line"])
        time.sleep(1.0)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    lines = out.splitlines()
    assert "ERROR followed line" in lines
    assert len(lines) >= 4  # the tail line, then new lines at 2 a second


def test_runbook_sim_command_serves_until_interrupted(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "incidentlib.cli",
            "sim",
            "--scenario",
            "bad-rollout",
            "--kubeconfig",
            str(kubeconfig),
            "--workdir",
            str(tmp_path / "w"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        assert lines[1].strip() == f"export KUBECONFIG={kubeconfig}"
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache")}
        out = subprocess.run(
            ["kubectl", "get", "deploy", "-n", "production", "--no-headers"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert [line.split()[:2] for line in out.stdout.splitlines()] == [
            ["backend", "0/3"],
            ["frontend", "2/2"],
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_pause_set_image_resume(sim_cluster):
    sim = sim_cluster("bad-rollout")
    ok(sim, "rollout", "pause", "deployment/backend", "-n", "production")
    ok(
        sim,
        "set",
        "image",
        "deployment/backend",
        "backend=registry.example.com/backend:2.3.1",
        "-n",
        "production",
    )
    images = {
        p.split()[0]
        for p in ok(
            sim,
            "get",
            "pods",
            "-n",
            "production",
            "-l",
            "app=backend",
            "-o",
            "jsonpath={range .items[*]}{.spec.containers[0].image} {end}",
        ).split()
    }
    assert images == {"registry.example.com/backend:2.4.0"}  # paused: nothing rolled out
    ok(sim, "rollout", "resume", "deployment/backend", "-n", "production")
    status = ok(sim, "rollout", "status", "deployment/backend", "-n", "production", "--timeout=30s")
    assert "successfully rolled out" in status
    history = ok(sim, "rollout", "history", "deployment/backend", "-n", "production")
    assert [line.split()[0] for line in history.strip().splitlines()[2:]] == [
        "1",
        "3",
        "4",
    ]  # revision 2 reused
