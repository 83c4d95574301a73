"""`kube.connect` against the simulated cluster as kubectl would reach a real one: over TLS with the
kubeconfig's certificate authority (and refused without it), and through a $KUBECONFIG of several
files merged like kubectl's; and in-cluster, as in a pod: a ServiceAccount's token and the
cluster's CA at /var/run/secrets/kubernetes.io/serviceaccount (in a mount namespace of its own),
the API server from KUBERNETES_SERVICE_HOST/PORT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml

from incidentlib.errors import KubeAPIError, KubeConfigError
from incidentlib.kube import client as kube

pytestmark = pytest.mark.sim


def test_tls_with_the_kubeconfigs_ca_verifies_and_reads(sim_cluster: Any) -> None:
    sim = sim_cluster("healthy", tls=True)
    c = kube.connect(kubeconfig=str(sim.kubeconfig))
    try:
        assert c.server.startswith("https://127.0.0.1:") and c.context == "sim"
        assert c.server_version().startswith("v1.")
        names = [n["metadata"]["name"] for n in c.get_json("/api/v1/namespaces")["items"]]
        assert "production" in names
    finally:
        c.close()


def test_tls_without_the_ca_is_refused_not_trusted(sim_cluster: Any, tmp_path: Path) -> None:
    sim = sim_cluster("healthy", tls=True)
    doc = yaml.safe_load(Path(sim.kubeconfig).read_text())
    del doc["clusters"][0]["cluster"]["certificate-authority-data"]
    bare = tmp_path / "no-ca.yaml"
    bare.write_text(yaml.safe_dump(doc))
    c = kube.connect(kubeconfig=str(bare))
    try:
        with pytest.raises(KubeAPIError, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            c.get_json("/api/v1/namespaces", timeout=5)
    finally:
        c.close()
    # asked not to verify (kubectl --insecure-skip-tls-verify), it reads, with urllib3's warning
    c = kube.connect(kubeconfig=str(bare), verify_ssl=False)
    try:
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            assert c.server_version().startswith("v1.")
    finally:
        c.close()


def test_a_multi_path_kubeconfig_is_merged_like_kubectl(
    sim_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = sim_cluster("healthy")
    other = tmp_path / "other.yaml"
    other.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "far", "cluster": {"server": "http://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "far", "context": {"cluster": "far", "user": "u"}}],
            }
        )
    )
    # the first file has no current-context: the second one's (sim) is used, as kubectl does
    monkeypatch.setenv("KUBECONFIG", f"{other}:{sim.kubeconfig}")
    c = kube.connect()
    try:
        assert c.context == "sim" and c.server_version().startswith("v1.")
    finally:
        c.close()
    c = kube.connect(context="far")  # a context of the first file
    try:
        assert c.context == "far" and c.server == "http://127.0.0.1:1"
    finally:
        c.close()
    with pytest.raises(KubeConfigError, match=r"context 'nope' is not in kubeconfig .*far, sim"):
        kube.connect(context="nope")
    # an explicit multi-path argument whose part is missing names that part
    with pytest.raises(KubeConfigError, match=r"kubeconfig '.*missing.yaml' cannot be read: no"):
        kube.connect(kubeconfig=f"{sim.kubeconfig}:{tmp_path / 'missing.yaml'}")


# run in a mount namespace of its own: /run (where /var/run points) is a fresh tmpfs holding the
# ServiceAccount's files where a pod has them; nothing of the machine's own /run is touched
IN_POD = """set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/secrets/kubernetes.io
cp -r "$SA_FILES" /run/secrets/kubernetes.io/serviceaccount
exec "$PYTHON" -c "$CODE"
"""
CODE = """import json
from incidentlib.errors import KubeAPIError
from incidentlib.kube import client as kube
c = kube.connect()
pods = c.get_json("/api/v1/namespaces/production/pods")["items"]
try:
    c.get_json("/api/v1/namespaces/kube-system/pods")
    other = "read"
except KubeAPIError as e:
    other = str(e)
verify = c.api_client.configuration.verify_ssl
names = sorted(p["metadata"]["name"] for p in pods)
print(json.dumps({"context": c.context, "server": c.server, "verify": verify, "pods": names,
                  "kube_system": other}))
"""


# a ServiceAccount that may read the pods of production, and nothing else
PROBE = """apiVersion: v1
kind: ServiceAccount
metadata: {name: probe, namespace: production}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: production}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: probe, namespace: production}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: probe, namespace: production}]
"""


def test_in_cluster_with_a_service_account_token_and_the_clusters_ca(
    sim_cluster: Any, tmp_path: Path
) -> None:
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --mount is not permitted here (it needs root): in-cluster not run")
    sim = sim_cluster("healthy", tls=True)
    objects = tmp_path / "probe.yaml"
    objects.write_text(PROBE)
    applied = sim.kubectl("apply", "-f", str(objects))
    assert applied.returncode == 0, applied.stderr
    token = sim.kubectl("create", "token", "probe", "-n", "production").stdout.strip()
    files = tmp_path / "sa"
    files.mkdir()
    (files / "token").write_text(token)
    (files / "ca.crt").write_bytes(Path(sim.ca).read_bytes())
    (files / "namespace").write_text("production")
    home = tmp_path / "home"  # no ~/.kube/config, no $KUBECONFIG: in-cluster is what is left
    home.mkdir()
    host, port = sim.url.removeprefix("https://").rsplit(":", 1)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "SA_FILES": str(files),
        "PYTHON": sys.executable,
        "CODE": CODE,
    }
    sim.clear_requests()
    r = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", IN_POD],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    seen = json.loads(r.stdout)
    admin = kube.connect(kubeconfig=str(sim.kubeconfig))
    try:
        expected = admin.get_json("/api/v1/namespaces/production/pods")["items"]
    finally:
        admin.close()
    assert (seen["context"], seen["server"], seen["verify"]) == (
        "in-cluster",
        f"https://{host}:{port}",
        True,
    )
    assert seen["pods"] == sorted(p["metadata"]["name"] for p in expected) and seen["pods"]
    assert "403" in seen["kube_system"] and "forbidden" in seen["kube_system"].lower()
    who = {(q["path"], q["user"], q["status"]) for q in sim.requests()}
    sa = "system:serviceaccount:production:probe"
    assert ("/api/v1/namespaces/production/pods", sa, 200) in who
    assert ("/api/v1/namespaces/kube-system/pods", sa, 403) in who
